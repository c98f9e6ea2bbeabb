package routerlib_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// TestReloadUnderLoad rewrites the router file repeatedly while readers and
// writers run: every rewrite takes effect and no query fails.
func TestReloadUnderLoad(t *testing.T) {
	topo := routertest.Shared(t)
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
	fail := func(err error) {
		failed.Add(1)
		firstErr.CompareAndSwap(nil, &err)
	}
	wait := repeatUntil(stop, 6, func(i int) {
		ops.Add(1)
		if i%3 == 0 {
			if _, err := r.Exec(ctx, "INSERT INTO reload_t DEFAULT VALUES"); err != nil {
				fail(err)
			}
			return
		}
		rows, err := r.Query(ctx, "SELECT id FROM reload_t ORDER BY id DESC LIMIT 5")
		if err != nil {
			fail(err)
			return
		}
		for rows.Next() {
		}
		if err := rows.Err(); err != nil {
			fail(err)
		}
	})
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
	wait()
	if e := firstErr.Load(); e != nil {
		t.Errorf("%d of %d queries failed across 8 reloads; first: %v", failed.Load(), ops.Load(), *e)
	}
	t.Logf("%d queries across 8 reloads, %d failed", ops.Load(), failed.Load())
}

// TestInvalidReloadKeepsConfig: a file that does not validate is reported
// through the hook and the old configuration stays in force.
func TestInvalidReloadKeepsConfig(t *testing.T) {
	topo := routertest.Shared(t)
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

// TestReloadDuringPostmasterPause: the primary's postmaster stops for
// 1.5 s (its backends keep serving) and the router file is reloaded 200 ms
// into the pause. The reload keeps the pools and what the monitor knows,
// so no write fails; it used to rebuild every pool and lose the writer.
func TestReloadDuringPostmasterPause(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(1))
	ctx := context.Background()
	// The file's default health settings, as in production: a check that
	// a loaded machine slows past a test's short timeout is not what this
	// test is about.
	a := topo.Artifact()
	r, path := openRouter(t, a, routerlib.WithWatch(0))
	if _, err := r.Exec(ctx, "CREATE TABLE pause_t (id serial, phase int)"); err != nil {
		t.Fatal(err)
	}
	var phase atomic.Int32
	stop := make(chan struct{})
	var waits []func() (int64, int64)
	for range 4 {
		waits = append(waits, writeLoad(r, "pause_t", &phase, stop))
	}
	time.Sleep(3 * interval) // every writer holds a connection by now

	resume := pausePostmaster(t, topo.Primary)
	time.Sleep(200 * time.Millisecond)
	a.ReadPolicy.Strategy = artifact.StrategyLeastLag
	a.Routes = append(a.Routes, artifact.Route{Name: "paused", Nodes: []string{topo.Standbys[0].Name}})
	writeFile(t, path, a)
	if err := r.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1300 * time.Millisecond)
	resume()
	time.Sleep(3 * interval)
	close(stop)
	var ok, failed int64
	for _, w := range waits {
		o, f := w()
		ok, failed = ok+o, failed+f
	}
	t.Logf("%d writes, %d failed across a 1.5 s postmaster pause with a reload 200 ms into it", ok, failed)
	if failed != 0 {
		t.Errorf("%d of %d writes failed; want 0", failed, ok+failed)
	}
	var one int
	if err := r.QueryRow(routerlib.Route(ctx, "paused"), "SELECT 1").Scan(&one); err != nil {
		t.Errorf("the reload did not take effect: %v", err)
	}
}

// backends returns the process IDs of the sessions named app on every node.
func backends(t *testing.T, topo *routertest.Topology, app string) []int {
	t.Helper()
	var pids []int
	for _, n := range topo.Nodes() {
		pids = append(pids, backendsOn(t, n, app)...)
	}
	return pids
}

