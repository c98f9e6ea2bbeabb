package routerlib

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// TestReview15CutPidReused: a lookup (pending, then the query, then
// ended) races a new cut of a backend with the same process id, one the
// kernel gave again to a new backend after the old one's lookup found it
// gone. The new cut was noted after the lookup began, so the lookup says
// nothing of it: it must stay noted.
func TestReview15CutPidReused(t *testing.T) {
	var c cutBackends
	s := &Session{}
	c.add(4242, s)
	asked := time.Now()
	pids := c.pending(s)
	// The query runs: 4242 is gone. Meanwhile a new backend with the
	// same process id is cut.
	time.Sleep(time.Millisecond)
	c.add(4242, s)
	c.ended(pids, asked, nil)
	if got := c.pending(s); len(got) != 1 || got[0] != 4242 {
		t.Fatalf("after a lookup that found 4242 gone and a cut of a new 4242 noted during it: pending %v, want [4242]", got)
	}
}

// TestReview15CutConcurrent: many goroutines note cuts, look them up and
// drop the ended at once (-race), as the TraceRelease hook and the
// sessions' settles do.
func TestReview15CutConcurrent(t *testing.T) {
	var c cutBackends
	s := &Session{}
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				c.add(uint32(g*10000+i+1), s)
			}
		}()
		go func() {
			defer wg.Done()
			for range 2000 {
				asked := time.Now()
				pids := c.pending(s)
				var running []uint32
				if len(pids) > 1 {
					running = pids[:1]
				}
				c.ended(pids, asked, running)
			}
		}()
	}
	wg.Wait()
	asked := time.Now()
	pids := c.pending(s)
	c.ended(pids, asked, nil)
	if got := c.pending(s); got != nil {
		t.Fatalf("after every cut was found ended: %d pending", len(got))
	}
}

// review15Lock is a primary and a standby with review15_l (one row) and
// review15Write, which raises a notice and then updates that row: cut by a
// notice handler's panic while another transaction holds the row, its
// backend waits on the lock when the cancel requests are lost
// (refuseCancels); otherwise the router's cancel ends it (cancelCut).
func review15Lock(t *testing.T, opts ...routertest.Option) *routertest.Topology {
	t.Helper()
	topo := routertest.Start(t, append([]routertest.Option{routertest.WithStandbys(1)}, opts...)...)
	ctx := context.Background()
	for _, q := range []string{
		"CREATE TABLE review15_l (id int PRIMARY KEY, v int)",
		"INSERT INTO review15_l VALUES (1, 0)",
		"CREATE TABLE review15_f (n int)",
		`CREATE FUNCTION review15_n() RETURNS bool LANGUAGE plpgsql AS $$
		 BEGIN RAISE NOTICE 'review15 notice'; RETURN true; END $$`,
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

// review15Write raises the notice, then updates the row (waiting for it
// while it is held).
const review15Write = "UPDATE review15_l SET v = v + 1 WHERE id = 1 AND review15_n()"

func review15PanicOnNotice(c *pgxpool.Config) {
	c.ConnConfig.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
		if n.Message == "review15 notice" {
			panic("review15: the application's notice handler failed")
		}
	}
}

// review15Hold holds review15_l's row in a transaction on a direct
// connection until the returned func is called.
func review15Hold(t *testing.T, topo *routertest.Topology) func() {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, topo.Primary.DSN())
	if err != nil {
		t.Fatal(err)
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "UPDATE review15_l SET v = v WHERE id = 1"); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release := func() {
		once.Do(func() {
			_ = tx.Rollback(ctx)
			_ = conn.Close(ctx)
		})
	}
	t.Cleanup(release)
	return release
}

// review15CutBlocked runs review15Write through r with session s (nil:
// none), cut by the notice handler's panic (or by a 300 ms deadline when
// panics is false) while the row is held.
func review15CutBlocked(t *testing.T, r *Router, s *Session, panics bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if !panics {
		ctx = context.Background()
		ctx, cancel = context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
	}
	if s != nil {
		ctx = WithSession(ctx, s)
	}
	func() {
		defer func() { _ = recover() }()
		_, err := r.Exec(ctx, review15Write)
		t.Logf("cut write: %v", err)
	}()
}

