package routerlib_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// The red team's fault tests share their load: readers on a replica that
// freezes, writers on a primary that fails in some way.

// freeze freezes n (a dead VM) until the test thaws it (Thaw may be called
// again), or at the latest until the test ends.
func freeze(t testing.TB, n *routertest.Node) {
	t.Helper()
	if err := n.Freeze(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Thaw() })
}

// statementRunning returns whether query (its text exactly) is running on
// n, as pg_stat_activity shows it; the test fails if n cannot be asked.
func statementRunning(t testing.TB, n *routertest.Node, query string) func() bool {
	return func() bool {
		var c int
		if err := n.QueryRow(context.Background(), "SELECT count(*) FROM pg_stat_activity WHERE query = $1 AND state = 'active'", query).Scan(&c); err != nil {
			t.Fatal(err)
		}
		return c > 0
	}
}

// repeatUntil runs n goroutines, the i-th calling do(i) again and again
// until stop is closed; wait waits for them to return.
func repeatUntil(stop <-chan struct{}, n int, do func(i int)) (wait func()) {
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				do(i)
			}
		})
	}
	return wg.Wait
}

// checkedThroughProxy starts a primary with one standby, creates table on
// the primary and waits for the standby to replay it, and starts a router
// that checks every 100 ms (timeout 500 ms, eject_after 2) and reaches the
// standby through a proxy, so that its checks can hang while it answers
// reads (hangChecks). edit, when not nil, changes the router file first. It
// returns once the standby is in rotation.
func checkedThroughProxy(t *testing.T, table string, edit func(*artifact.Topology), opts ...routerlib.Option) (*routertest.Topology, *routertest.Proxy, *routerlib.Router) {
	t.Helper()
	topo := routertest.Start(t, routertest.WithStandbys(1))
	standby := topo.Standbys[0]
	proxy := standby.NewProxy(t)
	if err := topo.Primary.Exec(context.Background(), "CREATE TABLE "+table+" (id int)"); err != nil {
		t.Fatal(err)
	}
	waitReplayed(t, topo)
	a := topo.Artifact()
	a.Health = artifact.Health{Interval: "100ms", Timeout: "500ms", EjectAfter: 2, ReadmitAfter: 1}
	a.Nodes[1].Port = proxy.Port()
	if edit != nil {
		edit(&a)
	}
	// The proxy knows a prepared statement by its Parse: the rule must
	// be in force when the monitor prepares its check (a millisecond's
	// delay), to apply to it later.
	proxy.DelayAnswers("pg_last_xact_replay_timestamp", time.Millisecond)
	r := newRouter(t, a, opts...)
	eventually(t, 10*time.Second, "the standby in rotation", func() bool { return nodeStat(r, standby.Name).Readable })
	return topo, proxy, r
}

// hangChecks starts readers on r (o) until the test ends, as the
// application reads all along, then delays the answers of the standby's
// checks through proxy by hang: the check in flight when it returns hangs.
// Only the checks stop answering: their query is the only one that reads
// pg_last_xact_replay_timestamp.
func hangChecks(t *testing.T, r *routerlib.Router, proxy *routertest.Proxy, o loadOpts, hang time.Duration) {
	t.Helper()
	stop := make(chan struct{})
	wait := readLoadWith(r, o, stop)
	t.Cleanup(func() {
		close(stop)
		wait()
	})
	proxy.DelayAnswers("pg_last_xact_replay_timestamp", hang)
	time.Sleep(300 * time.Millisecond)
}

// readsThenFreeze waits for topo's first two standbys to be in rotation on
// r, starts eight readers with no deadline (a read is slow after bound and
// a second), and freezes victim once they have read for settle. Stop the
// readers with stopReads.
func readsThenFreeze(t *testing.T, r *routerlib.Router, topo *routertest.Topology, victim *routertest.Node, bound, settle time.Duration) (stop chan struct{}, wait func() load) {
	t.Helper()
	eventually(t, 10*time.Second, "the replicas in rotation", func() bool {
		return nodeStat(r, topo.Standbys[0].Name).Readable && nodeStat(r, topo.Standbys[1].Name).Readable
	})
	stop = make(chan struct{})
	wait = readLoadWith(r, loadOpts{readers: 8, slowAfter: bound + time.Second}, stop)
	time.Sleep(settle)
	freeze(t, victim)
	return stop, wait
}

