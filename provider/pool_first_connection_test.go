package provider

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// A cancel request for a pool's connection goes over TLS when the
// connection does (pgx does as libpq 17 does), the pool's first connection
// too. The old pool adopted its first connection by replaying its startup
// to pgconn with the TLS settings cleared, so that connection's cancel
// requests, key and all, went in plain text: on that code both subtests
// failed with "connection 2 began with a plain CancelRequest".
func TestAccProvider_poolCancelRequestsUseTLS(t *testing.T) {
	testAccPreCheck(t)
	cert, key := selfSignedCertificate(t, serverDir(t))
	topo := routertest.Start(t, routertest.WithStandbys(0), routertest.WithSetting("ssl", "on"),
		routertest.WithSetting("ssl_cert_file", cert), routertest.WithSetting("ssl_key_file", key))
	for _, tc := range []struct {
		name  string
		limit int // the role's CONNECTION LIMIT; -1: none
	}{
		{"no_limit", -1},   // the pool keeps its first connection
		{"limit_binds", 2}, // the pool is made again, smaller
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			role := "tfacc_pool_cancel_" + tc.name
			execSQL(t, topo.Primary, "postgres", fmt.Sprintf(`CREATE ROLE %s LOGIN CONNECTION LIMIT %d`, role, tc.limit))
			proxy := startFirstMessageProxy(t, topo.Primary.Port)
			s := newServer(connSettings{Host: "127.0.0.1", Port: int64(proxy.port), Database: "postgres", Username: role,
				SSLMode: "require", MaxConnections: 4})
			p, err := s.Pool(ctx, "")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { closeTestPool(p) })
			c, err := p.Acquire(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Release()
			err = cancelledSleep(t, c)
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) || pgErr.Code != "57014" {
				t.Fatalf("a cancelled statement ended with %v, want SQLSTATE 57014 (query_canceled)", err)
			}
			codes := proxy.codes()
			if len(codes) < 2 {
				t.Fatalf("the proxy saw %d connections, want the pool's and the cancel request's", len(codes))
			}
			for i, code := range codes {
				switch code {
				case sslRequestCode:
				case cancelRequestCode:
					t.Errorf("connection %d began with a plain CancelRequest: its backend key went unencrypted", i+1)
				default:
					t.Errorf("connection %d began with request code %d, want SSLRequest (sslmode=require)", i+1, code)
				}
			}
		})
	}
}

// A role that may open one connection gets a pool of one: the limits are
// read on the pool's first connection, and the pool of one is made once
// that session has ended on the server; before the server saw it end, the
// new pool's connection was refused (53300, too many connections for role).
// Ten pools in a row, each a new one (max_connections is part of a pool's
// key).
func TestAccProvider_poolOfOneForRoleLimitedToOne(t *testing.T) {
	topo := testAccTopology(t)
	const role = "tfacc_pool_one"
	execSQL(t, topo.Primary, "postgres", `DROP ROLE IF EXISTS `+role)
	execSQL(t, topo.Primary, "postgres", `CREATE ROLE `+role+` LOGIN CONNECTION LIMIT 1`)
	t.Cleanup(func() { execSQL(t, topo.Primary, "postgres", `DROP ROLE IF EXISTS `+role) })
	ctx := context.Background()
	for i := range 10 {
		s := newServer(connSettings{Host: topo.Primary.Host, Port: int64(topo.Primary.Port), Database: "postgres", Username: role,
			SSLMode: "disable", MaxConnections: int64(2 + i)})
		p, err := s.Pool(ctx, "")
		if err != nil {
			t.Fatalf("pool %d: %v", i+1, err)
		}
		if got := p.Config().MaxConns; got != 1 {
			t.Errorf("pool %d holds up to %d connections, want 1 (the role's CONNECTION LIMIT)", i+1, got)
		}
		if err := p.Ping(ctx); err != nil {
			t.Errorf("pool %d: %v", i+1, err)
		}
		// The next pool's connection needs the role's one place: the
		// test waits for this session's end as closeAndWait does.
		closeTestPool(p)
		for deadline := time.Now().Add(10 * time.Second); queryValue[int64](t, topo.Primary, "postgres",
			`SELECT count(*) FROM pg_stat_activity WHERE usename = $1`, role) > 0; {
			if time.Now().After(deadline) {
				t.Fatalf("the role's session of pool %d had not ended 10s after the pool closed", i+1)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// cancelledSleep runs pg_sleep(30) on c and sends cancel requests for it
// until it ends, and returns its error: a request that reaches the server
// before the statement runs (a loaded machine) cancels nothing.
func cancelledSleep(t *testing.T, c *pgxpool.Conn) error {
	t.Helper()
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			case <-time.After(200 * time.Millisecond):
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err := c.Conn().PgConn().CancelRequest(ctx)
			cancel()
			if err != nil {
				t.Errorf("cancel request: %v", err)
				return
			}
		}
	}()
	_, err := c.Exec(context.Background(), `SELECT pg_sleep(30)`)
	close(done)
	wg.Wait()
	return err
}

// forgetPool removes p, closed, from the process's pools, so that a test
// run again (-count) makes a new one.
func forgetPool(p *pgxpool.Pool) {
	processPools.mu.Lock()
	defer processPools.mu.Unlock()
	for k, q := range processPools.m {
		if q == p {
			delete(processPools.m, k)
		}
	}
}

// The first four bytes of a request after its length: what a connection
// asks for first.
const (
	sslRequestCode    = 80877103
	cancelRequestCode = 80877102
)

// firstMessageProxy forwards connections to a server and records the
// request code of each one's first message (SSLRequest, CancelRequest, or
// a StartupMessage's protocol version).
type firstMessageProxy struct {
	port int
	mu   sync.Mutex
	seen []uint32
}

func (p *firstMessageProxy) codes() []uint32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]uint32(nil), p.seen...)
}

func startFirstMessageProxy(t *testing.T, serverPort int) *firstMessageProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &firstMessageProxy{port: ln.Addr().(*net.TCPAddr).Port}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var open []net.Conn
	track := func(c net.Conn) {
		mu.Lock()
		open = append(open, c)
		mu.Unlock()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			track(client)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer client.Close()
				var head [8]byte // length, then the request code
				if _, err := io.ReadFull(client, head[:]); err != nil {
					return
				}
				p.mu.Lock()
				p.seen = append(p.seen, binary.BigEndian.Uint32(head[4:]))
				p.mu.Unlock()
				server, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", serverPort))
				if err != nil {
					return
				}
				track(server)
				defer server.Close()
				if _, err := server.Write(head[:]); err != nil {
					return
				}
				go func() { _, _ = io.Copy(server, client); server.Close() }()
				_, _ = io.Copy(client, server)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range open {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return p
}
