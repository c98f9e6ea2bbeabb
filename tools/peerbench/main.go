// Command peerbench measures routerlib against its peers on one routertest
// topology (a primary and two hot standbys on 127.0.0.1), in one run, with
// the contenders interleaved round by round so that load from other
// processes hits them alike. It is a module of its own so that GORM and its
// dbresolver plugin stay out of the repository's go.mod.
//
//	cd tools/peerbench && ROUTERTEST_PGBIN=$(../postgres/install.sh 17 | tail -n1) go run . -rounds 5
//
// Reads: each contender runs the same point lookup with -workers
// goroutines for -duration per round, in two halves that mirror each other
// (see schedule); the figure is the median throughput
// over the rounds, beside the medians per query of the client's CPU time
// (and the collector's share of it), the bytes it allocated, the CPU time
// of the topology's PostgreSQL processes, and the machine's idle share.
// A second table gives, per query, what the client did besides running
// its code: user and kernel CPU time, context switches, page faults, read
// and write system calls with their bytes, goroutines created, collections,
// and how many server processes ran and how often they were put on a CPU.
// -cpuprofile writes a profile of each contender's counted time per half
// round, and all of a contender's merged per query (compare two with go
// tool pprof -top -diff_base); -trace writes execution traces of the same
// times; -windows writes when each counted time began and ended on
// CLOCK_MONOTONIC, to split a perf recording of the run by contender:
//
//	perf record -k CLOCK_MONOTONIC -g -o perf.data -- ./peerbench -windows windows.txt …
//
// Writes: one goroutine, so the figure is a latency; the
// contenders run op by op in turn, and the figure is the median of each
// round's median. Beside the pool's and the Router's, the
// writes include the wire floor (internal/wirefloor, as routerlib's
// BenchmarkRYWWire sends it: the same INSERT on one bare connection, alone
// and wrapped as the read-your-writes capture) and an empty query's round
// trip. With -rtt, they all run again through a TCP proxy that holds each
// chunk half of it in each direction; the report gives the delay the proxy
// really held and the round trip measured through it.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"runtime/trace"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/google/pprof/profile"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"gorm.io/gorm"

	"github.com/pgreplication/terraform-provider-pgreplication/internal/cputime"
	"github.com/pgreplication/terraform-provider-pgreplication/internal/wirefloor"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
	"github.com/pgreplication/terraform-provider-pgreplication/tools/peerbench/internal/gormpair"
	"github.com/pgreplication/terraform-provider-pgreplication/tools/peerbench/internal/servercpu"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "peerbench:", err)
		os.Exit(1)
	}
}

const (
	rows      = gormpair.Rows
	readSQL   = "SELECT title FROM bench_books WHERE id = $1"
	writeSQL  = "INSERT INTO bench_writes (v) VALUES ($1)"
	maxConns  = gormpair.MaxConns
	setupTime = 3 * time.Minute
)

// A contender runs one operation.
type contender struct {
	name string
	op   func(ctx context.Context, i int) error
}

