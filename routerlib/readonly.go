package routerlib

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// A replica's read pool asks for default_transaction_read_only=on in its
// startup packet, so that a write the classifier cannot see (a
// user-defined function that inserts) fails with 25006 and runs on the
// primary instead. A pooler in front of the server may drop that
// parameter: PgBouncer in transaction mode refuses startup parameters it
// does not know unless they are in ignore_startup_parameters, and then
// ignores them, and its server sessions are shared with the write pool.
// On a standby the server refuses writes anyway (it is in recovery); the
// parameter matters once the standby is promoted by someone else, before
// the router's next check sees it: through the pooler its read pool
// takes writes, on a node the router does not call primary.
//
// The server reports the parameter's value to the client (ParameterStatus;
// PostgreSQL 14 on), so the read pool sees at connect whether it stuck:
// PgBouncer passes on the value of its own server session, "off". Then
// each read on that pool is sent with set_config('transaction_read_only',
// 'on', true) before it, in the same pipeline and implicit transaction
// (one Sync): no round trip more, and the read's transaction is read only
// whichever server session the pooler lends it. (SET TRANSACTION would do
// the same with a warning sent back on every read.)

// readOnlyLost reports whether conn, of a read pool, runs without
// default_transaction_read_only: the server reports it off, so something
// between (a pooler) dropped the startup parameter. A server that does not
// report it (before PostgreSQL 14) is taken at its word.
func readOnlyLost(conn *pgx.Conn) bool {
	return conn.PgConn().ParameterStatus("default_transaction_read_only") == "off"
}

// readOnlyStatement makes the rest of the implicit transaction read only.
const readOnlyStatement = "SELECT pg_catalog.set_config('transaction_read_only', 'on', true)"

// readOnlyBatch queues readOnlyStatement, then sql: one Sync, so one
// implicit transaction, read only.
func readOnlyBatch(sql string, args []any) *pgx.Batch {
	b := &pgx.Batch{}
	b.Queue(readOnlyStatement)
	b.Queue(sql, args...)
	return b
}

// withQueryOptions reports whether args begin with an option pgx applies
// to one query (QueryExecMode, result formats) but not to a query in a
// batch, where it would be taken for an argument: such a call runs in a
// read-only transaction of its own (two round trips more) instead.
func withQueryOptions(args []any) bool {
	if len(args) == 0 {
		return false
	}
	switch args[0].(type) {
	case pgx.QueryExecMode, pgx.QueryResultFormats, pgx.QueryResultFormatsByOID:
		return true
	}
	return false
}

// queryReadOnly runs sql on conn in a read-only transaction, in one round
// trip: readOnlyStatement, then sql, before one Sync (a pgx batch); with
// per-query options (see withQueryOptions), in BEGIN READ ONLY … ROLLBACK.
func queryReadOnly(ctx context.Context, conn *pgx.Conn, sql string, args []any) (pgx.Rows, error) {
	if withQueryOptions(args) {
		tx, err := conn.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
		if err != nil {
			return nil, err
		}
		rows, err := tx.Query(ctx, sql, args...)
		if err != nil {
			_ = tx.Rollback(ctx)
			return nil, err
		}
		return &readOnlyRows{Rows: rows, tx: tx, ctx: ctx}, nil
	}
	br := conn.SendBatch(ctx, readOnlyBatch(sql, args))
	if _, err := br.Exec(); err != nil {
		br.Close()
		return nil, err
	}
	rows, err := br.Query()
	if err != nil {
		br.Close()
		return nil, err
	}
	return &readOnlyRows{Rows: rows, br: br}, nil
}

// readOnlyRows are the rows of queryReadOnly: closing them ends the batch,
// which holds the connection until then.
type readOnlyRows struct {
	pgx.Rows
	br  pgx.BatchResults
	tx  pgx.Tx // or the transaction, with ctx, its rows' context
	ctx context.Context
	err error // from ending the batch or the transaction
}

func (r *readOnlyRows) Next() bool {
	if r.Rows.Next() {
		return true
	}
	r.Close()
	return false
}

func (r *readOnlyRows) Close() {
	r.Rows.Close()
	if r.br != nil {
		r.err = r.br.Close()
		r.br = nil
	}
	if r.tx != nil {
		r.err = r.tx.Rollback(r.ctx) // read only: nothing to commit
		r.tx = nil
	}
}

func (r *readOnlyRows) Err() error {
	if err := r.Rows.Err(); err != nil {
		return err
	}
	return r.err
}

