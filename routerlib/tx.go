package routerlib

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgreplication/terraform-provider-pgreplication/internal/sqllex"
)

// A writerTx is a transaction [Router.BeginTx] started on the writer, or
// a savepoint of one (its Begin). When its connection fails (the node
// stopped answering and the router cut it off, the Router was closed, the
// server ended the session, the network broke), its errors say so, on
// which node, and whether the transaction may have committed: a failed
// Commit may have ([ErrMaybeCommitted], as a write through the Router
// itself), and so may a statement or batch that holds a COMMIT, and the
// Rollback after it; any other statement, batch, CopyFrom, Prepare,
// savepoint or Rollback says the transaction did not commit (the server
// rolls back a transaction whose connection is gone). pgx's own Tx says
// only that the connection closed, which leaves a caller who must not
// write twice nothing to go on. What runs through Conn() or LargeObjects()
// goes around it: pgx gives no way to wrap those.
type writerTx struct {
	pgx.Tx
	r         *Router
	n         *node
	savepoint bool  // its Commit releases a savepoint, which commits nothing
	sent      *bool // a COMMIT went out and its answer never came; shared with the savepoints
}

func newWriterTx(tx pgx.Tx, r *Router, n *node) *writerTx {
	return &writerTx{Tx: tx, r: r, n: n, sent: new(bool)}
}

// failed returns err, a failure of the transaction's statement sql (or of
// its Commit, or of a batch holding a COMMIT, when commits), as the caller
// must see it. Once the connection has failed the transaction is over,
// whether or not the failed call itself reached the server: it committed
// only if a COMMIT did.
func (tx *writerTx) failed(ctx context.Context, err error, sql string, commits bool) error {
	if err == nil {
		return nil
	}
	switch f := failureOf(ctx, err); f {
	case failServer, failContext:
		return err
	case failCut:
		// The caller's deadline or cancel: a COMMIT that went out may
		// have committed all the same (see cutByCaller).
		if commits || endsTx(sql) || *tx.sent {
			*tx.sent = true
			return callerCut(ctx, tx.n.name, "a transaction's COMMIT", err)
		}
		return err
	case failSent:
		// A session the server had ended as idle ran nothing sent on
		// it (idleSessionEnded), a COMMIT no more than the rest: a
		// batch that begins a transaction and commits it met one.
		if commits || endsTx(sql) {
			*tx.sent = true
		}
	}
	var cause error
	if tx.r.closed.Load() {
		cause = ErrClosed
	} else if cause = cutCause(tx.Conn().PgConn()); cause == nil {
		cause = tx.n.conns.cause()
	}
	if *tx.sent {
		return maybeCommitted(tx.n.name, "a transaction's COMMIT", cause, err)
	}
	if cause != nil {
		return fmt.Errorf("routerlib: node %q %s (%w) during a transaction, which did not commit (its connection is closed): %w", tx.n.name, cutReason(cause), cause, err)
	}
	return fmt.Errorf("routerlib: node %q failed during a transaction, which did not commit (its connection is closed): %w", tx.n.name, err)
}

// endsTx reports whether sql, sent in a transaction, ends it with a
// COMMIT (COMMIT, END, or PREPARE TRANSACTION, which makes it durable):
// any of its statements, since a string of several ("INSERT …; COMMIT",
// one simple query) commits at the one that does. The END that closes a
// SQL-standard function body (CREATE FUNCTION … BEGIN ATOMIC …; END)
// follows a semicolon too, and ends nothing: each BEGIN ATOMIC is
// matched with its END.
func endsTx(sql string) bool {
	lx := sqllex.New(sql)
	start := true // the next token begins a statement
	atomic := 0   // BEGIN ATOMIC bodies open
	var prev sqllex.Token
	for tok := lx.Next(); tok.Kind != sqllex.EOF; tok = lx.Next() {
		if start {
			switch {
			case tok.Is("end") && atomic > 0:
				atomic--
			case tok.Is("commit"), tok.Is("end"):
				return true
			case tok.Is("prepare"):
				if tok = lx.Next(); tok.Is("transaction") {
					return true
				}
			}
		}
		if tok.Is("atomic") && prev.Is("begin") {
			atomic++
		}
		start = tok.Kind == sqllex.Punct && tok.Text == ";"
		prev = tok
	}
	return false
}

