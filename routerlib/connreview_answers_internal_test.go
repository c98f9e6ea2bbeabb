package routerlib

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// An appConn is what an application's AfterNetConnect may return: its
// own wrapper of the connection, without NetConn, which hides what is
// under it.
type appConn struct{ net.Conn }

// TestConnreviewAnswersBehindTheApplicationsAfterNetConnect: an
// application's AfterNetConnect (in the pgxpool configuration it gives
// the router) that wraps the connection in a type of its own must not
// hide the node's answers (countAnswers), nor the router's cut-off of
// the connection (cutCause), directly to PostgreSQL, plain and over TLS.
// Old code (d32a494) looked for the trackedConn under what the
// application's hook returned: no answer counted on such a connection
// (so every late check of a busy node failed, where the code before
// d32a494, which counted on the socket, excused it), and a cut-off
// connection's error did not say why. An ERROR the server sends is an
// answer; a FATAL is not: the server sends one unasked to a session it
// ends (57P01: a shutdown, pg_terminate_backend), which the next call on
// it reads first, as if it answered that call. Old code counted it (the
// session ended while idle, and while its call ran), so that a primary
// shutting down excused a check its monitor's session failed.
func TestConnreviewAnswersBehindTheApplicationsAfterNetConnect(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(0), routertest.WithServerTLS())
	ctx := context.Background()
	for _, sslmode := range []string{"disable", "require"} {
		t.Run("sslmode="+sslmode, func(t *testing.T) {
			var reg connRegistry
			defer reg.close()
			conns := reg.add(topo.Primary.Name, net.JoinHostPort(topo.Primary.Host, "0"))
			var wrapped atomic.Int32
			connect := func(t *testing.T) *pgconn.PgConn {
				t.Helper()
				dsn := strings.Replace(topo.Primary.DSN(), "sslmode=disable", "sslmode="+sslmode, 1)
				cfg, err := pgconn.ParseConfig(dsn)
				if err != nil {
					t.Fatal(err)
				}
				cfg.DialFunc = conns.dialer((&net.Dialer{}).DialContext, false)
				cfg.AfterNetConnect = func(_ context.Context, _ *pgconn.Config, nc net.Conn) (net.Conn, error) {
					wrapped.Add(1)
					return appConn{nc}, nil
				}
				countAnswers(cfg) // as the pools' BeforeConnect does (startedAlive)
				pc, err := pgconn.ConnectConfig(ctx, cfg)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { pc.Close(ctx) })
				return pc
			}
			answeredIn := func(t *testing.T, pc *pgconn.PgConn, call string) error {
				t.Helper()
				start := time.Now()
				if conns.answeredSince(start, time.Minute) {
					t.Fatalf("an answer before %s", call)
				}
				err := pc.Exec(ctx, call).Close()
				if !conns.answeredSince(start, time.Minute) {
					t.Errorf("%s (%v) did not count as the node answering it", call, err)
				}
				return err
			}

			pc := connect(t)
			if wrapped.Load() == 0 {
				t.Fatal("the application's AfterNetConnect did not run")
			}
			var under net.Conn = pc.Conn()
			if ac, ok := under.(*answerConn); ok {
				under = ac.Conn
			}
			app, ok := under.(appConn)
			if !ok {
				t.Fatalf("pgconn reads %T, not the application's connection", under)
			}
			if _, isTLS := app.Conn.(*tls.Conn); isTLS != (sslmode == "require") {
				t.Fatalf("the connection runs over TLS: %v; want it with sslmode=require only", isTLS)
			}
			if err := answeredIn(t, pc, "SELECT 1"); err != nil {
				t.Fatal(err)
			}
			// The same connection, a call again, with the server's ERROR.
			var pgErr *pgconn.PgError
			if err := answeredIn(t, pc, "SELECT 1/0"); !errors.As(err, &pgErr) || pgErr.Code != "22012" {
				t.Fatalf("SELECT 1/0: %v; want division_by_zero", err)
			}
			if pc.IsClosed() {
				t.Fatal("the server's ERROR closed the connection")
			}

			// A session the server ended while it sat idle: its FATAL
			// 57P01 waits in the socket for the next call, whose read
			// takes it as the first bytes after its write. The server
			// did not answer that call: it may have stopped since.
			idle := connect(t)
			if err := topo.Primary.Exec(ctx, "SELECT pg_terminate_backend($1, 5000)", idle.PID()); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			if err := idle.Exec(ctx, "SELECT 1").Close(); !errors.As(err, &pgErr) || pgErr.Code != "57P01" {
				t.Fatalf("a call on a session ended while idle: %v; want FATAL 57P01", err)
			}
			if conns.answeredSince(start, time.Minute) {
				t.Errorf("the FATAL 57P01 the server sent a session before its call counted as the node answering the call")
			}
			// Nor does one that ends the session during a call that
			// sent nothing yet (a DO block: no RowDescription), told
			// from the former by nothing; a call whose reply began
			// (SELECT's RowDescription) was answered.
			for _, c := range []struct {
				call     string
				answered bool
			}{
				{"DO $$BEGIN PERFORM pg_sleep(10); END$$", false},
				{"SELECT pg_sleep(10)", true},
			} {
				victim := connect(t)
				time.AfterFunc(300*time.Millisecond, func() {
					_ = topo.Primary.Exec(ctx, "SELECT pg_terminate_backend($1)", victim.PID())
				})
				start = time.Now()
				if err := victim.Exec(ctx, c.call).Close(); !errors.As(err, &pgErr) || pgErr.Code != "57P01" {
					t.Fatalf("%s, its session terminated: %v; want FATAL 57P01", c.call, err)
				}
				if got := conns.answeredSince(start, time.Minute); got != c.answered {
					t.Errorf("%s, ended by FATAL 57P01: counted as the node answering it: %v, want %v", c.call, got, c.answered)
				}
			}

			// The router cuts the node off in the middle of a reply: the
			// answer it began stays counted once its connection is gone,
			// and the application's connections say why at their next
			// use.
			streaming := connect(t)
			start = time.Now()
			rr := streaming.ExecParams(ctx, "SELECT generate_series(1, 10000000)", nil, nil, nil, nil)
			if !rr.NextRow() {
				_, err := rr.Close()
				t.Fatalf("no first row: %v", err)
			}
			cause := errors.New("connreview: cut off")
			conns.cut(cause)
			for rr.NextRow() {
			}
			if _, err := rr.Close(); err == nil {
				t.Fatal("a reply cut off mid-way ended well")
			}
			if got := cutCause(streaming); got != cause {
				t.Errorf("cutCause of a connection cut off mid-reply: %v; want %v", got, cause)
			}
			if !conns.answeredSince(start, time.Minute) {
				t.Errorf("the answer of a reply cut off mid-way was lost with its connection")
			}
			if err := pc.Exec(ctx, "SELECT 1").Close(); err == nil {
				t.Fatal("a call on a connection the router closed succeeded")
			}
			if got := cutCause(pc); got != cause {
				t.Errorf("cutCause of a connection the router cut off: %v; want %v", got, cause)
			}
		})
	}
}

