package routerlib_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// writeLoad inserts the current phase through r until stop is closed and
// counts the writes that succeeded and failed.
func writeLoad(r *routerlib.Router, table string, phase *atomic.Int32, stop <-chan struct{}) (wait func() (ok, failed int64)) {
	var ok, failed atomic.Int64
	done := repeatUntil(stop, 1, func(int) {
		if _, err := r.Exec(context.Background(), "INSERT INTO "+table+" (phase) VALUES ($1)", phase.Load()); err != nil {
			failed.Add(1)
			time.Sleep(5 * time.Millisecond) // ErrNoPrimary fails at once
			return
		}
		ok.Add(1)
	})
	return func() (int64, int64) {
		done()
		return ok.Load(), failed.Load()
	}
}

// rowsFrom counts the rows of table on n written in phase or later.
func rowsFrom(t *testing.T, n *routertest.Node, table string, phase int) int {
	t.Helper()
	var c int
	if err := n.QueryRow(context.Background(), "SELECT count(*) FROM "+table+" WHERE phase >= $1", phase).Scan(&c); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestOldPrimaryComesBack: the primary stops, a standby is promoted, and
// the old primary starts again, unfenced, on its old timeline. A router
// running across it, the same router after two reloads, and a router
// opened afterwards from the same file (which still declares the old
// primary) all write to the promoted node: not one write lands on the old
// primary.
func TestOldPrimaryComesBack(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(1))
	ctx := context.Background()
	old, promoted := topo.Primary, topo.Standbys[0]
	a := fastHealth(topo.Artifact(), interval)
	r, path := openRouter(t, a, routerlib.WithWatch(0))
	if _, err := r.Exec(ctx, "CREATE TABLE sb_t (id serial, phase int)"); err != nil {
		t.Fatal(err)
	}
	var phase atomic.Int32
	stop := make(chan struct{})
	wait := writeLoad(r, "sb_t", &phase, stop)
	time.Sleep(2 * interval)

	if err := old.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	phase.Store(1) // from here on, a row on the old primary is a forked write
	if err := promoted.Promote(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "writes on the promoted node", func() bool {
		return nodeStat(r, promoted.Name).Writer
	})
	if err := old.Start(ctx); err != nil {
		t.Fatal(err)
	}
	phase.Store(2)
	eventually(t, 10*time.Second, "the old primary seen as such", func() bool {
		return nodeStat(r, old.Name).SplitBrain != ""
	})
	time.Sleep(3 * interval)

	// A reload that keeps every server, then one that gives every node
	// new pools (the old primary included).
	a.ReadPolicy.Strategy = artifact.StrategyRandom
	writeFile(t, path, a)
	if err := r.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * interval)
	a.Pool.MaxConns = 7
	writeFile(t, path, a)
	if err := r.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * interval)

	// A router opened now, from the file that still says the old primary
	// is the primary.
	fresh, _ := openRouter(t, a, routerlib.WithWatch(0))
	freshStop := make(chan struct{})
	freshWait := writeLoad(fresh, "sb_t", &phase, freshStop)
	time.Sleep(5 * interval)
	close(stop)
	close(freshStop)
	okRunning, failedRunning := wait()
	okFresh, failedFresh := freshWait()

	forked := rowsFrom(t, old, "sb_t", 1)
	onPromoted := rowsFrom(t, promoted, "sb_t", 2)
	t.Logf("running router: %d writes, %d failed (while no node was primary); fresh router: %d writes, %d failed; "+
		"%d writes on the old primary after it stopped, %d on the promoted node after the old one came back",
		okRunning, failedRunning, okFresh, failedFresh, forked, onPromoted)
	if forked != 0 {
		t.Errorf("%d writes landed on the old primary after the failover; want 0", forked)
	}
	if onPromoted == 0 || okFresh == 0 {
		t.Errorf("no writes reached the promoted node after the old primary came back (%d rows, %d by the fresh router)", onPromoted, okFresh)
	}
	for _, router := range []*routerlib.Router{r, fresh} {
		o, p := nodeStat(router, old.Name), nodeStat(router, promoted.Name)
		if o.Writer || !p.Writer || p.Timeline <= o.Timeline || !strings.Contains(o.SplitBrain, "old primary") {
			t.Errorf("Stat: old primary %+v; promoted %+v", o, p)
		}
	}
}

