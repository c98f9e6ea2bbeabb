package routerlib

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Recording the LSN of a write on the wire is the last stage of a call's
// path (after choose.go and run.go): in read_your_writes mode a write made
// with a Session records the primary's WAL position after its commit, in
// the write's own round trip. It calls no earlier stage.

// lsnQuery reads the primary's WAL insert position. It is sent after the
// write has committed, so the insert position (unlike the write position)
// is past the commit record even with synchronous_commit off. Its one
// column comes back in binary: pg_lsn's binary form is a big-endian uint64.
const lsnQuery = "SELECT pg_current_wal_insert_lsn()"

// textResult asks for the LSN query's one column as text (the pipeline
// path), binaryResult in binary (the batch path).
var (
	textResult   = []int16{pgx.TextFormatCode}
	binaryResult = []int16{pgx.BinaryFormatCode}
)

// capturing returns the session a call to tg must record its LSN in, or nil.
func (r *Router) capturing(ctx context.Context, t *topology, tg target) *Session {
	if !tg.write || t.mode != consistencyReadYourWrites {
		return nil
	}
	return SessionFrom(ctx)
}

// pipelineable reports whether a statement with these arguments can go
// through pgconn's pipeline: one statement (a multi-statement string needs
// the simple protocol) and no pgx option arguments (NamedArgs, exec modes).
func pipelineable(cl class, args []any) bool {
	if cl&classMulti != 0 {
		return false
	}
	if len(args) > 0 {
		switch args[0].(type) {
		case pgx.QueryExecMode, pgx.QueryRewriter, pgx.QueryResultFormats, pgx.QueryResultFormatsByOID:
			return false
		}
	}
	return true
}

// captureConnKey keys a connection's captureConn in its
// [pgconn.PgConn.CustomData].
const captureConnKey = "routerlib.capture"

// captureConn is what the capture path keeps with each primary
// connection: the statements it sends around every write, prepared once
// (nil when the connection must not prepare, see prepares), and an
// argument encoder whose buffers are reused, as pgx reuses its own per
// connection.
type captureConn struct {
	eqb                pgx.ExtendedQueryBuilder
	begin, commit, lsn *pgconn.StatementDescription
}

// prepares reports whether the capture path may keep named prepared
// statements on conn: only when the pool itself does (pgx's default
// QueryExecModeCacheStatement). An application that chose another mode
// has a reason, usually PgBouncer in transaction pooling mode before 1.21,
// where a statement prepared in one transaction is gone, or exists twice,
// in the next: the capture then sends unnamed statements, each parsed in
// the same message sequence that runs it.
func prepares(conn *pgx.Conn) bool {
	return conn.Config().DefaultQueryExecMode == pgx.QueryExecModeCacheStatement
}

// queue adds a statement to b: the prepared sd, or sql as an unnamed
// statement when sd is nil.
func queue(b *pgconn.Batch, sd *pgconn.StatementDescription, sql string, eqb *pgx.ExtendedQueryBuilder, resultFormats []int16) {
	var values [][]byte
	var formats []int16
	if eqb != nil {
		values, formats = eqb.ParamValues, eqb.ParamFormats
		if resultFormats == nil {
			resultFormats = eqb.ResultFormats
		}
	}
	if sd != nil {
		b.ExecStatement(sd, values, formats, resultFormats)
	} else {
		b.ExecParams(sql, values, nil, formats, resultFormats)
	}
}

// captureConnOf returns conn's captureConn, preparing its statements the
// first time (three round trips, once per connection) when it prepares.
func captureConnOf(ctx context.Context, conn *pgx.Conn) (*captureConn, error) {
	data := conn.PgConn().CustomData()
	if cc, ok := data[captureConnKey].(*captureConn); ok {
		return cc, nil
	}
	cc := &captureConn{}
	if !prepares(conn) {
		data[captureConnKey] = cc
		return cc, nil
	}
	var err error
	if cc.begin, err = conn.Prepare(ctx, "BEGIN", "BEGIN"); err != nil {
		return nil, err
	}
	if cc.commit, err = conn.Prepare(ctx, "COMMIT", "COMMIT"); err != nil {
		return nil, err
	}
	if cc.lsn, err = conn.Prepare(ctx, lsnQuery, lsnQuery); err != nil {
		return nil, err
	}
	data[captureConnKey] = cc
	return cc, nil
}