// execOn runs sql on a connection from pool, as [pgxpool.Pool.Exec] does,
// in a read-only transaction when pool is s's read pool and its sessions
// lost default_transaction_read_only. With after set, a read-pool session
// is one whose connect started after it (see newSession).
func execOn(ctx context.Context, pool *pgxpool.Pool, sql string, args []any, s *server, after int64) (pgconn.CommandTag, error) {
	if pool != s.readPool.Load() {
		c, gen, err := s.acquire(ctx, pool) // waits for room on the writer alone (awaitsRoom)
		if err != nil {
			return pgconn.CommandTag{}, &unacquired{err}
		}
		defer s.release(pool, c, gen)
		return c.Conn().Exec(ctx, sql, args...)
	}
	c, gen, err := s.newSession(ctx, pool, after)
	if err != nil {
		return pgconn.CommandTag{}, &unacquired{err}
	}
	defer s.kept.release(c, gen)
	switch {
	case !s.readOnlyLost.Load():
		return c.Conn().Exec(ctx, sql, args...)
	case len(args) == 0:
		// What pgx's Exec sends without arguments: a simple query, which
		// may hold several statements, run in one implicit transaction.
		results, err := c.Conn().PgConn().Exec(ctx, readOnlyStatement+";\n"+sql).ReadAll()
		if err != nil {
			return pgconn.CommandTag{}, err
		}
		return results[len(results)-1].CommandTag, nil
	case withQueryOptions(args):
		tx, err := c.Conn().BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
		if err != nil {
			return pgconn.CommandTag{}, err
		}
		defer func() { _ = tx.Rollback(ctx) }() // read only: nothing to commit
		return tx.Exec(ctx, sql, args...)
	}
	br := c.Conn().SendBatch(ctx, readOnlyBatch(sql, args))
	defer br.Close()
	if _, err := br.Exec(); err != nil {
		return pgconn.CommandTag{}, err
	}
	return br.Exec()
}

// sendReadBatch sends b, a batch of reads, to tg (a replica's read pool,
// or a read-write session the read falls back to), as
// [pgxpool.Pool.SendBatch] does, b itself left as the caller queued it
// (sendable); its results are a resendBatch, sent again when the server
// had ended its session as idle.
func (r *Router) sendReadBatch(ctx context.Context, t *topology, tg target, b *pgx.Batch, readOnlyTx bool) pgx.BatchResults {
	rb := &resendBatch{r: r, ctx: ctx, n: tg.n, pool: tg.pool, readOnlyTx: readOnlyTx, max: maxAttempts(t)}
	rb.send(sendable(b))
	return rb
}

// send sends b on a connection of the batch's pool, with
// readOnlyStatement first when the pool is its node's read pool and its
// sessions lost default_transaction_read_only: the whole batch is one
// implicit transaction (one Sync), read only. A batch that begins a
// read-only transaction (readOnlyTx) needs no such statement: its BEGIN
// makes it read only. The connection goes back to the pool when the
// results are closed or, for a batch that begins a transaction
// ([pgx.Batch.BeginTx]), when that transaction ends. A connection the
// batch did not get is marked unacquired: nothing was sent.
func (rb *resendBatch) send(b *pgx.Batch) {
	rb.b = b
	s := rb.n.server
	readPool := rb.pool == s.readPool.Load()
	var c *pgxpool.Conn
	var err error
	done := func() {}
	if readPool {
		done = s.kept.direct() // the batch holds its connection past its return
	}
	if rb.after != 0 {
		if c, _, err = s.newSession(rb.ctx, rb.pool, rb.after); err != nil {
			err = &unacquired{err}
		}
	} else if readPool {
		c, err = acquireConn(rb.ctx, rb.pool)
	} else if c, _, err = s.acquire(rb.ctx, rb.pool); err != nil { // waits for room on the writer alone (awaitsRoom)
		err = &unacquired{err}
	}
	done()
	if err != nil {
		rb.failSending(b, err)
		return
	}
	if rb.readOnlyTx || !readPool || !s.readOnlyLost.Load() {
		br := c.Conn().SendBatch(rb.ctx, b)
		if tx := br.Tx(); tx != nil {
			// The caller may hold the Tx from the first sending: a new
			// sending changes what it holds.
			if rb.tx == nil {
				rb.tx = &releasingTx{}
			}
			rb.tx.Tx, rb.tx.c = tx, c
			rb.BatchResults = br
			return
		}
		rb.BatchResults = &releasingBatch{BatchResults: br, c: c}
		return
	}
	ro := &pgx.Batch{QueuedQueries: make([]*pgx.QueuedQuery, 0, len(b.QueuedQueries)+1)}
	ro.Queue(readOnlyStatement)
	ro.QueuedQueries = append(ro.QueuedQueries, b.QueuedQueries...)
	br := &releasingBatch{BatchResults: c.Conn().SendBatch(rb.ctx, ro), c: c}
	if _, err := br.Exec(); err != nil {
		br.Close()
		rb.BatchResults = pgx.FailedBatchResults(b, err)
		return
	}
	rb.BatchResults = br
}