// TestOldPrimaryBackRightAfterPromotion: the old primary is back before
// the promoted node's first checkpoint, which PostgreSQL spreads over
// minutes when replay left buffers dirty. The checkpoint's timeline
// (pg_control_checkpoint) still says 1 on both nodes then; the router reads
// the timeline the promoted node writes on, so a router opened at that
// moment writes to the promoted node, not to the old primary.
func TestOldPrimaryBackRightAfterPromotion(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(1))
	ctx := context.Background()
	old, promoted := topo.Primary, topo.Standbys[0]
	if err := old.Exec(ctx, "CREATE TABLE dirty_t AS SELECT g, repeat('x', 200) AS pad FROM generate_series(1, 300000) g"); err != nil {
		t.Fatal(err)
	}
	lsn, err := topo.CurrentLSN(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := promoted.WaitReplayed(ctx, lsn); err != nil {
		t.Fatal(err)
	}
	if err := old.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := promoted.Promote(ctx); err != nil {
		t.Fatal(err)
	}
	if err := old.Start(ctx); err != nil {
		t.Fatal(err)
	}
	r := newRouter(t, steadyHealth(topo.Artifact(), interval))
	var checkpointTLI int
	if err := promoted.QueryRow(ctx, "SELECT timeline_id FROM pg_control_checkpoint()").Scan(&checkpointTLI); err != nil {
		t.Fatal(err)
	}
	if checkpointTLI != 1 {
		t.Fatalf("the promoted node's checkpoint is on timeline %d already: the test no longer opens the router before it", checkpointTLI)
	}
	o, p := nodeStat(r, old.Name), nodeStat(r, promoted.Name)
	if !p.Writer || o.Writer || o.Timeline != 1 || p.Timeline != 2 {
		t.Errorf("with the checkpoints of both nodes on timeline 1: old primary %+v; promoted %+v", o, p)
	}
	if port := serverPort(t, routerlib.Primary(ctx), r); port != promoted.Port {
		t.Errorf("writes go to port %d, want the promoted node's %d (the old primary is %d)", port, promoted.Port, old.Port)
	}
}

// TestSplitBrainSameTimeline: two standbys promoted from the same primary
// are on the same timeline; no node takes writes, the error and Stat name
// both, and an error-level line is logged.
func TestSplitBrainSameTimeline(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(2))
	ctx := context.Background()
	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelError}))
	r := newRouter(t, fastHealth(topo.Artifact(), interval), routerlib.WithLogger(logger))
	if _, err := r.Exec(ctx, "CREATE TABLE sb2_t (id int)"); err != nil {
		t.Fatal(err)
	}
	if err := topo.Primary.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	one, two := topo.Standbys[0], topo.Standbys[1]
	if err := one.Promote(ctx); err != nil {
		t.Fatal(err)
	}
	if err := two.Promote(ctx); err != nil {
		t.Fatal(err)
	}
	var err error
	eventually(t, 10*time.Second, "writes refused", func() bool {
		_, err = r.Exec(ctx, "INSERT INTO sb2_t VALUES (1)")
		return errors.Is(err, routerlib.ErrNoPrimary) && strings.Contains(err.Error(), "split brain")
	})
	if !strings.Contains(err.Error(), one.Name) || !strings.Contains(err.Error(), two.Name) {
		t.Errorf("the error does not name both nodes: %v", err)
	}
	// Held, not a passing state: the next checks keep refusing.
	time.Sleep(3 * interval)
	for range 20 {
		if _, err := r.Exec(ctx, "INSERT INTO sb2_t VALUES (2)"); !errors.Is(err, routerlib.ErrNoPrimary) {
			t.Fatalf("a write with two primaries on one timeline: %v, want ErrNoPrimary", err)
		}
	}
	for _, n := range []*routertest.Node{one, two} {
		s := nodeStat(r, n.Name)
		if s.Writer || !strings.Contains(s.SplitBrain, one.Name) || !strings.Contains(s.SplitBrain, two.Name) || s.Timeline != 2 {
			t.Errorf("Stat of %s: %+v", n.Name, s)
		}
	}
	if out := logs.String(); !strings.Contains(out, "level=ERROR") || !strings.Contains(out, "split brain") {
		t.Errorf("no error-level log line about the split brain; logged:\n%s", out)
	}
	t.Logf("refused with: %v", err)
}