// maxCapturePrepared bounds the write statements the capture path keeps
// prepared on one connection, as pgx's own statement cache bounds its
// (512): an application that builds SQL strings dynamically must not grow
// the server's memory without limit.
const maxCapturePrepared = 256

// capturePreparedKey keys a connection's capturePrepared in its CustomData.
const capturePreparedKey = "routerlib.capture.prepared"

// capturePrepared remembers, oldest first, the write statements the capture
// path prepared on a connection.
type capturePrepared struct {
	order []string
	known map[string]struct{}
}

// prepareBounded prepares sql on conn under its own text as the name (pgx
// answers from its map without a round trip when it is prepared already),
// and deallocates the oldest such statement once more than
// maxCapturePrepared are kept.
func prepareBounded(ctx context.Context, conn *pgx.Conn, sql string) (*pgconn.StatementDescription, error) {
	data := conn.PgConn().CustomData()
	cp, _ := data[capturePreparedKey].(*capturePrepared)
	if cp == nil {
		cp = &capturePrepared{known: map[string]struct{}{}}
		data[capturePreparedKey] = cp
	}
	sd, err := conn.Prepare(ctx, sql, sql)
	if err != nil {
		return nil, err
	}
	if _, ok := cp.known[sql]; !ok {
		cp.known[sql] = struct{}{}
		cp.order = append(cp.order, sql)
		if len(cp.order) > maxCapturePrepared {
			oldest := cp.order[0]
			cp.order = cp.order[1:]
			delete(cp.known, oldest)
			if err := conn.Deallocate(ctx, oldest); err != nil {
				return nil, err
			}
		}
	}
	return sd, nil
}

// forgetCaptureConn drops what the capture path prepared on conn, after
// the server said a statement no longer exists or no longer fits (a
// DISCARD ALL, a schema change), so that the next write prepares afresh.
func forgetCaptureConn(ctx context.Context, conn *pgx.Conn, sql string) {
	delete(conn.PgConn().CustomData(), captureConnKey)
	for _, q := range [...]string{sql, "BEGIN", "COMMIT", lsnQuery} {
		if q != "" {
			_ = conn.Deallocate(ctx, q) // a statement that is gone already is no error
		}
	}
}

// A capture is a write in flight on the batch path: BEGIN, the write,
// COMMIT and the LSN query went out in one write with a single Sync at
// the end, so the server answers them with a single flush and the client
// wakes once. The COMMIT runs as soon as it is executed (PostgreSQL
// commits a transaction-control statement at once, without waiting for
// the Sync), and the LSN query then runs in a transaction of its own: the
// position it reads is past the commit record. The explicit BEGIN is what
// makes this possible: a COMMIT without it would only warn that no
// transaction is in progress, and the write would commit after the LSN
// query, at the Sync.
type capture struct {
	ctx  context.Context
	conn *pgx.Conn
	mrr  *pgconn.MultiResultReader
}

