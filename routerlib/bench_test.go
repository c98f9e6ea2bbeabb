package routerlib_test

import (
	"context"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgreplication/terraform-provider-pgreplication/internal/cputime"
	"github.com/pgreplication/terraform-provider-pgreplication/internal/wirefloor"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// BenchmarkRouteDecision measures the hot path: a cached classification and
// choosing a replica by round robin. Target: ≤100 ns/op, 0 allocs/op.
func BenchmarkRouteDecision(b *testing.B) {
	topo := routertest.Shared(b)
	r := newRouter(b, topo.Artifact())
	ctx := context.Background()
	const sql = "SELECT title, author FROM books WHERE author = $1 ORDER BY title"
	if _, err := r.ChooseForTest(ctx, sql); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cpu0, ok := cputime.Thread()
	for b.Loop() {
		if _, err := r.ChooseForTest(ctx, sql); err != nil {
			b.Fatal(err)
		}
	}
	if cpu1, ok1 := cputime.Thread(); ok && ok1 {
		// The CPU this goroutine's thread spent per decision: what the
		// decision costs when the machine is shared.
		b.ReportMetric(float64(cpu1-cpu0)/float64(b.N), "cpu-ns/op")
	}
}

// BenchmarkRouteDecisionParallel is what every read does to the Router's
// shared state (entering the topology, choosing a replica by round robin,
// counting the read, leaving) from parallel goroutines: run it with -cpu 2
// or more, where memory that every read writes moves from core to core.
func BenchmarkRouteDecisionParallel(b *testing.B) {
	topo := routertest.Shared(b)
	r := newRouter(b, topo.Artifact())
	ctx := context.Background()
	const sql = "SELECT title, author FROM books WHERE author = $1 ORDER BY title"
	if _, err := r.ReadForTest(ctx, sql); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	cpu0, ok := cputime.Process()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := r.ReadForTest(ctx, sql); err != nil {
				b.Error(err)
				return
			}
		}
	})
	if cpu1, ok1 := cputime.Process(); ok && ok1 {
		// The CPU all cores spent per read: what moving the shared
		// state's cache lines from core to core costs shows here.
		b.ReportMetric(float64(cpu1-cpu0)/float64(b.N), "cpu-ns/op")
	}
}

// interleaved alternates base and subject in one loop, so that load from
// other processes hits both alike, and reports each one's median latency
// and their ratio (subject/base), and the process CPU time each one's
// calls took on average, with their ratio (cpu-ratio): what a call costs
// the client, which other processes' load does not inflate as it does
// latency.
//
// Each goes first in every other pair. Whichever call runs second meets
// the server still finishing the first (a backend goes on after its
// ReadyForQuery: statistics, then back to its read), on a machine of two
// cores one of the two: measured (RYWWrite/vs-wire, the machine otherwise
// idle, eight runs), the same call ran 3–18% slower second than first,
// median 9% (order-bias: median latency of base when second / when
// first). A fixed order charged that to the subject.
func interleaved(b *testing.B, baseName, subjectName string, base, subject func(i int) error) {
	interleave(b, false, baseName, subjectName, base, subject)
}

// interleavedThread is interleaved on a locked thread, and reports too the
// CPU time of that thread per call (thread-cpu-ratio): the calls' own work,
// without the collector's and other goroutines', which the process's time
// mixes in, whichever call they ran under. Locking the thread adds the same
// wake-up to every call, so its latency ratio is not interleaved's.
func interleavedThread(b *testing.B, baseName, subjectName string, base, subject func(i int) error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	interleave(b, true, baseName, subjectName, base, subject)
}

// A timing is one call's latency and the process's and the thread's CPU
// time over it.
type timing struct {
	d         time.Duration
	cpu, tcpu int64
}