func run() error {
	rounds := flag.Int("rounds", 5, "rounds; each runs every contender for -duration, in two halves: a rotated order, then the same order reversed")
	duration := flag.Duration("duration", 2*time.Second, "how long each contender runs per round")
	workers := flag.Int("workers", 8, "concurrent readers")
	rtt := flag.Duration("rtt", 500*time.Microsecond, "simulated network round trip for the proxied writes (0: none)")
	withReads := flag.Bool("reads", true, "measure the reads (-reads=false: the writes alone)")
	only := flag.String("only", "", "run only the contenders whose name contains this")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of each contender's counted reads, half round by half round, to PREFIX.<contender>.<round>.<half>.pprof, and all of a contender's merged per query to PREFIX.<contender>.pprof (pprof's seconds are µs per query there: compare two with go tool pprof -top -diff_base)")
	profileRate := flag.Int("profilerate", 100, "-cpuprofile's samples a second of CPU time (runtime.SetCPUProfileRate): at the default 100, a function costing 0.4 µs a query gets a dozen samples in a run of 15 rounds of 2 s")
	traceFile := flag.String("trace", "", "write an execution trace (runtime/trace) of each contender's counted reads, half round by half round, to PREFIX.<contender>.<round>.<half>.trace (go tool trace)")
	windowsFile := flag.String("windows", "", "write each counted half round as a line \"<contender slug> <start> <end>\", in seconds on CLOCK_MONOTONIC (perf record -k CLOCK_MONOTONIC stamps its samples so), to split a perf recording of the whole run by contender")
	flag.Parse()
	if *cpuProfile != "" && *profileRate != 100 {
		// Before the first StartCPUProfile, which then keeps the rate (and
		// says on stderr that it cannot set the default one).
		runtime.SetCPUProfileRate(*profileRate)
	}
	var windows io.Writer = io.Discard
	if *windowsFile != "" {
		f, err := os.Create(*windowsFile)
		if err != nil {
			return err
		}
		defer f.Close()
		windows = f
	}

	ctx, cancel := context.WithTimeout(context.Background(), setupTime)
	defer cancel()
	topo, err := routertest.New(ctx, routertest.WithStandbys(2))
	if err != nil {
		return err
	}
	defer topo.Close()
	if err := gormpair.Setup(ctx, topo); err != nil {
		return err
	}
	bg := context.Background()

	// Reads.
	one, err := pool(topo.Standbys[0].Port)
	if err != nil {
		return err
	}
	defer one.Close()
	two, err := pool(topo.Standbys[1].Port)
	if err != nil {
		return err
	}
	defer two.Close()
	var rr atomic.Uint64
	multi, err := pgxpool.ParseConfig(fmt.Sprintf("host=127.0.0.1,127.0.0.1 port=%d,%d user=postgres dbname=postgres sslmode=disable target_session_attrs=prefer-standby pool_max_conns=%d",
		topo.Standbys[0].Port, topo.Standbys[1].Port, maxConns))
	if err != nil {
		return err
	}
	preferStandby, err := pgxpool.NewWithConfig(bg, multi)
	if err != nil {
		return err
	}
	defer preferStandby.Close()

	// Every pool here replaces its connections after an hour, pgxpool's
	// default and the router file's (gormpair.Router, and dbresolver's
	// *sql.DB in gormpair.Open).
	r, err := gormpair.Router(bg, topo.Artifact())
	if err != nil {
		return err
	}
	defer r.Close()
	resolver, onRouter, closeRouted, err := gormpair.Open(topo.Primary.DSN(), []string{topo.Standbys[0].DSN(), topo.Standbys[1].DSN()}, r, *workers)
	if err != nil {
		return err
	}
	defer closeRouted()

	scan := func(row pgx.Row) error {
		var title string
		return row.Scan(&title)
	}
	gormTake := func(db *gorm.DB) func(ctx context.Context, i int) error {
		return func(ctx context.Context, i int) error { return gormpair.Read(ctx, db, i) }
	}
	reads := []contender{
		{"pgxpool, one standby", func(ctx context.Context, i int) error { return scan(one.QueryRow(ctx, readSQL, i%rows+1)) }},
		{"pgxpool round-robin over the standbys (floor)", func(ctx context.Context, i int) error {
			p := one
			if rr.Add(1)%2 == 0 {
				p = two
			}
			return scan(p.QueryRow(ctx, readSQL, i%rows+1))
		}},
		{"pgx target_session_attrs=prefer-standby", func(ctx context.Context, i int) error {
			return scan(preferStandby.QueryRow(ctx, readSQL, i%rows+1))
		}},
		{"routerlib", func(ctx context.Context, i int) error { return scan(r.QueryRow(ctx, readSQL, i%rows+1)) }},
		{"GORM dbresolver (round-robin)", gormTake(resolver)},
		{"GORM on routerlib/stdlib", gormTake(onRouter)},
	}
	reads = filter(reads, *only)
	if !*withReads {
		reads = nil
	}
	var dataDirs []string
	for _, n := range append([]*routertest.Node{topo.Primary}, topo.Standbys...) {
		dataDirs = append(dataDirs, n.DataDir)
	}
	srv := servercpu.New(dataDirs)
	readResults := map[string][]reading{}
	profiles := map[string]*perQuery{}
	for round := range *rounds {
		tallies := make([]tally, len(reads))
		for half, k := range schedule(len(reads), round) {
			c := reads[k]
			var out outputs
			if *cpuProfile != "" {
				out.profile = fmt.Sprintf("%s.%s.%02d.%d.pprof", *cpuProfile, slug(c.name), round, half/len(reads))
			}
			if *traceFile != "" {
				out.trace = fmt.Sprintf("%s.%s.%02d.%d.trace", *traceFile, slug(c.name), round, half/len(reads))
			}
			t, err := throughput(c, *workers, *duration/2, out, srv)
			if err != nil {
				return fmt.Errorf("%s: %w", c.name, err)
			}
			fmt.Fprintf(windows, "%s %.6f %.6f\n", slug(c.name), t.from.Seconds(), t.to.Seconds())
			if out.profile != "" {
				if profiles[c.name] == nil {
					profiles[c.name] = &perQuery{}
				}
				profiles[c.name].add(out.profile, t.n)
			}
			tallies[k] = tallies[k].add(t)
		}
		for k, c := range reads {
			readResults[c.name] = append(readResults[c.name], tallies[k].reading())
		}
	}

	for _, c := range reads {
		if p := profiles[c.name]; p != nil {
			if err := p.write(fmt.Sprintf("%s.%s.pprof", *cpuProfile, slug(c.name))); err != nil {
				return err
			}
		}
	}

	// Writes, on loopback and through the delaying proxy.
	session := routerlib.WithSession(bg, &routerlib.Session{})
	var closers []func()
	defer func() {
		for _, c := range closers {
			c()
		}
	}()
	// writes are the contenders on one network: port reaches the primary
	// directly or through the proxy.
	writes := func(port int, r *routerlib.Router, suffix string) ([]contender, error) {
		// Configured as the Router's pools are (no pool_min_conns), so
		// that one goroutine reuses one connection on both sides.
		p, err := pgxpool.New(bg, fmt.Sprintf("%s pool_max_conns=%d", dsn(port), maxConns))
		if err != nil {
			return nil, err
		}
		closers = append(closers, p.Close)
		// Two bare connections: one for an empty query's round trip (the
		// network itself), one for the wire floor.
		ping, err := pgconn.Connect(bg, dsn(port))
		if err != nil {
			return nil, err
		}
		closers = append(closers, func() { ping.Close(bg) })
		bare, err := pgconn.Connect(bg, dsn(port))
		if err != nil {
			return nil, err
		}
		closers = append(closers, func() { bare.Close(bg) })
		floor, err := wirefloor.New(bg, bare, writeSQL)
		if err != nil {
			return nil, err
		}
		param := func(i int) [][]byte { return [][]byte{strconv.AppendInt(nil, int64(i), 10)} }
		return []contender{
			{pingName + suffix, func(ctx context.Context, _ int) error {
				_, err := ping.Exec(ctx, "").ReadAll()
				return err
			}},
			{wirePlainName + suffix, func(_ context.Context, i int) error { return floor.Plain(param(i)) }},
			{wireFloorName + suffix, func(_ context.Context, i int) error { return floor.OneSync(param(i)) }},
			{execName + suffix, func(ctx context.Context, i int) error {
				_, err := p.Exec(ctx, writeSQL, i)
				return err
			}},
			{"Router.Exec" + suffix, func(ctx context.Context, i int) error {
				_, err := r.Exec(ctx, writeSQL, i)
				return err
			}},
			{rywName + suffix, func(_ context.Context, i int) error {
				_, err := r.Exec(session, writeSQL, i)
				return err
			}},
		}, nil
	}
	all, err := writes(topo.Primary.Port, r, "")
	if err != nil {
		return err
	}
	var proxy *delayProxy
	if *rtt > 0 {
		proxy, err = newDelayProxy(fmt.Sprintf("127.0.0.1:%d", topo.Primary.Port), *rtt/2)
		if err != nil {
			return err
		}
		defer proxy.Close()
		pa := topo.Artifact()
		pa.Nodes[0].Port = proxy.port()
		pa.Pool = artifact.Pool{MaxConns: maxConns}
		pa.Consistency = artifact.Consistency{Mode: artifact.ModeReadYourWrites}
		pr, err := routerlib.New(bg, pa)
		if err != nil {
			return err
		}
		defer pr.Close()
		proxied, err := writes(proxy.port(), pr, rttSuffix(*rtt))
		if err != nil {
			return err
		}
		all = append(all, proxied...)
	}
	all = filter(all, *only)
	writeResults := map[string][]float64{}
	for range *rounds {
		meds, err := latencies(all, time.Duration(len(all))*(*duration))
		if err != nil {
			return err
		}
		for k, c := range all {
			writeResults[c.name] = append(writeResults[c.name], meds[k])
		}
	}

	report(topo, *rounds, *duration, *workers, *rtt, proxy, reads, readResults, all, writeResults)
	return nil
}

// perQuery gathers a contender's CPU profiles and the operations counted
// while each ran.
type perQuery struct {
	files []string
	n     int64
}

func (p *perQuery) add(file string, n int64) {
	p.files = append(p.files, file)
	p.n += n
}

// write merges the profiles into one whose values are per million
// operations, so that pprof's seconds read as µs per operation, and two
// contenders' profiles compare with go tool pprof -diff_base however many
// operations each ran.
func (p *perQuery) write(file string) error {
	var all []*profile.Profile
	for _, f := range p.files {
		data, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		pr, err := profile.ParseData(data)
		if err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		all = append(all, pr)
	}
	merged, err := profile.Merge(all)
	if err != nil {
		return err
	}
	merged.Scale(1e6 / float64(p.n))
	merged.Comments = append(merged.Comments, fmt.Sprintf("per million operations (%d counted): seconds read as µs per operation", p.n))
	out, err := os.Create(file)
	if err != nil {
		return err
	}
	return errors.Join(merged.Write(out), out.Close())
}

// slug is name in lower case with every run of other characters than
// letters and digits made one "-", for a file name.
func slug(name string) string {
	return strings.Trim(strings.Join(strings.FieldsFunc(strings.ToLower(name), func(r rune) bool {
		return !('a' <= r && r <= 'z' || '0' <= r && r <= '9')
	}), "-"), "-")
}

func filter(cs []contender, only string) []contender {
	return slices.DeleteFunc(cs, func(c contender) bool { return !strings.Contains(c.name, only) })
}

func dsn(port int) string {
	return fmt.Sprintf("host=127.0.0.1 port=%d user=postgres dbname=postgres sslmode=disable", port)
}

func pool(port int) (*pgxpool.Pool, error) {
	return pgxpool.New(context.Background(), fmt.Sprintf("%s pool_max_conns=%d pool_min_conns=%d", dsn(port), maxConns, maxConns))
}

// The write contenders the ratios are taken between.
const (
	pingName      = "empty query round trip (bare connection)"
	wirePlainName = "wire: the INSERT alone (Bind, Execute, Sync; bare connection)"
	wireFloorName = "wire: BEGIN, INSERT, COMMIT, LSN query, one Sync (bare connection; the floor)"
	execName      = "pgxpool Exec on the primary"
	rywName       = "Router.Exec, read-your-writes"
)

func rttSuffix(rtt time.Duration) string { return fmt.Sprintf(" (%v RTT)", rtt) }

// schedule returns the order in which a round runs n contenders, each
// twice for half the round's time: rotated by the round, then the same
// order reversed. Mirrored so, every contender's two halves centre on
// the middle of the round, so that load which rises or falls through the
// round (other processes, the machine's own) weighs on each alike, and
// each contender follows its neighbour in one half and precedes it in
// the other. A plain rotation had each contender follow the same one in
// every round, and the later of two neighbours always ran a round's
// length later, under whatever load had come meanwhile.
func schedule(n, round int) []int {
	order := make([]int, 2*n)
	for k := range n {
		order[k] = (k + round) % n
		order[2*n-1-k] = order[k]
	}
	return order
}

// A tally is what one or more runs of a contender counted: the operations
// and, over the counted time, the process's CPU time, the bytes and the
// collector's CPU time, the servers' CPU time and the machine's idle time
// (as a share of the counted time, weighted by it).
type tally struct {
	n                    int64
	elapsed, cpu, gc     time.Duration
	heapBytes, serverCPU int64 // bytes; ns
	idle                 float64
	proc                 procCounts
	from, to             time.Duration // the counted time on CLOCK_MONOTONIC, of one run
	serversRan           int           // server processes that ran, of one run (the most of the runs added)
	serverSlices         int64         // times they were put on a CPU
}

func (a tally) add(b tally) tally {
	idle := 0.0
	if e := a.elapsed + b.elapsed; e > 0 {
		idle = (a.idle*a.elapsed.Seconds() + b.idle*b.elapsed.Seconds()) / e.Seconds()
	}
	return tally{n: a.n + b.n, elapsed: a.elapsed + b.elapsed, cpu: a.cpu + b.cpu, gc: a.gc + b.gc,
		heapBytes: a.heapBytes + b.heapBytes, serverCPU: a.serverCPU + b.serverCPU, idle: idle, proc: a.proc.add(b.proc),
		serversRan: max(a.serversRan, b.serversRan), serverSlices: a.serverSlices + b.serverSlices}
}

// reading returns t as a reading: per second, per operation.
func (t tally) reading() reading {
	n := float64(t.n)
	return reading{
		perSecond:    n / t.elapsed.Seconds(),
		cpuMicros:    float64(t.cpu.Microseconds()) / n,
		heapBytes:    float64(t.heapBytes) / n,
		gcMicros:     float64(t.gc.Microseconds()) / n,
		serverMicros: float64(t.serverCPU) / 1e3 / n,
		idle:         t.idle,
		proc:         t.proc.per(n),
		serversRan:   float64(t.serversRan),
		serverSlices: float64(t.serverSlices) / n,
	}
}

// A reading is one contender's round: operations per second, and the
// process's CPU time per operation (user and system, all threads), which
// load from other processes changes far less than the wall clock; per
// operation the bytes allocated on the heap and the collector's CPU time
// (the runtime's estimate, in the CPU time too: it counts the time a
// processor gave the collector, which the machine's load stretches), which
// the small heaps of callcount's counting runs and GOGC=off under
// callgrind do not show; and what the servers spent per operation and the
// share of the machine's time that was idle (servers).
type reading struct {
	perSecond, cpuMicros, heapBytes, gcMicros, serverMicros, idle float64
	proc                                                          procPer
	serversRan, serverSlices                                      float64 // processes; per operation
}

// procCounts are what the process did besides running code, as the kernel
// and the runtime count it: CPU time in user and kernel mode (getrusage),
// context switches, voluntary (the thread blocked: a read that waits, a
// futex sleep of an idle P) and involuntary (preempted, by another thread
// or process), the read and write system calls with the bytes they moved
// (/proc/self/io), the goroutines created, and the collector's cycles. They
// show a cost spread outside a call's own instructions: a wakeup per query
// more, a system call more, a goroutine per query, a collection more often.
type procCounts struct {
	user, sys                   time.Duration
	voluntary, involuntary      int64
	pageFaults                  int64 // minor: the kernel maps a page on first touch
	reads, writes               int64
	readBytes, writeBytes       int64
	goroutinesCreated, gcCycles uint64
}

func (a procCounts) add(b procCounts) procCounts {
	return procCounts{a.user + b.user, a.sys + b.sys, a.voluntary + b.voluntary, a.involuntary + b.involuntary, a.pageFaults + b.pageFaults,
		a.reads + b.reads, a.writes + b.writes, a.readBytes + b.readBytes, a.writeBytes + b.writeBytes,
		a.goroutinesCreated + b.goroutinesCreated, a.gcCycles + b.gcCycles}
}

func (a procCounts) sub(b procCounts) procCounts {
	return procCounts{a.user - b.user, a.sys - b.sys, a.voluntary - b.voluntary, a.involuntary - b.involuntary, a.pageFaults - b.pageFaults,
		a.reads - b.reads, a.writes - b.writes, a.readBytes - b.readBytes, a.writeBytes - b.writeBytes,
		a.goroutinesCreated - b.goroutinesCreated, a.gcCycles - b.gcCycles}
}

// procPer is procCounts per operation (µs; counts; bytes).
type procPer struct {
	user, sys, voluntary, involuntary    float64
	pageFaults                           float64
	reads, writes, readBytes, writeBytes float64
	goroutines, gcCycles                 float64
}

func (a procCounts) per(n float64) procPer {
	return procPer{float64(a.user.Nanoseconds()) / 1e3 / n, float64(a.sys.Nanoseconds()) / 1e3 / n,
		float64(a.voluntary) / n, float64(a.involuntary) / n, float64(a.pageFaults) / n,
		float64(a.reads) / n, float64(a.writes) / n, float64(a.readBytes) / n, float64(a.writeBytes) / n,
		float64(a.goroutinesCreated) / n, float64(a.gcCycles) / n}
}

// monotonic reads CLOCK_MONOTONIC, the clock perf record -k
// CLOCK_MONOTONIC stamps its samples with.
func monotonic() time.Duration {
	var ts syscall.Timespec
	syscall.Syscall(syscall.SYS_CLOCK_GETTIME, 1, uintptr(unsafe.Pointer(&ts)), 0) // CLOCK_MONOTONIC
	return time.Duration(ts.Nano())
}

// readIO reads the process's read and write system calls and the bytes
// they moved so far (syscr, syscw, rchar, wchar of /proc/self/io), zero
// where there is no such file. The reading itself is one read.
func readIO() (reads, writes, readBytes, writeBytes int64) {
	data, _ := os.ReadFile("/proc/self/io")
	for line := range strings.Lines(string(data)) {
		k, v, _ := strings.Cut(strings.TrimSpace(line), ": ")
		n, _ := strconv.ParseInt(v, 10, 64)
		switch k {
		case "syscr":
			reads = n
		case "syscw":
			writes = n
		case "rchar":
			readBytes = n
		case "wchar":
			writeBytes = n
		}
	}
	return reads, writes, readBytes, writeBytes
}

// readProc reads the process's procCounts so far.
func readProc() procCounts {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	ms := []metrics.Sample{{Name: "/sched/goroutines-created:goroutines"}, {Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(ms)
	var created uint64
	if ms[0].Value.Kind() == metrics.KindUint64 { // Go 1.26 on
		created = ms[0].Value.Uint64()
	}
	reads, writes, readBytes, writeBytes := readIO()
	return procCounts{
		user: time.Duration(syscall.TimevalToNsec(ru.Utime)), sys: time.Duration(syscall.TimevalToNsec(ru.Stime)),
		voluntary: ru.Nvcsw, involuntary: ru.Nivcsw, pageFaults: ru.Minflt,
		reads: reads, writes: writes, readBytes: readBytes, writeBytes: writeBytes,
		goroutinesCreated: created, gcCycles: ms[1].Value.Uint64(),
	}
}

// heapAndCollector reads the bytes allocated on the heap so far and the
// collector's CPU time so far.
func heapAndCollector() (bytes uint64, gc time.Duration) {
	ms := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}, {Name: "/cpu/classes/gc/total:cpu-seconds"}}
	metrics.Read(ms)
	return ms[0].Value.Uint64(), time.Duration(ms[1].Value.Float64() * 1e9)
}

// cpuTime is the process's CPU time so far.
func cpuTime() time.Duration {
	ns, _ := cputime.Process()
	return time.Duration(ns)
}

// outputs are the files throughput writes of its counted time, where not
// empty: a CPU profile and an execution trace.
type outputs struct{ profile, trace string }

// throughput runs c's op on workers goroutines for d and returns its
// tally. A warm-up of a tenth of d is not counted. With a profile file,
// it holds a CPU profile of the counted time, the whole process's: what
// the contender's goroutines did (labelled contender=c.name) and what ran
// beside them (the collector's workers, the scheduler, the Router's
// health checks, which run whoever is measured). A trace file holds the
// same time's execution trace.
func throughput(c contender, workers int, d time.Duration, out outputs, srv servercpu.Servers) (tally, error) {
	ctx := context.Background()
	labels := pprof.WithLabels(ctx, pprof.Labels("contender", c.name)) // for the goroutines, not the calls' context
	op := c.op
	var count atomic.Int64
	var counting atomic.Bool
	var firstErr atomic.Pointer[error]
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			pprof.SetGoroutineLabels(labels)
			for i := w; ; i += workers {
				select {
				case <-stop:
					return
				default:
				}
				if err := op(ctx, i); err != nil {
					firstErr.CompareAndSwap(nil, &err)
					return
				}
				if counting.Load() {
					count.Add(1)
				}
			}
		})
	}
	time.Sleep(d / 10)
	stopOutputs, err := out.start()
	if err != nil {
		close(stop)
		wg.Wait()
		return tally{}, err
	}
	// The servers are read right around the counted time (the profile's
	// samples of that reading are the main goroutine's: servercpu.Servers.Sample).
	s0 := srv.Sample()
	counting.Store(true)
	from := monotonic()
	start, cpu, proc := time.Now(), cpuTime(), readProc()
	heap, gc := heapAndCollector()
	time.Sleep(d)
	counting.Store(false)
	elapsed, cpu, proc := time.Since(start), cpuTime()-cpu, readProc().sub(proc)
	to := monotonic()
	heapAfter, gcAfter := heapAndCollector()
	s1 := srv.Sample()
	serverCPU, idle := s1.Since(s0)
	ran, slices := s1.Activity(s0)
	if err := stopOutputs(); err != nil {
		firstErr.CompareAndSwap(nil, &err)
	}
	n := count.Load()
	close(stop)
	wg.Wait()
	if e := firstErr.Load(); e != nil {
		return tally{}, *e
	}
	if n == 0 {
		return tally{}, fmt.Errorf("no operation completed in %v", d)
	}
	// The servers' time is read right around the counted time (a
	// reading of /proc takes well under a millisecond).
	return tally{n: n, elapsed: elapsed, cpu: cpu, gc: gcAfter - gc, heapBytes: int64(heapAfter - heap), serverCPU: serverCPU, idle: idle, proc: proc, from: from, to: to, serversRan: ran, serverSlices: slices}, nil
}