// startTxCapture sends the write wrapped as a capture and returns it
// positioned at the write's result. Only statements that behave the same
// inside BEGIN … COMMIT take this path (classDML): VACUUM, CREATE INDEX
// CONCURRENTLY or CALL of a procedure that commits would fail inside it.
//
// When the server no longer accepts the statement this connection
// prepared (a schema change altered its result type, SQLSTATE 0A000, or it
// was deallocated, 26000), the statements are prepared afresh and the
// write is sent once more: the error came before the COMMIT, so the first
// attempt was rolled back and left nothing behind. A nil capture means err
// ended the call.
func startTxCapture(ctx context.Context, conn *pgx.Conn, sql string, args []any) (*capture, *pgconn.ResultReader, error) {
	for attempt := 0; ; attempt++ {
		cc, err := captureConnOf(ctx, conn)
		if err != nil {
			return nil, nil, err
		}
		var sd *pgconn.StatementDescription
		if len(args) > 0 && prepares(conn) {
			// Prepared once per connection (pgx caches it by the SQL), so
			// the write goes with binary parameters and no Parse, as with
			// the pool's default exec mode.
			if sd, err = prepareBounded(ctx, conn, sql); err != nil {
				return nil, nil, err
			}
		}
		if err := cc.eqb.Build(conn.TypeMap(), sd, args); err != nil {
			return nil, nil, err
		}
		var b pgconn.Batch
		queue(&b, cc.begin, "BEGIN", nil, nil)
		queue(&b, sd, sql, &cc.eqb, nil)
		queue(&b, cc.commit, "COMMIT", nil, nil)
		queue(&b, cc.lsn, lsnQuery, nil, binaryResult)
		c := &capture{ctx: ctx, conn: conn, mrr: conn.PgConn().ExecBatch(ctx, &b)}
		if c.mrr.NextResult() { // BEGIN
			c.mrr.ResultReader().Close()
			if c.mrr.NextResult() { // the write
				return c, c.mrr.ResultReader(), nil
			}
		}
		err = c.fail()
		var pgErr *pgconn.PgError
		stale := errors.As(err, &pgErr) && (pgErr.Code == "26000" || (pgErr.Code == "0A000" && sd != nil))
		if attempt == 0 && stale && conn.PgConn().TxStatus() == 'I' {
			if sd == nil {
				sql = "" // not prepared
			}
			forgetCaptureConn(ctx, conn, sql)
			continue
		}
		return nil, nil, err
	}
}

// fail reads what is left of a capture whose BEGIN, write or COMMIT failed
// and ends the transaction the failure left open: the server skipped the
// rest up to the Sync, so nothing committed. It returns the failure.
func (c *capture) fail() error {
	err := c.mrr.Close()
	if err == nil {
		err = errors.New("routerlib: the server ended the write's reply early")
	}
	if pc := c.conn.PgConn(); !pc.IsClosed() && pc.TxStatus() != 'I' {
		// One more round trip, on failure only; without it the pool would
		// close the connection for being left in a transaction.
		_ = pc.Exec(c.ctx, "ROLLBACK").Close()
	}
	return err
}

// finish reads the COMMIT's result and the LSN once the write's result has
// been closed. A failed COMMIT (a deferred constraint) is the write's
// error; a failure to read the LSN after a good COMMIT is reported as such.
func (c *capture) finish() (LSN, error) {
	if !c.mrr.NextResult() {
		return 0, c.fail()
	}
	if _, err := c.mrr.ResultReader().Close(); err != nil {
		return 0, c.fail()
	}
	lsn, err := c.finishLSN()
	if err != nil {
		return 0, fmt.Errorf("routerlib: the write succeeded but its LSN could not be read: %w", err)
	}
	return lsn, nil
}

// finishLSN reads the LSN query's result, the last of a capture. Its
// error comes after the commit.
func (c *capture) finishLSN() (LSN, error) {
	var lsn LSN
	var lerr error
	if c.mrr.NextResult() {
		rr := c.mrr.ResultReader()
		if rr.NextRow() && len(rr.Values()) == 1 && len(rr.Values()[0]) == 8 {
			lsn = LSN(binary.BigEndian.Uint64(rr.Values()[0]))
		} else {
			lerr = errors.New("routerlib: LSN query returned no row")
		}
		if _, err := rr.Close(); err != nil {
			lerr = err
		}
	}
	if err := c.mrr.Close(); err != nil {
		lerr = err
	}
	if lerr != nil {
		var pgErr *pgconn.PgError
		if errors.As(lerr, &pgErr) && pgErr.Code == "26000" {
			forgetCaptureConn(c.ctx, c.conn, "")
		}
		return 0, lerr
	}
	return lsn, nil
}

