package routerlib_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// fullPrimary starts a primary with a role r13_lim of CONNECTION LIMIT 2
// (holdAll takes what the router's monitor leaves of it), and returns the
// router file for it as that role, connect_timeout 10s.
func fullPrimary(t *testing.T) (*routertest.Topology, artifact.Topology) {
	t.Helper()
	topo := routertest.Start(t, routertest.WithStandbys(0))
	const role = "r13_lim"
	if err := topo.Primary.Exec(context.Background(), "CREATE ROLE "+role+" LOGIN CONNECTION LIMIT 2; CREATE TABLE r13_full (v int); GRANT SELECT, INSERT ON r13_full TO "+role); err != nil {
		t.Fatal(err)
	}
	a := steadyHealth(topo.Artifact(), 200*time.Millisecond)
	a.Health.ConnectTimeout = "10s"
	a.Nodes[0].User = role
	a.Pool.MinConns = 0
	return topo, a
}

// TestReview13CloseDuringRoomWait: a write waits for room on a primary
// whose role has no session left (awaitRoom), and the application closes
// the router. Close waits for it as for any call in flight (health.timeout,
// 1 s), then the wait ends, the call told it was not sent; not held to
// connect_timeout (10 s). The monitor connects as another role: Close
// ends the monitor first, and a place of r13_lim that its connection
// freed would be the waiting write's, rightly (a call in flight during
// Close's grace completes), which is not the wait this test ends.
func TestReview13CloseDuringRoomWait(t *testing.T) {
	ctx := context.Background()
	topo, a := fullPrimary(t)
	monUser := topo.Artifact().Nodes[0].User
	r := newRouter(t, a, routerlib.WithMonitorConfig(func(_ artifact.Node, cfg *pgx.ConnConfig) { cfg.User = monUser }))
	if held := holdAll(t, topo, "r13_lim"); len(held) != 2 {
		t.Fatalf("held %d sessions of r13_lim, want both of its CONNECTION LIMIT 2 (none the monitor's)", len(held))
	}
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		_, err := r.Exec(ctx, "INSERT INTO r13_full VALUES (1)")
		done <- err
	}()
	time.Sleep(300 * time.Millisecond)
	closeStart := time.Now()
	r.Close()
	closeTook := time.Since(closeStart)
	err := <-done
	t.Logf("Close took %v; the write returned after %v: %v", closeTook, time.Since(start), err)
	if err == nil {
		t.Fatal("the write succeeded with no room")
	}
	if closeTook > 2500*time.Millisecond {
		t.Errorf("Close took %v while a write waited for room", closeTook)
	}
	if !strings.Contains(err.Error(), "not sent") {
		t.Errorf("the error does not say the write was not sent: %v", err)
	}
}

// TestReview13ReloadDuringRoomWait: a write waits for room on the primary
// (awaitRoom) while a reload replaces it by another server (a failover
// the application applied). A session comes free on the old primary after
// the reload: the write must not land there, on a server the router no
// longer writes to.
func TestReview13ReloadDuringRoomWait(t *testing.T) {
	ctx := context.Background()
	topo, a := fullPrimary(t)
	other := routertest.Start(t, routertest.WithStandbys(0))
	if err := other.Primary.Exec(ctx, "CREATE TABLE r13_full (v int)"); err != nil {
		t.Fatal(err)
	}
	r, path := openRouter(t, a)
	held := holdAll(t, topo, "r13_lim")
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		_, err := r.Exec(ctx, "INSERT INTO r13_full VALUES (1)")
		done <- err
	}()
	time.Sleep(300 * time.Millisecond)
	writeFile(t, path, steadyHealth(other.Artifact(), 200*time.Millisecond))
	if err := r.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	reloaded := time.Since(start)
	time.Sleep(300 * time.Millisecond)
	held[0].Close(ctx)
	err := <-done
	t.Logf("reloaded after %v; the write returned after %v: %v", reloaded, time.Since(start), err)
	var n int
	if err := topo.Primary.QueryRow(ctx, "SELECT count(*) FROM r13_full").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("the write waiting for room landed on the old primary %v after a reload replaced it (err %v)", time.Since(start)-reloaded, err)
	}
}

// holdAll takes every session role has left on topo's primary.
func holdAll(t *testing.T, topo *routertest.Topology, role string) []*pgx.Conn {
	t.Helper()
	return routerlib.HoldRoleSessions(t, topo.Primary, role)
}

// TestReview13DemotedPrimaryFullLeavesRotation: after a failover the
// declared primary, cloned again as a standby of the promoted node, serves
// reads through its write pool (readPoolOf: the declared primary has no
// read-only pool). When its role has no session left there (53300), the
// read must leave it at once for another node, as a replica's does, not
// wait up to connect_timeout (10 s) for room.
func TestReview13DemotedPrimaryFullLeavesRotation(t *testing.T) {
	ctx := context.Background()
	topo := routertest.Start(t, routertest.WithStandbys(1))
	old, promoted := topo.Primary, topo.Standbys[0]
	const role = "r13_lim"
	if err := old.Exec(ctx, "CREATE ROLE "+role+" LOGIN CONNECTION LIMIT 2; CREATE TABLE r13_full (v int); GRANT SELECT, INSERT ON r13_full TO "+role); err != nil {
		t.Fatal(err)
	}
	waitReplayed(t, topo)
	a := steadyHealth(topo.Artifact(), 200*time.Millisecond)
	a.Health.ConnectTimeout = "10s"
	for i := range a.Nodes {
		a.Nodes[i].User = role
	}
	a.Pool.MinConns = 0
	r := newRouter(t, a)
	if err := old.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := promoted.Promote(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "writes on the promoted node", func() bool { return nodeStat(r, promoted.Name).Writer })
	if err := old.Reclone(ctx, promoted); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the old primary readable", func() bool { return nodeStat(r, old.Name).Readable })
	holdAll(t, topo, role)
	for i := range 3 {
		start := time.Now()
		var v int
		err := r.QueryRow(ctx, "SELECT count(*) FROM r13_full").Scan(&v)
		took := time.Since(start)
		t.Logf("read %d after %v: %v (old primary: %+v)", i, took, err, nodeStat(r, old.Name))
		if took > 2*time.Second {
			t.Errorf("read %d waited %v for room on %s, a standby now", i, took, old.Name)
		}
	}
}
