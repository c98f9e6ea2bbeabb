package routerlib_test

import (
	"testing"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// TestRed4FrozenServerBehindPgBouncer: a replica's server freezes (a dead
// VM) behind its PgBouncer, which runs elsewhere and stays up, under eight
// readers with no deadline. doc.go: a node that hangs is ejected within
// eject_after × interval + timeout, and the reads stuck on it run
// elsewhere. PgBouncer answers a new client connection's startup itself,
// from the server parameters it keeps, so a connection the pool opens
// answers at once while every query on it hangs; the ejection must not
// wait for that.
func TestRed4FrozenServerBehindPgBouncer(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(2), routertest.WithPgBouncer())
	a, bound := hungHealth(topo.Artifact())
	r := newRouter(t, a, throughPgBouncer)
	victim := topo.Standbys[0]
	stop, wait := readsThenFreeze(t, r, topo, victim, bound, 500*time.Millisecond)
	took := eventually(t, 30*time.Second, "the replica frozen behind PgBouncer out of rotation", func() bool { return !nodeStat(r, victim.Name).Readable })
	t.Logf("out of rotation %v after the freeze (bound %v)", took, bound)
	time.Sleep(time.Second)
	l, stuck := stopReads(stop, wait, 10*time.Second, victim)
	if stuck {
		t.Errorf("reads still stuck on the frozen server 10 s after the readers stopped")
	}
	t.Logf("%d reads, %d failed, %d over %v, slowest %v; %+v", l.reads, l.failed, l.slow, bound+time.Second, l.slowest, nodeStat(r, victim.Name))
	if took > bound+time.Second {
		t.Errorf("the replica frozen behind PgBouncer left rotation %v after the freeze, over the bound %v and a second", took, bound)
	}
	if l.slow > 0 || l.failed > 0 {
		t.Errorf("%d reads failed (first: %v), %d took over %v (slowest %v)", l.failed, l.firstErr, l.slow, bound+time.Second, l.slowest)
	}
}

// TestRed4FrozenPrimaryBehindPgBouncer: the primary's server freezes behind
// its PgBouncer, which stays up, under four writers, for 3 s, and thaws.
// The writes in flight there end within the ejection bound (a second to
// spare) as ErrMaybeCommitted, none said done is lost, none said failed
// committed (the frozen server runs what it had received when it thaws),
// none is written twice, and writes are taken again after the thaw.
func TestRed4FrozenPrimaryBehindPgBouncer(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(1), routertest.WithPgBouncer())
	a, bound := hungHealth(topo.Artifact())
	r := newRouter(t, a, throughPgBouncer)
	var thawed time.Time
	o := underWrites(t, topo, r, "frozen_behind", func() {
		freeze(t, topo.Primary)
		time.Sleep(3 * time.Second)
		if err := topo.Primary.Thaw(); err != nil {
			t.Fatal(err)
		}
		thawed = time.Now()
		time.Sleep(3 * time.Second)
	})
	if o.slowest > bound+time.Second {
		t.Errorf("a write took %v, over the ejection bound %v and a second", o.slowest, bound)
	}
	if o.lastOK.Before(thawed) {
		t.Errorf("no write done in the 3 s after the thaw: %+v", nodeStat(r, topo.Primary.Name))
	}
}