// failSending makes b's results, and its transaction if it begins one,
// fail with err: the sending got no connection, or no node to go to.
func (rb *resendBatch) failSending(b *pgx.Batch, err error) {
	rb.BatchResults = pgx.FailedBatchResults(b, err)
	if rb.BatchResults.Tx() != nil {
		// b begins a transaction, which the caller may hold already
		// from the first sending (on a session since released): now
		// one that never began, saying why.
		if rb.tx == nil {
			rb.tx = &releasingTx{}
		}
		rb.tx.release()
		rb.tx.Tx = unbegunTx{Tx: rb.BatchResults.Tx(), err: rb.unbegun(err)}
	}
}

// unbegun is the error of the transaction a batch begins
// ([pgx.Batch.BeginTx]) when the batch got no connection (err): it names
// the node, and why, and matches [pgx.ErrTxClosed].
func (rb *resendBatch) unbegun(err error) error {
	if rb.attempts > 0 {
		return fmt.Errorf("routerlib: node %q had ended the session of the batch that begins this transaction (idle_session_timeout, or terminated) before it ran, and sending the batch again got no connection, so the transaction never began (%w): %w", rb.n.name, pgx.ErrTxClosed, err)
	}
	return fmt.Errorf("routerlib: the batch that begins this transaction got no connection to node %q, so the transaction never began (%w): %w", rb.n.name, pgx.ErrTxClosed, err)
}

// unbegunTx is the transaction of a batch that got no connection: each
// call fails with err (see resendBatch.unbegun). Tx is pgx's closed one,
// for Conn (nil) and LargeObjects.
type unbegunTx struct {
	pgx.Tx
	err error
}

func (tx unbegunTx) Begin(context.Context) (pgx.Tx, error) { return nil, tx.err }

func (tx unbegunTx) Commit(context.Context) error { return tx.err }

func (tx unbegunTx) Rollback(context.Context) error { return tx.err }

func (tx unbegunTx) CopyFrom(context.Context, pgx.Identifier, []string, pgx.CopyFromSource) (int64, error) {
	return 0, tx.err
}

func (tx unbegunTx) SendBatch(_ context.Context, b *pgx.Batch) pgx.BatchResults {
	return pgx.FailedBatchResults(b, tx.err)
}

func (tx unbegunTx) Prepare(context.Context, string, string) (*pgconn.StatementDescription, error) {
	return nil, tx.err
}

func (tx unbegunTx) Exec(context.Context, string, ...any) (pgconn.CommandTag, error) {
	return pgconn.CommandTag{}, tx.err
}

func (tx unbegunTx) Query(context.Context, string, ...any) (pgx.Rows, error) {
	return errRows{tx.err}, tx.err
}

func (tx unbegunTx) QueryRow(context.Context, string, ...any) pgx.Row { return errRow{tx.err} }

// releasingBatch releases its connection to the pool once closed.
type releasingBatch struct {
	pgx.BatchResults
	c *pgxpool.Conn
}

// Close closes the results and releases the connection, also when a
// handler of the application's cuts the Close (a panic or a Goexit mid-
// reply: see closeOnPanic): the pool then closes the connection, busy,
// instead of losing its slot for good.
func (b *releasingBatch) Close() error {
	defer b.release()
	return b.BatchResults.Close()
}

func (b *releasingBatch) release() {
	if b.c != nil {
		b.c.Release()
		b.c = nil
	}
}

// releasingTx releases its connection to the pool once it ends (Commit or
// Rollback, failed or not), as [pgxpool.Tx] does.
type releasingTx struct {
	pgx.Tx
	c *pgxpool.Conn
}

func (tx *releasingTx) Commit(ctx context.Context) error {
	err := tx.Tx.Commit(ctx)
	tx.release()
	return err
}

func (tx *releasingTx) Rollback(ctx context.Context) error {
	err := tx.Tx.Rollback(ctx)
	tx.release()
	return err
}

func (tx *releasingTx) release() {
	if tx.c != nil {
		tx.c.Release()
		tx.c = nil
	}
}