// backendsOn returns the process IDs of the sessions named app on n.
func backendsOn(t *testing.T, n *routertest.Node, app string) []int {
	t.Helper()
	var pids []int
	err := n.QueryRow(context.Background(),
		"SELECT coalesce(array_agg(pid), '{}') FROM pg_stat_activity WHERE application_name = $1", app).Scan(&pids)
	if err != nil {
		t.Fatal(err)
	}
	return pids
}

// withApplicationName names the router's sessions, so that a test counts
// its own among those of other tests.
func withApplicationName(app string) routerlib.Option {
	return routerlib.WithPoolConfig(func(_ artifact.Node, cfg *pgxpool.Config) {
		cfg.ConnConfig.RuntimeParams["application_name"] = app
	})
}

// TestReloadKeepsConnections: a reload that changes only a route, a
// weight or a lag limit opens no new server connection (the pools and the
// monitor's connections stay); one that changes the pool size does; one
// that removes a node closes its sessions once the calls on it end.
func TestReloadKeepsConnections(t *testing.T) {
	topo := routertest.Shared(t)
	ctx := context.Background()
	const app = "routerlib-reload-keeps"
	// The default health settings: an ejection (a check slowed past a short
	// timeout on a loaded machine) closes connections, and that is not a
	// reload opening them.
	a := topo.Artifact()
	monitor := 1200 * time.Millisecond // a health interval and then some
	r, path := openRouter(t, a, routerlib.WithWatch(0), withApplicationName(app))
	use := func() {
		t.Helper()
		if _, err := r.Exec(ctx, "SELECT pg_advisory_unlock_all()"); err != nil {
			t.Fatal(err)
		}
		for range 4 { // round robin: each replica twice
			serverPort(t, ctx, r)
		}
	}
	use()
	before := backends(t, topo, app)
	if len(before) < 2*len(topo.Nodes()) { // a pool connection and the monitor's, on each node
		t.Fatalf("%d sessions before the reload, want at least %d", len(before), 2*len(topo.Nodes()))
	}
	changes := []struct {
		name   string
		change func(*artifact.Topology)
	}{
		{"route", func(a *artifact.Topology) {
			a.Routes = []artifact.Route{{Name: "reporting", Nodes: []string{topo.Standbys[1].Name}}}
		}},
		{"weight", func(a *artifact.Topology) { a.Nodes[1].Weight = 7 }},
		{"lag limit", func(a *artifact.Topology) { a.Nodes[2].MaxLag = "30s"; a.Nodes[1].MaxLagBytes = 1 << 30 }},
	}
	for _, c := range changes {
		c.change(&a)
		writeFile(t, path, a)
		if err := r.Reload(ctx); err != nil {
			t.Fatal(err)
		}
		time.Sleep(monitor) // the monitor checks the new topology
		use()
		after := backends(t, topo, app)
		if opened := newPIDs(before, after); len(opened) != 0 {
			t.Errorf("a reload that changed only a %s opened %d server connections (%d sessions before, %d after)", c.name, len(opened), len(before), len(after))
		}
	}
	var one int
	if err := r.QueryRow(routerlib.Route(ctx, "reporting"), "SELECT 1").Scan(&one); err != nil {
		t.Errorf("the route reload did not take effect: %v", err)
	}

	// The pool size is a connection setting: new pools, new sessions.
	a.Pool.MaxConns = 3
	writeFile(t, path, a)
	if err := r.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	use()
	kept := backends(t, topo, app)
	if opened := newPIDs(before, kept); len(opened) == 0 {
		t.Error("a reload that changed the pool size opened no connection: the count above proves nothing")
	}

	// A node removed from the file drains: a transaction open on it
	// carries on to its end, then its sessions close. The other nodes'
	// stay as they were.
	removed := topo.Standbys[1]
	tx, err := r.BeginTx(routerlib.Route(ctx, "reporting"), pgx.TxOptions{AccessMode: pgx.ReadOnly})
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	a.Nodes = a.Nodes[:2]
	a.Routes = nil
	writeFile(t, path, a)
	if err := r.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if p := serverPort(t, ctx, tx); p != removed.Port {
		t.Errorf("the transaction open across the reload ran on port %d, want the removed node's %d", p, removed.Port)
	}
	if len(backendsOn(t, removed, app)) == 0 {
		t.Error("the removed node's sessions closed under an open transaction")
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the removed node's sessions closed", func() bool {
		return len(backendsOn(t, removed, app)) == 0
	})
	use()
	stay := backendsOn(t, topo.Primary, app)
	stay = append(stay, backendsOn(t, topo.Standbys[0], app)...)
	if opened := newPIDs(kept, stay); len(opened) != 0 {
		t.Errorf("removing a node opened %d connections to the others", len(opened))
	}
}

