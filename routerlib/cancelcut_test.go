package routerlib_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/stdlib"
)

// TestAutocommitWriteCutByCallerCancel: an autocommit write the caller
// cancels (context.WithCancel, not a deadline) after it went out may
// have committed: pgx closes the connection and sends a cancel request,
// which can come after the commit. Here each write's COMMIT waits for a
// synchronous standby that is not there (the cancel request ends only the
// wait) and is on the primary once the wait is released, so its error must be
// ErrMaybeCommitted, still matching context.Canceled. A write cancelled
// while it waits in pgxpool for a connection (a pool of one, held by a
// transaction) was never sent: the bare context.Canceled, and nothing
// landed. Router.Exec, Router.QueryRow of an INSERT … RETURNING,
// Router.CopyFrom, Router.SendBatch (its first result's error, and its
// Close's) and database/sql's ExecContext and QueryRowContext through
// routerlib/stdlib, in the default mode and in read_your_writes mode (the
// capture paths).
func TestAutocommitWriteCutByCallerCancel(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(1))
	ctx := context.Background()
	if err := topo.Primary.Exec(ctx, "CREATE TABLE cancelcut (id int PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"", artifact.ModeReadYourWrites} {
		t.Run("mode "+m, func(t *testing.T) {
			a := topo.Artifact()
			a.Consistency.Mode = m
			sent(t, topo, newRouter(t, a), m != "")
			a.Pool.MaxConns = 1
			unsent(t, topo, newRouter(t, a), m != "")
		})
	}
}

// cancelCutWrites are the writes each half of the test cuts, by the id
// each inserts.
func cancelCutWrites(r *routerlib.Router, db *sql.DB) []struct {
	what  string
	write func(ctx context.Context, id int) error
} {
	return []struct {
		what  string
		write func(ctx context.Context, id int) error
	}{
		{"Router.Exec", func(ctx context.Context, id int) error {
			_, err := r.Exec(ctx, fmt.Sprintf("INSERT INTO cancelcut VALUES (%d)", id))
			return err
		}},
		{"Router.QueryRow INSERT RETURNING", func(ctx context.Context, id int) error {
			var got int
			return r.QueryRow(ctx, fmt.Sprintf("INSERT INTO cancelcut VALUES (%d) RETURNING id", id)).Scan(&got)
		}},
		{"Router.CopyFrom", func(ctx context.Context, id int) error {
			_, err := r.CopyFrom(ctx, pgx.Identifier{"cancelcut"}, []string{"id"}, pgx.CopyFromRows([][]any{{id}}))
			return err
		}},
		{"Router.SendBatch Exec", func(ctx context.Context, id int) error {
			b := &pgx.Batch{}
			b.Queue(fmt.Sprintf("INSERT INTO cancelcut VALUES (%d)", id))
			br := r.SendBatch(ctx, b)
			defer br.Close()
			_, err := br.Exec()
			return err
		}},
		{"Router.SendBatch Close", func(ctx context.Context, id int) error {
			b := &pgx.Batch{}
			b.Queue(fmt.Sprintf("INSERT INTO cancelcut VALUES (%d)", id))
			return r.SendBatch(ctx, b).Close()
		}},
		{"database/sql ExecContext", func(ctx context.Context, id int) error {
			_, err := db.ExecContext(ctx, fmt.Sprintf("INSERT INTO cancelcut VALUES (%d)", id))
			return err
		}},
		{"database/sql QueryRowContext INSERT RETURNING", func(ctx context.Context, id int) error {
			var got int
			return db.QueryRowContext(ctx, fmt.Sprintf("INSERT INTO cancelcut VALUES (%d) RETURNING id", id)).Scan(&got)
		}},
	}
}

// cancelCutIDs returns the ids in cancelcut.
func cancelCutIDs(t *testing.T, topo *routertest.Topology) map[int]bool {
	t.Helper()
	var ids []int
	if err := topo.Primary.QueryRow(context.Background(), "SELECT coalesce(array_agg(id), '{}') FROM cancelcut").Scan(&ids); err != nil {
		t.Fatal(err)
	}
	got := map[int]bool{}
	for _, id := range ids {
		got[id] = true
	}
	return got
}

