// Command callcount counts the instructions one GORM read (or write) costs
// through GORM's dbresolver and through GORM on routerlib/stdlib, set up as
// peerbench sets them up, by running the call a fixed number of times on
// one goroutine under valgrind's callgrind: instruction counts, unlike the
// wall clock or CPU time, do not change with the machine's load.
//
// callgrind cannot follow a process that starts PostgreSQL (its children's
// signals trip an assertion), so the topology runs in a second process:
//
//	cd tools/peerbench
//	ROUTERTEST_PGBIN=$(../postgres/install.sh 17 | tail -n1) go run ./callcount -serve /tmp/topo.json &
//	go build -o /tmp/callcount ./callcount
//	for who in dbresolver routerlib; do for n in 200 2200; do
//	  GODEBUG=asyncpreemptoff=1 GOGC=off valgrind --tool=callgrind --callgrind-out-file=/tmp/$who-$n.out \
//	    /tmp/callcount -topology /tmp/topo.json -contender $who -op read -n $n
//	done; done
//	/tmp/callcount -report -calls 2000 /tmp/dbresolver-200.out /tmp/dbresolver-2200.out /tmp/routerlib-200.out /tmp/routerlib-2200.out
//
// -op ryw-write counts, without GORM, one INSERT by the Router's Exec with a
// read-your-writes Session (-contender routerlib) against the same messages
// sent bare on a connection of its own (-contender wire: internal/wirefloor's
// OneSync, the floor of routerlib's BenchmarkRYWWire). On a CPU where
// valgrind stops at Go's RDTSCP, add cpu.rdtscp=off to GODEBUG.
//
// Each run sets up both contenders and warms both (-warm calls of each), so
// that the two runs of one contender differ only by the calls counted; the
// report divides the difference by -calls and splits it by layer. The
// scheduler's idle work (a goroutine waiting for the server's answer) and
// the interface-assertion caches (which the runtime fills at random, one
// miss in 1,024) move by ±1,500 and ±600 a call from run to run and are
// reported apart, not in the total. GOGC=off keeps collection from landing
// at random; asyncpreemptoff keeps the runtime's preemption signals from
// tripping callgrind. The Router's health checks run every ten minutes
// here, so that valgrind's slow clock does not charge their work to the
// calls (dbresolver has none).
//
// Without valgrind, -workers and -stats show what one goroutine cannot:
// the counted calls made from several goroutines, and per call the
// process's CPU time, the goroutines created, the scheduler's wakeups,
// the time goroutines waited on locks and the process's context switches
// (runtime/metrics, getrusage), and the servers' CPU time (every process
// of the topology's postmasters, as peerbench reads it). Under strace,
// the difference between a run of -n 0 and one of -n N, divided by N, is
// each system call's count per call:
//
//	for who in dbresolver routerlib; do /tmp/callcount -topology /tmp/topo.json -contender $who -n 100000 -workers 8 -stats -warm 500; done
//	strace -f -c -o /tmp/$who-$n.txt /tmp/callcount -topology /tmp/topo.json -contender $who -n $n -workers 8 -warm 500
package main

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"

	"github.com/pgreplication/terraform-provider-pgreplication/internal/wirefloor"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
	"github.com/pgreplication/terraform-provider-pgreplication/tools/peerbench/internal/gormpair"
	"github.com/pgreplication/terraform-provider-pgreplication/tools/peerbench/internal/servercpu"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "callcount:", err)
		os.Exit(1)
	}
}

// topology is what -serve writes for the counting runs.
type topology struct {
	Artifact json.RawMessage `json:"artifact"`
	Primary  string          `json:"primary"`
	Standbys []string        `json:"standbys"`
	DataDirs []string        `json:"data_dirs"` // the nodes', for the servers' CPU time (-stats)
}

func run() error {
	serve := flag.String("serve", "", "start a topology, write it to this file and wait for an interrupt")
	topoFile := flag.String("topology", "", "the file -serve wrote")
	contender := flag.String("contender", "routerlib", "dbresolver or routerlib")
	op := flag.String("op", "read", "read (peerbench's GORM read), write (one GORM Create, in GORM's default transaction), or ryw-write (one INSERT, not through GORM: contender routerlib is the Router's Exec with a read-your-writes Session, wire the same messages sent bare, internal/wirefloor's OneSync)")
	n := flag.Int("n", 200, "calls counted")
	warm := flag.Int("warm", 1500, "calls of each contender (a read and a write each) before the counted ones")
	report := flag.Bool("report", false, "print the instructions a call costs, by layer, from callgrind outputs given as arguments in pairs (fewer calls, more calls) per contender")
	calls := flag.Int("calls", 2000, "with -report: how many more calls the second output of each pair made")
	workers := flag.Int("workers", 1, "goroutines making the counted calls between them")
	cancellable := flag.Bool("cancellable", false, "make the calls with a context that can be cancelled (as a server's request's), not context.Background()")
	profile := flag.String("profile", "", "write CPU and mutex profiles of the counted calls to this prefix (.cpu, .mutex)")
	idle := flag.Duration("idle", 0, "instead of calls: after the warm-up, leave both contenders idle this long and print the process's CPU time over it (the Router's health checks and timers; dbresolver's pools have no background work)")
	stats := flag.Bool("stats", false, "print, per counted call, the process's CPU time, the goroutines created, the scheduler's and the locks' waits (runtime/metrics)")
	flag.Parse()
	switch {
	case *serve != "":
		return serveTopology(*serve)
	case *report:
		return printReport(flag.Args(), *calls)
	case *topoFile == "":
		return errors.New("give -serve, -topology or -report")
	}
	return count(*topoFile, *contender, *op, *n, *warm, *workers, *stats, *cancellable, *profile, *idle)
}

