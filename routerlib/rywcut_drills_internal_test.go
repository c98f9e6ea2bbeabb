package routerlib

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// Drills for a read_your_writes write cut after its COMMIT went out,
// while the server still works on that COMMIT: a deferred constraint
// trigger raises a notice and then sleeps 1 s before the commit record
// is written. The cut is a notice handler of the application's that
// panics (closeOnPanic, markOnPanic: the connection is closed; its cancel
// requests are lost here, refuseCancels, so the server goes on), or the
// call's context ending (pgx's default context
// handler sets a deadline on the socket and closes it: no cancel request
// either). The session's next read, at once, must not settle at a
// position before the commit: the standby, once it replayed that far,
// is paused, and a read after the commit must not go there and miss the
// row the primary shows (the write would appear and then disappear).

// rywcutTopology is a primary and a streaming standby with rywcut_c,
// whose rows' COMMIT raises 'rywcut commit notice' and then sleeps 1 s.
func rywcutTopology(t *testing.T) *routertest.Topology {
	t.Helper()
	topo := routertest.Start(t, routertest.WithStandbys(1))
	ctx := context.Background()
	for _, q := range []string{
		"CREATE TABLE rywcut_c (id int)",
		"CREATE TABLE rywcut_other (id int)",
		`CREATE FUNCTION rywcut_c_slow() RETURNS trigger LANGUAGE plpgsql AS $$
		 BEGIN RAISE NOTICE 'rywcut commit notice'; PERFORM pg_sleep(1); RETURN NULL; END $$`,
		`CREATE CONSTRAINT TRIGGER rywcut_c_slow AFTER INSERT ON rywcut_c DEFERRABLE INITIALLY DEFERRED
		 FOR EACH ROW EXECUTE FUNCTION rywcut_c_slow()`,
	} {
		if err := topo.Primary.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	if err := topo.WaitReplayed(ctx); err != nil {
		t.Fatal(err)
	}
	return topo
}

// panicOnCommitNotice makes the pools' notice handler panic at the
// COMMIT's notice, as an application's may.
func panicOnCommitNotice(c *pgxpool.Config) {
	c.ConnConfig.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
		if n.Message == "rywcut commit notice" {
			panic("rywcut: the application's notice handler failed")
		}
	}
}

// rywcutCommits are the ways a drill's write sends its COMMIT, each
// through a read_your_writes session in ctx: a transaction's Commit, a
// COMMIT sent through the transaction's own Exec, and an autocommit
// INSERT through Exec (the deferred trigger runs at its implicit commit).
var rywcutCommits = []struct {
	name  string
	write func(ctx context.Context, r *Router, id int) error
}{
	{"tx-commit", func(ctx context.Context, r *Router, id int) error {
		return rywcutTx(ctx, r, id, true)
	}},
	// As TestRywpathPanicInCommit: no deferred Rollback (which sends a
	// statement on the connection left mid-reply).
	{"tx-commit-unrolled", func(ctx context.Context, r *Router, id int) error {
		return rywcutTx(ctx, r, id, false)
	}},
	{"tx-exec-commit", func(ctx context.Context, r *Router, id int) error {
		tx, err := r.Begin(ctx)
		if err != nil {
			return err
		}
		defer func() { _ = tx.Rollback(context.Background()) }()
		if _, err := tx.Exec(ctx, "INSERT INTO rywcut_c VALUES ($1)", id); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, "COMMIT")
		return err
	}},
	{"exec", func(ctx context.Context, r *Router, id int) error {
		_, err := r.Exec(ctx, "INSERT INTO rywcut_c VALUES ($1)", id)
		return err
	}},
}

