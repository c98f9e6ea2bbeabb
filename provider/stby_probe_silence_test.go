package provider

import (
	"context"
	"errors"
	"net"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/conninfo"
)

// The probe of the standby's primary tells a primary that accepted the
// connection and did not answer (frozen, overloaded: it comes back, and may
// need the standby) from one that Terraform's machine cannot reach at all
// (the reset then warns and goes ahead). No server: a listener that accepts
// and never answers, a port nobody listens on, a listener whose full
// backlog drops the SYN (the TCP connect times out, as to an address a
// firewall or a private network swallows), addresses with no route from
// here, a name that does not resolve; a server that refuses the connection
// for now (too many connections, starting up: it is there) and one that
// refuses the login (the standby's credentials do not work from here).
func TestStandbyResetProbeSilenceClasses(t *testing.T) {
	t.Parallel()
	silentPort, closedPort := silentListener(t), closedPort(t)
	dropsSYN := fullBacklog(t)
	refusing := func(code string) int { return refusingServer(t, code) }
	for _, c := range []struct {
		what, host string
		port       int
		silent     bool
	}{
		{"accepts and never answers", "127.0.0.1", silentPort, true},
		{"nobody listens (connection refused)", "127.0.0.1", closedPort, false},
		{"drops the SYN (connect times out)", "127.0.0.1", dropsSYN, false},
		{"TEST-NET-1 (no route or no SYN-ACK)", "192.0.2.1", 5432, false},
		{"private address out of reach", "10.255.255.1", 5432, false},
		{"name that does not resolve", "primary.invalid", 5432, false},
		{"refuses for now: too many connections (53300)", "127.0.0.1", refusing("53300"), true},
		{"refuses for now: starting up (57P03)", "127.0.0.1", refusing("57P03"), true},
		{"refuses the login (28P01)", "127.0.0.1", refusing("28P01"), false},
	} {
		t.Run(c.what, func(t *testing.T) {
			t.Parallel()
			cfg, err := namedHostConfig(conninfo.Params{"host": c.host, "port": strconv.Itoa(c.port), "user": "postgres", "sslmode": "disable"},
				publisherProbeTimeout)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 1500*time.Millisecond)
			defer cancel()
			start := time.Now()
			_, err = probePrimary(ctx, cfg, "standby")
			var s *primarySilentError
			if err == nil || errors.As(err, &s) != c.silent {
				t.Errorf("probe error %v after %s: silent %v, want %v", err, time.Since(start).Round(time.Millisecond), err != nil && errors.As(err, &s), c.silent)
			}
			if took := time.Since(start); took > 3*time.Second {
				t.Errorf("the probe took %s under a 1.5 s deadline", took.Round(time.Millisecond))
			}
		})
	}
}

// silentListener is the port of a listener that accepts connections and
// never answers on them, as a frozen server does.
func silentListener(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { _ = c.Close() }) // held open, never answered
		}
	}()
	return l.Addr().(*net.TCPAddr).Port
}

// closedPort is a port of 127.0.0.1 that nobody listens on (one that was
// free a moment ago): a connection there is refused.
func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	return port
}

// fullBacklog listens on a port with a backlog of 0 and fills it with one
// connection that is never accepted: Linux then drops every new SYN, and a
// connect there times out.
func fullBacklog(t *testing.T) int {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	port := sa.(*syscall.SockaddrInet4).Port
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	held, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = held.Close() })
	if c, err := net.DialTimeout("tcp", addr, 300*time.Millisecond); err == nil {
		_ = c.Close()
		t.Skip("this kernel accepted a connection past a full backlog; the timed-out connect cannot be made here")
	}
	return port
}

// refusingServer answers every connection's startup message with an
// ErrorResponse of code, as PostgreSQL refuses a connection.
func refusingServer(t *testing.T, code string) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				b := pgproto3.NewBackend(c, c)
				if _, err := b.ReceiveStartupMessage(); err != nil {
					return
				}
				b.Send(&pgproto3.ErrorResponse{Severity: "FATAL", Code: code, Message: "refused by the test server"})
				_ = b.Flush()
			}()
		}
	}()
	return l.Addr().(*net.TCPAddr).Port
}
