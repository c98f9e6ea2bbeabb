package routerlib

import (
	"context"
	"errors"
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
	if _, _, err := execTxCapture(ctx, conn, sql, []any{1}); err != nil {
		t.Fatal(err)
	}
	pid := int(conn.PgConn().PID())
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = syscall.Kill(pid, syscall.SIGCONT) }()
	wctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, _, err := execTxCapture(wctx, conn, sql, []any{2})
	took := time.Since(start)
	t.Logf("after %v: %v", took, err)
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
	if _, _, err := execTxCapture(ctx, conn, sql, []any{1}); err != nil {
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
	tag, lsn, err := execTxCapture(ctx, conn, sql, []any{2})
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