func newPIDs(before, after []int) []int {
	var opened []int
	for _, p := range after {
		if !slices.Contains(before, p) {
			opened = append(opened, p)
		}
	}
	return opened
}

// TestCloseAfterReload: Close right after a reload, before the monitor
// runs again, leaves no session open on any node: neither the pools' nor
// the monitor's, of the old topology or the new one.
func TestCloseAfterReload(t *testing.T) {
	topo := routertest.Shared(t)
	ctx := context.Background()
	for _, c := range []struct {
		name   string
		change func(*artifact.Topology)
	}{
		{"connections kept", func(a *artifact.Topology) { a.ReadPolicy.Strategy = artifact.StrategyRandom }},
		{"connections replaced", func(a *artifact.Topology) { a.Pool.MaxConns = 5 }},
	} {
		t.Run(c.name, func(t *testing.T) {
			app := "routerlib-close-" + strings.ReplaceAll(c.name, " ", "-")
			a := topo.Artifact()
			a.Health.Interval = "10s" // the monitor does not run between the reload and Close
			path := filepath.Join(t.TempDir(), "router.json")
			writeFile(t, path, a)
			r, err := routerlib.Open(ctx, path, routerlib.WithWatch(0), withApplicationName(app))
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if _, err := r.Exec(ctx, "SELECT pg_advisory_unlock_all()"); err != nil {
				t.Fatal(err)
			}
			serverPort(t, ctx, r)
			c.change(&a)
			writeFile(t, path, a)
			if err := r.Reload(ctx); err != nil {
				t.Fatal(err)
			}
			serverPort(t, ctx, r)
			if n := len(backends(t, topo, app)); n == 0 {
				t.Fatal("no session open before Close: the count below proves nothing")
			}
			r.Close()
			// A backend exits once it reads the client's Terminate; give it
			// a moment, not a health interval.
			var left []int
			eventually(t, 5*time.Second, "every session closed", func() bool {
				left = backends(t, topo, app)
				return len(left) == 0
			})
		})
	}
}

