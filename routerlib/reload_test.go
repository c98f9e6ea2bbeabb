package routerlib_test

import (
	"context"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
)

// TestReloadUnderLoad rewrites the router file repeatedly while readers and
// writers run: every rewrite takes effect and no query fails.
func TestReloadUnderLoad(t *testing.T) {
	topo := sharedTopology(t)
	ctx := context.Background()
	a := topo.Artifact()
	r, path := openRouter(t, a, routerlib.WithWatch(10*time.Millisecond))
	if _, err := r.Exec(ctx, "CREATE TABLE IF NOT EXISTS reload_t (id serial, at timestamptz DEFAULT now())"); err != nil {
		t.Fatal(err)
	}
	waitReplayed(t, topo)
	stop := make(chan struct{})
	var ops, failed atomic.Int64
	var firstErr atomic.Pointer[error]
	var wg sync.WaitGroup
	fail := func(err error) {
		failed.Add(1)
		firstErr.CompareAndSwap(nil, &err)
	}
	for i := range 6 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				ops.Add(1)
				if i%3 == 0 {
					if _, err := r.Exec(ctx, "INSERT INTO reload_t DEFAULT VALUES"); err != nil {
						fail(err)
					}
					continue
				}
				rows, err := r.Query(ctx, "SELECT id FROM reload_t ORDER BY id DESC LIMIT 5")
				if err != nil {
					fail(err)
					continue
				}
				for rows.Next() {
				}
				if err := rows.Err(); err != nil {
					fail(err)
				}
			}
		})
	}
	strategies := []string{artifact.StrategyRandom, artifact.StrategyLeastLag, artifact.StrategyWeighted, artifact.StrategyRoundRobin}
	for i := range 8 {
		time.Sleep(150 * time.Millisecond)
		a.ReadPolicy.Strategy = strategies[i%len(strategies)]
		a.Pool.MaxConns = int32(4 + i)
		writeFile(t, path, a)
		eventually(t, 5*time.Second, "reload", func() bool {
			return r.Stat()[0].Pool.MaxConns == int32(4+i)
		})
	}
	time.Sleep(100 * time.Millisecond)
	close(stop)
	wg.Wait()
	if e := firstErr.Load(); e != nil {
		t.Errorf("%d of %d queries failed across 8 reloads; first: %v", failed.Load(), ops.Load(), *e)
	}
	t.Logf("%d queries across 8 reloads, %d failed", ops.Load(), failed.Load())
}

// TestInvalidReloadKeepsConfig: a file that does not validate is reported
// through the hook and the old configuration stays in force.
func TestInvalidReloadKeepsConfig(t *testing.T) {
	topo := sharedTopology(t)
	ctx := context.Background()
	reported := make(chan error, 4)
	r, path := openRouter(t, topo.Artifact(), routerlib.WithWatch(10*time.Millisecond),
		routerlib.WithOnReloadError(func(err error) { reported <- err }))
	if err := os.WriteFile(path, []byte(`{"format_version": 1, "nodes": [{"name": "x", "role": "replica", "host": "h"}]}`), 0o640); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-reported:
		t.Logf("reported: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("an invalid router file was not reported")
	}
	if err := r.Reload(ctx); err == nil {
		t.Error("Reload of an invalid file returned nil")
	}
	if got := len(r.Stat()); got != 3 {
		t.Errorf("after an invalid reload the router has %d nodes, want the old 3", got)
	}
	if _, err := r.Exec(ctx, "SELECT pg_advisory_unlock_all()"); err != nil {
		t.Errorf("write after an invalid reload: %v", err)
	}
	serverPort(t, ctx, r)
}
