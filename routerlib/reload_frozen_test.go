package routerlib_test

import (
	"context"
	"testing"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// TestReloadWhileAReplicaIsFrozen: a replica frozen (SIGSTOP) and
// ejected, then a reload that gives every node new pools (the pool size
// changed): the frozen replica stays out, no read waits on it, and it
// comes back after SIGCONT.
func TestReloadWhileAReplicaIsFrozen(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(2))
	frozen := topo.Standbys[0]
	a := steadyHealth(topo.Artifact(), 200*time.Millisecond)
	a.Pool.MaxConns = 4
	r, path := openRouter(t, a, routerlib.WithWatch(0))
	ctx := context.Background()
	eventually(t, 10*time.Second, "both replicas in rotation", func() bool {
		return nodeStat(r, a.Nodes[1].Name).Readable && nodeStat(r, a.Nodes[2].Name).Readable
	})
	stop := make(chan struct{})
	wait := readLoadWith(r, loadOpts{readers: 6, timeout: 10 * time.Second, slowAfter: 6 * time.Second}, stop)
	time.Sleep(300 * time.Millisecond)
	if err := frozen.Freeze(); err != nil {
		t.Fatal(err)
	}
	defer frozen.Thaw()
	eventually(t, 15*time.Second, "the frozen replica ejected", func() bool { return !nodeStat(r, a.Nodes[1].Name).Readable })
	a.Pool.MaxConns = 5
	writeFile(t, path, a)
	if err := r.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if nodeStat(r, a.Nodes[1].Name).Readable {
		t.Error("the frozen replica is in rotation right after the reload")
	}
	ports := map[int]int{}
	for range 50 {
		var port int
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := r.QueryRow(cctx, "SELECT inet_server_port()").Scan(&port)
		cancel()
		if err != nil {
			t.Errorf("a read after the reload: %v", err)
			continue
		}
		ports[port]++
	}
	if ports[frozen.Port] != 0 {
		t.Errorf("%d of 50 reads after the reload ran on the frozen replica", ports[frozen.Port])
	}
	if err := frozen.Thaw(); err != nil {
		t.Fatal(err)
	}
	back := eventually(t, 15*time.Second, "the thawed replica back", func() bool { return nodeStat(r, a.Nodes[1].Name).Readable })
	close(stop)
	l := wait()
	t.Logf("%d reads, %d failed, %d over 6 s, slowest %v; after the reload %v; back %v after SIGCONT", l.reads, l.failed, l.slow, l.slowest, ports, back)
	if l.failed != 0 || l.slow != 0 {
		t.Errorf("%d reads failed, %d took over 6 s; first error: %v", l.failed, l.slow, l.firstErr)
	}
}
