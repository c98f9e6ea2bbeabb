package routerlib_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

const interval = 200 * time.Millisecond

// readLoad runs readers through r until stop is closed and counts failed
// reads.
func readLoad(t *testing.T, r *routerlib.Router, readers int, stop <-chan struct{}) (wait func() (reads, failed int64)) {
	w := readLoadWith(r, loadOpts{readers: readers}, stop)
	return func() (int64, int64) {
		l := w()
		if l.firstErr != nil {
			t.Logf("first failed read: %v", l.firstErr)
		}
		return l.reads, l.failed
	}
}

// loadOpts shapes readLoadWith's readers.
type loadOpts struct {
	readers   int
	timeout   time.Duration // each read's deadline; none when 0
	slowAfter time.Duration // a read that takes longer counts as slow; none when 0
}

// load is what readers under load saw.
type load struct {
	reads, failed, slow int64
	slowest             time.Duration
	firstErr            error // the first failed read's error, nil if none
}

// readLoadWith runs o.readers readers, each reading (SELECT
// inet_server_port()) through r one read after another until stop is
// closed; wait waits for them and returns what they saw.
func readLoadWith(r *routerlib.Router, o loadOpts, stop <-chan struct{}) (wait func() load) {
	var reads, failed, slow, slowest atomic.Int64
	var firstErr atomic.Pointer[error]
	done := repeatUntil(stop, o.readers, func(int) {
		ctx, cancel := context.Background(), context.CancelFunc(func() {})
		if o.timeout > 0 {
			ctx, cancel = context.WithTimeout(ctx, o.timeout)
		}
		start := time.Now()
		var port int
		err := r.QueryRow(ctx, "SELECT inet_server_port()").Scan(&port)
		took := time.Since(start)
		cancel()
		reads.Add(1)
		if err != nil {
			failed.Add(1)
			firstErr.CompareAndSwap(nil, &err)
		}
		if o.slowAfter > 0 && took > o.slowAfter {
			slow.Add(1)
		}
		for cur := slowest.Load(); int64(took) > cur && !slowest.CompareAndSwap(cur, int64(took)); cur = slowest.Load() {
		}
	})
	return func() load {
		done()
		l := load{reads: reads.Load(), failed: failed.Load(), slow: slow.Load(), slowest: time.Duration(slowest.Load())}
		if e := firstErr.Load(); e != nil {
			l.firstErr = *e
		}
		return l
	}
}

// watchStat polls r's Stat every 5 ms until the stop it returns is called;
// stop returns the first node state for which wrong held, nil if none: a
// node that left rotation for a moment, which a check after the fact
// would miss.
func watchStat(r *routerlib.Router, wrong func(routerlib.NodeStat) bool) (stop func() *routerlib.NodeStat) {
	var first atomic.Pointer[routerlib.NodeStat]
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
			}
			for _, s := range r.Stat() {
				if wrong(s) {
					first.CompareAndSwap(nil, &s)
				}
			}
		}
	})
	return func() *routerlib.NodeStat {
		close(done)
		wg.Wait()
		return first.Load()
	}
}

