// Command peerbench measures routerlib against its peers on one routertest
// topology (a primary and two hot standbys on 127.0.0.1), in one run, with
// the contenders interleaved round by round so that load from other
// processes hits them alike. It is a module of its own so that GORM and its
// dbresolver plugin stay out of the repository's go.mod.
//
//	cd tools/peerbench && ROUTERTEST_PGBIN=$(../postgres/install.sh 17 | tail -n1) go run . -rounds 5
//
// Reads: each contender runs the same point lookup with -workers
// goroutines for -duration per round; the figure is the median throughput
// over the rounds. Writes: one goroutine, so the figure is a latency; the
// median of each round's median. With -rtt, writes also go through a TCP
// proxy that delays each direction by half of it.
package main

import (
	"bufio"
	"context"
	"database/sql"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
	"gorm.io/plugin/dbresolver"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/stdlib"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "peerbench:", err)
		os.Exit(1)
	}
}

const (
	rows      = 1000
	readSQL   = "SELECT title FROM bench_books WHERE id = $1"
	writeSQL  = "INSERT INTO bench_writes (v) VALUES ($1)"
	maxConns  = 8
	setupTime = 3 * time.Minute
)

// A contender runs one operation.
type contender struct {
	name string
	op   func(ctx context.Context, i int) error
}

