package routerlib

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

// TestRywperfCaptureAllocations: a captured write whose arguments the
// caller already holds does not allocate, once its connection prepared
// it. The write's command tag was an allocation, a new string at every
// write (pgconn.NewCommandTag of the message's bytes); it is now the last
// write's when it reads the same. pgx's encoding of a Go int was another
// (its plan boxes the value as an int64 and a pgtype.Int8): the capture
// path encodes it with binaryInt.
func TestRywperfCaptureAllocations(t *testing.T) {
	ctx := context.Background()
	conn := rywWriterConn(t, "rywperf_allocs", "CREATE TABLE rywperf_allocs (id int, v text)")
	const sql = "INSERT INTO rywperf_allocs VALUES ($1, $2)"
	args := []any{1000, "x"} // boxed once, as a caller's arguments are
	var err error
	n := testing.AllocsPerRun(200, func() {
		var tag pgconn.CommandTag
		var lsn LSN
		if tag, lsn, err = execTxCapture(ctx, conn, sql, sqlHash(sql), args); err == nil && (tag.String() != "INSERT 0 1" || lsn == 0) {
			err = fmt.Errorf("tag %q, LSN %v", tag, lsn)
		}
	})
	if err != nil {
		t.Fatalf("the captured write: %v", err)
	}
	if n > 0 {
		t.Fatalf("a captured write allocates %v times, want 0", n)
	}
}

// TestRywperfCaptureLargeArguments: a capture too large for the direct
// write (over smallCapture) goes through pgconn's guarded flush, and one
// just under it straight out: both write, commit and capture their
// position, and the connection serves its next call.
func TestRywperfCaptureLargeArguments(t *testing.T) {
	ctx := context.Background()
	conn := rywWriterConn(t, "rywperf_large", "CREATE TABLE rywperf_large (id int, v text)")
	const sql = "INSERT INTO rywperf_large VALUES ($1, $2)"
	for i, size := range []int{10, smallCapture - 600, smallCapture, 1 << 20} {
		v := strings.Repeat("x", size)
		cc, err := captureConnOf(ctx, conn)
		if err != nil {
			t.Fatal(err)
		}
		if err := cc.eqb.Build(conn.TypeMap(), nil, []any{i, v}); err != nil {
			t.Fatal(err)
		}
		if small, want := cc.small(sql), size < smallCapture-400; small != want {
			t.Fatalf("%d bytes of argument: small %v, want %v", size, small, want)
		}
		tag, lsn, err := execTxCapture(ctx, conn, sql, sqlHash(sql), []any{i, v})
		if err != nil || tag.String() != "INSERT 0 1" || lsn == 0 {
			t.Fatalf("%d bytes of argument: tag %q, LSN %v, %v", size, tag, lsn, err)
		}
		var got int
		if err := conn.QueryRow(ctx, "SELECT length(v) FROM rywperf_large WHERE id = $1", i).Scan(&got); err != nil || got != size {
			t.Fatalf("%d bytes of argument: read back %d, %v", size, got, err)
		}
		if conn.PgConn().IsClosed() || conn.PgConn().IsBusy() || conn.PgConn().TxStatus() != 'I' {
			t.Fatalf("%d bytes of argument: the connection after: closed %v, busy %v, status %q", size, conn.PgConn().IsClosed(), conn.PgConn().IsBusy(), conn.PgConn().TxStatus())
		}
	}
}
