package routerlib

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// TestCaptureContextDoneBeforeSendQueuesNothing: execTxCapture writes its
// messages straight into the connection's protocol buffer. When its
// context is already done at the send (it may end between the pool's
// acquire and the send), pgconn refuses to start the exchange, and nothing
// may be left queued: the connection's next call would flush it and run
// the write after all. The write returns the context's error, marked as
// never sent, and the connection serves its next call alone.
func TestCaptureContextDoneBeforeSendQueuesNothing(t *testing.T) {
	ctx := context.Background()
	conn := rywWriterConn(t, "ryw_wire_done", "CREATE TABLE ryw_wire_done (id int)")
	const sql = "INSERT INTO ryw_wire_done VALUES ($1)"
	if _, _, err := execTxCapture(ctx, conn, sql, sqlHash(sql), []any{1}); err != nil { // prepares the statements
		t.Fatal(err)
	}

	done, cancel := context.WithCancel(ctx)
	cancel()
	_, _, err := execTxCapture(done, conn, sql, sqlHash(sql), []any{2})
	if !errors.Is(err, context.Canceled) || !notSent(err) {
		t.Fatalf("the write with its context done: %v (not sent: %v), want context.Canceled, not sent", err, notSent(err))
	}
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM ryw_wire_done WHERE id = 2").Scan(&n); err != nil {
		t.Fatalf("the connection's next call: %v", err)
	}
	if n != 0 {
		t.Fatalf("the write whose context was done ran %d times, want 0", n)
	}
	if conn.PgConn().IsClosed() || conn.PgConn().TxStatus() != 'I' {
		t.Fatalf("the connection after: closed %v, transaction status %q", conn.PgConn().IsClosed(), conn.PgConn().TxStatus())
	}
}

// rywWriterConn is a connection of the writer's pool of a read-your-writes
// Router on the shared topology, on which table was made by ddl: the
// connection is released, table dropped and the Router closed when the
// test ends.
func rywWriterConn(t *testing.T, table, ddl string) *pgx.Conn {
	t.Helper()
	ctx := context.Background()
	a := routertest.Shared(t).Artifact()
	a.Consistency.Mode = artifact.ModeReadYourWrites
	r, err := New(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	if _, err := r.Exec(ctx, ddl); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = r.Exec(ctx, "DROP TABLE "+table) })
	t0, err := r.enter()
	if err != nil {
		t.Fatal(err)
	}
	pool := t0.writer.Load().writePool.Load()
	t0.leave()
	c, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Release)
	return c.Conn()
}
