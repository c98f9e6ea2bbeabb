package routertest_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// Each test here breaks its topology, so it starts its own.

// insert writes one row on primary and returns the WAL position after it.
func insert(t *testing.T, ctx context.Context, primary *routertest.Node, id int) string {
	t.Helper()
	if err := primary.Exec(ctx, "CREATE TABLE IF NOT EXISTS faults (id int PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	if err := primary.Exec(ctx, "INSERT INTO faults VALUES ($1)", id); err != nil {
		t.Fatal(err)
	}
	var lsn string
	if err := primary.QueryRow(ctx, "SELECT pg_current_wal_lsn()::text").Scan(&lsn); err != nil {
		t.Fatal(err)
	}
	return lsn
}

// visible reports whether row id is visible on n.
func visible(t *testing.T, ctx context.Context, n *routertest.Node, id int) bool {
	t.Helper()
	var found bool
	err := n.QueryRow(ctx, "SELECT EXISTS (SELECT FROM faults WHERE id = $1)", id).Scan(&found)
	if err != nil && strings.Contains(err.Error(), `relation "faults" does not exist`) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	return found
}

func inRecovery(t *testing.T, ctx context.Context, n *routertest.Node) bool {
	t.Helper()
	var recovering bool
	if err := n.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&recovering); err != nil {
		t.Fatal(err)
	}
	return recovering
}

// streamingTo reports whether upstream's pg_stat_replication shows standby
// streaming.
func streamingTo(t *testing.T, ctx context.Context, upstream, standby *routertest.Node) bool {
	t.Helper()
	var streaming bool
	err := upstream.QueryRow(ctx,
		"SELECT EXISTS (SELECT FROM pg_stat_replication WHERE application_name = $1 AND state = 'streaming')",
		standby.Name).Scan(&streaming)
	if err != nil {
		t.Fatal(err)
	}
	return streaming
}

func TestStopStart(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(1))
	ctx := testContext(t)
	standby := topo.Standbys[0]

	if err := standby.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := standby.Exec(ctx, "SELECT 1"); err == nil {
		t.Fatal("a stopped standby accepted a connection")
	}
	if err := standby.Stop(ctx); err != nil {
		t.Fatalf("stopping a stopped node: %v", err)
	}
	lsn := insert(t, ctx, topo.Primary, 1) // written while the standby is down

	if err := standby.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := standby.WaitStreaming(ctx); err != nil {
		t.Fatal(err)
	}
	if !streamingTo(t, ctx, topo.Primary, standby) {
		t.Error("the primary does not show the restarted standby streaming")
	}
	if err := standby.WaitReplayed(ctx, lsn); err != nil {
		t.Fatal(err)
	}
	if !visible(t, ctx, standby, 1) {
		t.Error("row written while the standby was stopped is not visible after Start")
	}

	// Restarting the primary: the standby reconnects and streams again.
	if err := topo.Primary.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	lsn = insert(t, ctx, topo.Primary, 2)
	if err := standby.WaitReplayed(ctx, lsn); err != nil {
		t.Fatal(err)
	}
	if !visible(t, ctx, standby, 2) {
		t.Error("row written after the primary restarted is not visible on the standby")
	}
}

func TestPromote(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(1))
	ctx := testContext(t)
	standby := topo.Standbys[0]
	if !inRecovery(t, ctx, standby) {
		t.Fatal("standby is not in recovery before Promote")
	}
	if err := standby.Promote(ctx); err != nil {
		t.Fatal(err)
	}
	if inRecovery(t, ctx, standby) {
		t.Error("pg_is_in_recovery() is still true after Promote")
	}
	if err := standby.Exec(ctx, "CREATE TABLE after_promotion (id int)"); err != nil {
		t.Errorf("promoted node refuses writes: %v", err)
	}
	if err := standby.Promote(ctx); err == nil {
		t.Error("promoting a primary succeeded")
	}
}

func TestPauseResumeReplay(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(1))
	ctx := testContext(t)
	standby := topo.Standbys[0]
	if err := standby.WaitReplayed(ctx, insert(t, ctx, topo.Primary, 1)); err != nil {
		t.Fatal(err)
	}

	if err := standby.PauseReplay(ctx); err != nil {
		t.Fatal(err)
	}
	var paused bool
	if err := standby.QueryRow(ctx, "SELECT pg_is_wal_replay_paused()").Scan(&paused); err != nil || !paused {
		t.Fatalf("pg_is_wal_replay_paused() = %v, %v after PauseReplay", paused, err)
	}
	lsn := insert(t, ctx, topo.Primary, 2)

	// WaitReplayed gives up when its context ends, and says how far it got.
	short, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	began := time.Now()
	err := standby.WaitReplayed(short, lsn)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitReplayed while paused: %v, want context.DeadlineExceeded", err)
	}
	if waited := time.Since(began); waited < 400*time.Millisecond {
		t.Errorf("WaitReplayed returned after %v, before its context ended", waited)
	}
	if !strings.Contains(err.Error(), standby.Name) || !strings.Contains(err.Error(), lsn) {
		t.Errorf("WaitReplayed error %q does not name the node and the LSN", err)
	}
	if visible(t, ctx, standby, 2) {
		t.Error("row became visible while replay was paused")
	}

	if err := standby.ResumeReplay(ctx); err != nil {
		t.Fatal(err)
	}
	if err := standby.WaitReplayed(ctx, lsn); err != nil {
		t.Fatal(err)
	}
	if !visible(t, ctx, standby, 2) {
		t.Error("row is not visible after ResumeReplay and WaitReplayed")
	}
}