// start starts the profile and the trace that o names, and returns what
// stops them and closes their files.
func (o outputs) start() (stop func() error, err error) {
	var files []*os.File
	profiling, tracing := false, false
	stop = func() error {
		if profiling {
			pprof.StopCPUProfile()
		}
		if tracing {
			trace.Stop()
		}
		var errs []error
		for _, f := range files {
			errs = append(errs, f.Close())
		}
		return errors.Join(errs...)
	}
	if o.profile != "" {
		f, err := os.Create(o.profile)
		if err != nil {
			return nil, err
		}
		files = append(files, f)
		if err := pprof.StartCPUProfile(f); err != nil {
			return nil, errors.Join(err, stop())
		}
		profiling = true
	}
	if o.trace != "" {
		f, err := os.Create(o.trace)
		if err != nil {
			return nil, errors.Join(err, stop())
		}
		files = append(files, f)
		if err := trace.Start(f); err != nil {
			return nil, errors.Join(err, stop())
		}
		tracing = true
	}
	return stop, nil
}

// latencies runs the operations op by op, each once per pass in a
// shuffled order, for d in all, and returns each one's median latency in
// microseconds. Taken in the same instants, their ratios hold on a machine
// whose load comes and goes, where a block of time per operation would
// give each a different share of it; the shuffle keeps any one from always
// following the same other (one through the proxy leaves the process idle
// for half a millisecond, and the next pays for waking it).
func latencies(ops []contender, d time.Duration) ([]float64, error) {
	ctx := context.Background()
	samples := make([][]float64, len(ops))
	order := make([]int, len(ops))
	for k := range order {
		order[k] = k
	}
	deadline := time.Now().Add(d)
	for i := 0; time.Now().Before(deadline); i++ {
		rand.Shuffle(len(order), func(a, b int) { order[a], order[b] = order[b], order[a] })
		for _, k := range order {
			start := time.Now()
			if err := ops[k].op(ctx, i); err != nil {
				return nil, fmt.Errorf("%s: %w", ops[k].name, err)
			}
			if i >= 10 { // warm-up: connections, prepared statements
				samples[k] = append(samples[k], float64(time.Since(start).Nanoseconds())/1e3)
			}
		}
	}
	meds := make([]float64, len(ops))
	for k := range ops {
		meds[k] = median(samples[k])
	}
	return meds, nil
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func report(topo *routertest.Topology, rounds int, d time.Duration, workers int, rtt time.Duration, proxy *delayProxy,
	reads []contender, readResults map[string][]reading, writes []contender, writeResults map[string][]float64) {
	fmt.Printf("Machine: %s, %d CPUs, %s/%s, %s; load average %s; PostgreSQL %d; %d rounds of %v per contender, %d readers, %d connections per pool\n\n",
		cpuModel(), runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version(), loadAverage(), topo.Version, rounds, d, workers, maxConns)
	if len(reads) > 0 {
		fmt.Println("| Reads (point lookup by primary key) | median queries/s | each round | median client CPU µs/query | of it the collector's | heap bytes/query | servers' CPU µs/query | machine idle |")
		fmt.Println("|---|---|---|---|---|---|---|---|")
	}
	med, cpu, srv := map[string]float64{}, map[string]float64{}, map[string]float64{}
	for _, c := range reads {
		var qps, us, gc, heap, server, idle []float64
		for _, r := range readResults[c.name] {
			qps, us = append(qps, r.perSecond), append(us, r.cpuMicros)
			gc, heap = append(gc, r.gcMicros), append(heap, r.heapBytes)
			server, idle = append(server, r.serverMicros), append(idle, 100*r.idle)
		}
		med[c.name], cpu[c.name], srv[c.name] = median(qps), median(us), median(server)
		fmt.Printf("| %s | %.0f | %s | %.1f | %.1f | %.0f | %.1f | %.1f%% |\n",
			c.name, med[c.name], join(qps, "%.0f"), cpu[c.name], median(gc), median(heap), srv[c.name], median(idle))
	}
	if len(reads) > 0 {
		fmt.Println()
		fmt.Println("| Reads: the client beside its code, per query (medians of the rounds) | user CPU µs | kernel CPU µs | voluntary context switches | involuntary | page faults | read calls (bytes) | write calls (bytes) | goroutines created | collections per 10k queries | server processes that ran | their times on a CPU |")
		fmt.Println("|---|---|---|---|---|---|---|---|---|---|---|---|")
		for _, c := range reads {
			var ran, slices []float64
			var user, sys, vol, invol, pf, rd, wr, rb, wb, gor, gcs []float64
			for _, r := range readResults[c.name] {
				p := r.proc
				user, sys = append(user, p.user), append(sys, p.sys)
				vol, invol, pf = append(vol, p.voluntary), append(invol, p.involuntary), append(pf, p.pageFaults)
				rd, wr, rb, wb = append(rd, p.reads), append(wr, p.writes), append(rb, p.readBytes), append(wb, p.writeBytes)
				gor, gcs = append(gor, p.goroutines), append(gcs, 1e4*p.gcCycles)
				ran, slices = append(ran, r.serversRan), append(slices, r.serverSlices)
			}
			fmt.Printf("| %s | %.1f | %.1f | %.3f | %.3f | %.4f | %.3f (%.0f) | %.3f (%.0f) | %.3f | %.2f | %.0f | %.3f |\n",
				c.name, median(user), median(sys), median(vol), median(invol), median(pf), median(rd), median(rb), median(wr), median(wb), median(gor), median(gcs), median(ran), median(slices))
		}
	}
	fmt.Println()
	fmt.Println("| Writes (one INSERT, one goroutine) | median latency µs | each round's median |")
	fmt.Println("|---|---|---|")
	wmed := map[string]float64{}
	for _, c := range writes {
		wmed[c.name] = median(writeResults[c.name])
		fmt.Printf("| %s | %.1f | %s |\n", c.name, wmed[c.name], join(writeResults[c.name], "%.1f"))
	}
	fmt.Println()
	if proxy != nil {
		held := proxy.heldMicros()
		slices.Sort(held)
		s := rttSuffix(rtt)
		fmt.Printf("Simulated network: %v RTT asked, %v each way. The proxy held %d chunks a median of %.1f µs each way (90th percentile %.1f, 99th %.1f); "+
			"an empty query's round trip took %.1f µs through it against %.1f µs direct: %.1f µs of simulated round trip.\n\n",
			rtt, rtt/2, len(held), percentile(held, 0.5), percentile(held, 0.9), percentile(held, 0.99),
			wmed[pingName+s], wmed[pingName], wmed[pingName+s]-wmed[pingName])
	}
	ratio := func(label string, a, b float64, target string) {
		if a > 0 && b > 0 {
			fmt.Printf("| %s | %.3f | %s |\n", label, a/b, target)
		}
	}
	fmt.Println("| Ratio | measured | target |")
	fmt.Println("|---|---|---|")
	ratio("routerlib / round-robin floor (throughput)", med["routerlib"], med["pgxpool round-robin over the standbys (floor)"], "≥ 0.95")
	ratio("GORM on routerlib/stdlib / GORM dbresolver (throughput)", med["GORM on routerlib/stdlib"], med["GORM dbresolver (round-robin)"], "≥ 1")
	// Each round's own ratio: the two ran in the same round, their halves
	// centred on its middle, so the load of that round weighs on both.
	perRound := func(label, a, b, target string) {
		var rs []float64
		for k, ra := range readResults[a] {
			if k < len(readResults[b]) && readResults[b][k].perSecond > 0 {
				rs = append(rs, ra.perSecond/readResults[b][k].perSecond)
			}
		}
		if len(rs) > 0 {
			fmt.Printf("| %s, median of each round's ratio (%s) | %.3f | %s |\n", label, join(rs, "%.3f"), median(rs), target)
		}
	}
	perRound("routerlib / round-robin floor (throughput)", "routerlib", "pgxpool round-robin over the standbys (floor)", "≥ 0.95")
	perRound("GORM on routerlib/stdlib / GORM dbresolver (throughput)", "GORM on routerlib/stdlib", "GORM dbresolver (round-robin)", "≥ 1")
	ratio("GORM on routerlib/stdlib / GORM dbresolver (client CPU per query)", cpu["GORM on routerlib/stdlib"], cpu["GORM dbresolver (round-robin)"], "")
	ratio("GORM on routerlib/stdlib / GORM dbresolver (servers' CPU per query)", srv["GORM on routerlib/stdlib"], srv["GORM dbresolver (round-robin)"], "")
	ratio("routerlib / round-robin floor (client CPU per query)", cpu["routerlib"], cpu["pgxpool round-robin over the standbys (floor)"], "")
	ratio("read-your-writes Exec / wire floor (latency, loopback)", wmed[rywName], wmed[wireFloorName], "≤ 1.05")
	ratio("read-your-writes Exec / pgxpool Exec (latency, loopback)", wmed[rywName], wmed[execName], "")
	ratio("read-your-writes Exec / Router.Exec (latency, loopback)", wmed[rywName], wmed["Router.Exec"], "")
	ratio("wire floor / the wire INSERT alone (latency, loopback)", wmed[wireFloorName], wmed[wirePlainName], "")
	ratio("pgxpool Exec / the wire INSERT alone (latency, loopback: pgx's own cost)", wmed[execName], wmed[wirePlainName], "")
	ratio("Router.Exec / the wire INSERT alone (latency, loopback)", wmed["Router.Exec"], wmed[wirePlainName], "")
	if rtt > 0 {
		s := rttSuffix(rtt)
		ratio(fmt.Sprintf("read-your-writes Exec / pgxpool Exec (latency, %v RTT)", rtt), wmed[rywName+s], wmed[execName+s], "≤ 1.05")
		ratio(fmt.Sprintf("read-your-writes Exec / Router.Exec (latency, %v RTT)", rtt), wmed[rywName+s], wmed["Router.Exec"+s], "")
		ratio(fmt.Sprintf("read-your-writes Exec / wire floor (latency, %v RTT)", rtt), wmed[rywName+s], wmed[wireFloorName+s], "")
	}
}

// percentile returns the p-th quantile of sorted xs.
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[int(p*float64(len(sorted)-1))]
}

