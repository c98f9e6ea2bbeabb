package routerlib_test

import (
	"context"
	"testing"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// TestRed4ReloadChangesFrozenReplica: a replica freezes (a dead VM) under
// eight readers with no deadline, and before the monitor ejects it the
// router file is reloaded with that node renamed (same host and port), or
// with its port changed to a proxy in front of the same server. doc.go:
// a changed node gets new pools, and the old ones close once the queries
// using them finish, which are cut, if the node stops answering, after
// eject_after failed checks. The reads stuck on it must end within the
// ejection bound (a second to spare) and run elsewhere, none failing;
// after the thaw the node, under its new name or port, is back.
func TestRed4ReloadChangesFrozenReplica(t *testing.T) {
	for _, change := range []string{"renamed", "port changed"} {
		t.Run(change, func(t *testing.T) {
			topo := routertest.Start(t, routertest.WithStandbys(2))
			a, bound := hungHealth(topo.Artifact())
			victim := topo.Standbys[0]
			var proxy *routertest.Proxy
			if change == "port changed" {
				proxy = victim.NewProxy(t)
			}
			r, path := openRouter(t, a, routerlib.WithWatch(0))
			stop, wait := readsThenFreeze(t, r, topo, victim, bound, 200*time.Millisecond)
			time.Sleep(100 * time.Millisecond) // reads are stuck on it now
			changed := a
			changed.Nodes = append([]artifact.Node(nil), a.Nodes...)
			name := victim.Name
			if proxy != nil {
				changed.Nodes[1].Port = proxy.Port()
			} else {
				name = victim.Name + "-renamed"
				changed.Nodes[1].Name = name
			}
			writeFile(t, path, changed)
			start := time.Now()
			if err := r.Reload(context.Background()); err != nil {
				t.Fatal(err)
			}
			t.Logf("the reload took %v", time.Since(start))
			time.Sleep(bound + time.Second)
			l, stuck := stopReads(stop, wait, 5*time.Second, victim)
			if stuck {
				t.Fatalf("reads stuck on the frozen replica still hang %v after the reload (they ended at the thaw: slowest %v)", bound+6*time.Second, l.slowest)
			}
			t.Logf("%d reads, %d failed, %d over %v, slowest %v", l.reads, l.failed, l.slow, bound+time.Second, l.slowest)
			if l.failed != 0 {
				t.Errorf("%d of %d reads failed; first: %v", l.failed, l.reads, l.firstErr)
			}
			if l.slow != 0 {
				t.Errorf("%d reads took over the ejection bound and a second (%v): slowest %v", l.slow, bound+time.Second, l.slowest)
			}
			if s := nodeStat(r, name); s.Readable {
				t.Errorf("%s frozen and in rotation: %+v", name, s)
			}
			if err := victim.Thaw(); err != nil {
				t.Fatal(err)
			}
			eventually(t, 10*time.Second, name+" back after the thaw", func() bool { return nodeStat(r, name).Readable })
		})
	}
}
