package routerlib_test

import (
	"context"
	"testing"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
)

// TestRoleUnknownReplicaLeavesRotation: a replica WITHOUT max_lag whose
// check hangs while it answers reads (TestRed4StuckCheckKeepsLaggingReplica
// has one with max_lag) has a role unknown once no check answered for
// eject_after + 1 intervals and health.timeout: it may have been promoted,
// and nothing measures how far behind it is (here its replay stops, as a
// stalled pg_wal volume would stop it). It leaves read rotation once its
// role has been unknown as long again (a check that only answers late must
// not eject it: TestLateChecksOfAnAnsweringReplica), and
// Stat says its role is unknown, rather than serving reads that miss what
// the primary committed for as long as the check hangs.
func TestRoleUnknownReplicaLeavesRotation(t *testing.T) {
	topo, proxy, r := checkedThroughProxy(t, "role_unknown", func(a *artifact.Topology) { // no max_lag
		a.ReadPolicy = artifact.ReadPolicy{Fallback: artifact.FallbackPrimary}
	})
	ctx := context.Background()
	replica := topo.Standbys[0]
	if s := nodeStat(r, replica.Name); s.ObservedRole != "replica" {
		t.Fatalf("before: ObservedRole %q, want replica", s.ObservedRole)
	}

	hung := time.Now()
	hangChecks(t, r, proxy, loadOpts{readers: 2}, 15*time.Second)
	if err := replica.PauseReplay(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = replica.ResumeReplay(context.Background()) })
	// The role is unknown 3 × 100 ms + 500 ms after the last check that
	// answered, and the replica leaves rotation as long again after; a
	// busy machine's checks and ticks come later.
	eventually(t, 5*time.Second, "the replica out of rotation, its role unknown", func() bool {
		s := nodeStat(r, replica.Name)
		return !s.Readable && s.ObservedRole == "unknown"
	})
	s := nodeStat(r, replica.Name)
	t.Logf("%v after its check hung: %+v", time.Since(hung).Round(10*time.Millisecond), s)

	committed := 0
	for range 10 {
		committed++
		if err := topo.Primary.Exec(ctx, "INSERT INTO role_unknown VALUES ($1)", committed); err != nil {
			t.Fatal(err)
		}
	}
	for range 10 {
		var n, port int
		if err := r.QueryRow(ctx, "SELECT count(*), inet_server_port() FROM role_unknown").Scan(&n, &port); err != nil {
			t.Fatal(err)
		}
		if port == proxy.Port() || port == replica.Port || n != committed {
			t.Errorf("a read after the replica's role became unknown ran on port %d (the replica's %d) and saw %d of %d rows", port, replica.Port, n, committed)
		}
	}
}
