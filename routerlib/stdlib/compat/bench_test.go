package compat_test

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
	"gorm.io/plugin/dbresolver"

	"github.com/pgreplication/terraform-provider-pgreplication/internal/cpubench"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/stdlib"
)

// BenchmarkGORMVsDBResolver runs the peer benchmark's GORM read (one
// column by primary key, tools/peerbench) through dbresolver round-robin
// over both standbys and through GORM on a Router in read_your_writes mode,
// each with pools of 8 connections that live an hour, as peerbench sets
// them. The first two run it from 8 goroutines and report allocations and
// the process's CPU time per query. The interleaved run alternates blocks
// of each on one locked goroutine (b.N queries in all) and reports the
// median CPU time of its thread per query and their ratio, which other
// processes on a busy machine inflate far less than the wall clock.
// Target: a ratio ≤ 1.
func BenchmarkGORMVsDBResolver(b *testing.B) {
	benchmarkGORMVsDBResolver(b, func(f func(context.Context) error) error { return f(context.Background()) })
}

// BenchmarkGORMVsDBResolverRequestContext is BenchmarkGORMVsDBResolver
// with each read given a context of its own that can be cancelled, as a
// server gives each request's handler: database/sql then watches it from
// a goroutine for each read, and pgconn registers with it.
func BenchmarkGORMVsDBResolverRequestContext(b *testing.B) {
	type requestKey struct{}
	base := context.WithValue(context.Background(), requestKey{}, "request")
	benchmarkGORMVsDBResolver(b, func(f func(context.Context) error) error {
		ctx, cancel := context.WithCancel(base)
		defer cancel()
		return f(ctx)
	})
}

// benchmarkGORMVsDBResolver runs the read both ways, each read in the
// context that with gives it.
func benchmarkGORMVsDBResolver(b *testing.B, with func(func(context.Context) error) error) {
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
	}).SetMaxOpenConns(workers).SetMaxIdleConns(workers).SetConnMaxLifetime(time.Hour))
	if err != nil {
		b.Fatal(err)
	}
	a := topo.Artifact()
	a.Pool = artifact.Pool{MaxConns: workers, MaxConnLifetime: "1h"} // dbresolver's too, as peerbench sets them
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

	read := func(db *gorm.DB) func(int) error {
		return func(i int) error {
			return with(func(ctx context.Context) error {
				var book struct{ Title string }
				return db.WithContext(ctx).Table("bench_books").Select("title").Where("id = ?", i%1000+1).Take(&book).Error
			})
		}
	}
	cpubench.Compare(b, workers, 4*workers, cpubench.Contender{Name: "dbresolver", Call: read(resolver)}, cpubench.Contender{Name: "routerlib", Call: read(routed)})
}
