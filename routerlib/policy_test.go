package routerlib_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// choices counts which node n routing decisions for a read pick.
func choices(t *testing.T, ctx context.Context, r *routerlib.Router, n int) map[string]int {
	t.Helper()
	got := map[string]int{}
	for range n {
		name, err := r.ChooseForTest(ctx, "SELECT 1")
		if err != nil {
			t.Fatal(err)
		}
		got[name]++
	}
	return got
}

// TestReadPolicies checks each read_policy strategy and named routes.
func TestReadPolicies(t *testing.T) {
	topo := routertest.Shared(t)
	ctx := context.Background()
	base := func(strategy string) artifact.Topology {
		a := topo.Artifact()
		a.ReadPolicy.Strategy = strategy
		a.Nodes[1].Zone, a.Nodes[2].Zone = "zone-a", "zone-b"
		a.Nodes[0].Zone = "zone-a"
		return a
	}
	t.Run("round_robin", func(t *testing.T) {
		got := choices(t, ctx, newRouter(t, base(artifact.StrategyRoundRobin)), 100)
		if got["replica-1"] != 50 || got["replica-2"] != 50 {
			t.Errorf("round robin: %v, want 50/50", got)
		}
	})
	t.Run("random", func(t *testing.T) {
		got := choices(t, ctx, newRouter(t, base(artifact.StrategyRandom)), 400)
		if got["replica-1"] < 100 || got["replica-2"] < 100 || got["primary"] != 0 {
			t.Errorf("random: %v, want both replicas used", got)
		}
	})
	t.Run("weighted", func(t *testing.T) {
		a := base(artifact.StrategyWeighted)
		a.Nodes[1].Weight, a.Nodes[2].Weight = 1, 99
		got := choices(t, ctx, newRouter(t, a), 1000)
		if got["replica-2"] < 950 || got["replica-1"] > 50 {
			t.Errorf("weighted 1:99: %v", got)
		}
	})
	t.Run("nearest_zone", func(t *testing.T) {
		got := choices(t, ctx, newRouter(t, base(artifact.StrategyNearestZone), routerlib.WithZone("zone-b")), 50)
		if got["replica-2"] != 50 {
			t.Errorf("nearest_zone from zone-b: %v, want all on replica-2", got)
		}
		got = choices(t, ctx, newRouter(t, base(artifact.StrategyNearestZone), routerlib.WithZone("zone-c")), 50)
		if got["replica-1"] == 0 || got["replica-2"] == 0 {
			t.Errorf("nearest_zone from a zone with no replica: %v, want any replica", got)
		}
	})
	t.Run("least_lag", func(t *testing.T) {
		got := choices(t, ctx, newRouter(t, base(artifact.StrategyLeastLag)), 50)
		if got["primary"] != 0 || len(got) != 1 {
			t.Errorf("least_lag: %v, want one replica (the least lagging) throughout", got)
		}
	})
	t.Run("route", func(t *testing.T) {
		a := base(artifact.StrategyRoundRobin)
		a.Routes = []artifact.Route{{Name: "analytics", Nodes: []string{"replica-2"}}}
		rec := &recorder{}
		r := newRouter(t, a, routerlib.WithTracer(rec))
		actx := routerlib.Route(ctx, "analytics")
		if got := choices(t, actx, r, 20); got["replica-2"] != 20 {
			t.Errorf("route analytics: %v, want all on replica-2", got)
		}
		if p := serverPort(t, actx, r); p != topo.Standbys[1].Port {
			t.Errorf("route analytics answered by %d", p)
		}
		if d := rec.last(t); d.Reason != routerlib.ReasonRoute || d.Route != "analytics" {
			t.Errorf("traced %+v, want reason route on analytics", d)
		}
		if _, err := r.ChooseForTest(routerlib.Route(ctx, "missing"), "SELECT 1"); !errors.Is(err, routerlib.ErrUnknownRoute) || !strings.Contains(err.Error(), "missing") {
			t.Errorf("unknown route: %v", err)
		}
	})
}

