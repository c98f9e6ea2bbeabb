package routerlib_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// TestPgBouncerTLSFailover stops the primary behind its PgBouncer while
// its health checks answer late (each read on the monitor's connection
// waits 1.5 s, past health.timeout: a loaded machine, as in
// TestPgBouncerFailover under -race beside another suite), with the
// router reaching the bouncers without TLS and over TLS (PgBouncer's
// client_tls_sslmode = require, sslmode=require in the router file).
// What PgBouncer sends the writes meanwhile (the answer to the
// SSLRequest, the TLS handshake, its own AuthenticationOk and the
// parameters it keeps, its FATAL 08P01 refusal) is no answer of the
// stopped server, so the late checks count: the writes fail with
// ErrNoPrimary, and go to the promoted standby. Old code told PgBouncer's
// bytes from the server's by reading them on the socket, which TLS
// encrypts: over TLS every write's handshake excused the late checks, the
// primary kept the writes, and they failed with PgBouncer's refusal for
// good (old: "ErrNoPrimary: not within 10s" over TLS, passes without).
func TestPgBouncerTLSFailover(t *testing.T) {
	for _, c := range []struct {
		name    string
		opt     routertest.Option
		sslmode string
	}{
		{"sslmode=disable", routertest.WithPgBouncer(), artifact.SSLModeDisable},
		{"sslmode=require", routertest.WithPgBouncerTLS(), artifact.SSLModeRequire},
	} {
		t.Run(c.name, func(t *testing.T) {
			topo := routertest.Start(t, routertest.WithStandbys(1), c.opt)
			a := steadyHealth(topo.Artifact(), interval)
			for _, n := range a.Nodes {
				if n.SSLMode != c.sslmode {
					t.Fatalf("the router file reaches %s with sslmode %q, want %q", n.Name, n.SSLMode, c.sslmode)
				}
			}
			logs := &syncBuffer{}
			r := newRouter(t, a, throughPgBouncer, routerlib.WithLogger(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("router log:\n%s", logs.String())
					b, _ := os.ReadFile(filepath.Join(topo.Dir, topo.Primary.Name+"-pgbouncer", "pgbouncer.log"))
					t.Logf("%s pgbouncer.log:\n%s", topo.Primary.Name, b)
				}
			})
			ctx := context.Background()
			if _, err := r.Exec(ctx, "CREATE TABLE bounced_tls_failover (id int)"); err != nil {
				t.Fatal(err)
			}
			var delay atomic.Int64
			delay.Store(int64(1500 * time.Millisecond))
			r.WrapChecksForTest(topo.Primary.Name, func(c net.Conn) net.Conn { return slowConn{Conn: c, delay: &delay} })
			if err := topo.Primary.Stop(ctx); err != nil {
				t.Fatal(err)
			}
			// Writes from four goroutines, each given 300 ms: one that
			// PgBouncer holds while it tries the server gives up, and
			// the next one connects anew, as under load. They stop once
			// the writes fail with ErrNoPrimary: on the promoted standby
			// a connection through PgBouncer may take longer than that
			// under -race on a loaded machine, and none would be set up.
			write := func(id int, within time.Duration) error {
				wctx, cancel := context.WithTimeout(ctx, within)
				defer cancel()
				_, err := r.Exec(wctx, "INSERT INTO bounced_tls_failover VALUES ($1)", id)
				return err
			}
			stop := make(chan struct{})
			var writers sync.WaitGroup
			stopWriters := sync.OnceFunc(func() {
				close(stop)
				writers.Wait()
			})
			defer stopWriters()
			for i := range 4 {
				writers.Go(func() {
					for {
						select {
						case <-stop:
							return
						case <-time.After(10 * time.Millisecond):
						}
						_ = write(10+i, 300*time.Millisecond)
					}
				})
			}
			var noPrimary error
			took := eventually(t, 10*time.Second, "ErrNoPrimary", func() bool {
				noPrimary = write(1, 300*time.Millisecond)
				return errors.Is(noPrimary, routerlib.ErrNoPrimary)
			})
			t.Logf("ErrNoPrimary %v after the stop: %v", took, noPrimary)
			stopWriters()
			promoted := topo.Standbys[0]
			if err := promoted.Promote(ctx); err != nil {
				t.Fatal(err)
			}
			took = eventually(t, 10*time.Second, "writes after promotion", func() bool { return write(2, 5*time.Second) == nil })
			t.Logf("writes resumed %v after promotion", took)
			if p := serverPort(t, routerlib.Primary(ctx), r); p != promoted.Port {
				t.Errorf("writes go to port %d, want the promoted %d", p, promoted.Port)
			}
		})
	}
}

// TestPgBouncerRefusalAsksForACheck: a write that PgBouncer refuses
// because the primary behind it is stopped (FATAL 08P01 "server login has
// been failing") asks for a check now, which takes the writes from it,
// as a write that finds the primary refusing connections does
// (TestWriterConnectionRefusedAsksForACheck); not at the next scheduled
// check, a minute on, every write refused meanwhile. Old code took any
// error a server or PgBouncer sent for the node's answer.
func TestPgBouncerRefusalAsksForACheck(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(0), routertest.WithPgBouncer())
	ctx := context.Background()
	r := newRouter(t, steadyHealth(topo.Artifact(), time.Minute), throughPgBouncer)
	if _, err := r.Exec(ctx, "CREATE TABLE bounced_refusal_check (id int)"); err != nil {
		t.Fatal(err)
	}
	if err := topo.Primary.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	// The first write may wait in PgBouncer while it tries the server:
	// each is given 3 s, until one is refused.
	var refused error
	eventually(t, 20*time.Second, "a write refused by PgBouncer", func() bool {
		wctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		_, err := r.Exec(wctx, "INSERT INTO bounced_refusal_check VALUES (1)")
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "08P01" {
			refused = err
			return true
		}
		t.Logf("a write with the primary stopped: %v", err)
		return false
	})
	t.Logf("the write refused: %v", refused)
	took := eventually(t, 10*time.Second, "the writes lost", func() bool {
		s, _ := r.NodeStat(topo.Primary.Name)
		return !s.Writer
	})
	t.Logf("the writes left the primary %v after the refusal", took.Round(time.Millisecond))
}