// syncBuffer is a bytes.Buffer safe for the monitor and the test at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestStandbyVetoesOldPrimary: a failover (the primary stops, a standby is
// promoted, the other standby follows it), then the old primary starts
// again, unfenced, on its old timeline. A router opened while the promoted
// node is up writes to it; one opened while the promoted node hangs
// (frozen), or is down (stopped), cannot see it, and has no memory of it,
// but the standby that followed it has WAL of the promoted node's
// timeline: the old primary, on an earlier one, takes no writes, and the
// error and Stat name the standby; so for a user with pg_monitor, not only
// a superuser. Before the failover, the same check lets the primary with
// its standbys behind it take writes, and a user without pg_monitor (whose
// standbys show no timeline) is served as before.
func TestStandbyVetoesOldPrimary(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(2))
	ctx := context.Background()
	old, promoted, follower := topo.Primary, topo.Standbys[0], topo.Standbys[1]
	if err := old.Exec(ctx, "CREATE ROLE rs_monitor LOGIN IN ROLE pg_monitor; CREATE ROLE rs_plain LOGIN"); err != nil {
		t.Fatal(err)
	}
	// Each router here is judged on its first checks, made in New: one
	// slower than fastHealth's 400 ms on a busy machine left a standby
	// unchecked (two suites at once under -race).
	a := steadyHealth(topo.Artifact(), interval)
	as := func(user string) artifact.Topology {
		b := a
		b.Nodes = append([]artifact.Node(nil), a.Nodes...)
		for i := range b.Nodes {
			b.Nodes[i].User = user
		}
		return b
	}
	before := newRouter(t, a)
	if _, err := before.Exec(ctx, "CREATE TABLE veto_t (phase int)"); err != nil {
		t.Fatalf("a primary with its standbys behind it: %v", err)
	}
	for _, user := range []string{"rs_monitor", "rs_plain"} {
		r := newRouter(t, as(user))
		if err := r.Ping(ctx); err != nil {
			t.Errorf("as %s, a primary with its standbys behind it: %v", user, err)
		}
		for _, s := range r.Stat() {
			if !s.Healthy || s.Writer != (s.Name == old.Name) || s.Readable == (s.Name == old.Name) {
				t.Errorf("as %s: %+v", user, s)
			}
		}
		r.Close()
	}
	lsn, err := topo.CurrentLSN(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range topo.Standbys {
		if err := n.WaitReplayed(ctx, lsn); err != nil {
			t.Fatal(err)
		}
	}
	before.Close()

	failOver(t, old, promoted, follower)
	if err := old.Start(ctx); err != nil {
		t.Fatal(err)
	}
	up := newRouter(t, a)
	if _, err := up.Exec(ctx, "INSERT INTO veto_t VALUES (1)"); err != nil {
		t.Fatalf("with the promoted node up: %v", err)
	}
	if port := serverPort(t, routerlib.Primary(ctx), up); port != promoted.Port {
		t.Fatalf("with the promoted node up, writes go to port %d, want the promoted node's %d", port, promoted.Port)
	}
	up.Close()

	for _, c := range []struct {
		name string
		lose func() error
	}{
		{"frozen", promoted.Freeze},
		{"stopped", func() error { return promoted.Stop(ctx) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := c.lose(); err != nil {
				t.Fatal(err)
			}
			for _, r := range []*routerlib.Router{newRouter(t, a), newRouter(t, as("rs_monitor"))} {
				_, err := r.Exec(ctx, "INSERT INTO veto_t VALUES (2)")
				t.Logf("a write with the promoted node %s: %v", c.name, err)
				if !errors.Is(err, routerlib.ErrNoPrimary) || !strings.Contains(err.Error(), follower.Name) || !strings.Contains(err.Error(), old.Name) ||
					!strings.Contains(err.Error(), "00000002.history") {
					t.Errorf("a write with the promoted node %s: %v, want ErrNoPrimary naming %q, %q and the history file 00000002.history", c.name, err, old.Name, follower.Name)
				}
				if s := nodeStat(r, old.Name); s.Writer || !strings.Contains(s.SplitBrain, "old primary") {
					t.Errorf("the old primary: %+v, want no writes and why in SplitBrain", s)
				}
			}
			if n := rowsFrom(t, old, "veto_t", 1); n != 0 {
				t.Errorf("%d rows written on the old primary after the failover; want 0", n)
			}
		})
	}
}

