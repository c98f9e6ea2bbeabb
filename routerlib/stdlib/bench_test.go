package stdlib_test

import (
	"context"
	"database/sql"
	"runtime"
	"slices"
	"sync"
	"testing"

	"github.com/pgreplication/terraform-provider-pgreplication/internal/cputime"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// BenchmarkQueryVsPgxStdlib runs the same point read through pgx's own
// database/sql driver on replica-1 and through this package on a Router
// whose only replica is replica-1 (in read_your_writes mode, as the peer
// benchmark runs it). The first two run it from 8 goroutines, as the peer
// benchmark does, and report allocations and the process's CPU time per
// query. The interleaved run alternates blocks of each on one goroutine
// and reports the median CPU time of its thread per query and their ratio:
// other processes on a busy machine inflate that far less than the wall
// clock or the process's CPU from many goroutines. Target: a ratio ≤ 1.
func BenchmarkQueryVsPgxStdlib(b *testing.B) {
	topo := routertest.Shared(b)
	ctx := context.Background()
	const workers = 8
	direct := pgxStdlibDB(b, topo.Standbys[0])
	direct.SetMaxIdleConns(workers)
	a := topo.Artifact()
	a.Nodes = a.Nodes[:2] // the primary and replica-1: every read goes to replica-1
	a.Pool = artifact.Pool{MaxConns: workers}
	a.Consistency = artifact.Consistency{Mode: artifact.ModeReadYourWrites}
	routed, _ := openDB(b, a)
	routed.SetMaxIdleConns(workers)
	const query = "SELECT $1::int + 1, 'a title'::text"
	read := func(db *sql.DB) error {
		var n int
		var title string
		return db.QueryRowContext(ctx, query, 41).Scan(&n, &title)
	}
	// parallel runs n queries from the workers and returns the CPU time
	// they took per query.
	parallel := func(b *testing.B, db *sql.DB, n int) float64 {
		cpu0, ok := cputime.Process()
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				for range n/workers + min(1, max(0, n%workers-w)) {
					if err := read(db); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		cpu1, ok1 := cputime.Process()
		if !ok || !ok1 {
			return 0
		}
		return float64(cpu1-cpu0) / float64(n)
	}
	run := func(db *sql.DB) func(b *testing.B) {
		return func(b *testing.B) {
			parallel(b, db, workers) // the connections and their statement caches
			b.ReportAllocs()
			b.ResetTimer()
			b.ReportMetric(parallel(b, db, b.N), "cpu-ns/op")
		}
	}
	b.Run("pgx-stdlib", run(direct))
	b.Run("routerlib-stdlib", run(routed))
	b.Run("interleaved", func(b *testing.B) {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		const block = 100
		var base, subject []float64
		measure := func(db *sql.DB) float64 {
			cpu0, _ := cputime.Thread()
			for range block {
				if err := read(db); err != nil {
					b.Fatal(err)
				}
			}
			cpu1, _ := cputime.Thread()
			return float64(cpu1-cpu0) / block
		}
		for b.Loop() {
			base = append(base, measure(direct))
			subject = append(subject, measure(routed))
		}
		if _, ok := cputime.Thread(); !ok {
			return
		}
		median := func(v []float64) float64 {
			slices.Sort(v)
			return v[len(v)/2]
		}
		mb, ms := median(base), median(subject)
		b.ReportMetric(mb, "pgx-stdlib-cpu-ns/query")
		b.ReportMetric(ms, "routerlib-stdlib-cpu-ns/query")
		b.ReportMetric(ms/mb, "ratio")
	})
}