// TestReloadDuringFreeze: a reload while a replica hangs (frozen, its
// monitor check in flight) neither waits for that check nor delays the
// replica's ejection: the reload changes a weight at once, and the replica
// is ejected within the documented bound of the freeze, with the default
// health settings (eject_after × interval + timeout = 4 s).
//
// The bound is exact, and this test sits close to it: the replicas are in
// rotation from Open's checks, the monitor's schedule goes on from them,
// and the freeze follows at once, so the first check that fails starts an
// interval after Open's, and the ejection comes eject_after - 1 intervals
// and a timeout later: the bound less the time from Open's checks to the
// freeze. So the ejection is timed when the router decides it (its log
// record), not when a 20 ms poll of Stat, late on a busy machine, sees it.
func TestReloadDuringFreeze(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(2))
	a := topo.Artifact()
	a.Health = artifact.Health{} // the defaults
	h := a.WithDefaults().Health
	interval, _ := h.Interval.Std()
	timeout, _ := h.Timeout.Std()
	bound := time.Duration(h.EjectAfter)*interval + timeout
	clock := &logClock{}
	r, path := openRouter(t, a, routerlib.WithWatch(0), routerlib.WithLogger(slog.New(clock)))
	victim := topo.Standbys[0]
	eventually(t, 10*time.Second, "the replicas in rotation", func() bool {
		return nodeStat(r, victim.Name).Readable && nodeStat(r, topo.Standbys[1].Name).Readable
	})
	if err := victim.Freeze(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = victim.Thaw() }()
	frozeAt := time.Now()
	time.Sleep(interval + interval/2) // the monitor's check of the victim is in flight
	a.Nodes[2].Weight = 7
	writeFile(t, path, a)
	start := time.Now()
	if err := r.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	t.Logf("Reload took %v, %v after the freeze", took, start.Sub(frozeAt))
	if took > timeout {
		t.Errorf("Reload took %v while a replica it keeps is frozen, want less than health.timeout (%v): it has no new node to check", took, timeout)
	}
	late := timerLateness()
	eventually(t, 3*bound, "ejection of the frozen replica", func() bool {
		return nodeStat(r, victim.Name).Ejected == routerlib.EjectUnreachable
	})
	seen := time.Since(frozeAt)
	lateness := late()
	// The router logs a change of rotation before Stat shows it: the
	// record is there. (It logged after, and a test that read the log as
	// soon as Stat showed the ejection found none when the monitor's
	// thread was preempted between the two: a clean-clone CI run, the
	// provider suite beside.)
	ejectedAt, ejected := clock.after("routerlib: replica out of rotation", victim.Name, frozeAt)
	if !ejected {
		t.Fatalf("Stat shows %s ejected, and no 'out of rotation' record follows the freeze (%s); its records: %q",
			victim.Name, frozeAt.Format("15:04:05.000"), clock.records(victim.Name))
	}
	if got := clock.rotation(victim.Name); got[len(got)-1] != "in rotation → unreachable" {
		t.Errorf("%s's rotation records: %q, want the last 'in rotation → unreachable'", victim.Name, got)
	}
	since := ejectedAt.Sub(frozeAt)
	// The failed check is for the log only: the router logs "does not
	// answer" once per change of state, so a check of the victim that was
	// late before the freeze (a busy machine) leaves none after it.
	failedAt, failed := clock.after("routerlib: node does not answer", victim.Name, frozeAt)
	firstFailed := "not logged after the freeze"
	if failed {
		firstFailed = failedAt.Sub(frozeAt).String() + " after the freeze"
	}
	t.Logf("frozen replica: first failed check %s, ejected %v after the freeze (bound %v; timers fired up to %v late), seen by Stat %v after it",
		firstFailed, since, bound, lateness, seen)
	// 250 ms, and how late the machine fired timers meanwhile for each of
	// the two the ejection waits on (the third interval's tick, then its
	// deadline): 4.58 s against 4.25 s under -race at load 22.
	if most := bound + 250*time.Millisecond + 2*lateness; since > most {
		t.Errorf("the frozen replica was ejected %v after the freeze (first failed check %s, want within interval + timeout = %v), want within eject_after × interval + timeout = %v across a reload (%v with the machine's delays)",
			since, firstFailed, interval+timeout, bound, most)
	}
}

