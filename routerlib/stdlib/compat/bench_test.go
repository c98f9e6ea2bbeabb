package compat_test

import (
	"context"
	"database/sql"
	"runtime"
	"slices"
	"sync"
	"testing"

	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
	"gorm.io/plugin/dbresolver"

	"github.com/pgreplication/terraform-provider-pgreplication/internal/cputime"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/stdlib"
)

// BenchmarkGORMVsDBResolver runs the peer benchmark's GORM read (one
// column by primary key, tools/peerbench) through dbresolver round-robin
// over both standbys and through GORM on a Router in read_your_writes mode,
// each with pools of 8 connections as peerbench sets them. The first two
// run it from 8 goroutines and report allocations and the process's CPU
// time per query. The interleaved run alternates blocks of each on one
// locked goroutine (b.N queries in all) and reports the median CPU time of
// its thread per query and their ratio, which other processes on a busy machine inflate far less
// than the wall clock. Target: a ratio ≤ 1.
func BenchmarkGORMVsDBResolver(b *testing.B) {
	topo := routertest.Shared(b)
	ctx := context.Background()
	const workers = 8
	for _, q := range []string{
		"CREATE TABLE IF NOT EXISTS bench_books (id int PRIMARY KEY, title text NOT NULL)",
		"INSERT INTO bench_books SELECT g, 'title ' || g FROM generate_series(1, 1000) g ON CONFLICT DO NOTHING",
	} {
		if err := topo.Primary.Exec(ctx, q); err != nil {
			b.Fatal(err)
		}
	}
	waitReplayed(b, topo)

	resolver, err := gorm.Open(postgres.Open(topo.Primary.DSN()), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		b.Fatal(err)
	}
	err = resolver.Use(dbresolver.Register(dbresolver.Config{
		Replicas: []gorm.Dialector{postgres.Open(topo.Standbys[0].DSN()), postgres.Open(topo.Standbys[1].DSN())},
		Policy:   dbresolver.RoundRobinPolicy(),
	}).SetMaxOpenConns(workers).SetMaxIdleConns(workers))
	if err != nil {
		b.Fatal(err)
	}
	a := topo.Artifact()
	a.Pool = artifact.Pool{MaxConns: workers}
	a.Consistency = artifact.Consistency{Mode: artifact.ModeReadYourWrites}
	r, err := routerlib.New(ctx, a)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(r.Close)
	sqlDB := sql.OpenDB(stdlib.NewConnector(r))
	sqlDB.SetMaxIdleConns(workers)
	b.Cleanup(func() { sqlDB.Close() })
	routed, err := gorm.Open(postgres.New(postgres.Config{Conn: sqlDB}), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		b.Fatal(err)
	}

	read := func(db *gorm.DB, i int) error {
		var book struct{ Title string }
		return db.WithContext(ctx).Table("bench_books").Select("title").Where("id = ?", i%1000+1).Take(&book).Error
	}
	parallel := func(b *testing.B, db *gorm.DB, n int) float64 {
		cpu0, ok := cputime.Process()
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				for i := range n/workers + min(1, max(0, n%workers-w)) {
					if err := read(db, i*workers+w); err != nil {
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
	run := func(db *gorm.DB) func(b *testing.B) {
		return func(b *testing.B) {
			parallel(b, db, 4*workers) // the connections and their statement caches
			b.ReportAllocs()
			b.ResetTimer()
			b.ReportMetric(parallel(b, db, b.N), "cpu-ns/op")
		}
	}
	b.Run("dbresolver", run(resolver))
	b.Run("routerlib", run(routed))
	b.Run("interleaved", func(b *testing.B) {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		const block = 100
		var base, subject []float64
		i := 0
		measure := func(db *gorm.DB) float64 {
			cpu0, _ := cputime.Thread()
			for range block {
				if err := read(db, i); err != nil {
					b.Fatal(err)
				}
				i++
			}
			cpu1, _ := cputime.Thread()
			return float64(cpu1-cpu0) / block
		}
		for done := 0; done < b.N; done += 2 * block {
			base = append(base, measure(resolver))
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
		b.ReportMetric(mb, "dbresolver-cpu-ns/query")
		b.ReportMetric(ms, "routerlib-cpu-ns/query")
		b.ReportMetric(ms/mb, "ratio")
	})
}