func TestSetApplyDelay(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(1))
	ctx := testContext(t)
	standby := topo.Standbys[0]
	if err := standby.WaitReplayed(ctx, insert(t, ctx, topo.Primary, 1)); err != nil {
		t.Fatal(err)
	}

	const delay = 1500 * time.Millisecond
	if err := standby.SetApplyDelay(ctx, delay); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	lsn := insert(t, ctx, topo.Primary, 2)
	time.Sleep(300 * time.Millisecond)
	if visible(t, ctx, standby, 2) {
		t.Fatalf("row visible %v after commit despite a %v apply delay", time.Since(began), delay)
	}
	if err := standby.WaitReplayed(ctx, lsn); err != nil {
		t.Fatal(err)
	}
	if !visible(t, ctx, standby, 2) {
		t.Fatal("row not visible after WaitReplayed")
	}
	// Replay waits until the commit's timestamp plus the delay; began was
	// taken just before the commit.
	if waited := time.Since(began); waited < delay-100*time.Millisecond {
		t.Errorf("row replayed after %v, before the %v delay", waited, delay)
	}

	if err := standby.SetApplyDelay(ctx, 0); err != nil {
		t.Fatal(err)
	}
	quick, cancel := context.WithTimeout(ctx, delay)
	defer cancel()
	if err := standby.WaitReplayed(quick, insert(t, ctx, topo.Primary, 3)); err != nil {
		t.Fatalf("after SetApplyDelay(0): %v", err)
	}
}

func TestAddStandby(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(0))
	ctx := testContext(t)
	insert(t, ctx, topo.Primary, 1)

	standby, err := topo.AddStandby(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if standby.Name != "replica-1" || len(topo.Standbys) != 1 || topo.Standbys[0] != standby {
		t.Fatalf("AddStandby returned %q; Standbys = %v", standby.Name, topo.Standbys)
	}
	if !inRecovery(t, ctx, standby) {
		t.Error("new standby is not in recovery")
	}
	if !streamingTo(t, ctx, topo.Primary, standby) {
		t.Fatal("the primary does not show the new standby streaming")
	}
	if !visible(t, ctx, standby, 1) {
		t.Error("data written before AddStandby is missing on the new standby")
	}
	lsn := insert(t, ctx, topo.Primary, 2)
	if err := standby.WaitReplayed(ctx, lsn); err != nil {
		t.Fatal(err)
	}
	if !visible(t, ctx, standby, 2) {
		t.Error("data written after AddStandby is missing on the new standby")
	}

	second, err := topo.AddStandby(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if second.Name != "replica-2" || !visible(t, ctx, second, 2) {
		t.Errorf("second standby %q does not have the primary's data", second.Name)
	}
}

func TestFollowAfterFailover(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(2))
	ctx := testContext(t)
	oldPrimary, newPrimary, follower := topo.Primary, topo.Standbys[0], topo.Standbys[1]
	lsn := insert(t, ctx, oldPrimary, 1)
	for _, n := range topo.Standbys {
		if err := n.WaitReplayed(ctx, lsn); err != nil {
			t.Fatal(err)
		}
	}

	// A failover as production does it: the old primary goes away first.
	if err := oldPrimary.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := newPrimary.Promote(ctx); err != nil {
		t.Fatal(err)
	}
	if err := follower.Follow(ctx, newPrimary); err != nil {
		t.Fatal(err)
	}
	var upstream int
	if err := follower.QueryRow(ctx, "SELECT sender_port FROM pg_stat_wal_receiver").Scan(&upstream); err != nil {
		t.Fatal(err)
	}
	if upstream != newPrimary.Port {
		t.Fatalf("follower streams from port %d, want %d (%s)", upstream, newPrimary.Port, newPrimary.Name)
	}
	if !streamingTo(t, ctx, newPrimary, follower) {
		t.Error("the promoted node does not show its follower streaming")
	}

	lsn = insert(t, ctx, newPrimary, 2)
	if err := follower.WaitReplayed(ctx, lsn); err != nil {
		t.Fatal(err)
	}
	if !visible(t, ctx, follower, 2) {
		t.Error("row written on the promoted node is not visible on its follower")
	}
}

