package routertest

import (
	"bytes"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
)

// A Proxy forwards TCP connections to a node and can lose the server's
// answer to a chosen statement: the statement reaches the server, which
// runs it (a COMMIT commits), and the client sees its connection close
// instead of the answer. That is the one failure after which a client
// cannot know whether its write committed, made exact: a network that
// fails at that moment, or a router that cuts the connection.
type Proxy struct {
	ln     net.Listener
	target string
	marker atomic.Pointer[[]byte] // the armed marker; nil when disarmed
	lost   atomic.Int64
	wg     sync.WaitGroup
}

// NewProxy starts a proxy on 127.0.0.1 in front of n, closed when the
// test ends. Point a router file's node at [Proxy.Port].
func (n *Node) NewProxy(tb testing.TB) *Proxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &Proxy{ln: ln, target: net.JoinHostPort(n.Host, strconv.Itoa(n.Port))}
	p.wg.Add(1)
	go p.accept()
	tb.Cleanup(func() {
		ln.Close()
		p.wg.Wait()
	})
	return p
}

// Port is where the proxy listens.
func (p *Proxy) Port() int { return p.ln.Addr().(*net.TCPAddr).Port }

// LoseAnswerTo arms the proxy: the next client message (on any of its
// connections) that holds sql as a statement's text, as a simple query or
// a Parse message sends it (NUL-terminated), reaches the server; the
// server's first answer after it is dropped and both sides of that
// connection are closed. The proxy then disarms. The match is exact and
// case-sensitive: pgx's Tx sends "commit", routerlib's read_your_writes
// Commit "COMMIT".
func (p *Proxy) LoseAnswerTo(sql string) {
	m := append([]byte(sql), 0)
	p.marker.Store(&m)
}

// Lost returns how many answers the proxy has dropped.
func (p *Proxy) Lost() int { return int(p.lost.Load()) }

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.forward(c, s)
		}()
	}
}

// forward carries one connection. The client's bytes go through as they
// come; once a chunk of them holds the armed marker, the server's next
// bytes are dropped and both sides closed.
func (p *Proxy) forward(c, s net.Conn) {
	var doomed atomic.Bool
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		buf := make([]byte, 32<<10)
		for {
			n, err := c.Read(buf)
			if n > 0 {
				if m := p.marker.Load(); m != nil && bytes.Contains(buf[:n], *m) && p.marker.CompareAndSwap(m, nil) {
					doomed.Store(true)
				}
				if _, werr := s.Write(buf[:n]); werr != nil {
					break
				}
			}
			if err != nil {
				break
			}
		}
		if !doomed.Load() {
			s.Close()
		}
	}()
	defer c.Close()
	defer s.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := s.Read(buf)
		if n > 0 {
			if doomed.Load() {
				p.lost.Add(1)
				return
			}
			if _, err := c.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