// TestStandbyStoppedUnderLoad stops a standby while readers hammer the
// router: no read fails, the standby is ejected within 2 health intervals,
// and it rejoins after it restarts.
func TestStandbyStoppedUnderLoad(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(2))
	ctx := context.Background()
	// A stopped standby refuses: the read that meets it takes it out at
	// once whatever eject_after, and the other nodes must stay in.
	r := newRouter(t, steadyHealth(topo.Artifact(), interval))
	stop := make(chan struct{})
	wait := readLoad(t, r, 4, stop)
	time.Sleep(300 * time.Millisecond)

	victim := topo.Standbys[0]
	if err := victim.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	took := eventually(t, 5*time.Second, "ejection", func() bool { return !nodeStat(r, victim.Name).Readable })
	if took > 2*interval {
		t.Errorf("ejected %v after the standby stopped, want within 2 health intervals (%v)", took, 2*interval)
	}
	time.Sleep(3 * interval) // keep reading with the standby down
	if s := nodeStat(r, victim.Name); s.Ejected != routerlib.EjectUnreachable {
		t.Errorf("ejected for %q, want unreachable", s.Ejected)
	}

	if err := victim.Start(ctx); err != nil {
		t.Fatal(err)
	}
	took = eventually(t, 10*time.Second, "readmission", func() bool { return nodeStat(r, victim.Name).Readable })
	t.Logf("readmitted %v after restart", took)
	before := nodeStat(r, victim.Name).Reads
	time.Sleep(3 * interval)
	close(stop)
	reads, failed := wait()
	if failed != 0 {
		t.Errorf("%d of %d reads failed while a standby stopped; want 0", failed, reads)
	}
	if after := nodeStat(r, victim.Name).Reads; after == before {
		t.Errorf("the restarted standby served no reads after readmission")
	}
	t.Logf("%d reads, %d failed", reads, failed)
}

// TestReplicaDownAtStart: a replica that is down when the router starts
// joins as soon as it comes up (GORM dbresolver #6 never uses it again).
func TestReplicaDownAtStart(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(2))
	ctx := context.Background()
	late := topo.Standbys[1]
	if err := late.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	r := newRouter(t, steadyHealth(topo.Artifact(), interval), routerlib.WithTracer(rec))
	if s := nodeStat(r, late.Name); s.Readable || s.Ejected != routerlib.EjectUnreachable {
		t.Fatalf("a stopped replica at start: readable=%v ejected=%q", s.Readable, s.Ejected)
	}
	for range 6 {
		if p := serverPort(t, ctx, r); p != topo.Standbys[0].Port {
			t.Fatalf("read answered by %d, want the running replica %d", p, topo.Standbys[0].Port)
		}
	}
	if err := late.Start(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "late replica joins", func() bool { return nodeStat(r, late.Name).Readable })
	seen := false
	for range 6 {
		seen = seen || serverPort(t, ctx, r) == late.Port
	}
	if !seen {
		t.Error("the replica that came up late served no reads")
	}
}

// unreachableReplicas returns the shared topology's file with its replicas
// pointing at ports nothing listens on (one each: a file may not list one
// server twice).
func unreachableReplicas(topo *routertest.Topology, fallback string) artifact.Topology {
	a := steadyHealth(topo.Artifact(), interval) // the primary must keep the writes
	for i := range a.Nodes {
		if a.Nodes[i].Role == artifact.RoleReplica {
			a.Nodes[i].Port = i // nothing listens on ports 1, 2, …
		}
	}
	a.ReadPolicy.Fallback = fallback
	return a
}

// TestAllReplicasOut: with every replica out, read_policy.fallback sends
// reads to the primary or fails them with ErrNoReplica.
func TestAllReplicasOut(t *testing.T) {
	topo := routertest.Shared(t)
	ctx := context.Background()
	t.Run("fallback primary", func(t *testing.T) {
		rec := &recorder{}
		r := newRouter(t, unreachableReplicas(topo, artifact.FallbackPrimary), routerlib.WithTracer(rec))
		if p := serverPort(t, ctx, r); p != topo.Primary.Port {
			t.Errorf("read answered by %d, want the primary", p)
		}
		if got := rec.last(t); got.Reason != routerlib.ReasonFallback {
			t.Errorf("reason %s, want fallback", got.Reason)
		}
	})
	t.Run("fallback error", func(t *testing.T) {
		r := newRouter(t, unreachableReplicas(topo, artifact.FallbackError))
		var one int
		err := r.QueryRow(ctx, "SELECT 1").Scan(&one)
		if !errors.Is(err, routerlib.ErrNoReplica) {
			t.Fatalf("read with no replica: %v, want ErrNoReplica", err)
		}
		if _, err := r.Exec(ctx, "SELECT pg_advisory_unlock_all()"); err != nil {
			t.Errorf("a write with no replica failed: %v", err)
		}
	})
}

