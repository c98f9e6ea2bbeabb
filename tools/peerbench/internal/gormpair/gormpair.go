// Package gormpair sets up what peerbench and its callcount command both
// measure: the tables on a routertest topology, and GORM reading through
// GORM's dbresolver and through GORM on routerlib/stdlib, with the same
// pool sizes and connection lifetimes, so that the two tools measure the
// same set-up.
package gormpair

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
	"gorm.io/plugin/dbresolver"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/stdlib"
)

const (
	// Rows is how many books bench_books holds.
	Rows = 1000
	// MaxConns is every pool's size.
	MaxConns = 8
	// ConnLifetime is every read pool's connection lifetime (pgxpool's
	// default, and the router file's).
	ConnLifetime = time.Hour
)

// Setup creates the tables on topo's primary (bench_books with Rows books;
// bench_writes and bench_gorm_writes empty) and waits until the standbys
// have replayed them.
func Setup(ctx context.Context, topo *routertest.Topology) error {
	for _, q := range []string{
		"CREATE TABLE bench_books (id int PRIMARY KEY, title text NOT NULL)",
		fmt.Sprintf("INSERT INTO bench_books SELECT g, 'title ' || g FROM generate_series(1, %d) g", Rows),
		"CREATE TABLE bench_writes (id bigserial PRIMARY KEY, v int)",
		"CREATE TABLE bench_gorm_writes (v int NOT NULL)",
	} {
		if err := topo.Primary.Exec(ctx, q); err != nil {
			return err
		}
	}
	return topo.WaitReplayed(ctx)
}

// Router opens a Router on a with the pools set as dbresolver's (MaxConns,
// ConnLifetime: database/sql keeps a connection forever by default, and
// then skips the clock read that checks its age) and read-your-writes.
func Router(ctx context.Context, a artifact.Topology) (*routerlib.Router, error) {
	a.Pool = artifact.Pool{MaxConns: MaxConns, MaxConnLifetime: artifact.Duration(ConnLifetime.String())}
	a.Consistency = artifact.Consistency{Mode: artifact.ModeReadYourWrites}
	return routerlib.New(ctx, a)
}

// Open opens the two GORM contenders: dbresolver sending writes to primary
// and reads round-robin to standbys, and GORM on routerlib/stdlib over r,
// its *sql.DB keeping idle connections. close closes the latter's *sql.DB.
func Open(primary string, standbys []string, r *routerlib.Router, idle int) (resolver, routed *gorm.DB, close func() error, err error) {
	resolver, err = gorm.Open(postgres.Open(primary), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		return nil, nil, nil, err
	}
	replicas := make([]gorm.Dialector, len(standbys))
	for i, s := range standbys {
		replicas[i] = postgres.Open(s)
	}
	err = resolver.Use(dbresolver.Register(dbresolver.Config{Replicas: replicas, Policy: dbresolver.RoundRobinPolicy()}).
		SetMaxOpenConns(MaxConns).SetMaxIdleConns(MaxConns).SetConnMaxLifetime(ConnLifetime))
	if err != nil {
		return nil, nil, nil, err
	}
	sqlDB := sql.OpenDB(stdlib.NewConnector(r))
	sqlDB.SetMaxIdleConns(idle)
	routed, err = gorm.Open(postgres.New(postgres.Config{Conn: sqlDB}), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		return nil, nil, nil, errors.Join(err, sqlDB.Close())
	}
	return resolver, routed, sqlDB.Close, nil
}

// Read reads the title of book i%Rows+1 through db.
func Read(ctx context.Context, db *gorm.DB, i int) error {
	var b struct{ Title string }
	return db.WithContext(ctx).Table("bench_books").Select("title").Where("id = ?", i%Rows+1).Take(&b).Error
}

// Write inserts i into bench_gorm_writes through db.
func Write(ctx context.Context, db *gorm.DB, i int) error {
	return db.WithContext(ctx).Table("bench_gorm_writes").Create(&struct{ V int }{V: i}).Error
}