// stopReads stops the readers of readsThenFreeze and waits for them. When
// some are still stuck after limit it thaws frozen, so that they end, and
// says so with stuck.
func stopReads(stop chan struct{}, wait func() load, limit time.Duration, frozen *routertest.Node) (l load, stuck bool) {
	close(stop)
	finished := make(chan load, 1)
	go func() { finished <- wait() }()
	select {
	case l = <-finished:
		return l, false
	case <-time.After(limit):
		_ = frozen.Thaw()
		return <-finished, true
	}
}

// underWrites creates table through r and runs four writers into it
// (red4WriteLoad): fault runs once they have written for a second, and
// returns when they are to stop. A second later, when what a frozen server
// had received has run, their outcomes are checked (writeOutcomes.check)
// and returned.
func underWrites(t *testing.T, topo *routertest.Topology, r *routerlib.Router, table string, fault func()) *writeOutcomes {
	t.Helper()
	if _, err := r.Exec(context.Background(), "CREATE TABLE "+table+" (id int)"); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	wait := red4WriteLoad(r, table, 4, stop)
	time.Sleep(time.Second)
	fault()
	close(stop)
	o := wait()
	time.Sleep(time.Second)
	o.check(t, topo, table)
	return o
}

// writeOutcomes runs writers that each insert unique ids into table until
// stop closes, and sorts each id by what the router said of it: done, may
// have committed, or failed (did not commit).
type writeOutcomes struct {
	mu                sync.Mutex
	ok, maybe, failed []int
	firstFail         error
	slowest           time.Duration
	lastOK            time.Time
}

func red4WriteLoad(r *routerlib.Router, table string, writers int, stop <-chan struct{}) (wait func() *writeOutcomes) {
	var next atomic.Int64
	o := &writeOutcomes{}
	done := repeatUntil(stop, writers, func(int) {
		id := int(next.Add(1))
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_, err := r.Exec(ctx, "INSERT INTO "+table+" (id) VALUES ($1)", id)
		cancel()
		took := time.Since(start)
		o.mu.Lock()
		o.slowest = max(o.slowest, took)
		switch {
		case err == nil:
			o.ok = append(o.ok, id)
			o.lastOK = time.Now()
		case errors.Is(err, routerlib.ErrMaybeCommitted):
			o.maybe = append(o.maybe, id)
		default:
			o.failed = append(o.failed, id)
			if o.firstFail == nil {
				o.firstFail = err
			}
		}
		o.mu.Unlock()
		if err != nil {
			time.Sleep(20 * time.Millisecond)
		}
	})
	return func() *writeOutcomes { done(); return o }
}

// check compares the outcomes with the rows table holds on the primary:
// every id said done is there once, none said failed is there, none twice.
func (o *writeOutcomes) check(t *testing.T, topo *routertest.Topology, table string) {
	t.Helper()
	ctx := context.Background()
	conn, err := topo.Primary.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, "SELECT id, count(*) FROM "+table+" GROUP BY id")
	if err != nil {
		t.Fatal(err)
	}
	have := map[int]int{}
	for rows.Next() {
		var id, n int
		if err := rows.Scan(&id, &n); err != nil {
			t.Fatal(err)
		}
		have[id] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	var lost, phantom, twice, maybeIn int
	for _, id := range o.ok {
		if have[id] == 0 {
			lost++
		}
	}
	for _, id := range o.failed {
		if have[id] > 0 {
			phantom++
			if phantom == 1 {
				t.Logf("id %d was said not to have committed, and is on the primary", id)
			}
		}
	}
	for _, id := range o.maybe {
		if have[id] > 0 {
			maybeIn++
		}
	}
	for _, n := range have {
		if n > 1 {
			twice++
		}
	}
	t.Logf("%d writes done, %d may have committed (%d did), %d failed (first: %v); slowest %v", len(o.ok), len(o.maybe), maybeIn, len(o.failed), o.firstFail, o.slowest)
	if lost > 0 {
		t.Errorf("%d writes said done are not on the primary", lost)
	}
	if phantom > 0 {
		t.Errorf("%d writes said failed (not ErrMaybeCommitted) committed", phantom)
	}
	if twice > 0 {
		t.Errorf("%d ids written twice", twice)
	}
}