func run() error {
	rounds := flag.Int("rounds", 5, "rounds; each runs every contender once, in a rotated order")
	duration := flag.Duration("duration", 2*time.Second, "how long each contender runs per round")
	workers := flag.Int("workers", 8, "concurrent readers")
	rtt := flag.Duration("rtt", 500*time.Microsecond, "simulated network round trip for the proxied writes (0: none)")
	only := flag.String("only", "", "run only the contenders whose name contains this")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the measurements to this file")
	flag.Parse()

	ctx, cancel := context.WithTimeout(context.Background(), setupTime)
	defer cancel()
	topo, err := routertest.New(ctx, routertest.WithStandbys(2))
	if err != nil {
		return err
	}
	defer topo.Close()
	if err := setup(ctx, topo); err != nil {
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

	a := topo.Artifact()
	a.Pool = artifact.Pool{MaxConns: maxConns}
	a.Consistency = artifact.Consistency{Mode: artifact.ModeReadYourWrites}
	r, err := routerlib.New(bg, a)
	if err != nil {
		return err
	}
	defer r.Close()

	resolver, err := gorm.Open(postgres.Open(topo.Primary.DSN()), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		return err
	}
	err = resolver.Use(dbresolver.Register(dbresolver.Config{
		Replicas: []gorm.Dialector{postgres.Open(topo.Standbys[0].DSN()), postgres.Open(topo.Standbys[1].DSN())},
		Policy:   dbresolver.RoundRobinPolicy(),
	}).SetMaxOpenConns(maxConns).SetMaxIdleConns(maxConns))
	if err != nil {
		return err
	}
	sqlDB := sql.OpenDB(stdlib.NewConnector(r))
	sqlDB.SetMaxIdleConns(*workers)
	defer sqlDB.Close()
	onRouter, err := gorm.Open(postgres.New(postgres.Config{Conn: sqlDB}), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		return err
	}

	scan := func(row pgx.Row) error {
		var title string
		return row.Scan(&title)
	}
	gormTake := func(db *gorm.DB) func(ctx context.Context, i int) error {
		return func(ctx context.Context, i int) error {
			var b struct{ Title string }
			return db.WithContext(ctx).Table("bench_books").Select("title").Where("id = ?", i%rows+1).Take(&b).Error
		}
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
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	reads = filter(reads, *only)
	readResults := map[string][]reading{}
	for round := range *rounds {
		for k := range reads {
			c := reads[(k+round)%len(reads)]
			n, err := throughput(c.op, *workers, *duration)
			if err != nil {
				return fmt.Errorf("%s: %w", c.name, err)
			}
			readResults[c.name] = append(readResults[c.name], n)
		}
	}

	// Writes, on loopback and through the delaying proxy.
	direct, err := pool(topo.Primary.Port)
	if err != nil {
		return err
	}
	defer direct.Close()
	session := routerlib.WithSession(bg, &routerlib.Session{})
	writes := func(p *pgxpool.Pool, r *routerlib.Router, suffix string) []contender {
		return []contender{
			{"pgxpool Exec on the primary" + suffix, func(ctx context.Context, i int) error {
				_, err := p.Exec(ctx, writeSQL, i)
				return err
			}},
			{"Router.Exec" + suffix, func(ctx context.Context, i int) error {
				_, err := r.Exec(ctx, writeSQL, i)
				return err
			}},
			{"Router.Exec, read-your-writes" + suffix, func(_ context.Context, i int) error {
				_, err := r.Exec(session, writeSQL, i)
				return err
			}},
		}
	}
	all := writes(direct, r, "")
	if *rtt > 0 {
		proxy, err := newDelayProxy(fmt.Sprintf("127.0.0.1:%d", topo.Primary.Port), *rtt/2)
		if err != nil {
			return err
		}
		defer proxy.Close()
		proxied, err := pool(proxy.port())
		if err != nil {
			return err
		}
		defer proxied.Close()
		pa := topo.Artifact()
		pa.Nodes[0].Port = proxy.port()
		pa.Pool = artifact.Pool{MaxConns: maxConns}
		pa.Consistency = artifact.Consistency{Mode: artifact.ModeReadYourWrites}
		pr, err := routerlib.New(bg, pa)
		if err != nil {
			return err
		}
		defer pr.Close()
		all = append(all, writes(proxied, pr, fmt.Sprintf(" (%v RTT)", *rtt))...)
	}
	all = filter(all, *only)
	writeResults := map[string][]float64{}
	for round := range *rounds {
		for k := range all {
			c := all[(k+round)%len(all)]
			med, err := latency(c.op, *duration)
			if err != nil {
				return fmt.Errorf("%s: %w", c.name, err)
			}
			writeResults[c.name] = append(writeResults[c.name], med)
		}
	}

	report(topo, *rounds, *duration, *workers, *rtt, reads, readResults, all, writeResults)
	return nil
}

func filter(cs []contender, only string) []contender {
	return slices.DeleteFunc(cs, func(c contender) bool { return !strings.Contains(c.name, only) })
}

func pool(port int) (*pgxpool.Pool, error) {
	return pgxpool.New(context.Background(), fmt.Sprintf("host=127.0.0.1 port=%d user=postgres dbname=postgres sslmode=disable pool_max_conns=%d pool_min_conns=%d", port, maxConns, maxConns))
}

func setup(ctx context.Context, topo *routertest.Topology) error {
	for _, q := range []string{
		"CREATE TABLE bench_books (id int PRIMARY KEY, title text NOT NULL)",
		fmt.Sprintf("INSERT INTO bench_books SELECT g, 'title ' || g FROM generate_series(1, %d) g", rows),
		"CREATE TABLE bench_writes (id bigserial PRIMARY KEY, v int)",
	} {
		if err := topo.Primary.Exec(ctx, q); err != nil {
			return err
		}
	}
	return topo.WaitReplayed(ctx)
}

// A reading is one contender's round: operations per second, and the
// process's CPU time per operation (user and system, all threads), which
// load from other processes changes far less than the wall clock.
type reading struct{ perSecond, cpuMicros float64 }

// cpuTime is the process's CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// throughput runs op on workers goroutines for d and returns operations per
// second and CPU time per operation. A warm-up of a tenth of d is not
// counted.
func throughput(op func(context.Context, int) error, workers int, d time.Duration) (reading, error) {
	ctx := context.Background()
	var count atomic.Int64
	var counting atomic.Bool
	var firstErr atomic.Pointer[error]
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
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
	counting.Store(true)
	start, cpu := time.Now(), cpuTime()
	time.Sleep(d)
	counting.Store(false)
	elapsed, cpu := time.Since(start), cpuTime()-cpu
	n := count.Load()
	close(stop)
	wg.Wait()
	if e := firstErr.Load(); e != nil {
		return reading{}, *e
	}
	if n == 0 {
		return reading{}, fmt.Errorf("no operation completed in %v", d)
	}
	return reading{perSecond: float64(n) / elapsed.Seconds(), cpuMicros: float64(cpu.Microseconds()) / float64(n)}, nil
}

// latency runs op back to back for d and returns its median latency in
// microseconds.
func latency(op func(context.Context, int) error, d time.Duration) (float64, error) {
	ctx := context.Background()
	var samples []float64
	deadline := time.Now().Add(d)
	for i := 0; time.Now().Before(deadline); i++ {
		start := time.Now()
		if err := op(ctx, i); err != nil {
			return 0, err
		}
		if i >= 10 { // warm-up: connections, prepared statements
			samples = append(samples, float64(time.Since(start).Nanoseconds())/1e3)
		}
	}
	return median(samples), nil
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

func report(topo *routertest.Topology, rounds int, d time.Duration, workers int, rtt time.Duration,
	reads []contender, readResults map[string][]reading, writes []contender, writeResults map[string][]float64) {
	fmt.Printf("Machine: %s, %d CPUs, %s/%s, %s; load average %s; PostgreSQL %d; %d rounds of %v per contender, %d readers, %d connections per pool\n\n",
		cpuModel(), runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version(), loadAverage(), topo.Version, rounds, d, workers, maxConns)
	fmt.Println("| Reads (point lookup by primary key) | median queries/s | each round | median client CPU µs/query |")
	fmt.Println("|---|---|---|---|")
	med, cpu := map[string]float64{}, map[string]float64{}
	for _, c := range reads {
		var qps, us []float64
		for _, r := range readResults[c.name] {
			qps, us = append(qps, r.perSecond), append(us, r.cpuMicros)
		}
		med[c.name], cpu[c.name] = median(qps), median(us)
		fmt.Printf("| %s | %.0f | %s | %.1f |\n", c.name, med[c.name], join(qps, "%.0f"), cpu[c.name])
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
	fmt.Println("| Ratio | measured | target |")
	fmt.Println("|---|---|---|")
	fmt.Printf("| routerlib / round-robin floor (throughput) | %.3f | ≥ 0.95 |\n", med["routerlib"]/med["pgxpool round-robin over the standbys (floor)"])
	fmt.Printf("| GORM on routerlib/stdlib / GORM dbresolver (throughput) | %.3f | ≥ 1 |\n", med["GORM on routerlib/stdlib"]/med["GORM dbresolver (round-robin)"])
	fmt.Printf("| GORM on routerlib/stdlib / GORM dbresolver (client CPU per query) | %.3f | |\n", cpu["GORM on routerlib/stdlib"]/cpu["GORM dbresolver (round-robin)"])
	fmt.Printf("| routerlib / round-robin floor (client CPU per query) | %.3f | |\n", cpu["routerlib"]/cpu["pgxpool round-robin over the standbys (floor)"])
	fmt.Printf("| read-your-writes Exec / pgxpool Exec (latency, loopback) | %.3f | |\n", wmed["Router.Exec, read-your-writes"]/wmed["pgxpool Exec on the primary"])
	if rtt > 0 {
		s := fmt.Sprintf(" (%v RTT)", rtt)
		fmt.Printf("| read-your-writes Exec / pgxpool Exec (latency, %v RTT) | %.3f | ≤ 1.05 |\n", rtt, wmed["Router.Exec, read-your-writes"+s]/wmed["pgxpool Exec on the primary"+s])
	}
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

// A delayProxy forwards TCP connections to an upstream address, delaying
// every chunk by a fixed time in each direction: a network round trip
// without a network.
type delayProxy struct {
	ln    net.Listener
	to    string
	delay time.Duration
	wg    sync.WaitGroup
}

func newDelayProxy(to string, delay time.Duration) (*delayProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &delayProxy{ln: ln, to: to, delay: delay}
	p.wg.Go(p.accept)
	return p, nil
}

func (p *delayProxy) port() int { return p.ln.Addr().(*net.TCPAddr).Port }

func (p *delayProxy) Close() {
	p.ln.Close()
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

// pipe copies src to dst, each chunk written delay after it was read and
// in order, so the delay adds latency without limiting throughput.
func (p *delayProxy) pipe(src, dst net.Conn) {
	type chunk struct {
		data []byte
		at   time.Time
	}
	q := make(chan chunk, 1024)
	go func() {
		defer dst.Close()
		for c := range q {
			if wait := time.Until(c.at); wait > 0 {
				time.Sleep(wait)
			}
			if _, err := dst.Write(c.data); err != nil {
				return
			}
		}
	}()
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			q <- chunk{data: slices.Clone(buf[:n]), at: time.Now().Add(p.delay)}
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