func review15Waiting(t *testing.T, topo *routertest.Topology) int {
	t.Helper()
	var n int
	if err := topo.Primary.QueryRow(context.Background(), "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%review15_n%'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// review15Where says where a read through ctx ran: "primary" or
// "standby".
func review15Where(t *testing.T, r *Router, ctx context.Context) string {
	t.Helper()
	var rec bool
	if err := r.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&rec); err != nil {
		t.Fatal(err)
	}
	if rec {
		return "standby"
	}
	return "primary"
}

// TestReview15CutLockLatency measures the latency hazard of one cut
// backend that keeps running: a write of session cut, blocked on a row
// lock and cut, so that its backend waits on for the lock (its cancel
// request lost: see refuseCancels). Session cut's reads must go to the
// primary and its middleware settle waits until the lock's release.
// Since cuts are noted per session (cutsession), a session marked lost
// for a cause of its own (here one whose Conn's Release could not read a
// position), unmarked sessions and calls without a session pay nothing:
// they read on the standby, and the marked one settles at once.
func TestReview15CutLockLatency(t *testing.T) {
	topo := review15Lock(t)
	for _, cut := range []struct {
		name   string
		panics bool
	}{{"panic", true}, {"deadline", false}} {
		t.Run(cut.name, func(t *testing.T) {
			cfg := refuseCancels
			if cut.panics {
				cfg = func(c *pgxpool.Config) { review15PanicOnNotice(c); refuseCancels(c) }
			}
			r := rywpathRouter(t, topo, time.Minute, cfg)
			release := review15Hold(t, topo)
			writer := &Session{}
			review15CutBlocked(t, r, writer, cut.panics)
			waiting := review15Waiting(t, topo)
			tp, err := r.enter()
			if err != nil {
				t.Fatal(err)
			}
			pids := tp.writer.Load().cutBackends.pending(writer)
			running, lerr := runningBackends(context.Background(), tp.writer.Load().writePool.Load(), pids)
			tp.leave()
			t.Logf("backends of the cut write still waiting on the lock: %d; noted %v, running %v (%v); the writer's session %d unsettled", waiting, pids, running, lerr, writer.unsettled())

			marked := &Session{}
			marked.markLost()
			// The marked session settles at once, not held back by the
			// other session's cut backend (errCutRunning), at the primary's
			// insert position: past review15Hold's update, whose WAL, in a
			// transaction still open, no one flushes on an idle primary
			// (the WAL writer writes only whole pages or up to a
			// commit's), so no standby could replay it and the session's
			// reads would rightly stay on the primary. A commit flushes it.
			tp, err = r.enter()
			if err != nil {
				t.Fatal(err)
			}
			err = r.settle(context.Background(), tp, marked, marked.unsettled(), false)
			tp.leave()
			if err != nil {
				t.Fatalf("the marked session could not settle while another session's cut backend ran: %v", err)
			}
			if err := topo.Primary.Exec(context.Background(), "INSERT INTO review15_f VALUES (1)"); err != nil {
				t.Fatal(err)
			}
			if err := topo.WaitReplayed(context.Background()); err != nil {
				t.Fatal(err)
			}
			plain := &Session{}
			where := map[string]int{}
			start := time.Now()
			const reads = 20
			for range reads {
				where["writer "+review15Where(t, r, WithSession(context.Background(), writer))]++
			}
			writerTook := time.Since(start)
			start = time.Now()
			for range reads {
				where["marked "+review15Where(t, r, WithSession(context.Background(), marked))]++
				where["plain "+review15Where(t, r, WithSession(context.Background(), plain))]++
				where["none "+review15Where(t, r, context.Background())]++
			}
			othersTook := time.Since(start)
			t.Logf("reads: %v; %d of the writer's session took %s, %d marked+%d unmarked+%d sessionless %s", where, reads, writerTook, reads, reads, reads, othersTook)
			if where["marked primary"]+where["plain primary"]+where["none primary"] != 0 {
				t.Errorf("reads of other sessions than the cut writer's, or of none, went to the primary: %v", where)
			}
			if cut.panics && waiting == 1 && where["writer standby"] != 0 {
				t.Errorf("the cut writer's session read on the standby while its backend waited on the lock: %v", where)
			}

			// The middleware's settle, with the lock released after 2 s.
			go func() { time.Sleep(2 * time.Second); release() }()
			start = time.Now()
			sctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
			defer cancel()
			err = r.settleSession(sctx, writer, writer.unsettled())
			took := time.Since(start)
			t.Logf("settleSession of the cut writer's session: %v after %s (lock released at 2 s)", err, took.Round(time.Millisecond))
			if err != nil {
				t.Errorf("settleSession of the cut writer's session: %v", err)
			}
			if cut.panics && waiting == 1 && took < 1500*time.Millisecond {
				t.Errorf("the cut writer's session settled after %s, before the lock's release at 2 s", took.Round(time.Millisecond))
			}
			where2 := review15Where(t, r, WithSession(context.Background(), writer))
			t.Logf("after settling, the cut writer's session reads on the %s; %d unsettled", where2, writer.unsettled())
		})
	}
}

// TestReview15CutFrozenPrimary: the read of a session whose write was cut
// (its cancel request lost), while the cut is noted and the primary is
// frozen (SIGSTOP): the pg_stat_activity lookup
// must end with the read's context, not hang.
func TestReview15CutFrozenPrimary(t *testing.T) {
	topo := review15Lock(t)
	r := rywpathRouter(t, topo, time.Minute, func(c *pgxpool.Config) { review15PanicOnNotice(c); refuseCancels(c) })
	release := review15Hold(t, topo)
	s := &Session{}
	review15CutBlocked(t, r, s, true)
	defer release()
	if err := topo.Primary.Freeze(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = topo.Primary.Thaw() }()
	ctx, cancel := context.WithTimeout(WithSession(context.Background(), s), time.Second)
	defer cancel()
	start := time.Now()
	var rec bool
	err := r.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&rec)
	took := time.Since(start)
	t.Logf("marked read with the primary frozen: in recovery %v, %v after %s", rec, err, took.Round(time.Millisecond))
	if took > 3*time.Second {
		t.Errorf("the read took %s with a 1 s context", took)
	}
}

