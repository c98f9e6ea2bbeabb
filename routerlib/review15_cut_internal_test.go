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
	c.add(4242)
	asked := time.Now()
	pids := c.pending()
	// The query runs: 4242 is gone. Meanwhile a new backend with the
	// same process id is cut.
	time.Sleep(time.Millisecond)
	c.add(4242)
	c.ended(pids, asked, nil)
	if got := c.pending(); len(got) != 1 || got[0] != 4242 {
		t.Fatalf("after a lookup that found 4242 gone and a cut of a new 4242 noted during it: pending %v, want [4242]", got)
	}
}

// TestReview15CutConcurrent: many goroutines note cuts, look them up and
// drop the ended at once (-race), as the TraceRelease hook and the
// sessions' settles do.
func TestReview15CutConcurrent(t *testing.T) {
	var c cutBackends
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				c.add(uint32(g*10000 + i + 1))
			}
		}()
		go func() {
			defer wg.Done()
			for range 2000 {
				asked := time.Now()
				pids := c.pending()
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
	pids := c.pending()
	c.ended(pids, asked, nil)
	if got := c.pending(); got != nil {
		t.Fatalf("after every cut was found ended: %d pending", len(got))
	}
}

// review15Lock is a primary and a standby with review15_l (one row) and
// review15Write, which raises a notice and then updates that row: cut by a
// notice handler's panic while another transaction holds the row, its
// backend waits on the lock, with no cancel sent.
func review15Lock(t *testing.T, opts ...routertest.Option) *routertest.Topology {
	t.Helper()
	topo := routertest.Start(t, append([]routertest.Option{routertest.WithStandbys(1)}, opts...)...)
	ctx := context.Background()
	for _, q := range []string{
		"CREATE TABLE review15_l (id int PRIMARY KEY, v int)",
		"INSERT INTO review15_l VALUES (1, 0)",
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

// review15CutBlocked runs review15Write through r without a session, cut by
// the notice handler's panic (or by a 300 ms deadline when panics is
// false) while the row is held.
func review15CutBlocked(t *testing.T, r *Router, panics bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if !panics {
		ctx = context.Background()
		ctx, cancel = context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
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
// backend that keeps running: a write of another client (no session),
// blocked on a row lock and cut, so that its backend waits on for the
// lock. Sessions marked lost for any cause (here one whose Conn's Release
// could not read a position) must read on the primary and their
// middleware settle waits; unmarked sessions and calls without a session
// must pay nothing.
func TestReview15CutLockLatency(t *testing.T) {
	topo := review15Lock(t)
	for _, cut := range []struct {
		name   string
		panics bool
	}{{"panic", true}, {"deadline", false}} {
		t.Run(cut.name, func(t *testing.T) {
			var cfg func(*pgxpool.Config)
			if cut.panics {
				cfg = review15PanicOnNotice
			}
			r := rywpathRouter(t, topo, time.Minute, cfg)
			release := review15Hold(t, topo)
			review15CutBlocked(t, r, cut.panics)
			waiting := review15Waiting(t, topo)
			tp, err := r.enter()
			if err != nil {
				t.Fatal(err)
			}
			pids := tp.writer.Load().cutBackends.pending()
			running, lerr := runningBackends(context.Background(), tp.writer.Load().writePool.Load(), pids)
			tp.leave()
			t.Logf("backends of the cut write still waiting on the lock: %d; noted %v, running %v (%v)", waiting, pids, running, lerr)

			marked := &Session{}
			marked.markLost()
			plain := &Session{}
			where := map[string]int{}
			start := time.Now()
			const reads = 20
			for range reads {
				where["marked "+review15Where(t, r, WithSession(context.Background(), marked))]++
			}
			markedTook := time.Since(start)
			start = time.Now()
			for range reads {
				where["plain "+review15Where(t, r, WithSession(context.Background(), plain))]++
				where["none "+review15Where(t, r, context.Background())]++
			}
			plainTook := time.Since(start)
			t.Logf("reads: %v; %d marked reads took %s, %d unmarked+%d sessionless %s", where, reads, markedTook, reads, reads, plainTook)
			if where["plain primary"]+where["none primary"] != 0 {
				t.Errorf("reads without a marked session went to the primary: %v", where)
			}

			// The middleware's settle, with the lock released after 2 s.
			go func() { time.Sleep(2 * time.Second); release() }()
			start = time.Now()
			sctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
			defer cancel()
			err = r.settleSession(sctx, marked, marked.unsettled())
			t.Logf("settleSession of the marked session: %v after %s (lock released at 2 s)", err, time.Since(start).Round(time.Millisecond))
			where2 := review15Where(t, r, WithSession(context.Background(), marked))
			t.Logf("after settling, the marked session reads on the %s; %d unsettled", where2, marked.unsettled())
		})
	}
}

// TestReview15CutFrozenPrimary: a marked session's read while a cut is
// noted and the primary is frozen (SIGSTOP): the pg_stat_activity lookup
// must end with the read's context, not hang.
func TestReview15CutFrozenPrimary(t *testing.T) {
	topo := review15Lock(t)
	r := rywpathRouter(t, topo, time.Minute, review15PanicOnNotice)
	release := review15Hold(t, topo)
	review15CutBlocked(t, r, true)
	defer release()
	if err := topo.Primary.Freeze(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = topo.Primary.Thaw() }()
	s := &Session{}
	s.markLost()
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
// PgBouncer notes PgBouncer's key for the client, not a backend: a marked
// session's settle must not wait for it (false waits of cutAwaitLimit).
func TestReview15CutPgBouncer(t *testing.T) {
	topo := review15Lock(t, routertest.WithPgBouncer())
	r := rywpathRouter(t, topo, time.Minute, review15PanicOnNotice)
	var took []time.Duration
	for i := range 5 {
		func() {
			defer func() { _ = recover() }()
			_, _ = r.Exec(context.Background(), review15Write) // no lock held: the backend ends at once
		}()
		s := &Session{}
		s.markLost()
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
	t.Logf("settle after each of 5 cuts through PgBouncer: %v; pending now %v", took, tp.writer.Load().cutBackends.pending())
}

// TestReview15CutReload: a reload that changes the primary's pool
// settings (max_conns) builds a new server for the same address; a write
// cut before (its backend waits on a row lock, and commits once the lock
// is free) must still hold the marked sessions' reads on the primary: the
// cut noted on the old server must not be lost in the swap.
func TestReview15CutReload(t *testing.T) {
	topo := review15Lock(t)
	a := topo.Artifact()
	a.Consistency.Mode = artifact.ModeReadYourWrites
	a.Health = artifact.Health{Interval: "1m", Timeout: "1s", EjectAfter: 3, ReadmitAfter: 1}
	a.Pool.MaxConns = 4
	path := filepath.Join(t.TempDir(), "router.json")
	review15WriteFile(t, path, a)
	r, err := Open(context.Background(), path, WithPoolConfig(func(_ artifact.Node, c *pgxpool.Config) { review15PanicOnNotice(c) }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	release := review15Hold(t, topo)
	defer release()
	review15CutBlocked(t, r, true)
	if n := review15Waiting(t, topo); n != 1 {
		t.Fatalf("%d cut backends wait on the lock, want 1", n)
	}
	a.Pool.MaxConns = 5
	review15WriteFile(t, path, a)
	if err := r.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	s := &Session{}
	s.markLost()
	where := review15Where(t, r, WithSession(context.Background(), s))
	tp, err := r.enter()
	if err != nil {
		t.Fatal(err)
	}
	pending := tp.writer.Load().cutBackends.pending()
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
