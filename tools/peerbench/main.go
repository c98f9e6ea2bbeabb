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
// -cpuprofile writes a profile of each contender's counted time per half round. Writes: one goroutine, so the figure is a latency; the
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
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

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
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of each contender's counted reads, half round by half round, to PREFIX.<contender>.<round>.<half>.pprof (merge a contender's files with go tool pprof -proto)")
	flag.Parse()

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
	for round := range *rounds {
		tallies := make([]tally, len(reads))
		for half, k := range schedule(len(reads), round) {
			c := reads[k]
			profile := ""
			if *cpuProfile != "" {
				profile = fmt.Sprintf("%s.%s.%02d.%d.pprof", *cpuProfile, slug(c.name), round, half/len(reads))
			}
			t, err := throughput(c, *workers, *duration/2, profile, srv)
			if err != nil {
				return fmt.Errorf("%s: %w", c.name, err)
			}
			tallies[k] = tallies[k].add(t)
		}
		for k, c := range reads {
			readResults[c.name] = append(readResults[c.name], tallies[k].reading())
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
}

func (a tally) add(b tally) tally {
	idle := 0.0
	if e := a.elapsed + b.elapsed; e > 0 {
		idle = (a.idle*a.elapsed.Seconds() + b.idle*b.elapsed.Seconds()) / e.Seconds()
	}
	return tally{n: a.n + b.n, elapsed: a.elapsed + b.elapsed, cpu: a.cpu + b.cpu, gc: a.gc + b.gc,
		heapBytes: a.heapBytes + b.heapBytes, serverCPU: a.serverCPU + b.serverCPU, idle: idle}
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
type reading struct{ perSecond, cpuMicros, heapBytes, gcMicros, serverMicros, idle float64 }

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

// throughput runs c's op on workers goroutines for d and returns its
// tally. A warm-up of a tenth of d is not counted. With a profile file,
// it holds a CPU profile of the counted time, the whole process's: what
// the contender's goroutines did (labelled contender=c.name) and what ran
// beside them (the collector's workers, the scheduler, the Router's
// health checks, which run whoever is measured).
func throughput(c contender, workers int, d time.Duration, profile string, srv servercpu.Servers) (tally, error) {
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
	var stopProfile func() error
	if profile != "" {
		f, err := os.Create(profile)
		if err != nil {
			close(stop)
			wg.Wait()
			return tally{}, err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			close(stop)
			wg.Wait()
			return tally{}, err
		}
		stopProfile = func() error {
			pprof.StopCPUProfile()
			return f.Close()
		}
	}
	// The servers are read right around the counted time (the profile's
	// samples of that reading are the main goroutine's: servercpu.Servers.Sample).
	s0 := srv.Sample()
	counting.Store(true)
	start, cpu := time.Now(), cpuTime()
	heap, gc := heapAndCollector()
	time.Sleep(d)
	counting.Store(false)
	elapsed, cpu := time.Since(start), cpuTime()-cpu
	heapAfter, gcAfter := heapAndCollector()
	serverCPU, idle := srv.Sample().Since(s0)
	if stopProfile != nil {
		if err := stopProfile(); err != nil {
			firstErr.CompareAndSwap(nil, &err)
		}
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
	return tally{n: n, elapsed: elapsed, cpu: cpu, gc: gcAfter - gc, heapBytes: int64(heapAfter - heap), serverCPU: serverCPU, idle: idle}, nil
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