// rywcutTx inserts id in a transaction through r and commits it, with a
// Rollback deferred when rollback is set, as applications write it.
func rywcutTx(ctx context.Context, r *Router, id int, rollback bool) error {
	tx, err := r.Begin(ctx)
	if err != nil {
		return err
	}
	if rollback {
		defer func() { _ = tx.Rollback(context.Background()) }()
	}
	if _, err := tx.Exec(ctx, "INSERT INTO rywcut_c VALUES ($1)", id); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

func TestRywcutSettleAfterCutCommit(t *testing.T) {
	topo := rywcutTopology(t)
	ctx := context.Background()
	cuts := []struct {
		name string
		cfg  func(*pgxpool.Config)
		ctx  func() (context.Context, context.CancelFunc)
	}{
		// The router's cancel request (cancelCut), and pgx's, lost: the
		// COMMIT runs on, and the session must wait for it. With them
		// the COMMIT is cancelled in the trigger's sleep
		// (TestCutsessionCancelOnPanic).
		{"panic", func(c *pgxpool.Config) { panicOnCommitNotice(c); refuseCancels(c) }, func() (context.Context, context.CancelFunc) { return context.WithCancel(ctx) }},
		// pgx's own close after a context ended sends a cancel request:
		// the COMMIT is cancelled in the trigger's sleep, and nothing
		// commits (0 of 3 on the old code and the new).
		{"deadline", nil, func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, 300*time.Millisecond) }},
	}
	id := 0
	for _, cut := range cuts {
		for _, w := range rywcutCommits {
			t.Run(cut.name+"/"+w.name, func(t *testing.T) {
				r := rywpathRouter(t, topo, time.Minute, cut.cfg)
				missed, committed := 0, 0
				const writes = 3
				for i := 0; i < writes; i++ {
					id++
					s := &Session{}
					cctx, cancel := cut.ctx()
					var err error
					func() {
						defer func() {
							if p := recover(); p != nil {
								err = fmt.Errorf("panic: %v", p)
							}
						}()
						err = w.write(WithSession(cctx, s), r, id)
					}()
					cancel()
					if err == nil {
						t.Fatalf("write %d: no error, want the cut", id)
					}
					// The session's next read, at once, while the
					// server is still in the COMMIT.
					cutAt := time.Now()
					first := rywcutSeen(t, r, s, id)
					t.Logf("write %d: first read after %s: position %s, %d unsettled", id, time.Since(cutAt).Round(time.Millisecond), s.LSN(), s.unsettled())
					// Another client commits: the WAL is flushed past
					// what the session recorded (without it, the flush
					// waits for the COMMIT, and a standby that replayed
					// that far has the row). The standby replays so far,
					// and stops there.
					if err := topo.Primary.Exec(ctx, "INSERT INTO rywcut_other VALUES (1)"); err != nil {
						t.Fatal(err)
					}
					if err := topo.Standbys[0].WaitReplayed(ctx, s.LSN().String()); err != nil {
						t.Fatal(err)
					}
					if err := topo.Standbys[0].PauseReplay(ctx); err != nil {
						t.Fatal(err)
					}
					n := rowsOf(topo.Primary, "rywcut_c", id)
					for wait := time.Now().Add(2 * time.Second); n != 1 && time.Now().Before(wait); n = rowsOf(topo.Primary, "rywcut_c", id) {
						time.Sleep(10 * time.Millisecond)
					}
					// The COMMIT may have been cancelled (no row): then
					// reads must not see it, which they cannot.
					t.Logf("write %d: %v; %d rows; first read saw %d", id, err, n, first)
					if n == 1 {
						committed++
						if seen := rywcutSeen(t, r, s, id); seen != 1 {
							missed++
							t.Logf("write %d (%v) committed; the session's reads saw it %d times at once, then %d times (position %s, %d unsettled)", id, err, first, seen, s.LSN(), s.unsettled())
						}
					}
					if err := topo.Standbys[0].ResumeReplay(ctx); err != nil {
						t.Fatal(err)
					}
					nextCallWorks(t, r, fmt.Sprintf("write %d (%v)", id, err))
				}
				if missed != 0 {
					t.Errorf("the session's read after the commit missed %d of %d committed writes", missed, committed)
				}
				t.Logf("%d of %d writes committed", committed, writes)
			})
		}
	}
}

// rywcutSeen counts the rows of id in rywcut_c a read through s sees.
func rywcutSeen(t *testing.T, r *Router, s *Session, id int) int {
	t.Helper()
	return rywcutSeenIn(t, r, s, "rywcut_c", id)
}

