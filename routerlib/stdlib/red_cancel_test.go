package stdlib_test

import (
	"context"
	"database/sql"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// TestRedCancelMidRows: a context cancelled while rows are read, at a random
// row, on a *sql.Conn and on the *sql.DB, in a read-only transaction and
// not, on replicas and on the primary: the next statement on every handle
// sees its own result, never the rest of the cancelled one.
func TestRedCancelMidRows(t *testing.T) {
	topo := routertest.Shared(t)
	ctx := context.Background()
	a := topo.Artifact()
	a.Pool.MaxConns = 2 // few server sessions, so each is reused often
	db, _ := openDB(t, a)
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for i := range 60 {
		cctx, cancel := context.WithCancel(ctx)
		if i%3 == 1 {
			cctx = routerlib.Primary(cctx)
		}
		stop := rand.IntN(2000)
		var err error
		var rows *sql.Rows
		switch i % 4 {
		case 0:
			rows, err = conn.QueryContext(cctx, "SELECT g, repeat('x', 200) FROM generate_series(1, 100000) g")
		case 1:
			rows, err = db.QueryContext(cctx, "SELECT g, repeat('x', 200) FROM generate_series(1, 100000) g")
		case 2:
			tx, terr := conn.BeginTx(cctx, &sql.TxOptions{ReadOnly: true})
			if terr != nil {
				cancel()
				t.Fatal(terr)
			}
			defer tx.Rollback()
			rows, err = tx.QueryContext(cctx, "SELECT g, repeat('x', 200) FROM generate_series(1, 100000) g")
		case 3:
			rows, err = db.QueryContext(cctx, "SELECT g, repeat('x', 200) FROM generate_series(1, 100000) g, pg_sleep(0) WHERE g < 1 OR random() >= 0")
		}
		if err != nil {
			cancel()
			t.Fatalf("query %d: %v", i, err)
		}
		n := 0
		for rows.Next() {
			n++
			if n == stop {
				if i%2 == 0 {
					go cancel()
				} else {
					cancel()
				}
			}
		}
		rows.Close()
		cancel()
		time.Sleep(time.Millisecond)
		for _, q := range []interface {
			QueryRowContext(context.Context, string, ...any) *sql.Row
		}{conn, db} {
			for _, pctx := range []context.Context{ctx, routerlib.Primary(ctx)} {
				var got int
				err := q.QueryRowContext(pctx, "SELECT $1::int + 1000000", i).Scan(&got)
				// database/sql rolls a transaction whose context ended
				// back in a goroutine of its own: until it has, a
				// statement on its *sql.Conn fails, saying it did not
				// run (TestRedConnWriteAfterTxCancelled), and runs
				// once it has.
				for deadline := time.Now().Add(10 * time.Second); i%4 == 2 && errors.Is(err, sql.ErrTxDone) && time.Now().Before(deadline); {
					time.Sleep(time.Millisecond)
					err = q.QueryRowContext(pctx, "SELECT $1::int + 1000000", i).Scan(&got)
				}
				if err != nil {
					t.Fatalf("after query %d cancelled at row %d: %v", i, stop, err)
				}
				if got != i+1000000 {
					t.Fatalf("after query %d cancelled at row %d: the next read got %d, want %d", i, stop, got, i+1000000)
				}
			}
		}
	}
}

// TestRedConnKeptAfterTxCancelled: a *sql.Conn whose transaction ended
// because its context was cancelled (database/sql then rolls it back) stays
// usable, as with pgx's own driver, on the primary and on a replica; the
// rollback leaves no session idle in a transaction on the servers. Before,
// database/sql closed the handle, and every later call on the *sql.Conn
// failed with "sql: connection is already closed".
func TestRedConnKeptAfterTxCancelled(t *testing.T) {
	topo := routertest.Shared(t)
	ctx := context.Background()
	db, _ := openDB(t, topo.Artifact())
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for i, readOnly := range []bool{false, true, false, true} {
		tctx, cancel := context.WithCancel(ctx)
		// database/sql rolls a cancelled transaction back in a goroutine
		// of its own, after Commit has returned: until then the handle
		// refuses another.
		var tx *sql.Tx
		for start := time.Now(); ; time.Sleep(10 * time.Millisecond) {
			if tx, err = conn.BeginTx(tctx, &sql.TxOptions{ReadOnly: readOnly}); err == nil {
				break
			}
			if !strings.Contains(err.Error(), "already in progress") || time.Since(start) > 10*time.Second {
				t.Fatalf("transaction %d (read only %v), after the last one's context was cancelled: BeginTx: %v", i, readOnly, err)
			}
		}
		var one int
		if err := tx.QueryRowContext(tctx, "SELECT 1").Scan(&one); err != nil {
			t.Fatal(err)
		}
		if i >= 2 {
			// Cancelled with a statement in flight.
			go func() { time.Sleep(100 * time.Millisecond); cancel() }()
			_, err = tx.ExecContext(tctx, "SELECT pg_sleep(5)")
			if err == nil {
				t.Fatal("a statement cancelled after 100ms succeeded")
			}
		}
		cancel()
		if err := tx.Commit(); !errors.Is(err, context.Canceled) && !errors.Is(err, sql.ErrTxDone) {
			t.Errorf("Commit after the context was cancelled: %v, want context.Canceled or sql.ErrTxDone", err)
		}
	}
	// The first statement may still meet the last transaction, which it
	// then rolls back, saying it did not run.
	var got int
	err = conn.QueryRowContext(ctx, "SELECT 7").Scan(&got)
	if errors.Is(err, sql.ErrTxDone) {
		err = conn.QueryRowContext(ctx, "SELECT 7").Scan(&got)
	}
	if err != nil || got != 7 {
		t.Fatalf("after four cancelled transactions, the *sql.Conn's next read: %d, %v; want 7", got, err)
	}
	for _, n := range topo.Nodes() {
		var idle int
		err := n.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE state LIKE 'idle in transaction%' AND application_name = 'routerlib'").Scan(&idle)
		if err != nil || idle != 0 {
			t.Errorf("%s: %d sessions idle in a transaction (%v), want 0", n.Name, idle, err)
		}
	}
}

// TestRedConnWriteAfterTxCancelled: a write on a *sql.Conn right after its
// transaction's context was cancelled (Commit returned the context's
// error; database/sql rolls the transaction back in a goroutine of its
// own, later) either commits or fails: it never succeeds inside the
// transaction being rolled back, a write lost though the caller was told
// it succeeded.
func TestRedConnWriteAfterTxCancelled(t *testing.T) {
	topo := routertest.Shared(t)
	ctx := context.Background()
	db, _ := openDB(t, topo.Artifact())
	if _, err := db.ExecContext(ctx, "DROP TABLE IF EXISTS red_after_tx; CREATE TABLE red_after_tx (id int)"); err != nil {
		t.Fatal(err)
	}
	ok := map[int]bool{}
	failed := 0
	for i := range 40 {
		conn, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		tctx, cancel := context.WithCancel(ctx)
		tx, err := conn.BeginTx(tctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.ExecContext(tctx, "INSERT INTO red_after_tx VALUES (-1)"); err != nil {
			t.Fatal(err)
		}
		cancel()
		if err := tx.Commit(); err == nil {
			t.Fatal("Commit after the context was cancelled succeeded")
		}
		_, err = conn.ExecContext(ctx, "INSERT INTO red_after_tx VALUES ($1)", i)
		ok[i] = err == nil
		if err != nil {
			if failed == 0 {
				t.Logf("write %d: %v", i, err)
			}
			failed++
			if !errors.Is(err, sql.ErrTxDone) {
				t.Errorf("write %d: %v, want an error that matches sql.ErrTxDone", i, err)
			}
		}
		conn.Close()
	}
	time.Sleep(200 * time.Millisecond)
	lost := 0
	for i, succeeded := range ok {
		var n int
		if err := db.QueryRowContext(routerlib.Primary(ctx), "SELECT count(*) FROM red_after_tx WHERE id = $1", i).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if succeeded && n != 1 {
			lost++
		}
		if !succeeded && n != 0 {
			t.Errorf("write %d failed, saying it did not run, but is in the table %d times", i, n)
		}
	}
	t.Logf("%d of %d writes met the cancelled transaction and failed", failed, len(ok))
	if lost > 0 {
		t.Errorf("%d of %d writes on a *sql.Conn after its transaction's context was cancelled succeeded and are not in the table", lost, len(ok))
	}
}