// TestFreezeThaw: a frozen node accepts connections (the kernel does) but
// answers nothing; thawed, it answers again, and Close thaws a node left
// frozen.
func TestFreezeThaw(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(1))
	ctx := testContext(t)
	standby := topo.Standbys[0]
	if err := standby.Freeze(); err != nil {
		t.Fatal(err)
	}
	qctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	start := time.Now()
	err := standby.Exec(qctx, "SELECT 1")
	cancel()
	if err == nil || time.Since(start) < 400*time.Millisecond {
		t.Fatalf("a frozen node answered: %v after %v", err, time.Since(start))
	}
	if err := standby.Thaw(); err != nil {
		t.Fatal(err)
	}
	if err := standby.Exec(ctx, "SELECT 1"); err != nil {
		t.Fatalf("after Thaw: %v", err)
	}
	if err := topo.Primary.Freeze(); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	if err := topo.Close(); err != nil { // thaws the primary, then stops it
		t.Fatal(err)
	}
	t.Logf("Close with the primary frozen took %v", time.Since(start))
}

// TestFreezeStopsEveryBackend: nothing of a frozen node runs between
// Freeze's return and Thaw, even while the postmaster forks a backend for a
// connection every few hundred microseconds: each backend stamps its row
// with clock_timestamp(), and no row may bear a time inside a frozen window.
// A postmaster still forking after Freeze had listed its children (kill
// returns before SIGSTOP takes effect) left a backend running, which kept
// committing writes on its connection while the node was taken for frozen.
func TestFreezeStopsEveryBackend(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(0))
	ctx := testContext(t)
	p := topo.Primary
	if err := p.Exec(ctx, "CREATE TABLE stamps (at timestamptz NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	const insert = "INSERT INTO stamps VALUES (clock_timestamp())"
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var written atomic.Int64
	work := func(fresh bool) {
		defer wg.Done()
		var conn *pgx.Conn
		for {
			select {
			case <-stop:
				if conn != nil {
					conn.Close(context.Background())
				}
				return
			default:
			}
			octx, cancel := context.WithTimeout(ctx, 2*time.Second)
			if conn == nil {
				c, err := p.Connect(octx)
				if err != nil {
					cancel()
					continue
				}
				conn = c
			}
			if _, err := conn.Exec(octx, insert); err == nil {
				written.Add(1)
			}
			if fresh || conn.IsClosed() {
				conn.Close(octx)
				conn = nil
			}
			cancel()
		}
	}
	// Six connect for each row (the postmaster forks all the time), two
	// keep their connection (backends that exist before each freeze).
	for i := range 8 {
		wg.Add(1)
		go work(i < 6)
	}
	type window struct{ from, to time.Time }
	var frozen []window
	for range 6 {
		time.Sleep(150 * time.Millisecond)
		if err := p.Freeze(); err != nil {
			close(stop)
			wg.Wait()
			t.Fatal(err)
		}
		from := time.Now()
		time.Sleep(250 * time.Millisecond)
		to := time.Now()
		if err := p.Thaw(); err != nil {
			t.Fatal(err)
		}
		frozen = append(frozen, window{from, to})
	}
	time.Sleep(150 * time.Millisecond)
	close(stop)
	wg.Wait()
	if written.Load() == 0 {
		t.Fatal("no row was written: the test proves nothing")
	}
	for i, w := range frozen {
		var n int
		var first, last *time.Time
		err := p.QueryRow(ctx, "SELECT count(*), min(at), max(at) FROM stamps WHERE at > $1 AND at < $2", w.from, w.to).Scan(&n, &first, &last)
		if err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			t.Errorf("freeze %d (%s to %s): %d rows stamped while the node was frozen (%v to %v)",
				i+1, w.from.Format("15:04:05.000000"), w.to.Format("15:04:05.000000"), n, *first, *last)
		}
	}
	t.Logf("%d rows written over %d freezes", written.Load(), len(frozen))
}

// TestReinit: the node at the same port is a new cluster afterwards: a
// new postmaster, timeline 1, WAL behind the old cluster's, none of its
// tables, and it takes writes.
func TestReinit(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(0))
	ctx := context.Background()
	p := topo.Primary
	identity := func() (started time.Time, tli string, lsn int64) {
		t.Helper()
		err := p.QueryRow(ctx, `SELECT pg_postmaster_start_time(), left(pg_walfile_name(pg_current_wal_lsn()), 8),
			pg_current_wal_lsn() - '0/0'`).Scan(&started, &tli, &lsn)
		if err != nil {
			t.Fatal(err)
		}
		return started, tli, lsn
	}
	insert(t, ctx, p, 1)
	if err := p.Exec(ctx, "SELECT pg_switch_wal()"); err != nil {
		t.Fatal(err)
	}
	insert(t, ctx, p, 2)
	oldStart, _, oldLSN := identity()
	port := p.Port
	start := time.Now()
	if err := p.Reinit(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("Reinit took %v", time.Since(start))
	newStart, tli, newLSN := identity()
	if !newStart.After(oldStart) || tli != "00000001" || newLSN >= oldLSN || p.Port != port {
		t.Errorf("after Reinit: started %v (was %v), timeline %s, WAL at %d (was %d), port %d (was %d); want a new cluster on timeline 1, behind, at the same port",
			newStart, oldStart, tli, newLSN, oldLSN, p.Port, port)
	}
	var exists bool
	if err := p.QueryRow(ctx, "SELECT to_regclass('faults') IS NOT NULL").Scan(&exists); err != nil || exists {
		t.Errorf("the old cluster's table after Reinit: exists=%v, %v", exists, err)
	}
	insert(t, ctx, p, 3)
}