func serveTopology(path string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	topo, err := routertest.New(ctx, routertest.WithStandbys(2))
	if err != nil {
		return err
	}
	defer topo.Close()
	if err := gormpair.Setup(ctx, topo); err != nil {
		return err
	}
	a, err := artifact.Marshal(topo.Artifact())
	if err != nil {
		return err
	}
	data, err := json.Marshal(topology{Artifact: a, Primary: topo.Primary.DSN(), Standbys: []string{topo.Standbys[0].DSN(), topo.Standbys[1].DSN()},
		DataDirs: []string{topo.Primary.DataDir, topo.Standbys[0].DataDir, topo.Standbys[1].DataDir}})
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return err
	}
	fmt.Println("callcount: topology written to", path, "; interrupt to stop it")
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
	<-stop
	return nil
}

func count(path, contender, op string, n, warm, workers int, stats, cancellable bool, profile string, idle time.Duration) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var t topology
	if err := json.Unmarshal(data, &t); err != nil {
		return err
	}
	a, err := artifact.Parse(t.Artifact)
	if err != nil {
		return err
	}
	srv := servercpu.New(t.DataDirs)
	ctx := context.Background()
	if cancellable {
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
	}
	if idle == 0 {
		a.Health = artifact.Health{Interval: "10m", Timeout: "30s", ConnectTimeout: "30s"} // valgrind is slow
	} // else the default interval, as peerbench's Router has
	r, err := gormpair.Router(ctx, a)
	if err != nil {
		return err
	}
	defer r.Close()
	resolver, routed, closeRouted, err := gormpair.Open(t.Primary, t.Standbys, r, gormpair.MaxConns)
	if err != nil {
		return err
	}
	defer closeRouted()
	read := func(db *gorm.DB, i int) error { return gormpair.Read(ctx, db, i) }
	write := func(db *gorm.DB, i int) error { return gormpair.Write(ctx, db, i) }
	for _, db := range []*gorm.DB{resolver, routed} {
		for i := range warm {
			if err := read(db, i); err != nil {
				return err
			}
			if err := write(db, i); err != nil {
				return err
			}
		}
	}
	if idle > 0 {
		before := takeSample(srv)
		time.Sleep(idle)
		d := takeSample(srv).since(before)
		cpu := d.user + d.system
		fmt.Printf("idle %v (Router's health interval %v): process CPU %v (%.2f ms a second, %.3f%% of one core), "+
			"goroutines created %d, context switches %d voluntary %d involuntary, heap allocations %d (%d bytes); "+
			"servers' CPU %.2f ms a second (the Router's checks, the standbys' WAL receivers and replay, the servers' own background work)\n",
			idle, cmp.Or(a.Health.Interval, artifact.DefaultHealthInterval), cpu.Round(time.Millisecond), float64(cpu.Microseconds())/1e3/idle.Seconds(), 100*cpu.Seconds()/idle.Seconds(),
			d.created, d.voluntary, d.involuntary, d.allocObjects, d.allocBytes, float64(d.serverCPU)/1e6/idle.Seconds())
		return nil
	}
	db := map[string]*gorm.DB{"dbresolver": resolver, "routerlib": routed}[contender]
	call := map[string]func(*gorm.DB, int) error{"read": read, "write": write}[op]
	if op == rywWrite {
		c, closeWire, err := rywWriter(ctx, r, t.Primary, contender, warm)
		if err != nil {
			return err
		}
		defer closeWire()
		db, call = routed, func(_ *gorm.DB, i int) error { return c(i) }
	}
	if db == nil || call == nil {
		return fmt.Errorf("-contender is dbresolver, routerlib or (with -op ryw-write) wire, -op read, write or ryw-write")
	}
	var before sample
	var acquires int64 // the Router's pool acquires before the counted calls
	if stats {
		before = takeSample(srv)
		acquires = poolAcquires(r)
	}
	if profile != "" {
		stop, err := startProfiles(profile)
		if err != nil {
			return err
		}
		defer stop()
	}
	if err := callFrom(workers, n, func(i int) error { return call(db, i) }); err != nil {
		return err
	}
	if stats {
		d := takeSample(srv).since(before)
		d.poolAcquires = poolAcquires(r) - acquires
		d.print(os.Stdout, contender, n)
	}
	return nil
}