func join(xs []float64, format string) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = fmt.Sprintf(format, x)
	}
	return strings.Join(parts, ", ")
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if k, v, ok := strings.Cut(s.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strconv.Quote(strings.TrimSpace(v))
		}
	}
	return "unknown CPU"
}

func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// A delayProxy forwards TCP connections to an upstream address, holding
// every chunk for a fixed delay in each direction: a network round trip
// without a network. Each direction is a pipeline (a reader that stamps
// each chunk with its arrival, a writer that sends it at arrival + delay),
// so a chunk never waits behind another's delay, and it records how long
// it really held each chunk, so the report can show the network was the
// one asked for.
type delayProxy struct {
	ln    net.Listener
	to    string
	delay time.Duration

	mu   sync.Mutex      // guards held
	held []time.Duration // each chunk's arrival to its write
}

func newDelayProxy(to string, delay time.Duration) (*delayProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &delayProxy{ln: ln, to: to, delay: delay}
	go p.accept()
	return p, nil
}

func (p *delayProxy) port() int { return p.ln.Addr().(*net.TCPAddr).Port }

// Close stops accepting; the connections end with their pools.
func (p *delayProxy) Close() {
	p.ln.Close()
}

// heldMicros returns how long the proxy held the chunks so far, in µs.
func (p *delayProxy) heldMicros() []float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	us := make([]float64, len(p.held))
	for i, d := range p.held {
		us[i] = float64(d.Nanoseconds()) / 1e3
	}
	return us
}