func setSynchronousStandbyNames(t *testing.T, topo *routertest.Topology, v string) {
	t.Helper()
	ctx := context.Background()
	if err := topo.Primary.Exec(ctx, "ALTER SYSTEM SET synchronous_standby_names = '"+v+"'"); err != nil {
		t.Fatal(err)
	}
	if err := topo.Primary.Exec(ctx, "SELECT pg_reload_conf()"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
}

// syncRepWaiters counts the primary's sessions waiting for a synchronous
// standby.
func syncRepWaiters(t *testing.T, topo *routertest.Topology) int {
	t.Helper()
	var n int
	if err := topo.Primary.QueryRow(context.Background(), "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'SyncRep'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// sent cancels each write once the primary holds it waiting for the
// missing synchronous standby: it was sent, and commits once the wait is
// released.
func sent(t *testing.T, topo *routertest.Topology, r *routerlib.Router, session bool) {
	ctx := context.Background()
	if session {
		ctx = routerlib.WithSession(ctx, &routerlib.Session{})
	}
	db := sql.OpenDB(stdlib.NewConnector(r))
	defer db.Close()
	if err := topo.Primary.Exec(ctx, "TRUNCATE cancelcut"); err != nil {
		t.Fatal(err)
	}
	setSynchronousStandbyNames(t, topo, "nosuch")
	released := false
	defer func() {
		if !released {
			setSynchronousStandbyNames(t, topo, "")
		}
	}()
	writes := cancelCutWrites(r, db)
	errs := make([]error, len(writes))
	for i, w := range writes {
		// The previous write's session leaves the wait once pgx's cancel
		// request reaches it (asynchronously): count this one alone.
		for deadline := time.Now().Add(30 * time.Second); syncRepWaiters(t, topo) != 0; time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("before %s: sessions still waiting for the synchronous standby after 30s", w.what)
			}
		}
		cctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- w.write(cctx, i+1) }()
		deadline := time.Now().Add(30 * time.Second)
		for syncRepWaiters(t, topo) == 0 {
			if time.Now().After(deadline) {
				cancel()
				t.Fatalf("%s: not waiting for the synchronous standby after 30s (error %v)", w.what, <-done)
			}
			time.Sleep(20 * time.Millisecond)
		}
		cancel()
		errs[i] = <-done
	}
	setSynchronousStandbyNames(t, topo, "")
	released = true
	var got map[int]bool
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if got = cancelCutIDs(t, topo); len(got) == len(writes) || time.Now().After(deadline) {
			break
		}
	}
	for i, w := range writes {
		err := errs[i]
		t.Logf("%s cut by cancel after it went out: committed %v, %v (ErrMaybeCommitted %v, Canceled %v)", w.what, got[i+1], err, errors.Is(err, routerlib.ErrMaybeCommitted), errors.Is(err, context.Canceled))
		if !got[i+1] {
			t.Errorf("%s: the row is not on the primary once the synchronous wait was released", w.what)
		}
		if !errors.Is(err, routerlib.ErrMaybeCommitted) || !errors.Is(err, context.Canceled) {
			t.Errorf("%s, sent and then cut by the caller's cancel, committed but says %v: want ErrMaybeCommitted matching context.Canceled", w.what, err)
		}
	}
}

// unsent cancels each write while it waits in pgxpool for the only
// connection, which a transaction holds: it was never sent.
func unsent(t *testing.T, topo *routertest.Topology, r *routerlib.Router, session bool) {
	ctx := context.Background()
	if session {
		ctx = routerlib.WithSession(ctx, &routerlib.Session{})
	}
	db := sql.OpenDB(stdlib.NewConnector(r))
	defer db.Close()
	tx, err := r.BeginTx(ctx, pgx.TxOptions{})
	if err != nil {
		t.Fatal(err)
	}
	writes := cancelCutWrites(r, db)
	errs := make([]error, len(writes))
	for i, w := range writes {
		cctx, cancel := context.WithCancel(ctx)
		time.AfterFunc(300*time.Millisecond, cancel)
		errs[i] = w.write(cctx, 100+i)
		cancel()
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	// The pool's one connection is free again: a write now lands (the
	// check below could fail).
	if _, err := r.Exec(ctx, "INSERT INTO cancelcut VALUES (99)"); err != nil {
		t.Fatal(err)
	}
	got := cancelCutIDs(t, topo)
	if !got[99] {
		t.Fatal("a write after the transaction ended is not on the primary")
	}
	for i, w := range writes {
		err := errs[i]
		t.Logf("%s cut by cancel waiting for a connection: %v", w.what, err)
		if got[100+i] {
			t.Errorf("%s: the row is on the primary, though the write waited for a connection until cancelled", w.what)
		}
		if !errors.Is(err, context.Canceled) || errors.Is(err, routerlib.ErrMaybeCommitted) {
			t.Errorf("%s, cancelled while waiting in pgxpool for a connection: %v, want context.Canceled and not ErrMaybeCommitted", w.what, err)
		}
	}
}
