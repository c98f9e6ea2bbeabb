package routerlib_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// pool.min_conns is kept after a pool's connections reach
// max_conn_lifetime: pgxpool's health check refills the pool up to
// MinConns counting Stat().TotalConns(), which counts a resource being
// constructed. libclose ("routerlib: a call waiting for a pool.s connection ends with ErrClosed") keeps one slot of each pool constructing
// for good (nodeConns.reserveSlot), so the refill stops one short: with
// min_conns 2 the pool keeps 1 warm session once the first ones expire,
// with min_conns 1 none, and the next call pays a connection (TLS, SCRAM)
// that min_conns was set to spare. Fix: pgxpool.Config.MinConns (and
// MinIdleConns) one more than the router file's, as MaxConns is, or a
// reserve that is not a puddle resource.
func TestReviewMinConnsRefilledAfterLifetime(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(1))
	ctx := context.Background()
	a := steadyHealth(topo.Artifact(), interval)
	a.Pool.MaxConns, a.Pool.MinConns = 4, 2
	a.Pool.MaxConnLifetime = artifact.Duration("1s")
	r := newRouter(t, a, routerlib.WithPoolConfig(func(_ artifact.Node, cfg *pgxpool.Config) {
		cfg.HealthCheckPeriod = 200 * time.Millisecond
	}))
	if err := r.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	// Past the first connections' lifetime (and its jitter), refilled.
	time.Sleep(4 * time.Second)
	defer func() {
		var open int
		_ = topo.Primary.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'routerlib' AND backend_type = 'client backend'").Scan(&open)
		t.Logf("the primary's pool: %+v; %d routerlib sessions on the primary", nodeStat(r, topo.Primary.Name).Pool, open)
	}()
	eventually(t, 5*time.Second, "min_conns 2 connections in the primary's pool after max_conn_lifetime", func() bool {
		return nodeStat(r, topo.Primary.Name).Pool.TotalConns >= 2
	})
}