// TestLagEjection: an idle primary is not lag; a standby whose replay is
// paused leaves rotation once its byte lag exceeds max_lag_bytes and comes
// back when it catches up. Stat shows why.
func TestLagEjection(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(2))
	ctx := context.Background()
	a := steadyHealth(topo.Artifact(), interval) // lag ejects at once whatever eject_after
	a.Nodes[1].MaxLagBytes = 64 * 1024
	a.Nodes[2].MaxLag = "2s"
	rec := &recorder{}
	r := newRouter(t, a, routerlib.WithTracer(rec))
	if _, err := r.Exec(ctx, "CREATE TABLE lag_t (v text)"); err != nil {
		t.Fatal(err)
	}
	// Idle: nothing is lag, however long ago the last transaction was.
	time.Sleep(3 * time.Second)
	eventually(t, 3*time.Second, "idle standbys at zero lag", func() bool {
		s1, s2 := nodeStat(r, "replica-1"), nodeStat(r, "replica-2")
		return s1.Readable && s2.Readable && s1.Lag == 0 && s2.Lag == 0 && s1.LagBytes == 0
	})

	lagging := topo.Standbys[0]
	if err := lagging.PauseReplay(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Exec(ctx, "INSERT INTO lag_t SELECT repeat('x', 100) FROM generate_series(1, 5000)"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 3*interval, "ejection for lag", func() bool { return !nodeStat(r, lagging.Name).Readable })
	s := nodeStat(r, lagging.Name)
	if s.Ejected != routerlib.EjectLagBytes || s.LagBytes <= 64*1024 {
		t.Errorf("Stat of the lagging standby: ejected %q, lag %d bytes", s.Ejected, s.LagBytes)
	}
	if got := choices(t, ctx, r, 10); got["replica-2"] != 10 {
		t.Errorf("with replica-1 lagging, reads went %v", got)
	}
	// Everything lagging: the fallback names lag as the reason.
	if err := topo.Standbys[1].PauseReplay(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Exec(ctx, "INSERT INTO lag_t VALUES ('y')"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "replica-2 ejected for time lag", func() bool { return !nodeStat(r, "replica-2").Readable })
	if got := nodeStat(r, "replica-2").Ejected; got != routerlib.EjectLagTime {
		t.Errorf("replica-2 ejected for %q, want lagging time", got)
	}
	serverPort(t, ctx, r)
	if d := rec.last(t); d.Reason != routerlib.ReasonLagging || d.Node != "primary" {
		t.Errorf("read with all replicas lagging: %+v, want lagging on primary", d)
	}
	for _, sb := range topo.Standbys {
		if err := sb.ResumeReplay(ctx); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 5*time.Second, "readmission after catching up", func() bool {
		return nodeStat(r, "replica-1").Readable && nodeStat(r, "replica-2").Readable
	})
}

// TestStat reports declared and observed roles, counters and pool figures.
func TestStat(t *testing.T) {
	topo := routertest.Shared(t)
	ctx := context.Background()
	r := newRouter(t, topo.Artifact())
	for range 4 {
		serverPort(t, ctx, r)
	}
	if _, err := r.Exec(ctx, "SELECT pg_advisory_unlock_all()"); err != nil {
		t.Fatal(err)
	}
	stats := r.Stat()
	if len(stats) != 3 {
		t.Fatalf("Stat has %d nodes", len(stats))
	}
	p, r1 := stats[0], stats[1]
	if p.Name != "primary" || p.DeclaredRole != "primary" || p.ObservedRole != "primary" || !p.Writer || p.Writes != 1 || p.Readable {
		t.Errorf("primary: %+v", p)
	}
	if r1.DeclaredRole != "replica" || r1.ObservedRole != "replica" || !r1.Healthy || !r1.Readable || r1.Reads != 2 || r1.ReplayLSN == 0 {
		t.Errorf("replica-1: %+v", r1)
	}
	if r1.Pool.MaxConns != artifact.DefaultMaxConns || r1.Pool.AcquireCount == 0 {
		t.Errorf("replica-1 pool: %+v", r1.Pool)
	}
	if p.Ejected.String() != "not in recovery" {
		t.Errorf("primary's read status %q", p.Ejected)
	}
}