// TestFailover stops the primary: writes fail with ErrNoPrimary, fast once
// the restart window is over (see TestWritesAfterAFastPrimaryRestart), and
// never reach a replica; after a standby is promoted, writes succeed on it
// within 3 health intervals, without a restart.
func TestFailover(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(2))
	ctx := context.Background()
	rec := &recorder{}
	// The stopped primary refuses: the write that meets it, and the next
	// check, take the writes off it whatever eject_after.
	r := newRouter(t, steadyHealth(topo.Artifact(), interval), routerlib.WithTracer(rec))
	if _, err := r.Exec(ctx, "CREATE TABLE failover_t (id int)"); err != nil {
		t.Fatal(err)
	}
	if err := topo.Primary.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, 3*interval, "ErrNoPrimary", func() bool {
		_, err := r.Exec(ctx, "INSERT INTO failover_t VALUES (1)")
		return errors.Is(err, routerlib.ErrNoPrimary)
	})
	// For eject_after × interval + timeout after the checks took the
	// writes off the primary, a write waits for a check (at most
	// health.timeout) in case it restarted fast; past that, it fails
	// at once.
	// At once: 50 ms, and however late the machine ran this process
	// meanwhile (timerLateness: with another suite beside, a call that
	// waits for nothing can take longer than 50 ms); a write that waited
	// for a check takes health.timeout (1 s).
	time.Sleep(3*interval + time.Second)
	late := timerLateness()
	start := time.Now()
	_, err := r.Exec(ctx, "INSERT INTO failover_t VALUES (1)")
	failedAfter, lateBy := time.Since(start), late()
	t.Logf("write with no primary: %v after %v (timers late by up to %v)", err, failedAfter, lateBy)
	if !errors.Is(err, routerlib.ErrNoPrimary) || failedAfter > 50*time.Millisecond+lateBy {
		t.Errorf("write with no primary: %v after %v; want ErrNoPrimary at once (within 50 ms, and %v the timers were late)", err, failedAfter, lateBy)
	}
	if !strings.Contains(err.Error(), "primary") {
		t.Errorf("error does not name the primary: %v", err)
	}
	for _, d := range rec.decisions {
		if d.Reason == routerlib.ReasonWrite && d.Node != "primary" {
			t.Fatalf("a write was routed to %s before promotion", d.Node)
		}
	}

	promoted := topo.Standbys[0]
	if err := promoted.Promote(ctx); err != nil {
		t.Fatal(err)
	}
	took := eventually(t, 10*time.Second, "writes after promotion", func() bool {
		_, err := r.Exec(ctx, "INSERT INTO failover_t VALUES (2)")
		return err == nil
	})
	t.Logf("writes resumed %v after promotion", took)
	if took > 3*interval {
		t.Errorf("writes resumed %v after promotion, want within 3 health intervals (%v)", took, 3*interval)
	}
	if p := serverPort(t, routerlib.Primary(ctx), r); p != promoted.Port {
		t.Errorf("writes go to port %d, want the promoted %d", p, promoted.Port)
	}
	if s := nodeStat(r, promoted.Name); !s.Writer || s.ObservedRole != "primary" {
		t.Errorf("Stat of the promoted node: %+v", s)
	}
}

// TestPrimaryDownAtStart: an unreachable primary does not fail New; writes
// fail fast with ErrNoPrimary, reads keep working on the replicas, and
// writes start once the primary is up.
func TestPrimaryDownAtStart(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(1))
	ctx := context.Background()
	if err := topo.Primary.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	r := newRouter(t, steadyHealth(topo.Artifact(), interval))
	if _, err := r.Exec(ctx, "CREATE TABLE down_t (id int)"); !errors.Is(err, routerlib.ErrNoPrimary) {
		t.Fatalf("write with the primary down at start: %v, want ErrNoPrimary", err)
	}
	if p := serverPort(t, ctx, r); p != topo.Standbys[0].Port {
		t.Errorf("read answered by %d, want the replica", p)
	}
	if err := topo.Primary.Start(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "writes once the primary is up", func() bool {
		_, err := r.Exec(ctx, "CREATE TABLE IF NOT EXISTS down_t (id int)")
		return err == nil
	})
}