// TestReloadTwiceKeepsOlderCallsServer: a call on a topology two reloads
// old still reaches a server that the topology after it shared and the
// latest drops: the server closes only once every topology that holds it
// has drained. Here the call waits for the only connection of a route's
// pool (max_conns 1, held by a transaction) while the route's node is kept
// by one reload and removed by the next.
func TestReloadTwiceKeepsOlderCallsServer(t *testing.T) {
	topo := routertest.Shared(t)
	ctx := context.Background()
	a := topo.Artifact()
	a.Pool.MaxConns = 1
	a.ReadPolicy.Fallback = artifact.FallbackError
	dropped := topo.Standbys[1]
	a.Routes = []artifact.Route{{Name: "reporting", Nodes: []string{dropped.Name}}}
	r, path := openRouter(t, a, routerlib.WithWatch(0))
	rctx := routerlib.Route(ctx, "reporting")
	tx, err := r.BeginTx(rctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	result := make(chan error, 1)
	go func() {
		var port int
		err := r.QueryRow(rctx, "SELECT inet_server_port()").Scan(&port)
		if err == nil && port != dropped.Port {
			err = fmt.Errorf("ran on port %d, want %d", port, dropped.Port)
		}
		result <- err
	}()
	time.Sleep(200 * time.Millisecond) // the read waits for the pool's only connection
	a.Nodes[0].Weight = 7              // the first reload keeps every server
	writeFile(t, path, a)
	if err := r.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	a.Nodes = slices.DeleteFunc(a.Nodes, func(n artifact.Node) bool { return n.Name == dropped.Name })
	a.Routes = nil
	writeFile(t, path, a)
	if err := r.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // the second reload's drainer runs
	select {
	case err := <-result:
		t.Fatalf("the read waiting on the dropped node ended before its connection was free: %v", err)
	default:
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-result:
		if err != nil {
			t.Errorf("the read on the topology two reloads old failed: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the read waiting on the dropped node did not end")
	}
	eventually(t, 5*time.Second, "the dropped node's sessions closed", func() bool {
		return len(backendsOn(t, dropped, "routerlib")) == 0
	})
}

// TestReloadDuringCapture: in read_your_writes mode a batch's LSN is read
// on the primary's pool when the batch is closed, after SendBatch returned;
// a reload that replaces every pool meanwhile does not close that pool
// first (the write succeeded, and its LSN is recorded).
func TestReloadDuringCapture(t *testing.T) {
	topo := routertest.Shared(t)
	ctx := context.Background()
	a := topo.Artifact()
	a.Consistency.Mode = artifact.ModeReadYourWrites
	r, path := openRouter(t, a, routerlib.WithWatch(0))
	if _, err := r.Exec(ctx, "CREATE TABLE IF NOT EXISTS reload_capture (id int)"); err != nil {
		t.Fatal(err)
	}
	s := &routerlib.Session{}
	sctx := routerlib.WithSession(ctx, s)
	b := &pgx.Batch{}
	b.Queue("INSERT INTO reload_capture VALUES (1)")
	b.Queue("INSERT INTO reload_capture VALUES (2)")
	br := r.SendBatch(sctx, b)
	a.Pool.MaxConns = 5 // a connection setting: every server is replaced
	writeFile(t, path, a)
	if err := r.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // the reload's drainer runs
	for range 2 {
		if _, err := br.Exec(); err != nil {
			t.Fatal(err)
		}
	}
	if err := br.Close(); err != nil {
		t.Errorf("closing a batch across a reload: %v", err)
	}
	if s.LSN() == 0 {
		t.Error("the batch's LSN was not recorded")
	}
}

// TestCloseDuringReload: Close ends a reload that is checking a new server
// which hangs (the reload's checks would take connect_timeout), and
// returns within health.timeout and a second; the reload fails with
// ErrClosed and publishes nothing.
func TestCloseDuringReload(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(1))
	a := topo.Artifact()
	a.Health = artifact.Health{} // the defaults: connect_timeout 2 s, timeout 1 s
	timeout, _ := a.WithDefaults().Health.Timeout.Std()
	r, path := openRouter(t, a, routerlib.WithWatch(0))
	victim := topo.Standbys[0]
	if err := victim.Freeze(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = victim.Thaw() }()
	a.Pool.MaxConns = 5 // every server is new, the frozen one's too
	writeFile(t, path, a)
	reloaded := make(chan error, 1)
	go func() { reloaded <- r.Reload(context.Background()) }()
	time.Sleep(300 * time.Millisecond) // the reload checks the new servers
	start := time.Now()
	r.Close()
	took := time.Since(start)
	t.Logf("Close took %v during a reload checking a frozen node", took)
	if limit := timeout + time.Second; took > limit {
		t.Errorf("Close took %v during a reload, want within health.timeout + 1s = %v", took, limit)
	}
	select {
	case err := <-reloaded:
		if !errors.Is(err, routerlib.ErrClosed) {
			t.Errorf("the reload Close ended returned %v, want ErrClosed", err)
		}
	case <-time.After(time.Second):
		t.Error("the reload did not return after Close")
	}
}