// startCapture sends, in one flush, the write, a Sync (which commits it),
// the LSN query and a second Sync: one round trip. It serves the writes
// the batch path cannot wrap in BEGIN … COMMIT (DDL, VACUUM, CALL…); the
// server flushes at each Sync, so it costs a second wake-up of the client.
// It returns the pipeline positioned at the write's result. A pgx Batch
// would not do: it is one implicit transaction, so an LSN read inside it
// precedes the commit record.
func startCapture(ctx context.Context, c *pgxpool.Conn, sql string, args []any) (*pgconn.Pipeline, error) {
	conn := c.Conn()
	var eqb pgx.ExtendedQueryBuilder
	var sd, lsd *pgconn.StatementDescription
	if prepares(conn) {
		var err error
		if len(args) > 0 {
			if sd, err = prepareBounded(ctx, conn, sql); err != nil {
				return nil, err
			}
		}
		if lsd, err = conn.Prepare(ctx, lsnQuery, lsnQuery); err != nil {
			return nil, err
		}
	}
	if err := eqb.Build(conn.TypeMap(), sd, args); err != nil {
		return nil, err
	}
	p := conn.PgConn().StartPipeline(ctx)
	if sd != nil {
		p.SendQueryStatement(sd, eqb.ParamValues, eqb.ParamFormats, eqb.ResultFormats)
	} else {
		p.SendQueryParams(sql, eqb.ParamValues, nil, eqb.ParamFormats, eqb.ResultFormats)
	}
	p.SendPipelineSync()
	// Through PgBouncer in transaction mode this may run on another of
	// the server's connections: the position is the server's, read after
	// the commit all the same.
	if lsd != nil {
		p.SendQueryStatement(lsd, nil, nil, textResult)
	} else {
		p.SendQueryParams(lsnQuery, nil, nil, nil, textResult)
	}
	p.SendPipelineSync()
	if err := p.Flush(); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

// startCaptureResult starts the capture pipeline and returns its first
// result. When the server no longer accepts the statement this connection
// prepared (SQLSTATE 0A000 or 26000, as for startTxCapture), the statement
// is prepared afresh and sent once more. A nil pipeline means err ended
// the call.
func startCaptureResult(ctx context.Context, c *pgxpool.Conn, sql string, args []any) (*pgconn.Pipeline, any, error) {
	for attempt := 0; ; attempt++ {
		p, err := startCapture(ctx, c, sql, args)
		if err != nil {
			return nil, nil, err
		}
		res, err := p.GetResults()
		var pgErr *pgconn.PgError
		if attempt == 0 && len(args) > 0 && prepares(c.Conn()) && errors.As(err, &pgErr) && (pgErr.Code == "0A000" || pgErr.Code == "26000") {
			if _, ferr := finishCapture(p); ferr != nil {
				return nil, nil, err
			}
			if derr := c.Conn().Deallocate(ctx, sql); derr != nil {
				return nil, nil, err
			}
			continue
		}
		return p, res, err
	}
}

// finishCapture reads what follows the write's result: its Sync, the LSN and
// the last Sync, and closes the pipeline.
func finishCapture(p *pgconn.Pipeline) (LSN, error) {
	var lsn LSN
	for step := 0; step < 3; step++ {
		res, err := p.GetResults()
		if err != nil {
			p.Close()
			return 0, err
		}
		switch res := res.(type) {
		case *pgconn.ResultReader:
			rr := res.Read()
			if rr.Err != nil {
				p.Close()
				return 0, rr.Err
			}
			if len(rr.Rows) != 1 || len(rr.Rows[0]) != 1 {
				p.Close()
				return 0, errors.New("routerlib: LSN query returned no row")
			}
			if lsn, err = ParseLSN(string(rr.Rows[0][0])); err != nil {
				p.Close()
				return 0, err
			}
		}
	}
	return lsn, p.Close()
}

// execCapture runs a write and captures the LSN after its commit in the
// same round trip.
func (r *Router) execCapture(ctx context.Context, pool *pgxpool.Pool, sql string, cl class, args []any, s *Session) (pgconn.CommandTag, error) {
	if !pipelineable(cl, args) {
		tag, err := pool.Exec(ctx, sql, args...)
		if err == nil {
			err = r.captureAfter(ctx, pool, s)
		}
		return tag, err
	}
	c, err := pool.Acquire(ctx)
	if err != nil {
		return pgconn.CommandTag{}, err
	}
	defer c.Release()
	if cl&classDML != 0 {
		cp, rr, err := startTxCapture(ctx, c.Conn(), sql, args)
		if cp == nil {
			return pgconn.CommandTag{}, err
		}
		tag, err := rr.Close()
		if err != nil {
			return tag, cp.fail()
		}
		lsn, err := cp.finish()
		if err != nil {
			return tag, err
		}
		s.Observe(lsn)
		return tag, nil
	}
	p, res, err := startCaptureResult(ctx, c, sql, args)
	if p == nil {
		return pgconn.CommandTag{}, err
	}
	var tag pgconn.CommandTag
	var pgErr *pgconn.PgError
	switch {
	case err != nil && !errors.As(err, &pgErr):
		p.Close()
		return tag, err
	case err == nil:
		rr, ok := res.(*pgconn.ResultReader)
		if !ok {
			p.Close()
			return tag, fmt.Errorf("routerlib: unexpected pipeline result %T", res)
		}
		tag, err = rr.Close()
	}
	lsn, lerr := finishCapture(p)
	if err != nil {
		return tag, err
	}
	if lerr != nil {
		return tag, fmt.Errorf("routerlib: the write succeeded but its LSN could not be read: %w", lerr)
	}
	s.Observe(lsn)
	return tag, nil
}

// queryCapture runs a write that returns rows (INSERT … RETURNING) and
// captures the LSN in the same round trip. The rows stream as usual; the
// COMMIT's result and the LSN are read when they are closed.
// The LSN is read on t's pool after the call returned: t stays in flight
// until then, so that a reload does not close that pool first.
func (r *Router) queryCapture(ctx context.Context, t *topology, pool *pgxpool.Pool, sql string, cl class, args []any, s *Session) (pgx.Rows, error) {
	if !pipelineable(cl, args) {
		rows, err := pool.Query(ctx, sql, args...)
		if err != nil {
			return rows, err
		}
		leave := t.hold()
		return &captureRows{Rows: rows, finish: func() error {
			defer leave()
			return r.captureAfter(ctx, pool, s)
		}}, nil
	}
	c, err := pool.Acquire(ctx)
	if err != nil {
		return errRows{err}, err
	}
	if cl&classDML != 0 {
		cp, rr, err := startTxCapture(ctx, c.Conn(), sql, args)
		if cp == nil {
			c.Release()
			return errRows{err}, err
		}
		rows := pgx.RowsFromResultReader(c.Conn().TypeMap(), rr)
		return &captureRows{Rows: rows, finish: func() error {
			defer c.Release()
			// Even after an error of the rows: one the client raised (a
			// Scan into the wrong type) leaves the write to commit, and
			// then its LSN must be recorded; one the server raised makes
			// finish roll back and return it.
			lsn, err := cp.finish()
			if err != nil {
				return err
			}
			s.Observe(lsn)
			return nil
		}}, nil
	}
	p, res, err := startCaptureResult(ctx, c, sql, args)
	if p == nil {
		c.Release()
		return errRows{err}, err
	}
	var rows pgx.Rows
	var pgErr *pgconn.PgError
	switch {
	case err != nil && !errors.As(err, &pgErr):
		p.Close()
		c.Release()
		return errRows{err}, err
	case err != nil:
		rows = errRows{err}
	default:
		rr, ok := res.(*pgconn.ResultReader)
		if !ok {
			p.Close()
			c.Release()
			err := fmt.Errorf("routerlib: unexpected pipeline result %T", res)
			return errRows{err}, err
		}
		rows = pgx.RowsFromResultReader(c.Conn().TypeMap(), rr)
	}
	return &captureRows{Rows: rows, finish: func() error {
		defer c.Release()
		lsn, err := finishCapture(p)
		if err != nil {
			return fmt.Errorf("routerlib: the write succeeded but its LSN could not be read: %w", err)
		}
		if rows.Err() == nil {
			s.Observe(lsn)
		}
		return nil
	}}, nil
}

// captureRows reads the LSN when its rows are done: Next returned false or
// Close was called.
type captureRows struct {
	pgx.Rows
	finish func() error
	done   bool
	err    error
}

func (w *captureRows) end() {
	if !w.done {
		w.done = true
		w.Rows.Close()
		w.err = w.finish()
	}
}

func (w *captureRows) Next() bool {
	if w.done {
		return false
	}
	if w.Rows.Next() {
		return true
	}
	w.end()
	return false
}

func (w *captureRows) Close() { w.end() }

func (w *captureRows) Err() error {
	if err := w.Rows.Err(); err != nil {
		return err
	}
	return w.err
}

// captureAfter reads the primary's LSN with a query of its own, for writes
// that cannot share their round trip (batches, COPY, multi-statement
// strings, NamedArgs). It runs after the write committed.
func (r *Router) captureAfter(ctx context.Context, pool *pgxpool.Pool, s *Session) error {
	var text string
	if err := pool.QueryRow(ctx, lsnQuery+"::text").Scan(&text); err != nil {
		return fmt.Errorf("routerlib: the write succeeded but its LSN could not be read: %w", err)
	}
	lsn, err := ParseLSN(text)
	if err != nil {
		return err
	}
	s.Observe(lsn)
	return nil
}

// captureBatch records the LSN once the batch's implicit transaction has
// committed, that is when it is closed.
type captureBatch struct {
	pgx.BatchResults
	r       *Router
	ctx     context.Context
	pool    *pgxpool.Pool
	session *Session
	leave   func() // ends the hold on the topology of pool (see topology.hold)
}

func (b *captureBatch) Close() error {
	defer b.leave()
	if err := b.BatchResults.Close(); err != nil {
		return err
	}
	return b.r.captureAfter(b.ctx, b.pool, b.session)
}

// beginCapture starts a transaction whose Commit captures the LSN.
func (r *Router) beginCapture(ctx context.Context, pool *pgxpool.Pool, opts pgx.TxOptions, s *Session) (pgx.Tx, error) {
	c, err := pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	tx, err := c.BeginTx(ctx, opts)
	if err != nil {
		c.Release()
		return nil, err
	}
	return &captureTx{Tx: tx, conn: c, session: s}, nil
}

// captureTx sends COMMIT and the LSN query in one round trip, with a Sync
// between them so the LSN is read after the commit.
type captureTx struct {
	pgx.Tx
	conn    *pgxpool.Conn // released when the transaction ends
	session *Session
}

func (tx *captureTx) release() {
	if tx.conn != nil {
		tx.conn.Release()
		tx.conn = nil
	}
}

func (tx *captureTx) Commit(ctx context.Context) error {
	if tx.conn == nil {
		return pgx.ErrTxClosed
	}
	defer tx.release()
	conn := tx.conn.Conn()
	if conn.PgConn().TxStatus() == 'E' {
		// A failed transaction: its COMMIT rolls back and there is no
		// write to record (nor can statements be prepared in it).
		return tx.Tx.Commit(ctx)
	}
	cc, err := captureConnOf(ctx, conn)
	if err != nil {
		tx.Tx.Rollback(ctx)
		return err
	}
	var b pgconn.Batch
	queue(&b, cc.commit, "COMMIT", nil, nil)
	queue(&b, cc.lsn, lsnQuery, nil, binaryResult)
	cp := &capture{ctx: ctx, conn: conn, mrr: conn.PgConn().ExecBatch(ctx, &b)}
	if !cp.mrr.NextResult() {
		return cp.fail()
	}
	tag, err := cp.mrr.ResultReader().Close()
	if err != nil {
		return cp.fail()
	}
	if tag.String() == "ROLLBACK" {
		cp.mrr.Close()
		return pgx.ErrTxCommitRollback
	}
	lsn, err := cp.finishLSN()
	if err != nil {
		return fmt.Errorf("routerlib: the transaction committed but its LSN could not be read: %w", err)
	}
	tx.session.Observe(lsn)
	return nil
}

func (tx *captureTx) Rollback(ctx context.Context) error {
	if tx.conn == nil {
		return pgx.ErrTxClosed
	}
	defer tx.release()
	return tx.Tx.Rollback(ctx)
}