// TestRotationRecords: the router logs each change of a replica's reason
// for being out of read rotation, not only its leaving and joining, so an
// operator follows it. A standby that lags (replay paused), then stops
// answering (frozen), answers again still lagging, catches up, and waits
// for readmit_after good checks logs each step in order; each record
// names what the node was before, and Stat gives the last record's
// reason at every step. (A log of flips alone showed one "out of
// rotation: lagging bytes" and then "in rotation".)
func TestRotationRecords(t *testing.T) {
	topo := routertest.Shared(t)
	ctx := context.Background()
	victim := topo.Standbys[0]
	a := steadyHealth(topo.Artifact(), interval)
	a.Health.ReadmitAfter = 3
	for i := range a.Nodes {
		if a.Nodes[i].Name == victim.Name {
			a.Nodes[i].MaxLagBytes = 64 * 1024
		}
	}
	clock := &logClock{}
	order := &statAtRecord{logClock: clock}
	r := newRouter(t, a, routerlib.WithLogger(slog.New(order)))
	order.r.Store(r)
	if _, err := r.Exec(ctx, "CREATE TABLE IF NOT EXISTS rotation_records (v text)"); err != nil {
		t.Fatal(err)
	}
	// step waits for Stat to give the victim reason, and checks that the
	// last record says so: the record comes before the change in Stat.
	step := func(reason routerlib.EjectReason, what string) {
		t.Helper()
		eventually(t, 10*time.Second, what, func() bool { return nodeStat(r, victim.Name).Ejected == reason })
		got := clock.rotation(victim.Name)
		want := "in rotation"
		if reason != routerlib.EjectNone {
			want = reason.String()
		}
		if len(got) == 0 || !strings.HasSuffix(got[len(got)-1], "→ "+want) {
			t.Fatalf("Stat gives %s %q (%s), and its last rotation record is not: %q", victim.Name, want, what, got)
		}
	}
	step(routerlib.EjectNone, "the standby in rotation")

	if err := victim.PauseReplay(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = victim.ResumeReplay(context.Background()) })
	if _, err := r.Exec(ctx, "INSERT INTO rotation_records SELECT repeat('x', 100) FROM generate_series(1, 5000)"); err != nil {
		t.Fatal(err)
	}
	step(routerlib.EjectLagBytes, "ejection for lag")

	if err := victim.Freeze(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = victim.Thaw() })
	step(routerlib.EjectUnreachable, "the lagging standby frozen")
	if err := victim.Thaw(); err != nil {
		t.Fatal(err)
	}
	step(routerlib.EjectLagBytes, "the standby answering again, still lagging")

	if err := victim.ResumeReplay(ctx); err != nil {
		t.Fatal(err)
	}
	step(routerlib.EjectReadmitting, "the standby caught up, readmitting")
	step(routerlib.EjectNone, "the standby back in rotation")

	// Every change has its record: each names as what it was the reason
	// of the record before (a change not logged would break the chain),
	// and the steps above come in order. A check that a busy machine
	// answers late while the node is out may add an unreachable step,
	// recorded as any other.
	got := clock.rotation(victim.Name)
	t.Logf("%s's rotation records: %q", victim.Name, got)
	for i := 1; i < len(got); i++ {
		was, _, _ := strings.Cut(got[i], " → ")
		if _, prev, _ := strings.Cut(got[i-1], " → "); was != prev {
			t.Errorf("record %d says %s was %q, and the record before left it %q: a change was not logged: %q", i, victim.Name, was, prev, got)
		}
	}
	if early := order.early(); len(early) > 0 {
		t.Errorf("Stat showed these changes before their records were written: %q", early)
	}
	rest := got
	for _, s := range []string{"lagging bytes", "unreachable", "lagging bytes", "readmitting", "in rotation"} {
		i := slices.IndexFunc(rest, func(rec string) bool { return strings.HasSuffix(rec, "→ "+s) })
		if i < 0 {
			t.Fatalf("no record of %q in order among %q", s, got)
		}
		rest = rest[i+1:]
	}
}