// TestReview15CutPgBouncer: a write cut by a handler's panic through
// PgBouncer notes PgBouncer's key for the client, not a backend: the
// settle of the write's session must not wait for it (false waits of
// cutAwaitLimit).
func TestReview15CutPgBouncer(t *testing.T) {
	topo := review15Lock(t, routertest.WithPgBouncer())
	r := rywpathRouter(t, topo, time.Minute, review15PanicOnNotice)
	var took []time.Duration
	var s *Session
	for i := range 5 {
		s = &Session{}
		func() {
			defer func() { _ = recover() }()
			_, _ = r.Exec(WithSession(context.Background(), s), review15Write) // no lock held: the backend ends at once
		}()
		if s.unsettled() == 0 {
			t.Fatalf("cut %d: the session is not marked", i)
		}
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
		err := r.settleSession(ctx, s, s.unsettled())
		cancel()
		took = append(took, time.Since(start).Round(time.Millisecond))
		if err != nil {
			t.Fatalf("settle %d: %v", i, err)
		}
	}
	tp, err := r.enter()
	if err != nil {
		t.Fatal(err)
	}
	defer tp.leave()
	t.Logf("settle after each of 5 cuts through PgBouncer: %v; pending now for the last session %v", took, tp.writer.Load().cutBackends.pending(s))
}

// TestReview15CutReload: a reload that changes the primary's pool
// settings (max_conns) builds a new server for the same address; a write
// cut before (its backend waits on a row lock, its cancel request lost,
// and commits once the lock is free) must still hold its session's reads
// on the primary: the cut noted on the old server must not be lost in
// the swap.
func TestReview15CutReload(t *testing.T) {
	topo := review15Lock(t)
	a := topo.Artifact()
	a.Consistency.Mode = artifact.ModeReadYourWrites
	a.Health = artifact.Health{Interval: "1m", Timeout: "1s", EjectAfter: 3, ReadmitAfter: 1}
	a.Pool.MaxConns = 4
	path := filepath.Join(t.TempDir(), "router.json")
	review15WriteFile(t, path, a)
	r, err := Open(context.Background(), path, WithPoolConfig(func(_ artifact.Node, c *pgxpool.Config) { review15PanicOnNotice(c); refuseCancels(c) }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	release := review15Hold(t, topo)
	defer release()
	s := &Session{}
	review15CutBlocked(t, r, s, true)
	if n := review15Waiting(t, topo); n != 1 {
		t.Fatalf("%d cut backends wait on the lock, want 1", n)
	}
	a.Pool.MaxConns = 5
	review15WriteFile(t, path, a)
	if err := r.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	where := review15Where(t, r, WithSession(context.Background(), s))
	tp, err := r.enter()
	if err != nil {
		t.Fatal(err)
	}
	pending := tp.writer.Load().cutBackends.pending(s)
	tp.leave()
	t.Logf("after the reload, with the cut backend still waiting: the marked session read on the %s; noted on the new server %v", where, pending)
	if where != "primary" || len(pending) != 1 {
		t.Errorf("the cut noted before the reload was lost: read on the %s, noted %v (want the primary, 1 noted)", where, pending)
	}
}

func review15WriteFile(t *testing.T, path string, a artifact.Topology) {
	t.Helper()
	data, err := artifact.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+".tmp", data, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
}
