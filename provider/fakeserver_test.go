package provider

import (
	"fmt"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// fakeServer listens on 127.0.0.1 and speaks just enough of PostgreSQL's
// protocol to learn what a client would send a server it does not control.
// By default it asks each client for a cleartext password, records the
// password and the user, and refuses them the way a server whose password
// check failed does (28P01). With hang it accepts TCP connections and never
// answers: a server that is up but stuck.
type fakeServer struct {
	Port int
	hang bool
	ln   net.Listener
	wg   sync.WaitGroup

	mu        sync.Mutex // guards the fields below
	conns     int
	passwords []string
	users     []string
	open      []net.Conn
}

// node is the fake server as a routertest node, for providerConfig.
func (f *fakeServer) node() *routertest.Node {
	return &routertest.Node{Name: "fake", Host: "127.0.0.1", Port: f.Port}
}

func startFakeServer(t *testing.T, hang bool) *fakeServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeServer{Port: ln.Addr().(*net.TCPAddr).Port, hang: hang, ln: ln}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			f.mu.Lock()
			f.conns++
			f.open = append(f.open, c)
			f.mu.Unlock()
			if hang {
				continue // held open, unanswered, until the test ends
			}
			f.wg.Add(1)
			go func() {
				defer f.wg.Done()
				f.refuse(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		f.mu.Lock()
		for _, c := range f.open {
			c.Close()
		}
		f.mu.Unlock()
		f.wg.Wait()
	})
	return f
}

// refuse asks for a cleartext password, records it, and refuses it.
func (f *fakeServer) refuse(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	be := pgproto3.NewBackend(c, c)
	var user string
	for user == "" {
		msg, err := be.ReceiveStartupMessage()
		if err != nil {
			return
		}
		switch m := msg.(type) {
		case *pgproto3.SSLRequest, *pgproto3.GSSEncRequest:
			if _, err := c.Write([]byte("N")); err != nil { // no encryption here
				return
			}
		case *pgproto3.StartupMessage:
			user = m.Parameters["user"]
		default:
			return
		}
	}
	be.Send(&pgproto3.AuthenticationCleartextPassword{})
	if err := be.Flush(); err != nil {
		return
	}
	if err := be.SetAuthType(pgproto3.AuthTypeCleartextPassword); err != nil {
		return
	}
	msg, err := be.Receive()
	if err != nil {
		return
	}
	if pw, ok := msg.(*pgproto3.PasswordMessage); ok {
		f.mu.Lock()
		f.passwords = append(f.passwords, pw.Password)
		f.users = append(f.users, user)
		f.mu.Unlock()
	}
	be.Send(&pgproto3.ErrorResponse{Severity: "FATAL", SeverityUnlocalized: "FATAL", Code: "28P01",
		Message: fmt.Sprintf("password authentication failed for user %q", user)})
	_ = be.Flush()
}

// Connections is how many TCP connections the server accepted.
func (f *fakeServer) Connections() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.conns
}

// Passwords are the passwords clients sent, in order.
func (f *fakeServer) Passwords() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.passwords)
}

// Users are the users of the clients that sent a password, in order.
func (f *fakeServer) Users() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.users)
}
