package routerlib_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// TestReloadClosesPoolsWhileAConnectionIsHeld: an application holds one
// primary connection from Acquire for its lifetime (a LISTEN, as
// pgxlisten does), and Terraform changes pool.max_conns, which gives every
// node new pools. The old pools of the replicas, which nothing holds, must
// close: they used to stay open behind the primary's old pool, whose Close
// waits for the held connection, and so did every pool that a later
// reload replaced (its drain waited for this one), so that each reload
// left a full set of connections open on every server until the
// application released its connection, or max_connections ran out.
func TestReloadClosesPoolsWhileAConnectionIsHeld(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(2))
	ctx := context.Background()
	a := steadyHealth(topo.Artifact(), 200*time.Millisecond)
	a.Pool.MaxConns = 4
	r, path := openRouter(t, a, routerlib.WithWatch(0))
	eventually(t, 10*time.Second, "both replicas in rotation", func() bool {
		return nodeStat(r, a.Nodes[1].Name).Readable && nodeStat(r, a.Nodes[2].Name).Readable
	})
	held, err := r.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Release()
	if _, err := held.Exec(ctx, "LISTEN routerlib_red"); err != nil {
		t.Fatal(err)
	}
	for round, maxConns := range []int32{5, 6} {
		readConcurrently(t, r, 12)
		before := map[string][]int32{}
		for _, s := range topo.Standbys {
			before[s.Name] = routerlibBackends(t, s)
			if len(before[s.Name]) == 0 {
				t.Fatalf("round %d: no routerlib session on %s before the reload", round, s.Name)
			}
		}
		a.Pool.MaxConns = maxConns
		writeFile(t, path, a)
		if err := r.Reload(ctx); err != nil {
			t.Fatal(err)
		}
		readConcurrently(t, r, 12)
		for _, s := range topo.Standbys {
			var left []int32
			eventually(t, 5*time.Second, fmt.Sprintf("reload %d: the replaced pools' sessions on %s closed", round+1, s.Name), func() bool {
				now := routerlibBackends(t, s)
				left = left[:0]
				for _, pid := range before[s.Name] {
					if slices.Contains(now, pid) {
						left = append(left, pid)
					}
				}
				return len(left) == 0
			})
		}
	}
	if _, err := held.Exec(ctx, "SELECT 1"); err != nil {
		t.Errorf("the held connection after the reloads: %v", err)
	}
}

// readConcurrently runs n reads at once through r, so that the replicas'
// pools open several sessions.
func readConcurrently(t *testing.T, r *routerlib.Router, n int) {
	t.Helper()
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			if _, err := r.Exec(context.Background(), "SELECT pg_sleep(0.05)"); err != nil {
				t.Errorf("read: %v", err)
			}
		})
	}
	wg.Wait()
}

// routerlibBackends returns the process IDs of the router's sessions on s.
func routerlibBackends(t *testing.T, s *routertest.Node) []int32 {
	t.Helper()
	var pids []int32
	if err := s.QueryRow(context.Background(), "SELECT coalesce(array_agg(pid), '{}') FROM pg_stat_activity WHERE application_name = 'routerlib' AND pid <> pg_backend_pid()").Scan(&pids); err != nil {
		t.Fatal(err)
	}
	return pids
}