func interleave(b *testing.B, thread bool, baseName, subjectName string, base, subject func(i int) error) {
	var tb, ts []time.Duration
	var baseFirst, baseSecond []time.Duration
	var cb, cs, hb, hs int64 // process and thread CPU time of base and subject
	_, cpuOK := cputime.Process()
	_, threadOK := cputime.Thread()
	threadOK = threadOK && thread
	call := func(f func(int) error, i int) timing {
		c0, _ := cputime.Process()
		var h0, h1 int64
		if threadOK {
			h0, _ = cputime.Thread()
		}
		t0 := time.Now()
		if err := f(i); err != nil {
			b.Fatal(err)
		}
		d := time.Since(t0)
		c1, _ := cputime.Process()
		if threadOK {
			h1, _ = cputime.Thread()
		}
		return timing{d, c1 - c0, h1 - h0}
	}
	for i := 0; b.Loop(); i++ {
		var x, y timing
		if i%2 == 0 {
			x = call(base, i)
			y = call(subject, i)
			baseFirst = append(baseFirst, x.d)
		} else {
			y = call(subject, i)
			x = call(base, i)
			baseSecond = append(baseSecond, x.d)
		}
		tb, ts = append(tb, x.d), append(ts, y.d)
		cb, cs = cb+x.cpu, cs+y.cpu
		hb, hs = hb+x.tcpu, hs+y.tcpu
	}
	median := func(d []time.Duration) time.Duration {
		slices.Sort(d)
		return d[len(d)/2]
	}
	mb, ms := median(tb), median(ts)
	b.ReportMetric(float64(mb.Nanoseconds()), baseName+"-median-ns")
	b.ReportMetric(float64(ms.Nanoseconds()), subjectName+"-median-ns")
	b.ReportMetric(float64(ms)/float64(mb), "ratio")
	if len(baseFirst) > 0 && len(baseSecond) > 0 {
		b.ReportMetric(float64(median(baseSecond))/float64(median(baseFirst)), "order-bias")
	}
	n := float64(len(tb))
	if cpuOK && n > 0 && cb > 0 {
		b.ReportMetric(float64(cb)/n, baseName+"-cpu-ns")
		b.ReportMetric(float64(cs)/n, subjectName+"-cpu-ns")
		b.ReportMetric(float64(cs)/float64(cb), "cpu-ratio")
	}
	if threadOK && n > 0 && hb > 0 {
		b.ReportMetric(float64(hb)/n, baseName+"-thread-cpu-ns")
		b.ReportMetric(float64(hs)/n, subjectName+"-thread-cpu-ns")
		b.ReportMetric(float64(hs)/float64(hb), "thread-cpu-ratio")
	}
}

