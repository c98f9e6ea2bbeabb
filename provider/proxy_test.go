package provider

import (
	"bytes"
	"encoding/binary"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// answerHoldingProxy forwards TCP connections to a server, except that on a
// connection whose client sent marker it never delivers the server's answer:
// the server does the work, and the client waits until it gives up. This is
// a network that fails after the server committed (or an apply interrupted
// at that moment), made certain. With holdAt set, the answers stop only at
// the first statement holding holdAt after the marker (the COMMIT of the
// transaction the marked statement ran in).
type answerHoldingProxy struct {
	ln     net.Listener
	target string
	marker []byte
	holdAt []byte
	delay  time.Duration // when set, the answers are delayed by it, not held
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  []net.Conn // closed when the test ends: the provider's pools keep theirs
}

// startAnswerHoldingProxy listens on 127.0.0.1 and forwards to host:port
// until the test ends.
func startAnswerHoldingProxy(t *testing.T, host string, port int, marker string) *answerHoldingProxy {
	t.Helper()
	return startCommitHoldingProxy(t, host, port, marker, marker)
}

// startCommitHoldingProxy is startAnswerHoldingProxy stopping the answers at
// the first statement holding holdAt from the marker on.
func startCommitHoldingProxy(t *testing.T, host string, port int, marker, holdAt string) *answerHoldingProxy {
	t.Helper()
	return startProxy(t, host, port, &answerHoldingProxy{marker: []byte(marker), holdAt: []byte(holdAt)})
}

// startAnswerDelayingProxy is startAnswerHoldingProxy delaying the answer
// to each statement holding marker by delay, instead of holding it: a
// server slow to answer one query, as on a loaded machine, made certain.
func startAnswerDelayingProxy(t *testing.T, host string, port int, marker string, delay time.Duration) *answerHoldingProxy {
	t.Helper()
	return startProxy(t, host, port, &answerHoldingProxy{marker: []byte(marker), holdAt: []byte(marker), delay: delay})
}

// startProxy starts p, forwarding to host:port.
func startProxy(t *testing.T, host string, port int, p *answerHoldingProxy) *answerHoldingProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.ln, p.target = ln, net.JoinHostPort(host, strconv.Itoa(port))
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

// pipe copies one connection both ways. Once the client has sent the marker
// and then asked the server to run a statement holding holdAt (a simple
// Query, or the Execute after a Parse of it; the marked statement itself
// when holdAt is the marker), what the server sends is read and dropped.
func (p *answerHoldingProxy) pipe(client, server net.Conn) {
	defer p.wg.Done()
	var held, delayNext atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 32<<10)
		for {
			n, err := server.Read(buf)
			if n > 0 && delayNext.Swap(false) {
				time.Sleep(p.delay)
			}
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
	startup, marked, parsed := true, false, false
	// at reports whether msg is the statement the answers stop at.
	at := func(msg []byte) bool {
		marked = marked || bytes.Contains(msg, p.marker)
		return marked && bytes.Contains(msg, p.holdAt)
	}
	prepared := map[string]bool{} // statement name: whether it is the one
	answer := func() {
		if p.delay > 0 {
			delayNext.Store(true)
		} else {
			held.Store(true)
		}
	}
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
						if at(msg) {
							answer()
						}
					case 'P': // Parse: statement name, then the SQL
						name, _, _ := bytes.Cut(msg[5:], []byte{0})
						parsed = at(msg)
						prepared[string(name)] = parsed
					case 'B': // Bind: portal name, then statement name
						_, rest, _ := bytes.Cut(msg[5:], []byte{0})
						name, _, _ := bytes.Cut(rest, []byte{0})
						parsed = prepared[string(name)]
					case 'E':
						if parsed {
							answer()
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
