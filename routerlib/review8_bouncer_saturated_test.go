package routerlib_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// TestReview8BouncerSaturatedPrimary: PgBouncer in transaction mode in
// front of the primary with default_pool_size 2, and two long writes
// (5 s each) holding both server connections: the primary answers them,
// it does not hang. The health checks, which go through the same
// PgBouncer pool, queued behind the writes, and after eject_after × interval
// + timeout the router took the primary for hung and cut both writes off
// (ErrMaybeCommitted), though they were committing. With the monitor on a
// PgBouncer database of its own (WithMonitorConfig), the checks answer,
// and both writes commit without error.
func TestReview8BouncerSaturatedPrimary(t *testing.T) {
	withPgBouncerSettings(t, "default_pool_size = 2")
	topo := routertest.Start(t, routertest.WithStandbys(1), routertest.WithPgBouncer())
	ctx := context.Background()
	if err := topo.Primary.Exec(ctx, "CREATE TABLE review8_sat (id int)"); err != nil {
		t.Fatal(err)
	}
	ownPool := routerlib.WithMonitorConfig(func(_ artifact.Node, cfg *pgx.ConnConfig) { cfg.Database = routertest.PgBouncerHealthDatabase })
	r := newRouter(t, steadyHealth(topo.Artifact(), 200*time.Millisecond), throughPgBouncer, ownPool)
	eventually(t, 10*time.Second, "primary writer", func() bool { return nodeStat(r, topo.Primary.Name).Writer })
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range 2 {
		wg.Go(func() {
			_, errs[i] = r.Exec(ctx, "INSERT INTO review8_sat SELECT 1 FROM pg_sleep(5)")
		})
	}
	lostAt := time.Duration(0)
	start := time.Now()
	for time.Since(start) < 5500*time.Millisecond {
		if st := nodeStat(r, topo.Primary.Name); !st.Writer && lostAt == 0 {
			lostAt = time.Since(start)
			t.Logf("primary lost the writes after %v: %s", lostAt, st.LastError)
		}
		time.Sleep(20 * time.Millisecond)
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("long write %d: %v", i, err)
		}
	}
	if lostAt != 0 {
		t.Errorf("a primary busy with two long writes behind a full PgBouncer pool lost the writes after %v", lostAt)
	}
}

// TestReview8BouncerOwnMonitorPoolFrozen: with the monitor on a PgBouncer
// database of its own, a server that hangs behind PgBouncer still leaves
// rotation within eject_after × interval + timeout: its checks reach the
// same server.
func TestReview8BouncerOwnMonitorPoolFrozen(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(2), routertest.WithPgBouncer())
	ownPool := routerlib.WithMonitorConfig(func(_ artifact.Node, cfg *pgx.ConnConfig) { cfg.Database = routertest.PgBouncerHealthDatabase })
	a := steadyHealth(topo.Artifact(), 200*time.Millisecond)
	a.ReadPolicy.Fallback = artifact.FallbackError
	r := newRouter(t, a, throughPgBouncer, ownPool)
	for _, s := range topo.Standbys {
		eventually(t, 10*time.Second, s.Name+" in rotation", func() bool { return nodeStat(r, s.Name).Readable })
	}
	frozenLeavesRotation(t, r, topo.Standbys[0])
}

// TestReview8MonitorConfigKeepsTheServer: a WithMonitorConfig hook that
// points the monitor at another server (the primary's port, for every
// node) does not: each node's checks still ask its own server, so the
// standbys are seen in recovery and serve reads.
func TestReview8MonitorConfigKeepsTheServer(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(1))
	elsewhere := routerlib.WithMonitorConfig(func(_ artifact.Node, cfg *pgx.ConnConfig) {
		cfg.Port = uint16(topo.Primary.Port)
	})
	r := newRouter(t, steadyHealth(topo.Artifact(), 100*time.Millisecond), elsewhere)
	replica := topo.Standbys[0]
	eventually(t, 10*time.Second, replica.Name+" seen in recovery and in rotation", func() bool {
		st := nodeStat(r, replica.Name)
		return st.ObservedRole == "replica" && st.Readable
	})
}