// rywWrite is the -op of a read-your-writes write, without GORM.
const rywWrite = "ryw-write"

// rywWriter returns the call -op ryw-write counts for contender, warmed
// warm times: routerlib's Exec of one INSERT with a read-your-writes
// Session, or (wire) the floor under it, the same messages sent bare on a
// connection of its own to primary (routerlib's BenchmarkRYWWire), and
// what closes the bare connection.
func rywWriter(ctx context.Context, r *routerlib.Router, primary, contender string, warm int) (func(int) error, func(), error) {
	const sql = "INSERT INTO callcount_ryw VALUES ($1, $2)"
	if _, err := r.Exec(ctx, "CREATE TABLE IF NOT EXISTS callcount_ryw (id int, v text)"); err != nil {
		return nil, nil, err
	}
	var call func(int) error
	closeWire := func() {}
	switch contender {
	case "routerlib":
		sctx := routerlib.WithSession(ctx, &routerlib.Session{})
		call = func(i int) error { _, err := r.Exec(sctx, sql, i, "x"); return err }
	case "wire":
		conn, err := pgconn.Connect(ctx, primary)
		if err != nil {
			return nil, nil, err
		}
		closeWire = func() { _ = conn.Close(ctx) }
		w, err := wirefloor.New(ctx, conn, sql)
		if err != nil {
			closeWire()
			return nil, nil, err
		}
		var params [][]byte
		call = func(i int) error {
			params = append(params[:0], strconv.AppendInt(params0(params), int64(i), 10), x)
			return w.OneSync(params)
		}
	default:
		return nil, nil, fmt.Errorf("-op %s: -contender is routerlib or wire", rywWrite)
	}
	for i := range warm {
		if err := call(i); err != nil {
			closeWire()
			return nil, nil, err
		}
	}
	return call, closeWire, nil
}

// x is the wire floor's second parameter, as the Router's is "x".
var x = []byte("x")

// params0 is the buffer of the wire floor's first parameter, reused.
func params0(params [][]byte) []byte {
	if len(params) > 0 {
		return params[0][:0]
	}
	return nil
}

// poolAcquires is how many connections r's pools have handed out (pgxpool's
// acquire count): a read on a connection the Router kept from the previous
// read does not acquire one.
func poolAcquires(r *routerlib.Router) int64 {
	var n int64
	for _, s := range r.Stat() {
		n += s.Pool.AcquireCount
	}
	return n
}

// callFrom makes n calls from workers goroutines between them.
func callFrom(workers, n int, call func(int) error) error {
	if workers <= 1 {
		for i := range n {
			if err := call(i); err != nil {
				return err
			}
		}
		return nil
	}
	var next atomic.Int64
	errs := make(chan error, workers)
	for range workers {
		go func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					errs <- nil
					return
				}
				if err := call(i); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	var err error
	for range workers {
		err = errors.Join(err, <-errs)
	}
	return err
}

// A layer is where a function's instructions are counted.
type layer struct {
	name string
	re   *regexp.Regexp
}

