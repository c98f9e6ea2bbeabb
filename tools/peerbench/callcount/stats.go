package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/tools/peerbench/internal/servercpu"
)

// A sample is what -stats compares before and after the counted calls.
type sample struct {
	wall         time.Time
	user, system time.Duration
	created      uint64  // goroutines created
	mutexWait    float64 // seconds goroutines spent blocked on sync.Mutex and the like
	schedWait    float64 // seconds goroutines spent runnable, waiting for a thread (sum of /sched/latencies)
	schedCount   uint64
	voluntary    int64 // context switches of the process (rusage): a thread sleeping
	involuntary  int64
	allocBytes   uint64  // bytes allocated on the heap
	allocObjects uint64  // heap objects allocated
	gcCycles     uint64  // collections completed
	gcCPU        float64 // CPU seconds the collector spent (estimated by the runtime: marking, assists, pauses)
	gcIdle       float64 // of it, marking on processors that had nothing else to run
	gcAssist     float64 // of it, marking by goroutines that allocated during a cycle
	servers      servercpu.Sample
	serverCPU    int64   // in a difference (since): the servers' CPU time, ns
	idle         float64 // in a difference: the share of the machine's time it was idle
	poolAcquires int64   // in a difference: the Router's pgxpool acquires (see poolAcquires)
}

var metricNames = []string{
	"/sched/goroutines-created:goroutines",
	"/sync/mutex/wait/total:seconds",
	"/sched/latencies:seconds",
	"/gc/heap/allocs:bytes",
	"/gc/heap/allocs:objects",
	"/gc/cycles/total:gc-cycles",
	"/cpu/classes/gc/total:cpu-seconds",
	"/cpu/classes/gc/mark/idle:cpu-seconds",
	"/cpu/classes/gc/mark/assist:cpu-seconds",
}

func takeSample(srv servercpu.Servers) sample {
	ms := make([]metrics.Sample, len(metricNames))
	for i, n := range metricNames {
		ms[i].Name = n
	}
	metrics.Read(ms)
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	s := sample{
		wall:         time.Now(),
		user:         time.Duration(ru.Utime.Nano()),
		system:       time.Duration(ru.Stime.Nano()),
		created:      ms[0].Value.Uint64(),
		mutexWait:    ms[1].Value.Float64(),
		voluntary:    ru.Nvcsw,
		involuntary:  ru.Nivcsw,
		allocBytes:   ms[3].Value.Uint64(),
		allocObjects: ms[4].Value.Uint64(),
		gcCycles:     ms[5].Value.Uint64(),
		gcCPU:        ms[6].Value.Float64(),
		gcIdle:       ms[7].Value.Float64(),
		gcAssist:     ms[8].Value.Float64(),
		servers:      srv.Sample(),
	}
	h := ms[2].Value.Float64Histogram()
	for i, c := range h.Counts {
		lo, hi := h.Buckets[i], h.Buckets[i+1]
		mid := (lo + hi) / 2
		if math.IsInf(lo, 0) || math.IsInf(hi, 0) { // the open-ended ends
			mid = max(lo, min(hi, 0))
			if math.IsInf(mid, 0) {
				mid = 0
			}
		}
		s.schedWait += float64(c) * mid
		s.schedCount += c
	}
	return s
}

func (s sample) since(b sample) sample {
	serverCPU, idle := s.servers.Since(b.servers)
	return sample{
		serverCPU:    serverCPU,
		idle:         idle,
		wall:         time.Unix(0, int64(s.wall.Sub(b.wall))),
		user:         s.user - b.user,
		system:       s.system - b.system,
		created:      s.created - b.created,
		mutexWait:    s.mutexWait - b.mutexWait,
		schedWait:    s.schedWait - b.schedWait,
		schedCount:   s.schedCount - b.schedCount,
		voluntary:    s.voluntary - b.voluntary,
		involuntary:  s.involuntary - b.involuntary,
		allocBytes:   s.allocBytes - b.allocBytes,
		allocObjects: s.allocObjects - b.allocObjects,
		gcCycles:     s.gcCycles - b.gcCycles,
		gcCPU:        s.gcCPU - b.gcCPU,
		gcIdle:       s.gcIdle - b.gcIdle,
		gcAssist:     s.gcAssist - b.gcAssist,
	}
}

func (d sample) print(w io.Writer, who string, n int) {
	per := func(x float64) float64 { return x / float64(n) }
	wall := time.Duration(d.wall.UnixNano())
	fmt.Fprintf(w, "%s: %d calls in %v (%.0f/s); per call: CPU %.2f µs (user %.2f, system %.2f), goroutines created %.3f, "+
		"scheduler wakeups %.3f (waited %.2f µs), lock waits %.3f µs, context switches %.3f voluntary %.3f involuntary, "+
		"heap allocations %.1f (%.0f bytes), collector CPU %.2f µs (idle marking %.2f, assists %.2f; %d collections), "+
		"servers' CPU %.2f µs; machine idle %.1f%%; the Router's pgxpool acquires %.3f\n",
		who, n, wall.Round(time.Millisecond), float64(n)/wall.Seconds(),
		per(float64((d.user + d.system).Microseconds())), per(float64(d.user.Microseconds())), per(float64(d.system.Microseconds())),
		per(float64(d.created)), per(float64(d.schedCount)), per(d.schedWait*1e6), per(d.mutexWait*1e6),
		per(float64(d.voluntary)), per(float64(d.involuntary)),
		per(float64(d.allocObjects)), per(float64(d.allocBytes)), per(d.gcCPU*1e6), per(d.gcIdle*1e6), per(d.gcAssist*1e6), d.gcCycles,
		per(float64(d.serverCPU)/1e3), 100*d.idle, per(float64(d.poolAcquires)))
}

// startProfiles starts a CPU profile and records every lock wait; stop
// writes them to prefix.cpu and prefix.mutex.
func startProfiles(prefix string) (stop func(), err error) {
	cpu, err := os.Create(prefix + ".cpu")
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(cpu); err != nil {
		cpu.Close()
		return nil, err
	}
	runtime.SetMutexProfileFraction(1)
	return func() {
		pprof.StopCPUProfile()
		cpu.Close()
		if f, err := os.Create(prefix + ".mutex"); err == nil {
			_ = pprof.Lookup("mutex").WriteTo(f, 0)
			f.Close()
		}
	}, nil
}