// statAtRecord is a logClock that notes each rotation record written when
// Stat already showed its change: one that a reader of Stat would look for
// in the log and, the writer's thread preempted between the two, not find.
type statAtRecord struct {
	*logClock
	r    atomic.Pointer[routerlib.Router] // set once New returned
	mu   sync.Mutex
	seen []string
}

func (h *statAtRecord) Handle(ctx context.Context, rec slog.Record) error {
	if r := h.r.Load(); r != nil && (rec.Message == "routerlib: replica out of rotation" || rec.Message == "routerlib: replica in rotation") {
		node, reason, _ := rotationAttrs(rec)
		if s := nodeStat(r, node); s.Ejected.String() == reason {
			h.mu.Lock()
			h.seen = append(h.seen, node+": "+rec.Message+" "+reason)
			h.mu.Unlock()
		}
	}
	return h.logClock.Handle(ctx, rec)
}

func (h *statAtRecord) early() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.seen)
}

// TestOldTimelineOutWhenWritesMove: a standby whose last check shows it
// on a timeline older than the node that takes the writes leaves read
// rotation when the writes move, not at its own next check. Here the
// primary dies with WAL only one standby ("left") replayed, another is
// promoted, and left's checks land before the promoted node's at each tick
// (the promoted node answers through a 300 ms proxy): before, for up to an
// interval after the writes moved, left served reads, and a
// read-your-writes session's write on the new primary was missed there
// (left's replay position, on the old timeline, is past it). A standby
// that follows the promoted node (cascading from it before) stays in
// rotation, or comes back at once, without readmit_after checks.
func TestOldTimelineOutWhenWritesMove(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(3))
	ctx := context.Background()
	promoted, left, follower := topo.Standbys[0], topo.Standbys[1], topo.Standbys[2]
	proxy := newDelayProxy(t, fmt.Sprintf("127.0.0.1:%d", promoted.Port))
	a := withMode(topo.Artifact(), artifact.ModeReadYourWrites)
	a.Consistency.WaitTimeout = "0s"
	// A long interval: the gap, if any, lasts until left's next check; and
	// a follower held back for readmit_after checks would be out 6 s.
	const interval = 3 * time.Second
	a.Health = artifact.Health{Interval: artifact.Duration(interval.String()), Timeout: "1s", EjectAfter: 3, ReadmitAfter: 3}
	for i := range a.Nodes {
		if a.Nodes[i].Name == promoted.Name {
			a.Nodes[i].Port = proxy.port()
		}
	}
	r := newRouter(t, a)
	if _, err := r.Exec(ctx, "CREATE TABLE moved_t (id serial, phase text)"); err != nil {
		t.Fatal(err)
	}
	waitReplayed(t, topo)

	// The follower streams from the standby to be promoted, which stops
	// receiving WAL: what the primary writes now, only left has.
	if err := follower.Follow(ctx, promoted); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the standbys in rotation", func() bool {
		return nodeStat(r, promoted.Name).Readable && nodeStat(r, left.Name).Readable && nodeStat(r, follower.Name).Readable
	})
	forkWAL(t, topo, "moved_t", left, promoted)
	proxy.delay.Store(int64(300 * time.Millisecond))
	if err := promoted.Promote(ctx); err != nil {
		t.Fatal(err)
	}

	// The moment Stat shows the writes moved, left is out, and a
	// session's read after its write does not go there.
	eventually(t, 5*interval, "writes on the promoted node", func() bool {
		for _, s := range r.Stat() {
			if s.Name == promoted.Name && s.Writer {
				return true
			}
		}
		return false
	})
	moved := time.Now()
	if s := nodeStat(r, left.Name); s.Readable {
		t.Errorf("%s, whose last check shows the old timeline, is in rotation as the writes move to %s: %+v", left.Name, promoted.Name, s)
	}
	sctx := routerlib.WithSession(ctx, &routerlib.Session{})
	if _, err := r.Exec(sctx, "INSERT INTO moved_t (phase) VALUES ('mine')"); err != nil {
		t.Fatal(err)
	}
	var mine, port int
	if err := r.QueryRow(sctx, "SELECT count(*) FILTER (WHERE phase = 'mine'), inet_server_port() FROM moved_t").Scan(&mine, &port); err != nil {
		t.Fatal(err)
	}
	if mine != 1 {
		t.Errorf("the session's read after its write on the new primary saw %d rows of it, on port %d (%s is on %d)", mine, port, left.Name, left.Port)
	}
	back := eventually(t, 5*interval, "the follower in rotation", func() bool { return nodeStat(r, follower.Name).Readable })
	t.Logf("the follower in rotation %v after the writes moved", back)
	if back >= interval {
		t.Errorf("the follower, on the new primary's timeline, was back in rotation %v after the writes moved, want within a check (not readmit_after intervals: %v)", back, interval)
	}
	time.Sleep(time.Until(moved.Add(interval + interval/2))) // every node checked since
	if s := nodeStat(r, left.Name); s.Readable || s.Ejected != routerlib.EjectOldTimeline {
		t.Errorf("%s after the writes moved: %+v, want out of rotation on an old timeline", left.Name, s)
	}
}

