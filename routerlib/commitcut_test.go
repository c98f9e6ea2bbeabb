package routerlib_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// TestCommitCutByCallerDeadline: a COMMIT the server received and ran,
// whose answer the caller's deadline cut (here the server waits for a
// synchronous standby that is not there), committed: the error must not
// read as "did not commit". So with an autocommit Exec, and an autocommit
// batch (Router.SendBatch), whose COMMIT waits the same.
func TestCommitCutByCallerDeadline(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(1))
	ctx := context.Background()
	if err := topo.Primary.Exec(ctx, "CREATE TABLE cut (id int PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	mode := func(m string) *routerlib.Router {
		a := topo.Artifact()
		a.Consistency.Mode = m
		return newRouter(t, a)
	}
	for _, m := range []string{"", artifact.ModeReadYourWrites} {
		t.Run("mode "+m, func(t *testing.T) { commitCutByCallerDeadline(t, topo, mode(m), m != "") })
	}
}

func commitCutByCallerDeadline(t *testing.T, topo *routertest.Topology, r *routerlib.Router, session bool) {
	ctx := context.Background()
	if session {
		ctx = routerlib.WithSession(ctx, &routerlib.Session{})
	}
	if err := topo.Primary.Exec(ctx, "TRUNCATE cut"); err != nil {
		t.Fatal(err)
	}
	setSync := func(v string) {
		t.Helper()
		if err := topo.Primary.Exec(ctx, "ALTER SYSTEM SET synchronous_standby_names = '"+v+"'"); err != nil {
			t.Fatal(err)
		}
		if err := topo.Primary.Exec(ctx, "SELECT pg_reload_conf()"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond)
	}
	setSync("nosuch")
	errs := map[string]error{}
	// A transaction's Commit.
	tx, err := r.BeginTx(ctx, pgx.TxOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "INSERT INTO cut VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, time.Second)
	errs["tx Commit"] = tx.Commit(cctx)
	cancel()
	// A transaction's Commit cut by a cancel, not a deadline.
	tx, err = r.BeginTx(ctx, pgx.TxOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "INSERT INTO cut VALUES (5)"); err != nil {
		t.Fatal(err)
	}
	cctx, cancel = context.WithCancel(ctx)
	time.AfterFunc(time.Second, cancel)
	cancelErr := tx.Commit(cctx)
	// An autocommit write.
	cctx, cancel = context.WithTimeout(ctx, time.Second)
	_, errs["Exec INSERT"] = r.Exec(cctx, "INSERT INTO cut VALUES (2)")
	cancel()
	// An autocommit batch.
	cctx, cancel = context.WithTimeout(ctx, time.Second)
	b := &pgx.Batch{}
	b.Queue("INSERT INTO cut VALUES (6)")
	errs["SendBatch INSERT"] = r.SendBatch(cctx, b).Close()
	cancel()
	// Not sent: the context was done before the COMMIT went out.
	tx, err = r.BeginTx(ctx, pgx.TxOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "INSERT INTO cut VALUES (3)"); err != nil {
		t.Fatal(err)
	}
	done, cancelDone := context.WithCancel(ctx)
	cancelDone()
	notSentErr := tx.Commit(done)
	_ = tx.Rollback(ctx)
	// A statement of a transaction cut by the caller: the transaction
	// did not commit.
	tx, err = r.BeginTx(ctx, pgx.TxOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cctx, cancel = context.WithTimeout(ctx, 200*time.Millisecond)
	_, stmtErr := tx.Exec(cctx, "INSERT INTO cut SELECT 4 FROM pg_sleep(2)")
	cancel()
	_ = tx.Rollback(ctx)
	setSync("")
	if !errors.Is(cancelErr, routerlib.ErrMaybeCommitted) || !errors.Is(cancelErr, context.Canceled) {
		t.Errorf("a Commit cut by a cancel: %v, want ErrMaybeCommitted matching context.Canceled", cancelErr)
	}
	for what, err := range map[string]error{"a Commit whose context was done before": notSentErr, "a statement cut in a transaction": stmtErr} {
		if err == nil || errors.Is(err, routerlib.ErrMaybeCommitted) {
			t.Errorf("%s: %v, want the context's error, not ErrMaybeCommitted", what, err)
		}
	}
	var n int
	if err := topo.Primary.QueryRow(ctx, "SELECT count(*) FROM cut").Scan(&n); err != nil {
		t.Fatal(err)
	}
	t.Logf("rows on the primary after the wait ended: %d", n)
	if n != 4 {
		t.Errorf("%d rows on the primary, want 4 (the four COMMITs cut by the caller; not the one never sent nor the statement cut)", n)
	}
	for what, err := range errs {
		t.Logf("%s: %v (ErrMaybeCommitted %v, DeadlineExceeded %v)", what, err, errors.Is(err, routerlib.ErrMaybeCommitted), errors.Is(err, context.DeadlineExceeded))
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s: %v, want it to match context.DeadlineExceeded still", what, err)
		}
		if n > 0 && !errors.Is(err, routerlib.ErrMaybeCommitted) {
			t.Errorf("%s committed (%d rows on the primary) but says %v, not ErrMaybeCommitted", what, n, err)
		}
	}
}

// TestWriteCutWaitingForAConnection: a write whose deadline passes while it
// waits in pgxpool for a connection (the only one is in a transaction) was
// never sent: not ErrMaybeCommitted.
func TestWriteCutWaitingForAConnection(t *testing.T) {
	topo := routertest.Shared(t)
	a := topo.Artifact()
	a.Pool.MaxConns = 1
	r := newRouter(t, a)
	ctx := context.Background()
	tx, err := r.BeginTx(ctx, pgx.TxOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	_, err = r.Exec(cctx, "CREATE TEMP TABLE never_sent (id int)")
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, routerlib.ErrMaybeCommitted) {
		t.Errorf("a write that waited for a connection past its deadline: %v, want the deadline and not ErrMaybeCommitted", err)
	}
	cctx, cancel = context.WithCancel(ctx)
	time.AfterFunc(200*time.Millisecond, cancel)
	_, err = r.Exec(cctx, "CREATE TEMP TABLE never_sent (id int)")
	if !errors.Is(err, context.Canceled) || errors.Is(err, routerlib.ErrMaybeCommitted) {
		t.Errorf("a write that waited for a connection until cancelled: %v, want context.Canceled and not ErrMaybeCommitted", err)
	}
}