// TestConnreviewRYWOverTLSBehindTheApplicationsAfterNetConnect: a
// read-your-writes write captured directly on PostgreSQL over TLS (no
// PgBouncer), on pools whose configuration carries the application's own
// AfterNetConnect wrapper, records its position, is read back through the
// session, and counts as the primary answering it. Old code (d32a494)
// counted no answer there (see
// TestConnreviewAnswersBehindTheApplicationsAfterNetConnect).
func TestConnreviewRYWOverTLSBehindTheApplicationsAfterNetConnect(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(1), routertest.WithServerTLS())
	ctx := context.Background()
	a := topo.Artifact()
	a.Consistency.Mode = artifact.ModeReadYourWrites
	for i := range a.Nodes {
		a.Nodes[i].SSLMode = artifact.SSLModeRequire
	}
	var wrapped atomic.Int32
	r, err := New(ctx, a, WithPoolConfig(func(_ artifact.Node, cfg *pgxpool.Config) {
		cfg.ConnConfig.AfterNetConnect = func(_ context.Context, _ *pgconn.Config, nc net.Conn) (net.Conn, error) {
			if tc := trackedOf(nc); tc == nil || tc.check {
				return nc, nil // the monitor's, or a cancel request's
			} else if _, ok := tc.Conn.(*net.TCPConn); !ok {
				return nil, errors.New("connreview: no trackedConn over TCP under the application's connection")
			}
			if _, ok := nc.(*tls.Conn); !ok {
				return nil, errors.New("connreview: the connection is not over TLS")
			}
			wrapped.Add(1)
			return appConn{nc}, nil
		}
	}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	if _, err := r.Exec(ctx, "CREATE TABLE connreview_ryw_tls (id int)"); err != nil {
		t.Fatal(err)
	}
	t0, err := r.enter()
	if err != nil {
		t.Fatal(err)
	}
	primary := t0.writer.Load()
	t0.leave()
	s := &Session{}
	sctx := WithSession(ctx, s)
	for i := range 3 {
		start := time.Now()
		tag, err := r.Exec(sctx, "INSERT INTO connreview_ryw_tls VALUES ($1)", i)
		if err != nil || tag.RowsAffected() != 1 {
			t.Fatalf("write %d: %q, %v", i, tag, err)
		}
		if s.LSN() == 0 {
			t.Fatalf("write %d: the session recorded no position", i)
		}
		if !primary.conns.answeredSince(start, time.Minute) {
			t.Errorf("write %d, captured over TLS: not counted as the primary answering it", i)
		}
		var n int
		if err := r.QueryRow(sctx, "SELECT count(*) FROM connreview_ryw_tls").Scan(&n); err != nil || n != i+1 {
			t.Fatalf("read after write %d: %d rows, %v; want %d", i, n, err, i+1)
		}
	}
	if wrapped.Load() == 0 {
		t.Fatal("the application's AfterNetConnect never ran")
	}
}