// TestOldPrimaryBackWithTheFileUpdated: a failover (the primary stops, the
// standby is promoted), then the old primary starts again, unfenced, on
// timeline 1, while the router file is updated (as Terraform does) to
// declare the promoted node the primary and the old one a replica. The
// running Router (reloaded) and one opened from the new file write to the
// promoted node, and every message about the old primary says it is an old
// primary to fence: none says to declare it the primary, which would send
// the writes to a server the promotion forked from. With the promoted node
// frozen, writes are refused, not sent to the old primary, with the same
// advice. On the old code the old primary was taken for a copy of the
// cluster that "may be the primary" ("declare it as the primary in the
// router file"), in Stat, the error record and ErrNoPrimary.
func TestOldPrimaryBackWithTheFileUpdated(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(1))
	ctx := context.Background()
	old, promoted := topo.Primary, topo.Standbys[0]
	before := steadyHealth(topo.Artifact(), interval)
	after := declaringPrimary(before, promoted.Name)
	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelError}))
	r, path := openRouter(t, before, routerlib.WithWatch(0), routerlib.WithLogger(logger))
	if _, err := r.Exec(ctx, "CREATE TABLE ob_t (id serial, phase int)"); err != nil {
		t.Fatal(err)
	}
	waitReplayed(t, topo)
	if err := old.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := promoted.Promote(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "writes on the promoted node", func() bool {
		return nodeStat(r, promoted.Name).Writer
	})
	if err := old.Start(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the old primary seen out of recovery", func() bool {
		return nodeStat(r, old.Name).SplitBrain != ""
	})
	writeFile(t, path, after)
	if err := r.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	fresh := newRouter(t, after, routerlib.WithLogger(logger))
	wrong := "declare it as the primary"
	advice := func(what, msg string) {
		t.Helper()
		if !strings.Contains(msg, old.Name) || !strings.Contains(msg, "old primary") || strings.Contains(msg, wrong) {
			t.Errorf("%s: %q; want it to name %s as an old primary, and never to declare it the primary", what, msg, old.Name)
		}
	}
	routers := map[string]*routerlib.Router{"reloaded": r, "opened from the new file": fresh}
	for name, router := range routers {
		time.Sleep(2 * interval)
		for i := range 10 {
			var port int
			if err := router.QueryRow(ctx, "INSERT INTO ob_t (phase) VALUES (1) RETURNING inet_server_port()").Scan(&port); err != nil || port != promoted.Port {
				t.Fatalf("%s: write %d on port %d (%v), want the promoted node's %d", name, i, port, err, promoted.Port)
			}
		}
		s := nodeStat(router, old.Name)
		if s.Writer || s.Readable {
			t.Errorf("%s: the old primary %+v", name, s)
		}
		advice(name+": Stat", s.SplitBrain)
	}
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, "node="+old.Name) {
			advice("error record", line)
		}
	}

	// The promoted node hangs: nothing takes the writes, and the error
	// says why.
	if err := promoted.Freeze(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := promoted.Thaw(); err != nil {
			t.Error(err)
		}
	}()
	for name, router := range routers {
		var err error
		eventually(t, 20*time.Second, name+": writes refused with the promoted node frozen", func() bool {
			_, err = router.Exec(ctx, "INSERT INTO ob_t (phase) VALUES (2)")
			return errors.Is(err, routerlib.ErrNoPrimary)
		})
		advice(name+": ErrNoPrimary", err.Error())
	}
	// A Router started now has never seen the promoted node, and no
	// standby shows its timeline: the node on timeline 1 may be an old
	// primary, a copy or the primary under the wrong role. It takes no
	// writes, and the error says each, declaring it the primary only if
	// the declared one was never promoted.
	blind := newRouter(t, after)
	_, err := blind.Exec(ctx, "INSERT INTO ob_t (phase) VALUES (2)")
	if msg := fmt.Sprint(err); !errors.Is(err, routerlib.ErrNoPrimary) || !strings.Contains(msg, "an old primary that came back after") || !strings.Contains(msg, "Only if "+strconv.Quote(promoted.Name)+" has never been promoted") {
		t.Errorf("a Router started with the promoted node frozen: %v; want ErrNoPrimary that names %s an old primary, and the primary only if %s was never promoted", err, old.Name, promoted.Name)
	}
	routers["started with the promoted node frozen"] = blind
	if err := promoted.Thaw(); err != nil {
		t.Fatal(err)
	}
	for name, router := range routers {
		eventually(t, 20*time.Second, name+": writes on the promoted node again", func() bool {
			var port int
			err := router.QueryRow(ctx, "INSERT INTO ob_t (phase) VALUES (3) RETURNING inet_server_port()").Scan(&port)
			return err == nil && port == promoted.Port
		})
	}
	if forked := rowsFrom(t, old, "ob_t", 1); forked != 0 {
		t.Errorf("%d writes landed on the old primary; want 0", forked)
	}
}