// layers, first match wins. "idle" and "itab" are reported apart: the
// scheduler waiting for the server, and the runtime's interface-assertion
// caches, which it fills at random.
var layers = []layer{
	{"idle", regexp.MustCompile(`^runtime\.(findRunnable|stealWork|netpoll.*|runqgrab|runqsteal|futex.*|usleep.*|osyield|checkTimers.*|schedule|park_m|note.*|stopm|startm|wakep|resetspinning|mPark|handoffp|lock2|unlock2|nanotime.*|pidleget|pidleput|epollwait|injectglist|acquirep.*|releasep.*|mcall|exitsyscall.*|entersyscall.*|reentersyscall|casgstatus|execute|gogo|ready|goready|runqput|gopark|checkdead|timeSleepUntil|sysmon|retake|procyield.*|checkRunqsNoP|checkIdleGCNoP|incidlelocked|setBlockOnExitSyscall|casfrom_Gscanstatus|castogscanstatus|wirep|save|systemstack.*|.*[tT]imer.*|\(\*timers?\)\..*|\(\*m\)\..*|\(\*pageAlloc\)\..*|gcTrigger.*|cheaprand.*|\(\*randomEnum\)\..*|\(\*randomOrder\)\..*|\(\*lfstack\)\..*)$|^internal/runtime/syscall|epoll`)},
	{"itab", regexp.MustCompile(`^runtime\.(getitab|\(\*itabTableType\)\.find|interfaceSwitch|typeAssert|assertE2I2?)$`)},
	{"allocation", regexp.MustCompile(`^runtime\.(malloc.*|newobject|newarray|makeslice.*|growslice|makemap.*|rawstring|rawbyteslice|memclrNoHeapPointers|publicationBarrier|heapSetType.*|nextFreeFast|deductAssistCredit|\(\*mspan\)\..*|\(\*mcache\)\..*|\(\*mcentral\)\..*|\(\*mheap\)\..*|\(\*gcControllerState\)\..*|\(\*spanSet\)\..*|\(\*consistentHeapStats\)\..*|\(\*sysMemStat\)\..*|\(\*pageCache\)\..*|\(\*fixalloc\)\..*|newMarkBits|recordspan|mergeSummaries|\(\*limiterEvent\)\..*)$`)},
	{"time", regexp.MustCompile(`^time\.`)},
	{"routerlib/stdlib", regexp.MustCompile(`routerlib/stdlib\.`)},
	{"routerlib", regexp.MustCompile(`terraform-provider-pgreplication/routerlib`)},
	{"pgxpool, puddle", regexp.MustCompile(`pgxpool|puddle`)},
	{"pgx's stdlib", regexp.MustCompile(`jackc/pgx/v5/stdlib\.`)},
	{"pgx", regexp.MustCompile(`jackc/pgx`)},
	{"dbresolver", regexp.MustCompile(`dbresolver`)},
	{"GORM", regexp.MustCompile(`gorm\.io`)},
	{"database/sql", regexp.MustCompile(`^database/sql`)},
	{"sync", regexp.MustCompile(`^(sync|internal/sync)\.`)},
	{"runtime, other", regexp.MustCompile(`^(runtime|internal/runtime)|^(memeqbody|aeshashbody|cmpbody|indexbytebody|gcWriteBarrier.*)$`)},
	{"other", regexp.MustCompile(``)},
}

// annotateLine is a function's line in callgrind_annotate's output.
var annotateLine = regexp.MustCompile(`^\s*([\d,]+) \([^)]*\)\s+\S+?:(.+?)( \[.*\])?$`)

// exclusive returns each function's own instructions in a callgrind
// output, recursion levels merged.
func exclusive(path string) (map[string]float64, error) {
	out, err := exec.Command("callgrind_annotate", "--threshold=100", path).Output()
	if err != nil {
		return nil, fmt.Errorf("callgrind_annotate %s: %w", path, err)
	}
	fns := map[string]float64{}
	level := regexp.MustCompile(`'\d+$`)
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		m := annotateLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		v, err := strconv.ParseFloat(strings.ReplaceAll(m[1], ",", ""), 64)
		if err != nil {
			continue
		}
		fns[level.ReplaceAllString(strings.TrimSpace(m[2]), "")] += v
	}
	return fns, sc.Err()
}

func printReport(files []string, calls int) error {
	if len(files) == 0 || len(files)%2 != 0 {
		return errors.New("-report takes callgrind outputs in pairs: fewer calls, then more calls")
	}
	var cols []map[string]float64
	for i := 0; i < len(files); i += 2 {
		few, err := exclusive(files[i])
		if err != nil {
			return err
		}
		more, err := exclusive(files[i+1])
		if err != nil {
			return err
		}
		col := map[string]float64{}
		for fn := range merged(few, more) {
			d := (more[fn] - few[fn]) / float64(calls)
			for _, l := range layers {
				if l.re.MatchString(fn) {
					col[l.name] += d
					break
				}
			}
		}
		cols = append(cols, col)
	}
	fmt.Printf("%-22s", "instructions a call")
	for i := 0; i < len(files); i += 2 {
		fmt.Printf("%30s", strings.TrimSuffix(shortName(files[i+1]), ".out"))
	}
	fmt.Println()
	for _, l := range layers {
		fmt.Printf("%-22s", l.name)
		for _, c := range cols {
			fmt.Printf("%30.0f", c[l.name])
		}
		fmt.Println()
	}
	fmt.Printf("%-22s", "total but idle, itab")
	for _, c := range cols {
		t := 0.0
		for name, v := range c {
			if name != "idle" && name != "itab" {
				t += v
			}
		}
		fmt.Printf("%30.0f", t)
	}
	fmt.Println()
	return nil
}

func merged(a, b map[string]float64) map[string]bool {
	m := map[string]bool{}
	for k := range a {
		m[k] = true
	}
	for k := range b {
		m[k] = true
	}
	return m
}

func shortName(path string) string {
	if i := strings.LastIndexByte(path, '/'); i >= 0 {
		return path[i+1:]
	}
	return path
}