// BenchmarkQueryRow_RouterVsPool runs the same QueryRow on the same replica
// through a pgxpool.Pool and through a Router, side by side. Target: the
// router keeps at least 0.95 of the pool's throughput.
func BenchmarkQueryRow_RouterVsPool(b *testing.B) {
	topo := routertest.Shared(b)
	ctx := context.Background()
	a := topo.Artifact()
	a.Nodes = a.Nodes[:2] // the primary and replica-1: every read goes to replica-1
	replica := topo.Standbys[0]
	pool, err := pgxpool.New(ctx, replica.DSN())
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()
	r := newRouter(b, a)
	const sql = "SELECT $1::int + 1"
	run := func(b *testing.B, q interface {
		QueryRow(context.Context, string, ...any) interface{ Scan(...any) error }
	}) {
		b.ReportAllocs()
		var n int
		for b.Loop() {
			if err := q.QueryRow(ctx, sql, 41).Scan(&n); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("pool", func(b *testing.B) { run(b, poolRow{pool}) })
	b.Run("router", func(b *testing.B) { run(b, routerRow{r}) })
	var n int
	poolCall := func(int) error { return pool.QueryRow(ctx, sql, 41).Scan(&n) }
	routerCall := func(int) error { return r.QueryRow(ctx, sql, 41).Scan(&n) }
	b.Run("interleaved", func(b *testing.B) { interleaved(b, "pool", "router", poolCall, routerCall) })
	b.Run("interleaved-thread", func(b *testing.B) { interleavedThread(b, "pool", "router", poolCall, routerCall) })
}

type poolRow struct{ p *pgxpool.Pool }

func (p poolRow) QueryRow(ctx context.Context, sql string, args ...any) interface{ Scan(...any) error } {
	return p.p.QueryRow(ctx, sql, args...)
}

type routerRow struct{ r *routerlib.Router }

func (r routerRow) QueryRow(ctx context.Context, sql string, args ...any) interface{ Scan(...any) error } {
	return r.r.QueryRow(ctx, sql, args...)
}

// BenchmarkRYWWrite compares a write that captures its LSN for
// read-your-writes (one pipelined round trip) with a plain Exec. Target:
// at most 1.15× the latency.
func BenchmarkRYWWrite(b *testing.B) {
	topo := routertest.Shared(b)
	ctx := context.Background()
	a := topo.Artifact()
	a.Consistency.Mode = artifact.ModeReadYourWrites
	r := newRouter(b, a)
	if _, err := r.Exec(ctx, "CREATE TABLE IF NOT EXISTS bench_ryw (id int, v text)"); err != nil {
		b.Fatal(err)
	}
	const sql = "INSERT INTO bench_ryw VALUES ($1, $2)"
	b.Run("exec", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if _, err := r.Exec(ctx, sql, i, "x"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("exec+lsn", func(b *testing.B) {
		sctx := routerlib.WithSession(ctx, &routerlib.Session{})
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if _, err := r.Exec(sctx, sql, i, "x"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("interleaved", func(b *testing.B) {
		sctx := routerlib.WithSession(ctx, &routerlib.Session{})
		interleaved(b, "exec", "exec+lsn",
			func(i int) error { _, err := r.Exec(ctx, sql, i, "x"); return err },
			func(i int) error { _, err := r.Exec(sctx, sql, i, "x"); return err })
	})
	// The target itself: the captured write against its floor, the same
	// INSERT as bare protocol messages (BEGIN, the write, COMMIT, the LSN
	// query, one Sync; see BenchmarkRYWWire) on a connection of its own,
	// call by call in one loop.
	b.Run("vs-wire", func(b *testing.B) {
		conn, err := pgconn.Connect(ctx, topo.Primary.DSN())
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close(ctx)
		w, err := wirefloor.New(ctx, conn, sql)
		if err != nil {
			b.Fatal(err)
		}
		params := [][]byte{[]byte("1"), []byte("x")}
		sctx := routerlib.WithSession(ctx, &routerlib.Session{})
		wire := func(int) error { return w.OneSync(params) }
		ryw := func(i int) error { _, err := r.Exec(sctx, sql, i, "x"); return err }
		b.Run("process", func(b *testing.B) { interleaved(b, "wire", "exec+lsn", wire, ryw) })
		// The same on a locked thread, with each one's CPU time on that
		// thread (thread-cpu-ratio): the calls' own work, which load
		// from other processes inflates far less than their latency.
		b.Run("thread", func(b *testing.B) { interleavedThread(b, "wire", "exec+lsn", wire, ryw) })
	})
	if _, err := r.Exec(ctx, "TRUNCATE bench_ryw"); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkRYWStickyRead measures what a read_your_writes session's read
// on the primary costs now that a writing function it calls is recorded
// (the read and a query of the transaction ID before one Sync): the same
// primary read, interleaved, by a strong-mode Router (no capture) and by a
// session whose writes no replica has replayed (sticky, wait_timeout 0s).
// Reads on replicas, and every read outside read_your_writes mode, take
// no part in it.
func BenchmarkRYWStickyRead(b *testing.B) {
	topo := routertest.Shared(b)
	ctx := context.Background()
	a := topo.Artifact()
	a.Consistency.Mode = artifact.ModeStrong
	strong := newRouter(b, a)
	a.Consistency = artifact.Consistency{Mode: artifact.ModeReadYourWrites, WaitTimeout: "0s"}
	ryw := newRouter(b, a)
	sctx := routerlib.WithSession(ctx, routerlib.NewSession(routerlib.LSN(1)<<62)) // past any replica
	const sql = "SELECT $1::int + 1"
	read := func(r *routerlib.Router, ctx context.Context) func(int) error {
		return func(i int) error {
			var n int
			return r.QueryRow(ctx, sql, i).Scan(&n)
		}
	}
	b.Run("interleaved", func(b *testing.B) {
		interleaved(b, "strong", "sticky", read(strong, ctx), read(ryw, sctx))
	})
}

// BenchmarkRYWWire measures the floor under BenchmarkRYWWrite: the same
// INSERT as bare protocol messages on one connection (prepared statements,
// no pool, no router), plain (Bind, Execute, Sync) against each shape of
// capture. "two-syncs" is the write, Sync, the LSN query, Sync (the
// server flushes at each Sync, so the client wakes twice); "one-sync" is
// BEGIN, the write, COMMIT, the LSN query, Sync, as routerlib sends it;
// "commit-only" drops the LSN query from that, to show what BEGIN and
// COMMIT alone cost. The shapes live in internal/wirefloor, which
// tools/peerbench measures in the same run as the router.
func BenchmarkRYWWire(b *testing.B) {
	topo := routertest.Shared(b)
	ctx := context.Background()
	conn, err := pgconn.Connect(ctx, topo.Primary.DSN())
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	if err := conn.Exec(ctx, "CREATE TABLE IF NOT EXISTS bench_wire (id int, v text)").Close(); err != nil {
		b.Fatal(err)
	}
	w, err := wirefloor.New(ctx, conn, "INSERT INTO bench_wire VALUES ($1, $2)")
	if err != nil {
		b.Fatal(err)
	}
	params := [][]byte{[]byte("1"), []byte("x")}
	plain := func(int) error { return w.Plain(params) }
	shapes := []struct {
		name string
		send func([][]byte) error
	}{{"two-syncs", w.TwoSyncs}, {"one-sync", w.OneSync}, {"commit-only", w.CommitOnly}}
	for _, s := range shapes {
		b.Run(s.name, func(b *testing.B) {
			interleaved(b, "plain", s.name, plain, func(int) error { return s.send(params) })
		})
	}
	if err := conn.Exec(ctx, "DROP TABLE bench_wire").Close(); err != nil {
		b.Fatal(err)
	}
}