// TestOldPrimaryBackAcrossReloadsWhileFrozen: after a failover, with the
// old primary back on timeline 1 and the promoted node hanging (frozen),
// reloads of the router file (one that still names the old primary the
// primary, with new pool settings; one updated to name the promoted node;
// the old one again) send no write to the old primary, and each refusal
// names it an old primary to fence. Once the promoted node answers, the
// writes go to it. On the old code the refusal said only "an old primary"
// after both names, without saying which node or what to do.
func TestOldPrimaryBackAcrossReloadsWhileFrozen(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(1))
	ctx := context.Background()
	old, promoted := topo.Primary, topo.Standbys[0]
	before := steadyHealth(topo.Artifact(), interval)
	after := declaringPrimary(before, promoted.Name)
	r, path := openRouter(t, before, routerlib.WithWatch(0))
	if _, err := r.Exec(ctx, "CREATE TABLE obf_t (id serial, phase int)"); err != nil {
		t.Fatal(err)
	}
	waitReplayed(t, topo)
	if err := old.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := promoted.Promote(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "writes on the promoted node", func() bool { return nodeStat(r, promoted.Name).Writer })
	if err := old.Start(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the old primary seen out of recovery", func() bool { return nodeStat(r, old.Name).SplitBrain != "" })
	if err := promoted.Freeze(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := promoted.Thaw(); err != nil {
			t.Error(err)
		}
	}()
	fix := strconv.Quote(old.Name) + " is an old primary; fence it"
	refused := func(step string) {
		t.Helper()
		var err error
		eventually(t, 20*time.Second, step+": writes refused", func() bool {
			_, err = r.Exec(ctx, "INSERT INTO obf_t (phase) VALUES (1)")
			return errors.Is(err, routerlib.ErrNoPrimary)
		})
		for i := range 10 {
			if _, err = r.Exec(ctx, "INSERT INTO obf_t (phase) VALUES (1)"); !errors.Is(err, routerlib.ErrNoPrimary) || !strings.Contains(err.Error(), fix) {
				t.Fatalf("%s: write %d: %v; want ErrNoPrimary saying %s", step, i, err, fix)
			}
			time.Sleep(interval / 2)
		}
		if s := nodeStat(r, old.Name); s.Writer || !strings.Contains(s.SplitBrain, fix) {
			t.Errorf("%s: the old primary %+v", step, s)
		}
	}
	refused("frozen")
	for _, step := range []struct {
		name string
		file artifact.Topology
		max  int32
	}{
		{"reloaded with new pools, the file naming the old primary", before, 7},
		{"reloaded, the file naming the promoted node", after, 9},
		{"reloaded, the file naming the old primary again", before, 0},
	} {
		step.file.Pool.MaxConns = step.max
		writeFile(t, path, step.file)
		if err := r.Reload(ctx); err != nil {
			t.Fatal(err)
		}
		refused(step.name)
	}
	if err := promoted.Thaw(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "writes on the promoted node again", func() bool {
		var port int
		err := r.QueryRow(ctx, "INSERT INTO obf_t (phase) VALUES (3) RETURNING inet_server_port()").Scan(&port)
		return err == nil && port == promoted.Port
	})
	if forked := rowsFrom(t, old, "obf_t", 1); forked != 0 {
		t.Errorf("%d writes landed on the old primary; want 0", forked)
	}
}

// declaringPrimary returns a copy of a that declares the node named primary
// the primary and every other node a replica: the router file Terraform
// writes after a failover.
func declaringPrimary(a artifact.Topology, primary string) artifact.Topology {
	a.Nodes = slices.Clone(a.Nodes)
	for i := range a.Nodes {
		a.Nodes[i].Role = artifact.RoleReplica
		if a.Nodes[i].Name == primary {
			a.Nodes[i].Role = artifact.RolePrimary
		}
	}
	return a
}
