package routertest

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

// A Proxy forwards TCP connections to a node and can lose, hold or delay
// the server's answer to chosen statements: the statement reaches the
// server, which runs it (a COMMIT commits), and the client does not get
// the answer. That is the one failure after which a client cannot know
// whether its write committed, made exact: a network that fails at that
// moment, or a router that cuts the connection.
//
// The proxy reads the client's messages (the startup message, then typed
// messages) to find the statement each Query or Execute runs: a simple
// Query's text, or the text of the Parse an Execute's portal was bound
// from. It needs the connection unencrypted (sslmode=disable).
type Proxy struct {
	ln     net.Listener
	target string
	lose   atomic.Pointer[[]byte] // LoseAnswerTo's armed marker; nil when disarmed
	hold   atomic.Pointer[holdRule]
	lost   atomic.Int64
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  []net.Conn // closed when the test ends: a client's pool may keep them
}

// holdRule is HoldAnswers' or DelayAnswers' rule.
type holdRule struct {
	marker, at []byte
	delay      time.Duration // DelayAnswers: the answers come late instead of never
}

// NewProxy starts a proxy on 127.0.0.1 in front of n, closed when the
// test ends, with the connections still open. Point a router file's node
// (or a client) at [Proxy.Port].
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
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

// Port is where the proxy listens.
func (p *Proxy) Port() int { return p.ln.Addr().(*net.TCPAddr).Port }

// LoseAnswerTo arms the proxy: the next client message (on any of its
// connections) that holds sql as a statement's text, as a simple query or
// a Parse message sends it (NUL-terminated: the whole text, or the last
// statement of a simple query's string), reaches the server; the server's
// first answer after it is dropped and both sides of that connection are
// closed. The proxy then disarms. The match is case-sensitive: pgx's Tx
// sends "commit", routerlib's read_your_writes Commit "COMMIT".
func (p *Proxy) LoseAnswerTo(sql string) {
	m := append([]byte(sql), 0)
	p.lose.Store(&m)
}

// Lost returns how many answers the proxy has dropped after LoseAnswerTo.
func (p *Proxy) Lost() int { return int(p.lost.Load()) }

// HoldAnswers makes the proxy, on every connection whose client sent a
// statement containing marker, hold back everything the server sends from
// the first statement containing at (marker's own, when at is marker; the
// COMMIT of its transaction, say, when at is "commit") on: the server does
// the work, and the client waits until it gives up; when it closes the
// connection, the server's session ends. A network that fails after the
// server committed, or an apply interrupted at that moment, made certain.
func (p *Proxy) HoldAnswers(marker, at string) {
	p.hold.Store(&holdRule{marker: []byte(marker), at: []byte(at)})
}

// DelayAnswers makes the proxy deliver the answer to every statement
// containing marker delay late: a server slow to answer one query, as on
// a loaded machine, made certain.
func (p *Proxy) DelayAnswers(marker string, delay time.Duration) {
	p.hold.Store(&holdRule{marker: []byte(marker), at: []byte(marker), delay: delay})
}

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
		p.mu.Lock()
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.forward(c, s)
		}()
	}
}

// answers is what the server side of one connection does with the server's
// bytes, as the client's messages decide.
type answers struct {
	doomed    atomic.Bool // LoseAnswerTo: drop the next bytes and close
	held      atomic.Bool // HoldAnswers: drop every byte from now on
	delayNext atomic.Int64
}

// forward carries one connection. The client's bytes go through as they
// come, read as messages on the way (see clientMessages).
func (p *Proxy) forward(c, s net.Conn) {
	var a answers
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		p.clientMessages(c, s, &a)
		// The client is gone: so is the server's session (a held one
		// too), unless an answer is still to be lost, which the loop
		// below counts before it closes both.
		if !a.doomed.Load() {
			s.Close()
		}
	}()
	defer c.Close()
	defer s.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := s.Read(buf)
		if n > 0 {
			if d := a.delayNext.Swap(0); d > 0 {
				time.Sleep(time.Duration(d))
			}
			if a.doomed.Load() {
				p.lost.Add(1)
				return
			}
			if !a.held.Load() {
				if _, err := c.Write(buf[:n]); err != nil {
					return
				}
			}
		}
		if err != nil {
			return
		}
	}
}

// sslRequest and gssRequest are the codes of the startup-format requests
// after which the client sends its startup message (the server declined).
const sslRequest, gssRequest = 80877103, 80877104

// clientMessages copies the client's bytes to the server and splits them
// into messages, applying the rules to each statement a Query or an Execute
// runs, until either side ends.
func (p *Proxy) clientMessages(c, s net.Conn, a *answers) {
	var stream []byte // client bytes not yet split into messages
	startup, marked, parsed := true, false, false
	raw := false                  // the client does not speak the protocol: bytes are copied unread
	prepared := map[string]bool{} // statement name: whether it is the held one
	// at reports whether msg, a Query or a Parse, is the statement the
	// hold rule stops (or delays) the answers at.
	at := func(msg []byte) bool {
		r := p.hold.Load()
		if r == nil {
			return false
		}
		marked = marked || bytes.Contains(msg, r.marker)
		return marked && bytes.Contains(msg, r.at)
	}
	answer := func() {
		if r := p.hold.Load(); r.delay > 0 {
			a.delayNext.Store(int64(r.delay))
		} else {
			a.held.Store(true)
		}
	}
	lose := func(msg []byte) {
		if m := p.lose.Load(); m != nil && bytes.Contains(msg, *m) && p.lose.CompareAndSwap(m, nil) {
			a.doomed.Store(true)
		}
	}
	buf := make([]byte, 32<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if !raw {
				stream = append(stream, buf[:n]...)
			}
			for !raw {
				// The startup message has no type byte; every later one does.
				head := 5
				if startup {
					head = 4
				}
				if len(stream) < head {
					break
				}
				size := int(binary.BigEndian.Uint32(stream[head-4 : head]))
				if size < 4 {
					// Not the protocol (a length counts itself): pass this
					// connection's bytes on unread; the server refuses them.
					raw = true
					break
				}
				if len(stream) < head-4+size {
					break
				}
				msg := stream[:head-4+size]
				if startup {
					code := 0
					if len(msg) >= 8 {
						code = int(binary.BigEndian.Uint32(msg[4:8]))
					}
					startup = code == sslRequest || code == gssRequest
				} else {
					switch msg[0] {
					case 'Q':
						lose(msg)
						if at(msg) {
							answer()
						}
					case 'P': // Parse: statement name, then the SQL
						lose(msg)
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
				stream = stream[len(msg):]
			}
			if _, werr := s.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