// readOnlyBegin reports whether sql, one statement, begins a read-only
// transaction a hot standby can run: BEGIN or START TRANSACTION with READ
// ONLY, and neither SERIALIZABLE (a standby refuses it) nor READ WRITE.
// pgx's Batch.BeginTx with pgx.ReadOnly queues such a statement.
func readOnlyBegin(sql string) bool {
	lx := sqllex.New(sql)
	switch tok := lx.Next(); {
	case tok.Is("begin"):
	case tok.Is("start"):
		if !lx.Next().Is("transaction") {
			return false
		}
	default:
		return false
	}
	readOnly := false
	var prev sqllex.Token
	for tok := lx.Next(); tok.Kind != sqllex.EOF; tok = lx.Next() {
		switch {
		case tok.Kind == sqllex.Punct && tok.Text == ";":
			return readOnly && lx.Next().Kind == sqllex.EOF && !lx.Broken()
		case tok.Is("serializable"), tok.Is("write"):
			return false
		case tok.Is("only") && prev.Is("read"):
			readOnly = true
		}
		prev = tok
	}
	return readOnly && !lx.Broken()
}

// endsReadOnlyTx reports whether sql, one statement, is the COMMIT or
// ROLLBACK (END, ABORT) that ends a transaction, not a prepared one's:
// in a batch that began a read-only transaction, it commits no write.
func endsReadOnlyTx(sql string) bool {
	lx := sqllex.New(sql)
	switch tok := lx.Next(); {
	case tok.Is("commit"), tok.Is("end"), tok.Is("rollback"), tok.Is("abort"):
	default:
		return false
	}
	for tok := lx.Next(); tok.Kind != sqllex.EOF; tok = lx.Next() {
		switch {
		case tok.Kind == sqllex.Punct && tok.Text == ";":
			return lx.Next().Kind == sqllex.EOF && !lx.Broken()
		case tok.Is("prepared"), tok.Is("to"):
			return false // COMMIT PREPARED; ROLLBACK TO SAVEPOINT does not end it
		}
	}
	return !lx.Broken()
}

func (tx *writerTx) Commit(ctx context.Context) error {
	return tx.failed(ctx, tx.Tx.Commit(ctx), "", !tx.savepoint)
}

// Rollback's failure leaves the transaction rolled back: pgx closes the
// connection after a failed ROLLBACK, and the server rolls back a
// transaction whose connection is gone; unless a COMMIT went out before.
func (tx *writerTx) Rollback(ctx context.Context) error {
	return tx.failed(ctx, tx.Tx.Rollback(ctx), "", false)
}

// Begin starts a savepoint, whose failures say the same.
func (tx *writerTx) Begin(ctx context.Context) (pgx.Tx, error) {
	sp, err := tx.Tx.Begin(ctx)
	if err != nil {
		return nil, tx.failed(ctx, err, "", false)
	}
	return &writerTx{Tx: sp, r: tx.r, n: tx.n, savepoint: true, sent: tx.sent}, nil
}

func (tx *writerTx) Prepare(ctx context.Context, name, sql string) (*pgconn.StatementDescription, error) {
	sd, err := tx.Tx.Prepare(ctx, name, sql)
	return sd, tx.failed(ctx, err, "", false) // prepared, not run
}

func (tx *writerTx) CopyFrom(ctx context.Context, tableName pgx.Identifier, columnNames []string, rowSrc pgx.CopyFromSource) (int64, error) {
	n, err := tx.Tx.CopyFrom(ctx, tableName, columnNames, rowSrc)
	return n, tx.failed(ctx, err, "", false)
}

// SendBatch's results say the transaction may have committed when one of
// b's statements is a COMMIT and the batch went out: the server may have
// run it up to the COMMIT, or through it, whichever result the failure
// shows in.
func (tx *writerTx) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	return tx.batchResults(ctx, tx.Tx.SendBatch(ctx, b), b, nil)
}

// batchResults are br, the results of b sent in tx, or of b that began tx
// (began is then tx as the caller sees it, which their Tx returns).
func (tx *writerTx) batchResults(ctx context.Context, br pgx.BatchResults, b *pgx.Batch, began pgx.Tx) *writerTxBatch {
	commits := false
	for _, q := range b.QueuedQueries {
		if endsTx(q.SQL) {
			commits = true
			break
		}
	}
	return &writerTxBatch{BatchResults: br, tx: tx, ctx: ctx, commits: commits, began: began}
}