func (p *delayProxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", p.to)
		if err != nil {
			c.Close()
			continue
		}
		go p.pipe(c, up)
		go p.pipe(up, c)
	}
}

type chunk struct {
	data    []byte
	arrived time.Time
}

// pipe reads src and hands each chunk, stamped with its arrival, to a
// writer to dst.
func (p *delayProxy) pipe(src, dst net.Conn) {
	q := make(chan chunk, 1024)
	go p.forward(q, dst)
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			q <- chunk{data: slices.Clone(buf[:n]), arrived: time.Now()}
		}
		if err != nil {
			if err != io.EOF {
				src.Close()
			}
			close(q)
			return
		}
	}
}

// forward writes each chunk to dst at its arrival + delay, in order. It
// keeps its OS thread (never unlocked, so the thread ends with it, its
// timer slack with it) to sleep on it precisely: see waitUntil.
func (p *delayProxy) forward(q <-chan chunk, dst net.Conn) {
	runtime.LockOSThread()
	// A timer slack of 1 ns instead of the default 50 µs for this thread's
	// nanosleep (PR_SET_TIMERSLACK is 29).
	syscall.RawSyscall(syscall.SYS_PRCTL, 29, 1, 0)
	defer dst.Close()
	for c := range q {
		waitUntil(c.arrived.Add(p.delay))
		p.mu.Lock()
		p.held = append(p.held, time.Since(c.arrived))
		p.mu.Unlock()
		if _, err := dst.Write(c.data); err != nil {
			return
		}
	}
}

// spinFor is the end of a wait that waitUntil spins instead of sleeping.
// Measured on the 2-core machine the figures come from, waiting 250 µs
// 2,000 times: time.Sleep wakes about 850 µs late (the runtime's timers
// are not finer for short sleeps, golang/go#44343); nanosleep on a locked
// thread with a 1 ns timer slack wakes 20–40 µs late at the median; the
// same nanosleep stopped 50 µs early and then a spin is on time at the
// 90th percentile for about the same CPU per wait (50–60 µs, the
// process's whole CPU time over the waits); spinning all the way costs
// four times that CPU and is worse at the tail on a loaded machine.
const spinFor = 50 * time.Microsecond

// waitUntil returns at due, or as soon after as the machine allows.
func waitUntil(due time.Time) {
	if d := time.Until(due) - spinFor; d > 0 {
		ts := syscall.NsecToTimespec(d.Nanoseconds())
		for syscall.Nanosleep(&ts, &ts) == syscall.EINTR {
		}
	}
	for time.Now().Before(due) {
	}
}
