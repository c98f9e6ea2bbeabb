package provider

import (
	"bytes"
	"encoding/binary"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
)

// answerHoldingProxy forwards TCP connections to a server, except that on a
// connection whose client sent marker it never delivers the server's answer:
// the server does the work, and the client waits until it gives up. This is
// a network that fails after the server committed (or an apply interrupted
// at that moment), made certain.
type answerHoldingProxy struct {
	ln     net.Listener
	target string
	marker []byte
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  []net.Conn // closed when the test ends: the provider's pools keep theirs
}

// startAnswerHoldingProxy listens on 127.0.0.1 and forwards to host:port
// until the test ends.
func startAnswerHoldingProxy(t *testing.T, host string, port int, marker string) *answerHoldingProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &answerHoldingProxy{ln: ln, target: net.JoinHostPort(host, strconv.Itoa(port)), marker: []byte(marker)}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(func() {
		_ = ln.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			_ = c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

// Port is the port clients connect to.
func (p *answerHoldingProxy) Port() int { return p.ln.Addr().(*net.TCPAddr).Port }

func (p *answerHoldingProxy) serve() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = client.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, client, server)
		p.mu.Unlock()
		p.wg.Add(1)
		go p.pipe(client, server)
	}
}

// pipe copies one connection both ways. Once the client has asked the
// server to run a statement holding the marker (a simple Query, or the
// Execute after a Parse of it), what the server sends is read and dropped.
func (p *answerHoldingProxy) pipe(client, server net.Conn) {
	defer p.wg.Done()
	var held atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 32<<10)
		for {
			n, err := server.Read(buf)
			if n > 0 && !held.Load() {
				if _, werr := client.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				_ = client.Close()
				return
			}
		}
	}()
	var stream []byte // client bytes not yet split into messages
	startup, parsed := true, false
	buf := make([]byte, 32<<10)
	for {
		n, err := client.Read(buf)
		if n > 0 {
			stream = append(stream, buf[:n]...)
			for {
				// The startup message has no type byte; every later one does.
				head := 5
				if startup {
					head = 4
				}
				if len(stream) < head {
					break
				}
				size := int(binary.BigEndian.Uint32(stream[head-4 : head]))
				if len(stream) < head-4+size {
					break
				}
				msg := stream[:head-4+size]
				if !startup {
					switch msg[0] {
					case 'Q':
						if bytes.Contains(msg, p.marker) {
							held.Store(true)
						}
					case 'P':
						parsed = bytes.Contains(msg, p.marker)
					case 'E':
						if parsed {
							held.Store(true)
						}
					}
				}
				startup = false
				stream = stream[len(msg):]
			}
			if _, werr := server.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	_ = server.Close()
	_ = client.Close()
	<-done
}
