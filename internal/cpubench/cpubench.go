// Package cpubench compares two ways of making the same call by the CPU
// time they take, which other processes on a busy machine inflate far less
// than the wall clock: routerlib/stdlib's benchmark (against pgx's own
// database/sql driver) and the compat module's (GORM against dbresolver)
// measure this way. It sits beside internal/cputime at the module root so
// that the compat module may import it too.
package cpubench

import (
	"context"
	"errors"
	"runtime"
	"runtime/pprof"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/internal/cputime"
)

// Contender is one way of making the call: its name names its
// sub-benchmark and metrics, and call(i) makes the i-th call.
type Contender struct {
	Name string
	Call func(i int) error
}

// Compare runs base and subject each as a sub-benchmark of b from workers
// goroutines (after warm calls that open the connections and fill their
// statement caches), reporting allocations and the process's CPU time per
// call (cpu-ns/op), then a sub-benchmark "interleaved" that runs them in
// turns on one thread (Interleaved) and reports each one's median CPU
// time per call and their ratio, subject/base, and one
// "interleaved-parallel" that runs them in turns from workers goroutines
// (ParallelInterleaved), which is what shows the cost of memory both
// cores write.
func Compare(b *testing.B, workers, warm int, base, subject Contender) {
	for _, c := range []Contender{base, subject} {
		b.Run(c.Name, func(b *testing.B) {
			if _, err := Parallel(workers, warm, c.Call); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			cpu, err := Parallel(workers, b.N, c.Call)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(cpu, "cpu-ns/op")
		})
	}
	b.Run("interleaved", func(b *testing.B) {
		mb, ms, ok, err := Interleaved(b.N, 100, base.Call, subject.Call)
		if err != nil {
			b.Fatal(err)
		}
		if ok {
			b.ReportMetric(mb, base.Name+"-cpu-ns/query")
			b.ReportMetric(ms, subject.Name+"-cpu-ns/query")
			b.ReportMetric(ms/mb, "ratio")
		}
	})
	b.Run("interleaved-parallel", func(b *testing.B) {
		t, err := ParallelInterleaved(workers, b.N, 50*workers, base, subject)
		if err != nil {
			b.Fatal(err)
		}
		if t.BaseCPU > 0 {
			b.ReportMetric(t.BaseCPU, base.Name+"-cpu-ns/query")
			b.ReportMetric(t.SubjectCPU, subject.Name+"-cpu-ns/query")
			b.ReportMetric(t.SubjectCPU/t.BaseCPU, "cpu-ratio")
		}
		b.ReportMetric(t.BaseWall/t.SubjectWall, "throughput-ratio")
	})
}

// Turns are the medians of ParallelInterleaved's blocks: each
// contender's process CPU time per call (0 where the platform has no such
// clock) and wall-clock time per call. Calls per second from workers
// goroutines are workers-independent multiples of 1/wall, so
// BaseWall/SubjectWall is the subject's throughput over the base's.
type Turns struct {
	BaseCPU, SubjectCPU   float64
	BaseWall, SubjectWall float64
}

// ParallelInterleaved alternates blocks of block calls of base and of
// subject, each block made from workers goroutines (Parallel), until they
// have made n calls in all (at least one block each), and returns the
// medians over the blocks: the two meet the same load from other
// processes, block by block. The goroutines of each carry the pprof label
// "contender" (the Contender's Name), so that a CPU profile of the run
// splits by it (pprof -tagfocus contender=NAME). err is the first error of
// a call, which ends the run.
func ParallelInterleaved(workers, n, block int, base, subject Contender) (Turns, error) {
	var bc, sc, bw, sw []float64
	measure := func(c Contender, cpus, walls *[]float64) error {
		var cpu float64
		var err error
		start := time.Now()
		pprof.Do(context.Background(), pprof.Labels("contender", c.Name), func(context.Context) {
			cpu, err = Parallel(workers, block, c.Call)
		})
		*walls = append(*walls, float64(time.Since(start))/float64(block))
		*cpus = append(*cpus, cpu)
		return err
	}
	for i := 0; i < n || len(bc) == 0; i += 2 * block {
		if err := measure(base, &bc, &bw); err != nil {
			return Turns{}, err
		}
		if err := measure(subject, &sc, &sw); err != nil {
			return Turns{}, err
		}
	}
	return Turns{BaseCPU: median(bc), SubjectCPU: median(sc), BaseWall: median(bw), SubjectWall: median(sw)}, nil
}

func median(v []float64) float64 {
	slices.Sort(v)
	return v[len(v)/2]
}

// Parallel makes n calls of call from workers goroutines (the calls' i
// run 0 to n-1 across them) and returns the process's CPU time per call,
// 0 where the platform has no such clock, and the calls' errors: a worker
// stops at its first.
func Parallel(workers, n int, call func(i int) error) (float64, error) {
	cpu0, ok := cputime.Process()
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range n/workers + min(1, max(0, n%workers-w)) {
				if err := call(i*workers + w); err != nil {
					errs[w] = err
					return
				}
			}
		})
	}
	wg.Wait()
	cpu1, ok1 := cputime.Process()
	if !ok || !ok1 || n == 0 {
		return 0, errors.Join(errs...)
	}
	return float64(cpu1-cpu0) / float64(n), errors.Join(errs...)
}

// Interleaved alternates blocks of block calls of base and of subject on
// the calling goroutine, locked to its thread, until they have made n
// calls in all (at least one block each), and returns the median CPU time
// of the thread per call of each: other processes on a busy machine
// inflate that far less than the wall clock or a process's CPU from many
// goroutines. ok is false where the platform has no thread clock; err is
// the first call's error, which ends the run.
func Interleaved(n, block int, base, subject func(i int) error) (mb, ms float64, ok bool, err error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var bs, ss []float64
	i := 0
	measure := func(call func(int) error) (float64, error) {
		cpu0, _ := cputime.Thread()
		for range block {
			if err := call(i); err != nil {
				return 0, err
			}
			i++
		}
		cpu1, _ := cputime.Thread()
		return float64(cpu1-cpu0) / float64(block), nil
	}
	for i < n || len(bs) == 0 {
		b, err := measure(base)
		if err != nil {
			return 0, 0, false, err
		}
		s, err := measure(subject)
		if err != nil {
			return 0, 0, false, err
		}
		bs, ss = append(bs, b), append(ss, s)
	}
	if _, ok := cputime.Thread(); !ok {
		return 0, 0, false, nil
	}
	return median(bs), median(ss), true, nil
}
