// Package pgxpool is the move from pgx's multi-host connection string with
// target_session_attrs to routerlib: the query surface is the same, so the
// change is the line that opens the pool. docs/guides/from-gorm-dbresolver-and-pgx.md
// shows it; pool_test.go runs both against real servers.
package pgxpool

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
)

// DB is what the application's code takes: pgxpool.Pool and
// routerlib.Router both have it, and so does sqlc's generated DBTX.
type DB interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Before: one pool whose connections all go to the first standby that
// answers (or, with target_session_attrs=read-write, all to the primary).
func OpenBefore(ctx context.Context, dsn string) (*pgxpool.Pool, error) {
	return pgxpool.New(ctx, dsn) // "host=db1,db2,db3 ... target_session_attrs=prefer-standby"
}

// After: each statement to the node it needs, from the router file.
func OpenAfter(ctx context.Context, routerFile string) (*routerlib.Router, error) {
	return routerlib.Open(ctx, routerFile)
}

// AddBook and CountBooks are the application's code, unchanged.
func AddBook(ctx context.Context, db DB, title string) error {
	_, err := db.Exec(ctx, "INSERT INTO books (title) VALUES ($1)", title)
	return err
}

// CountBooks is a read.
func CountBooks(ctx context.Context, db DB) (int64, error) {
	var n int64
	err := db.QueryRow(ctx, "SELECT count(*) FROM books").Scan(&n)
	return n, err
}