// rywcutSeenIn counts the rows of id in table a read through s sees.
func rywcutSeenIn(t *testing.T, r *Router, s *Session, table string, id int) int {
	t.Helper()
	var seen int
	rctx, cancel := context.WithTimeout(WithSession(context.Background(), s), 10*time.Second)
	defer cancel()
	if err := r.QueryRow(rctx, "SELECT count(*) FROM "+table+" WHERE id = $1", id).Scan(&seen); err != nil {
		t.Fatalf("the session's read of %d: %v", id, err)
	}
	return seen
}

// TestRywcutReadBatchPanic: a batch of reads through a read_your_writes
// session whose writes no replica replayed runs on the primary's
// read-write session, with xactQuery queued last (resendBatch.recordIn);
// one read calls a function that writes and raises a notice, and the
// application's notice handler panics while the batch's Close reads the
// reply. The server commits all the same, after the Sync it already has,
// when the cancel requests sent on the way out are lost:
// the session must ask the primary before its next read, which sees the
// row once it committed, and the pool's one connection must serve the
// next call.
func TestRywcutReadBatchPanic(t *testing.T) {
	ctx := context.Background()
	topo := pausedTopology(t,
		"CREATE TABLE rywcut_b (id int)",
		`CREATE FUNCTION rywcut_bw(id int) RETURNS int LANGUAGE plpgsql AS $$
		 BEGIN INSERT INTO rywcut_b VALUES (id); RAISE NOTICE 'rywcut batch notice'; PERFORM pg_sleep(0.3); RETURN id; END $$`,
	)
	r := rywpathRouter(t, topo, time.Minute, func(c *pgxpool.Config) {
		c.ConnConfig.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
			if n.Message == "rywcut batch notice" {
				panic("rywcut: the application's notice handler failed")
			}
		}
		// The cancel requests lost (the router's cancelCut would end the
		// function's sleep, and nothing would commit): the server goes on.
		refuseCancels(c)
	})
	for id := 1; id <= 3; id++ {
		s := &Session{}
		sctx := WithSession(ctx, s)
		// A write the paused standby does not have: the batch goes to
		// the primary's read-write session.
		if _, err := r.Exec(sctx, "INSERT INTO rywcut_b VALUES (0)"); err != nil {
			t.Fatal(err)
		}
		before := s.unsettled()
		var b pgx.Batch
		b.Queue("SELECT 1")
		b.Queue("SELECT rywcut_bw($1)", id)
		panicked := false
		func() {
			defer func() { panicked = recover() != nil }()
			_ = r.SendBatch(sctx, &b).Close()
		}()
		if !panicked {
			t.Fatalf("batch %d: the notice handler did not panic", id)
		}
		if s.unsettled() == before {
			t.Errorf("batch %d: a panic cut its Close after a read that wrote, but its session does not ask the primary first", id)
		}
		// Bounded: a connection lost mid-reply makes it wait forever.
		cctx, cancel := context.WithTimeout(Primary(ctx), 10*time.Second)
		var got int
		err := r.QueryRow(cctx, "SELECT $1::int", id).Scan(&got)
		cancel()
		if err != nil || got != id {
			t.Fatalf("the primary's next call after batch %d: %d (%v), want %d", id, got, err, id)
		}
		n := rowsOf(topo.Primary, "rywcut_b", id)
		for wait := time.Now().Add(2 * time.Second); n != 1 && time.Now().Before(wait); n = rowsOf(topo.Primary, "rywcut_b", id) {
			time.Sleep(10 * time.Millisecond)
		}
		if n != 1 {
			t.Fatalf("batch %d: %d rows committed, want 1", id, n)
		}
		if seen := rywcutSeenIn(t, r, s, "rywcut_b", id); seen != 1 {
			t.Errorf("batch %d committed its row, but the session's read saw it %d times: position %s, %d unsettled", id, seen, s.LSN(), s.unsettled())
		}
	}
}
