package routerlib

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgreplication/terraform-provider-pgreplication/internal/sqllex"
)

// A writerTx is a transaction [Router.BeginTx] started on the writer. When
// its connection fails (the node stopped answering and the router cut it
// off, the Router was closed, the server ended the session, the network
// broke), its errors say so, on which node, and whether the transaction
// may have committed: a failed Commit may have ([ErrMaybeCommitted], as a
// write through the Router itself), a statement before it has not (the
// server rolls back a transaction whose connection is gone), unless that
// statement was itself a COMMIT. pgx's own Tx says only that the
// connection closed, which leaves a caller who must not write twice
// nothing to go on.
type writerTx struct {
	pgx.Tx
	r *Router
	n *node
}

// failed returns err, a failure of the transaction's statement sql (or of
// its Commit, when commits), as the caller must see it.
func (tx *writerTx) failed(ctx context.Context, err error, sql string, commits bool) error {
	if err == nil || ctx.Err() != nil || !nodeFault(err) || notSent(err) {
		return err
	}
	var cause error
	if tx.r.closed.Load() {
		cause = ErrClosed
	} else {
		cause = tx.n.conns.cause()
	}
	if commits || endsTx(sql) {
		return maybeCommitted(tx.n.name, "a transaction's COMMIT", cause, err)
	}
	if cause != nil {
		return fmt.Errorf("routerlib: node %q stopped answering (%w) during a transaction, which did not commit (its connection is closed): %w", tx.n.name, cause, err)
	}
	return fmt.Errorf("routerlib: node %q failed during a transaction, which did not commit (its connection is closed): %w", tx.n.name, err)
}

// endsTx reports whether sql, sent in a transaction, ends it with a
// COMMIT (COMMIT, END, or PREPARE TRANSACTION, which makes it durable):
// any of its statements, since a string of several ("INSERT …; COMMIT",
// one simple query) commits at the one that does.
func endsTx(sql string) bool {
	lx := sqllex.New(sql)
	start := true // the next token begins a statement
	for tok := lx.Next(); tok.Kind != sqllex.EOF; tok = lx.Next() {
		if start {
			switch {
			case tok.Is("commit"), tok.Is("end"):
				return true
			case tok.Is("prepare"):
				if tok = lx.Next(); tok.Is("transaction") {
					return true
				}
			}
		}
		start = tok.Kind == sqllex.Punct && tok.Text == ";"
	}
	return false
}

func (tx *writerTx) Commit(ctx context.Context) error {
	return tx.failed(ctx, tx.Tx.Commit(ctx), "", true)
}

func (tx *writerTx) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	tag, err := tx.Tx.Exec(ctx, sql, args...)
	return tag, tx.failed(ctx, err, sql, false)
}

func (tx *writerTx) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	rows, err := tx.Tx.Query(ctx, sql, args...)
	if err != nil {
		return rows, tx.failed(ctx, err, sql, false)
	}
	return &writerTxRows{Rows: rows, tx: tx, ctx: ctx, sql: sql}, nil
}

func (tx *writerTx) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	rows, err := tx.Query(ctx, sql, args...)
	if err != nil {
		return errRow{err}
	}
	return writerTxRow{rows}
}

// writerTxRows are the rows of a writerTx's Query, whose failure shows in
// Err.
type writerTxRows struct {
	pgx.Rows
	tx  *writerTx
	ctx context.Context
	sql string
}

func (w *writerTxRows) Err() error { return w.tx.failed(w.ctx, w.Rows.Err(), w.sql, false) }

// writerTxRow is a writerTx's QueryRow.
type writerTxRow struct{ rows pgx.Rows }

func (r writerTxRow) Scan(dest ...any) error { return scanRow(r.rows, dest) }
