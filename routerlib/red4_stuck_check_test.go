package routerlib_test

import (
	"context"
	"testing"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
)

// TestRed4StuckCheckKeepsLaggingReplica: the monitor's check of a replica
// stops answering while the replica still answers reads: its one
// connection black-holed (a stateful firewall or NAT that lost the flow),
// or the check waits on what reads do not (pg_ls_waldir on a pg_wal volume
// that stalled, which stalls the replay too). The watcher excuses each late
// deadline because the node answered calls in time, and starts no new
// check while that one is in flight, so nothing measures the replica's lag
// any more. Its replay then stops while the primary commits: doc.go says
// a replica leaves rotation at once when its lag exceeds max_lag, but it
// stays, and serves reads missing rows committed seconds ago, for as long
// as that check hangs (here 15 s; a black-holed TCP connection, about 15
// minutes of retransmissions).
// Now a replica with max_lag whose checks have not answered for max_lag
// and an interval is out of rotation at once: its lag is unknown.
func TestRed4StuckCheckKeepsLaggingReplica(t *testing.T) {
	rec := &recorder{}
	topo, proxy, r := checkedThroughProxy(t, "stuck_check", func(a *artifact.Topology) {
		a.Nodes[1].MaxLag = "1s"
		a.ReadPolicy = artifact.ReadPolicy{Fallback: artifact.FallbackPrimary}
	}, routerlib.WithTracer(rec))
	ctx := context.Background()
	replica := topo.Standbys[0]
	hangChecks(t, r, proxy, loadOpts{readers: 2}, 15*time.Second)
	if err := replica.PauseReplay(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = replica.ResumeReplay(context.Background()) })
	stopAt := time.Now().Add(4 * time.Second)
	committed := 0
	for time.Now().Before(stopAt) {
		committed++
		if err := topo.Primary.Exec(ctx, "INSERT INTO stuck_check VALUES ($1)", committed); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Every row but the last few was committed more than max_lag (1 s)
	// and the ejection bound (2 × 100 ms + 500 ms) ago.
	var stale, onReplica int
	var worst int
	for range 20 {
		var n, port int
		if err := r.QueryRow(ctx, "SELECT count(*), inet_server_port() FROM stuck_check").Scan(&n, &port); err != nil {
			t.Fatal(err)
		}
		if port == proxy.Port() || port == replica.Port {
			onReplica++
		}
		if missing := committed - n; missing > 17 { // 1.7 s of commits at 10 a second
			stale++
			worst = max(worst, missing)
		}
		time.Sleep(20 * time.Millisecond)
	}
	s := nodeStat(r, replica.Name)
	t.Logf("%d of 20 reads on the replica; %s: %+v", onReplica, replica.Name, s)
	if stale > 0 {
		t.Errorf("%d of 20 reads missed rows committed over 1.7 s before (max_lag 1s), the worst %d of %d rows (%.1f s of commits): the replica stayed in rotation, its lag unmeasured since its check hung", stale, worst, committed, float64(worst)/10)
	}
}

// TestRed4StuckCheckHidesPromotion: the same hung check, on the standby of
// a two-node cluster, hides its promotion. The primary freezes (a dead
// VM), the standby is promoted, and the old primary thaws unfenced: the
// router still takes the promoted node for a standby (its last check,
// before the promotion, said so; each late deadline since is excused by
// the reads it answers), no standby shows the new timeline to veto the
// old primary, and the writes go back to the old primary, a fork the
// promoted node's clients no longer see.
// Now a node that answers calls while none of its checks answered for
// an interval and eject_after × interval + timeout has an unknown role:
// no other node takes over the writes (they fail with ErrNoPrimary) until
// a check of it answers, though a writer in place keeps them.
func TestRed4StuckCheckHidesPromotion(t *testing.T) {
	topo, proxy, r := checkedThroughProxy(t, "stuck_promotion", nil)
	ctx := context.Background()
	standby := topo.Standbys[0]
	hangChecks(t, r, proxy, loadOpts{readers: 2, timeout: 5 * time.Second}, 20*time.Second)

	freeze(t, topo.Primary)
	eventually(t, 10*time.Second, "the frozen primary without the writes", func() bool { return !nodeStat(r, topo.Primary.Name).Writer })
	if err := standby.Promote(ctx); err != nil {
		t.Fatal(err)
	}
	if err := topo.Primary.Thaw(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	var old, promoted, failed int
	var lastErr error
	for i := range 10 {
		var port int
		wctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		err := r.QueryRow(wctx, "INSERT INTO stuck_promotion VALUES ($1) RETURNING inet_server_port()", i).Scan(&port)
		cancel()
		switch {
		case err != nil:
			failed++
			lastErr = err
		case port == topo.Primary.Port:
			old++
		default:
			promoted++
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("10 writes after the promotion: %d on the old primary, %d on the promoted standby, %d failed (last: %v); %s: %+v", old, promoted, failed, lastErr, standby.Name, nodeStat(r, standby.Name))
	if old > 0 {
		t.Errorf("%d of 10 writes went to the old primary after %s was promoted: the router still took it for a standby, its check hung", old, standby.Name)
	}
}