// TestNewUsesALateFirstAnswer: on a busy machine New's first check of a
// node answers after health.timeout (here each read on the first
// connection to each node, the monitor's, waits 400 ms, the pools' later
// ones do not). New uses that late but real answer: the primary takes
// writes and the replica reads as soon as New returns. Before, the setup
// query ran under health.timeout too, the late answer was a failed check,
// and the first calls failed with ErrNoPrimary and ErrNoReplica until the
// monitor checked again an interval later.
func TestNewUsesALateFirstAnswer(t *testing.T) {
	topo := routertest.Shared(t)
	a := topo.Artifact()
	a.Health = artifact.Health{Interval: "2s", Timeout: "300ms", ConnectTimeout: "2s", EjectAfter: 3, ReadmitAfter: 1}
	a.ReadPolicy.Fallback = artifact.FallbackError
	var mu sync.Mutex
	dialed := map[string]bool{}
	var delay atomic.Int64
	delay.Store(int64(400 * time.Millisecond))
	start := time.Now()
	r := newRouter(t, a, routerlib.WithPoolConfig(func(n artifact.Node, cfg *pgxpool.Config) {
		dial := cfg.ConnConfig.DialFunc
		cfg.ConnConfig.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dial(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			mu.Lock()
			first := !dialed[n.Name]
			dialed[n.Name] = true
			mu.Unlock()
			if first {
				return slowConn{Conn: c, delay: &delay}, nil
			}
			return c, nil
		}
	}))
	t.Logf("New returned after %v", time.Since(start))
	for _, s := range r.Stat() {
		if s.LastError != "" || (s.DeclaredRole == "primary") != s.Writer || (s.DeclaredRole == "replica") != s.Readable {
			t.Errorf("right after New: %+v; want the primary taking writes, each replica in rotation", s)
		}
	}
	ctx := context.Background()
	if _, err := r.Exec(ctx, "SELECT pg_catalog.txid_current()"); err != nil {
		t.Errorf("a write right after New: %v", err)
	}
	if _, err := r.Exec(ctx, "SELECT 1"); err != nil {
		t.Errorf("a read right after New: %v", err)
	}
}

// slowConn delays each read by delay (nanoseconds), as a machine starved
// of CPU sees its answers; a test changes the delay while it runs. reads,
// if set, counts the reads that returned bytes.
type slowConn struct {
	net.Conn
	delay *atomic.Int64
	reads *atomic.Int64
}

func (c slowConn) Read(b []byte) (int, error) {
	time.Sleep(time.Duration(c.delay.Load()))
	n, err := c.Conn.Read(b)
	if n > 0 && c.reads != nil {
		c.reads.Add(1)
	}
	return n, err
}