// sendWriteBatch sends b to tg, the writer, as a write. When b begins a
// transaction ([pgx.Batch.BeginTx]) the results' Tx is that transaction
// as [Router.BeginTx] gives it: a writerTx, and in read_your_writes mode a
// captureTx, whose Commit records the session's position (the batch's
// Close, before the COMMIT, cannot), or the batch's Close when the batch
// queues the COMMIT itself. Its connection goes back to the pool
// when the transaction ends, as with [pgxpool.Pool.SendBatch]. Any other
// batch is an autocommit write (resendBatch), whose connection goes back
// at its Close. c is the connection of tg's pool that [Router.SendBatch]
// acquired, and b the router's copy of the caller's batch (sendable): a
// batch that got no connection was not sent, and SendBatch chose again
// when the writes left the node while it waited there (writesLeft) or
// failed it with the wait's error, marked unacquired.
func (r *Router) sendWriteBatch(ctx context.Context, t *topology, tg target, b *pgx.Batch, c *pgxpool.Conn) pgx.BatchResults {
	s := r.capturing(ctx, t, tg)
	br := c.Conn().SendBatch(ctx, b)
	if tx := br.Tx(); tx != nil {
		if s == nil {
			w := newWriterTx(&releasingTx{Tx: tx, c: c}, r, tg.n)
			return w.batchResults(ctx, br, b, w)
		}
		w := newWriterTx(tx, r, tg.n)
		ct := &captureTx{Tx: w, writer: w, conn: c, session: s, r: r, batch: true}
		return ct.batchResults(w.batchResults(ctx, br, b, ct))
	}
	wb := &resendBatch{BatchResults: &releasingBatch{BatchResults: br, c: c}, r: r, ctx: ctx, n: tg.n, pool: tg.pool, b: b, write: true, max: maxAttempts(t)}
	if s == nil {
		return wb
	}
	return &captureBatch{BatchResults: wb, r: r, ctx: ctx, pool: tg.pool, session: s, leave: t.hold()}
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
	tx      *writerTx
	ctx     context.Context
	sql     string
	commits bool // a batch's, holding a COMMIT
}

func (w *writerTxRows) Err() error { return w.tx.failed(w.ctx, w.Rows.Err(), w.sql, w.commits) }

// writerTxRow is a writerTx's QueryRow.
type writerTxRow struct{ rows pgx.Rows }

func (r writerTxRow) Scan(dest ...any) error { return scanRow(r.rows, dest) }

// writerTxBatch are the results of a writerTx's SendBatch.
type writerTxBatch struct {
	pgx.BatchResults
	tx      *writerTx
	ctx     context.Context
	commits bool   // one of the batch's statements is a COMMIT
	began   pgx.Tx // the transaction the batch began, or nil
}

func (b *writerTxBatch) Tx() pgx.Tx {
	if b.began != nil {
		return b.began
	}
	return b.BatchResults.Tx()
}

// failed is the writerTx's failed for the batch: a batch that failed
// before its statements went out (pgx prepares them in a round trip of
// their own first) ran none of them, its COMMIT included.
func (b *writerTxBatch) failed(err error) error {
	commits := b.commits && !errors.As(err, new(pgx.ErrPreprocessingBatch))
	return b.tx.failed(b.ctx, err, "", commits)
}

func (b *writerTxBatch) Exec() (pgconn.CommandTag, error) {
	tag, err := b.BatchResults.Exec()
	return tag, b.failed(err)
}

func (b *writerTxBatch) Query() (pgx.Rows, error) {
	rows, err := b.BatchResults.Query()
	if err != nil {
		return rows, b.failed(err)
	}
	return &writerTxRows{Rows: rows, tx: b.tx, ctx: b.ctx, commits: b.commits}, nil
}

func (b *writerTxBatch) QueryRow() pgx.Row {
	rows, err := b.Query()
	if err != nil {
		return errRow{err}
	}
	return writerTxRow{rows}
}

func (b *writerTxBatch) Close() error { return b.failed(b.BatchResults.Close()) }
