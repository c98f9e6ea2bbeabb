package routerlib

import (
	"context"
	"errors"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// TestReview13CaptureFrozenServer: a captured write that fits the direct
// write (sendTx without pgconn's guard) to a primary backend frozen with
// SIGSTOP before the write: the write returns at once (the kernel takes
// the bytes) and the caller's context still ends the wait for the reply.
func TestReview13CaptureFrozenServer(t *testing.T) {
	ctx := context.Background()
	conn := rywWriterConn(t, "review13_frozen", "CREATE TABLE review13_frozen (id int)")
	const sql = "INSERT INTO review13_frozen VALUES ($1)"
	if _, _, err := execTxCapture(ctx, conn, sql, sqlHash(sql), []any{1}); err != nil {
		t.Fatal(err)
	}
	took, err := frozenCapture(t, conn, sql, []any{2})
	if err == nil {
		t.Fatal("the write to a frozen server succeeded")
	}
	if took > 2*time.Second {
		t.Errorf("the write to a frozen server returned after %v, its context ended at 500 ms", took)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("the error is not the context's: %v", err)
	}
	if !conn.PgConn().IsClosed() {
		t.Error("the connection cut mid-reply was not closed")
	}
}

// TestReview13CaptureIdleKilled: the server ends the capture's session
// while it is idle (pg_terminate_backend): the direct write is taken by
// the kernel, the reply is the server's FATAL 57P01, sent before it read
// the write. The error must not say the write committed, and the
// connection is closed.
func TestReview13CaptureIdleKilled(t *testing.T) {
	ctx := context.Background()
	conn := rywWriterConn(t, "review13_killed", "CREATE TABLE review13_killed (id int)")
	const sql = "INSERT INTO review13_killed VALUES ($1)"
	if _, _, err := execTxCapture(ctx, conn, sql, sqlHash(sql), []any{1}); err != nil {
		t.Fatal(err)
	}
	admin, err := pgx.Connect(ctx, routertest.Shared(t).Primary.DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	pid := conn.PgConn().PID()
	if _, err := admin.Exec(ctx, "SELECT pg_terminate_backend($1, 5000)", pid); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	tag, lsn, err := execTxCapture(ctx, conn, sql, sqlHash(sql), []any{2})
	t.Logf("after %v: tag %q, lsn %v, err %v (safe to retry %v)", time.Since(start), tag, lsn, err, pgconn.SafeToRetry(err))
	if err == nil {
		t.Fatal("the write on a terminated session succeeded")
	}
	var n int
	if err := admin.QueryRow(ctx, "SELECT count(*) FROM review13_killed WHERE id = 2").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("the write on a terminated session committed %d rows", n)
	}
	if !conn.PgConn().IsClosed() {
		t.Error("the connection of a terminated session was not closed")
	}
}

// TestReview13CaptureSmallSendBuffer: the direct write on a TCP socket
// whose send buffer is the kernel's least (SO_SNDBUF 1, 4,608 bytes),
// with captures just under smallCapture: every write commits and captures
// its position; then, the backend frozen with SIGSTOP, the write returns
// and the caller's context ends the wait for the reply. (TLS was not
// exercised: the server answered the SSLRequest 'N' after ALTER SYSTEM
// SET ssl = on and a reload; see the report of review13.)
func TestReview13CaptureSmallSendBuffer(t *testing.T) {
	ctx := context.Background()
	topo := routertest.Start(t, routertest.WithStandbys(0))
	if err := topo.Primary.Exec(ctx, "CREATE TABLE review13_sndbuf (id int, v text)"); err != nil {
		t.Fatal(err)
	}
	cfg, err := pgx.ParseConfig(topo.Primary.DSN())
	if err != nil {
		t.Fatal(err)
	}
	d := &net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF, 1)
		}); err != nil {
			return err
		}
		return serr
	}}
	cfg.DialFunc = d.DialContext
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	const sql = "INSERT INTO review13_sndbuf VALUES ($1, $2)"
	for i := range 200 {
		v := strings.Repeat("x", smallCapture-700+i)
		tag, lsn, err := execTxCapture(ctx, conn, sql, sqlHash(sql), []any{i, v})
		if err != nil || tag.String() != "INSERT 0 1" || lsn == 0 {
			t.Fatalf("capture %d (%d bytes): tag %q, LSN %v: %v", i, len(v), tag, lsn, err)
		}
	}
	took, err := frozenCapture(t, conn, sql, []any{-1, strings.Repeat("y", smallCapture-600)})
	if err == nil || took > 2*time.Second {
		t.Errorf("the write to a frozen server: after %v: %v", took, err)
	}
}

// frozenCapture freezes conn's backend with SIGSTOP (thawed when it
// returns) and sends a capture of sql with args under a context of
// 500 ms: it returns how long the capture took and its error.
func frozenCapture(t *testing.T, conn *pgx.Conn, sql string, args []any) (time.Duration, error) {
	t.Helper()
	pid := int(conn.PgConn().PID())
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = syscall.Kill(pid, syscall.SIGCONT) }()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, _, err := execTxCapture(ctx, conn, sql, sqlHash(sql), args)
	took := time.Since(start)
	t.Logf("frozen backend: after %v: %v", took, err)
	return took, err
}
