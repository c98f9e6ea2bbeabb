package routerlib

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

// TestReview6CaptureLeavesConnectionIdle: after every outcome of
// execTxCapture (the write's error, the COMMIT's, BEGIN's or the
// position's statement gone, a schema change under the prepared write, a
// change of the arguments' types) the connection is idle, not busy, and
// its next call gets its own answer.
func TestReview6CaptureLeavesConnectionIdle(t *testing.T) {
	ctx := context.Background()
	conn := rywWriterConn(t, "review6_idle", "CREATE TABLE review6_idle (id int PRIMARY KEY, d int UNIQUE DEFERRABLE INITIALLY DEFERRED, v text)")
	k := 1000
	idle := func(step string) {
		t.Helper()
		pc := conn.PgConn()
		if pc.IsClosed() || pc.IsBusy() || pc.TxStatus() != 'I' {
			t.Fatalf("%s: closed %v, busy %v, transaction status %q", step, pc.IsClosed(), pc.IsBusy(), pc.TxStatus())
		}
		k++
		var got int
		if err := conn.QueryRow(ctx, "SELECT $1::int", k).Scan(&got); err != nil || got != k {
			t.Fatalf("%s: the next call got %d (%v), want %d", step, got, err, k)
		}
	}
	code := func(err error) string {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) {
			return pgErr.Code
		}
		return ""
	}
	ins := "INSERT INTO review6_idle (id, d, v) VALUES ($1, $2, $3)"
	if _, lsn, err := execTxCapture(ctx, conn, ins, sqlHash(ins), []any{1, 1, "a"}); err != nil || lsn == 0 {
		t.Fatalf("insert: %v %v", lsn, err)
	}
	idle("insert")
	if _, _, err := execTxCapture(ctx, conn, ins, sqlHash(ins), []any{1, 2, "a"}); code(err) != "23505" {
		t.Fatalf("duplicate: %v", err)
	}
	idle("duplicate")
	if _, _, err := execTxCapture(ctx, conn, ins, sqlHash(ins), []any{2, 1, "a"}); code(err) != "23505" {
		t.Fatalf("deferred: %v", err)
	}
	idle("deferred")
	// BEGIN's statement gone: prepared afresh, sent once more
	if _, err := conn.Exec(ctx, "DEALLOCATE routerlib_capture_1"); err != nil {
		t.Fatal(err)
	}
	if _, lsn, err := execTxCapture(ctx, conn, ins, sqlHash(ins), []any{3, 3, "a"}); err != nil || lsn == 0 {
		t.Fatalf("after BEGIN's statement was dropped: %v %v", lsn, err)
	}
	idle("begin gone")
	// the position's statement gone
	if _, err := conn.Exec(ctx, "DEALLOCATE ALL"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := execTxCapture(ctx, conn, ins, sqlHash(ins), []any{4, 4, "a"}); err != nil {
		t.Fatalf("after DEALLOCATE ALL: %v", err)
	}
	idle("all gone")
	// A parameter the server reports, changed by the write: the
	// connection's ParameterStatus follows, as after pgx's own calls.
	if _, _, err := execTxCapture(ctx, conn, "UPDATE review6_idle SET v = v WHERE id = $1 AND set_config('application_name', 'review6app', false) IS NOT NULL", sqlHash("UPDATE review6_idle SET v = v WHERE id = $1 AND set_config('application_name', 'review6app', false) IS NOT NULL"), []any{1}); err != nil {
		t.Fatal(err)
	}
	idle("set_config")
	if got := conn.PgConn().ParameterStatus("application_name"); got != "review6app" {
		t.Errorf("application_name after the write: %q, want review6app", got)
	}
	upd := "UPDATE review6_idle SET v = $2 WHERE id = $1 RETURNING *"
	if tag, _, err := execTxCapture(ctx, conn, upd, sqlHash(upd), []any{1, "b"}); err != nil || tag.RowsAffected() != 1 {
		t.Fatalf("update: %v %v", tag, err)
	}
	idle("update")
	if _, err := conn.Exec(ctx, "ALTER TABLE review6_idle ADD COLUMN w int"); err != nil {
		t.Fatal(err)
	}
	if tag, _, err := execTxCapture(ctx, conn, upd, sqlHash(upd), []any{1, "c"}); err != nil || tag.RowsAffected() != 1 {
		t.Fatalf("update after the schema change: %v %v", tag, err)
	}
	idle("schema change")
	for i, id := range []any{int64(1), "1", int16(1), uint8(1)} {
		if tag, _, err := execTxCapture(ctx, conn, upd, sqlHash(upd), []any{id, "x"}); err != nil || tag.RowsAffected() != 1 {
			t.Fatalf("update with id %T: %v %v", id, tag, err)
		}
		idle("argument type " + string(rune('a'+i)))
	}
}
