package routerlib

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"unsafe"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Recording the LSN of a write on the wire is the last stage of a call's
// path (after choose.go and run.go): in read_your_writes mode a write made
// with a Session records the primary's WAL position after its commit, in
// the write's own round trip. It calls no earlier stage.

// lsnQuery reads the primary's WAL insert position: the one way routerlib
// reads it (see position). It is sent after the write has committed, so
// the insert position (unlike the write position) is past the commit
// record even with synchronous_commit off. Its one column comes back in
// binary: pg_lsn's binary form is a big-endian uint64. The function is
// named with its schema: it runs on the application's connections, where
// a search_path that puts another schema first could find another
// function of that name.
const lsnQuery = "SELECT pg_catalog.pg_current_wal_insert_lsn()"

// The page headers that recordEnd looks past: a WAL page begins with a
// short header, the first page of each segment with a long one (their
// sizes on 64-bit servers). Segments are 1 MB or a larger power of two,
// pages 8 kB by default.
const (
	walPage          = 8192
	walPageHeader    = 24
	walMinSegment    = 1 << 20
	walSegmentHeader = 40
)

// recordEnd returns the insert position lsn as a standby reports the end
// of the record it replayed last. When the last record ends exactly where
// a page does, pg_current_wal_insert_lsn() points past the next page's
// header, where the next record will start, but a standby that replayed
// the last one reports the page boundary: a session that kept the insert
// position would wait for every replica, and read from the primary, until
// another write moved the WAL on (on an idle primary, up to 15 s later).
//
// Going back over a header that is not there (a server built with larger
// WAL pages, where 24 bytes past a multiple of 8 kB is inside a page)
// never lets a read miss the write: no record is shorter than its own
// 24-byte header, so no record but one that ends at or after the commit
// ends in the 24 bytes before lsn. The 40 bytes of a segment's header are
// only gone back over at a multiple of 1 MB, always a page's start, where
// what precedes lsn is a header and the rest of a record continued from
// the page before, too short to be a whole one.
func recordEnd(lsn LSN) LSN {
	switch {
	case lsn%walMinSegment == walSegmentHeader:
		return lsn - walSegmentHeader
	case lsn%walPage == walPageHeader:
		return lsn - walPageHeader
	}
	return lsn
}

// binaryResult asks for the LSN query's one column in binary.
var binaryResult = []int16{pgx.BinaryFormatCode}

// position reads the LSN query's result from rr and closes it.
func position(rr *pgconn.ResultReader) (LSN, error) {
	var lsn LSN
	ok := rr.NextRow() && len(rr.Values()) == 1 && len(rr.Values()[0]) == 8
	if ok {
		lsn = recordEnd(LSN(binary.BigEndian.Uint64(rr.Values()[0])))
	}
	if _, err := rr.Close(); err != nil {
		return 0, err
	}
	if !ok {
		return 0, errors.New("routerlib: the WAL position query returned no row")
	}
	return lsn, nil
}

// readPosition asks the primary on pc for its WAL insert position in a
// round trip of its own, as an unnamed statement (nothing prepared that a
// DISCARD ALL or PgBouncer could lose).
func readPosition(ctx context.Context, pc *pgconn.PgConn) (LSN, error) {
	return position(pc.ExecParams(ctx, lsnQuery, nil, nil, nil, binaryResult))
}

// lsnUnread is the failure err to read the position of a write that
// committed: see Router.observe.
func lsnUnread(err error) error { return &positionUnread{err} }

// A positionUnread is the failure to read the position of a write that
// committed.
type positionUnread struct{ err error }

func (e *positionUnread) Error() string {
	return "routerlib: the write committed but its WAL position could not be read: " + e.err.Error()
}

func (e *positionUnread) Unwrap() error { return e.err }

// observe records in s the position lsn, read after a write committed.
// When err is instead the failure to read it (lsnUnread), the write is
// done all the same: the caller gets no error, which would invite running
// the write again, and s is marked (markLost) so that its next read asks
// the primary for its position first, as after a Release that could not
// read it. Any other err is the write's own, returned as is.
func (r *Router) observe(s *Session, lsn LSN, err error) error {
	if err == nil {
		s.Observe(lsn)
		return nil
	}
	var unread *positionUnread
	if !errors.As(err, &unread) {
		return err
	}
	s.markLost()
	r.opts.logger.Warn("routerlib: a write committed but its WAL position could not be read; the session's next read asks the primary for it", "err", unread.err)
	return nil
}

// outcomeUnknown marks s when err, a write's failure, leaves its commit
// unknown: the connection failed, or the context ended, after the write
// was sent, and the server may have committed it. The session's next read
// then asks the primary for its position first (markLost). An error the
// server sent is no such failure: the write it answers did not commit, or
// only what writeFailed records.
func outcomeUnknown(s *Session, err error) {
	if !errors.As(err, new(*pgconn.PgError)) && !notSent(err) {
		s.markLost()
	}
}

// staleStatement reports whether err is the server refusing a statement
// the capture path prepared on the connection, so that preparing afresh
// and sending once more is right: SQLSTATE 26000 (undefined prepared
// statement: a DEALLOCATE or DISCARD ALL dropped it), or 0A000 (feature
// not supported) when the write itself was prepared: PostgreSQL raises it
// as "cached plan must not change result type" when a schema change
// altered the result columns of a prepared statement (plancache.c).
//
// Only the server's own refusal of a statement counts, told by the
// function that raised it (the error's routine, never translated): a
// procedure or DO block may commit and then fail with either SQLSTATE for
// its own reasons (RAISE … USING ERRCODE, an unsupported ALTER), and it
// must not run again. An error without its routine is not retried. Nor is
// one raised while a function or procedure ran, which PostgreSQL tells by
// the context it adds (Where: "PL/pgSQL function … at EXECUTE"): a
// procedure that commits and then deallocates a statement that does not
// exist, or executes one of its own whose result changed, fails in those
// very routines, after its commit. Bind raises the refusal of a statement
// the capture path sent with no context.
func staleStatement(err error, writePrepared bool) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Where != "" {
		return false
	}
	switch pgErr.Code {
	case "26000":
		return pgErr.Routine == "FetchPreparedStatement" // prepare.c
	case "0A000":
		return writePrepared && pgErr.Routine == "RevalidateCachedQuery" // plancache.c
	}
	return false
}

// capturing returns the session a call to tg must record its LSN in, or nil.
func (r *Router) capturing(ctx context.Context, t *topology, tg target) *Session {
	if !tg.write || t.mode != consistencyReadYourWrites {
		return nil
	}
	return SessionFrom(ctx)
}

// recording is capturing for a statement ([Router.Exec], [Router.Query],
// [Router.QueryRow]): in read_your_writes mode a read that runs on the
// writer's read-write session (a session sticky to the primary, or the
// fallback) records in the session too, what a function it calls wrote
// (see startReadCapture), as does a batch of reads there
// (sendReadBatchCapture). A replica read costs two comparisons, and
// nothing outside that mode. A read-only transaction is not recorded (it
// cannot write).
func (r *Router) recording(ctx context.Context, t *topology, tg *target) *Session {
	if t.mode != consistencyReadYourWrites {
		return nil
	}
	if !tg.write && (tg.n != t.writer.Load() || tg.pool != tg.n.writePool.Load()) {
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
// connection: whether it prepares (decided once: asking pgx copies the
// connection's whole configuration), the statements it sends around every
// write and the writes themselves, prepared once (none when the
// connection must not prepare, see prepares), and an argument encoder
// whose buffers are reused, as pgx reuses its own per connection.
//
// The statements are prepared through pgconn under names of the capture
// path's own, not through pgx.Conn.Prepare: pgx's Exec and Query use a
// statement from that map whenever its name is their SQL, so one of ours
// that a DISCARD ALL dropped would fail the application's own calls of the
// same SQL, on that connection, every time.
type captureConn struct {
	mode                     pgx.QueryExecMode // the connection's default (see startReadCapture)
	prepares                 bool
	traced                   bool // see captureTx.commitTraced
	eqb                      pgx.ExtendedQueryBuilder
	begin, commit, lsn, xact *pgconn.StatementDescription
	writes                   map[uint64]preparedWrite // by the SQL's hash, sqlHash (and the reads startReadCapture sends)
	order                    []uint64                 // their hashes, oldest first
	formats                  []int16                  // result formats by column, for a read's QueryResultFormatsByOID
	named                    int                      // statements named so far
	inFlight                 capture                  // the capture startTxCapture returns
	// What execTxCapture reuses from one write to the next: the messages
	// it encodes, and a context watcher of the connection's own kind
	// (its configuration's BuildContextWatcherHandler, as pgconn builds
	// its own).
	parse     pgproto3.Parse
	bind      pgproto3.Bind
	execute   pgproto3.Execute
	sync      pgproto3.Sync
	watcher   *ctxwatch.ContextWatcher
	receiving receiving
	tag       pgconn.CommandTag // the last write's (see commandTag)
	// The prepared writes' argument plans (see buildArgs): the buffer
	// they encode into, their generation, and the type map's state they
	// were chosen under (checkTypeMap).
	argBytes    []byte
	planGen     uint64
	typeMapSeen unsafe.Pointer
}

// prepares reports whether the capture path may keep named prepared
// statements on a connection configured with cfg: only when the pool
// itself does (pgx's default QueryExecModeCacheStatement). An application
// that chose another mode has a reason, usually PgBouncer in transaction
// pooling mode before 1.21, where a statement prepared in one transaction
// is gone, or exists twice, in the next: the capture then sends unnamed
// statements, each parsed in the same message sequence that runs it.
func prepares(cfg *pgx.ConnConfig) bool {
	return cfg.DefaultQueryExecMode == pgx.QueryExecModeCacheStatement
}

// traced reports whether a connection configured with cfg has a query
// tracer of the application's (WithPoolConfig), besides routerlib's own.
func traced(cfg *pgx.ConnConfig) bool {
	_, own := cfg.Tracer.(statementsDiscarded)
	return cfg.Tracer != nil && !own
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
	cfg := conn.Config()
	cc := &captureConn{mode: cfg.DefaultQueryExecMode, prepares: prepares(cfg), traced: traced(cfg), writes: map[uint64]preparedWrite{}}
	if build := cfg.BuildContextWatcherHandler; build != nil {
		cc.watcher = ctxwatch.NewContextWatcher(build(conn.PgConn()))
	} else {
		cc.watcher = ctxwatch.NewContextWatcher(&pgconn.DeadlineContextWatcherHandler{Conn: conn.PgConn().Conn()})
	}
	data[captureConnKey] = cc
	if !cc.prepares {
		return cc, nil
	}
	var err error
	if cc.begin, err = cc.prepare(ctx, conn.PgConn(), "BEGIN"); err == nil {
		if cc.commit, err = cc.prepare(ctx, conn.PgConn(), "COMMIT"); err == nil {
			if cc.lsn, err = cc.prepare(ctx, conn.PgConn(), lsnQuery); err == nil {
				cc.xact, err = cc.prepare(ctx, conn.PgConn(), xactQuery)
			}
		}
	}
	cc.begin, cc.commit = quiet(cc.begin), quiet(cc.commit)
	if err != nil {
		forgetCaptureConn(ctx, conn)
		return nil, err
	}
	return cc, nil
}

// A preparedWrite is a write prepared on a connection, the same
// statement to send when its rows, if any, are not read (see quiet), and
// how its arguments were encoded last (see buildArgs).
type preparedWrite struct {
	sql       string
	sd, quiet *pgconn.StatementDescription
	args      *argPlans
}

// noFields stands for the result columns of a statement that returns no
// rows; see quiet.
var noFields = []pgconn.FieldDescription{{Name: "routerlib_no_rows"}}

// quiet returns sd to send where no row of it is read: when sd returns no
// rows (BEGIN, COMMIT, an INSERT without RETURNING), a copy with a
// stand-in column. pgconn follows the Bind of a statement without columns
// with a Describe of the portal, in case its columns were unknown when it
// was prepared (a FETCH); the server answers NoData, and three of those
// made a capture cost about 5 µs more than the same messages without them
// (on a 2-core machine, against a 25 µs INSERT). The stand-in is never
// seen: no rows come, and the result is closed unread.
func quiet(sd *pgconn.StatementDescription) *pgconn.StatementDescription {
	if sd == nil || len(sd.Fields) > 0 {
		return sd
	}
	q := *sd
	q.Fields = noFields
	return &q
}

// prepare prepares sql on pc under the next of the capture path's names.
func (cc *captureConn) prepare(ctx context.Context, pc *pgconn.PgConn, sql string) (*pgconn.StatementDescription, error) {
	cc.named++
	return pc.Prepare(ctx, "routerlib_capture_"+strconv.Itoa(cc.named), sql, nil)
}

// maxCapturePrepared bounds the write statements the capture path keeps
// prepared on one connection, as pgx's own statement cache bounds its
// (512): an application that builds SQL strings dynamically must not grow
// the server's memory without limit.
const maxCapturePrepared = 256

// write returns the write sql, of hash h (sqlHash), prepared on pc,
// preparing it the first time, and deallocates the oldest write once more
// than maxCapturePrepared are kept. When another SQL string of the same
// hash is kept, sql is not prepared: its zero preparedWrite sends it
// unnamed.
func (cc *captureConn) write(ctx context.Context, pc *pgconn.PgConn, sql string, h uint64) (preparedWrite, error) {
	if w, ok := cc.writes[h]; ok {
		if w.sql != sql {
			return preparedWrite{}, nil
		}
		return w, nil
	}
	sd, err := cc.prepare(ctx, pc, sql)
	if err != nil {
		return preparedWrite{}, err
	}
	w := preparedWrite{sql: sql, sd: sd, quiet: quiet(sd), args: &argPlans{}}
	cc.writes[h] = w
	cc.order = append(cc.order, h)
	if len(cc.order) > maxCapturePrepared {
		oldest := cc.writes[cc.order[0]]
		delete(cc.writes, cc.order[0])
		cc.order = cc.order[1:]
		if err := pc.Deallocate(ctx, oldest.sd.Name); err != nil {
			return preparedWrite{}, err
		}
	}
	return w, nil
}

// forgetCaptureConn drops what the capture path prepared on conn, after
// the server said a statement no longer exists or no longer fits (a
// DISCARD ALL, a DEALLOCATE, a schema change), so that the next write
// prepares afresh. What is left of it on the server is deallocated, in
// one round trip (deallocating a statement that is gone is no error), so
// that the names can be used again.
func forgetCaptureConn(ctx context.Context, conn *pgx.Conn) {
	pc := conn.PgConn()
	cc, ok := pc.CustomData()[captureConnKey].(*captureConn)
	if !ok {
		return
	}
	delete(pc.CustomData(), captureConnKey)
	if cc.named == 0 || pc.IsClosed() {
		return
	}
	p := pc.StartPipeline(ctx)
	for n := 1; n <= cc.named; n++ {
		p.SendDeallocate("routerlib_capture_" + strconv.Itoa(n))
	}
	p.SendPipelineSync()
	synced := false
	if err := p.Flush(); err == nil {
		for {
			res, err := p.GetResults()
			if err != nil {
				break
			}
			if _, synced = res.(*pgconn.PipelineSync); synced {
				break
			}
		}
	}
	if err := p.Close(); err != nil || !synced {
		// The names may still be taken on the server (the caller's
		// context ended before the deallocation went out: a prepare cut
		// by a cancel request, which leaves the connection open), and
		// the next capture on this connection would prepare them again
		// ("already exists", 42P05): the connection is closed instead.
		dropMidReply(pc)
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
// When the server no longer accepts a statement this connection prepared
// (staleStatement), the statements are prepared afresh and the write is
// sent once more: the error came before the COMMIT, so the first attempt
// was rolled back and left nothing behind. A nil capture means err ended
// the call.
//
// With rows false the caller will not read the write's rows: it is sent
// quiet.
func startTxCapture(ctx context.Context, conn *pgx.Conn, sql string, args []any, rows bool) (*capture, *pgconn.ResultReader, error) {
	for attempt := 0; ; attempt++ {
		cc, err := captureConnOf(ctx, conn)
		if err != nil {
			return nil, nil, err
		}
		var sd *pgconn.StatementDescription
		var plans *argPlans
		if len(args) > 0 && cc.prepares {
			// Prepared once per connection, so the write goes with
			// binary parameters and no Parse, as with the pool's default
			// exec mode.
			w, err := cc.write(ctx, conn.PgConn(), sql, sqlHash(sql))
			if err != nil {
				return nil, nil, err
			}
			if sd, plans = w.sd, w.args; !rows {
				sd = w.quiet
			}
		}
		if err := cc.buildArgs(conn.TypeMap(), plans, sd, args); err != nil {
			return nil, nil, err
		}
		var b pgconn.Batch
		queue(&b, cc.begin, "BEGIN", nil, nil)
		queue(&b, sd, sql, &cc.eqb, nil)
		queue(&b, cc.commit, "COMMIT", nil, nil)
		queue(&b, cc.lsn, lsnQuery, nil, binaryResult)
		// The connection's own capture: it is held until the capture is
		// finished, so no other can be in flight on it.
		c := &cc.inFlight
		*c = capture{ctx: ctx, conn: conn, mrr: conn.PgConn().ExecBatch(ctx, &b)}
		if c.mrr.NextResult() { // BEGIN
			c.mrr.ResultReader().Close()
			if c.mrr.NextResult() { // the write
				return c, c.mrr.ResultReader(), nil
			}
		}
		err = c.fail()
		if attempt == 0 && staleStatement(err, sd != nil) && conn.PgConn().TxStatus() == 'I' {
			forgetCaptureConn(ctx, conn)
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
	return c.finishLSN()
}

// finishLSN reads the LSN query's result, the last of a capture, after
// the commit.
func (c *capture) finishLSN() (LSN, error) {
	var lsn LSN
	var err error
	read := c.mrr.NextResult()
	if read {
		lsn, err = position(c.mrr.ResultReader())
	}
	if cerr := c.mrr.Close(); cerr != nil && (err == nil || !read) {
		err = cerr // when there was no result, Close has the server's reason
	}
	if err == nil && !read {
		err = errors.New("routerlib: the server ended the write's reply before the WAL position")
	}
	if err != nil {
		return positionAfter(c.ctx, c.conn, err)
	}
	return lsn, nil
}

// positionAfter handles the failure err of the LSN query that followed a
// committed write: when the statement the connection prepared for it is
// gone (a DEALLOCATE ALL in the transaction), the position is read again
// in a round trip of its own, which is later, so still past the commit.
// Any other failure is lsnUnread.
func positionAfter(ctx context.Context, conn *pgx.Conn, err error) (LSN, error) {
	if staleStatement(err, false) && !conn.PgConn().IsClosed() {
		forgetCaptureConn(ctx, conn)
		if lsn, rerr := readPosition(ctx, conn.PgConn()); rerr == nil {
			return lsn, nil
		}
	}
	return 0, lsnUnread(err)
}

// execTxCapture runs a classDML write for [Router.Exec] as a capture (see
// capture), its rows, if any, unread, and returns the write's command tag
// and the position after its commit. It is startTxCapture without
// pgconn's batch and result readers, which cost a captured write about a
// fifth more client time than the bare protocol messages (see
// docs/guides/benchmarks.md): the messages go straight into the
// connection's protocol buffer (sendTx) and the reply is read message by
// message up to its ReadyForQuery (readTx). The outcomes are
// startTxCapture's: a statement the server no longer accepts is prepared
// afresh and the write sent once more; a failed BEGIN, write or COMMIT
// rolls back and is the error; a failure to read the position after a good
// COMMIT is positionAfter's.
//
// h is sql's hash (sqlHash), which the call's class lookup computed.
func execTxCapture(ctx context.Context, conn *pgx.Conn, sql string, h uint64, args []any) (pgconn.CommandTag, LSN, error) {
	pc := conn.PgConn()
	for attempt := 0; ; attempt++ {
		cc, err := captureConnOf(ctx, conn)
		if err != nil {
			return pgconn.CommandTag{}, 0, err
		}
		var sd *pgconn.StatementDescription
		var plans *argPlans
		if len(args) > 0 && cc.prepares {
			w, err := cc.write(ctx, pc, sql, h)
			if err != nil {
				return pgconn.CommandTag{}, 0, err
			}
			sd, plans = w.sd, w.args
		}
		if err := cc.buildArgs(conn.TypeMap(), plans, sd, args); err != nil {
			return pgconn.CommandTag{}, 0, err
		}
		if len(cc.eqb.ParamValues) > math.MaxUint16 {
			// pgproto3 would fail to encode the Bind after the BEGIN is
			// queued: said here, before anything is sent.
			return pgconn.CommandTag{}, 0, errors.New("too many parameters")
		}
		if err := cc.sendTx(ctx, pc, sd, sql); err != nil {
			return pgconn.CommandTag{}, 0, err
		}
		rep := cc.readTx(ctx, pc)
		switch {
		case rep.err != nil:
			// The connection failed, or the caller's context cut the
			// reply short (pgconn then closes the connection: so does
			// dropMidReply).
			dropMidReply(pc)
			if rep.done > txCommit {
				return rep.tag, 0, lsnUnread(rep.err)
			}
			return rep.tag, 0, rep.err
		case rep.pgErr != nil && rep.failed <= txCommit:
			// The server skipped the rest up to the Sync: nothing
			// committed. One more round trip, on failure only, ends the
			// transaction the BEGIN opened; without it the pool would
			// close the connection for being left in one.
			if !pc.IsClosed() && pc.TxStatus() != 'I' {
				_ = pc.Exec(ctx, "ROLLBACK").Close()
			}
			if attempt == 0 && rep.failed <= txWrite && staleStatement(rep.pgErr, sd != nil) && pc.TxStatus() == 'I' {
				forgetCaptureConn(ctx, conn)
				continue
			}
			return rep.tag, 0, rep.pgErr
		case rep.done <= txCommit:
			return rep.tag, 0, errors.New("routerlib: the server ended the write's reply early")
		case rep.pgErr != nil:
			lsn, err := positionAfter(ctx, conn, rep.pgErr)
			return rep.tag, lsn, err
		case !rep.positioned && rep.done > txLSN:
			return rep.tag, 0, lsnUnread(errors.New("routerlib: the WAL position query returned no row"))
		case !rep.positioned:
			return rep.tag, 0, lsnUnread(errors.New("routerlib: the server ended the write's reply before the WAL position"))
		}
		return rep.tag, rep.lsn, nil
	}
}

// The statements of a capture in the order sendTx sends them.
const (
	txBegin = iota
	txWrite
	txCommit
	txLSN
)

// sendTx writes BEGIN, the write (the statement sd prepared, or sql when
// sd is nil, with the arguments cc.eqb holds), COMMIT, the LSN query and
// one Sync to pc in one flush.
//
// A capture that fits in smallCapture bytes is written straight to the
// connection (pc idle, ctx not done): such a write cannot block, so it
// needs neither pgconn's guard against a write blocking while the server
// blocks writing to us (a timer reset and stopped at every flush, whose
// reset may wake another thread to poll: about 1.3 µs a call, and the
// wake-up on the server's cores) nor ctx watched while it goes out; the
// reply is watched by readTx. A larger one goes through a pipeline that
// holds nothing else: pgconn then watches ctx while the bytes go out,
// guards the write, and reports and handles a failure as it does for a
// batch (the connection closed, the error in terms of ctx). Either way a
// failed write closes the connection and returns pgconn's error, and a
// context done before the send leaves nothing queued.
func (cc *captureConn) sendTx(ctx context.Context, pc *pgconn.PgConn, sd *pgconn.StatementDescription, sql string) error {
	if cc.small(sql) && !pc.IsBusy() && !pc.IsClosed() && (ctx.Done() == nil || ctx.Err() == nil) {
		fe := pc.Frontend()
		cc.queueTx(fe, sd, sql)
		if err := fe.Flush(); err != nil {
			// Some of it may have gone out: the connection is closed, as
			// a pipeline's failed Flush closes it.
			dropMidReply(pc)
			return err
		}
		return nil
	}
	p := pc.StartPipeline(ctx)
	if !pc.IsBusy() {
		// The pipeline did not start (ctx already done, the connection
		// closed): nothing may be queued, or the connection's next call
		// would send it. Its Flush returns why.
		return p.Flush()
	}
	cc.queueTx(pc.Frontend(), sd, sql)
	if err := p.Flush(); err != nil {
		return err // the pipeline closed itself, and the connection
	}
	return p.Close()
}

// smallCapture bounds the bytes sendTx writes without pgconn's guard. A
// write blocks only when the socket's send buffer is full, and a
// capture's starts empty: the server read everything sent before, up to
// the Sync it answered last. Linux gives a TCP or Unix socket a send
// buffer of at least 4,608 bytes.
const smallCapture = 4096

// small reports whether a capture of sql with the arguments cc.eqb holds
// writes at most smallCapture bytes: the capture's own statements, sent
// unnamed, take under 400, and sql is counted whether sent or not.
func (cc *captureConn) small(sql string) bool {
	n := 512 + len(sql) + 2*len(cc.eqb.ParamFormats) + 2*len(cc.eqb.ResultFormats)
	for _, v := range cc.eqb.ParamValues {
		if n += 4 + len(v); n > smallCapture {
			return false
		}
	}
	return n <= smallCapture
}

// queueTx queues sendTx's messages on fe.
func (cc *captureConn) queueTx(fe *pgproto3.Frontend, sd *pgconn.StatementDescription, sql string) {
	cc.sendOwnTx(fe, cc.begin, "BEGIN", nil)
	if sd != nil {
		cc.bind = pgproto3.Bind{PreparedStatement: sd.Name, ParameterFormatCodes: cc.eqb.ParamFormats, Parameters: cc.eqb.ParamValues, ResultFormatCodes: cc.eqb.ResultFormats}
	} else {
		cc.parse = pgproto3.Parse{Query: sql}
		fe.SendParse(&cc.parse)
		cc.bind = pgproto3.Bind{ParameterFormatCodes: cc.eqb.ParamFormats, Parameters: cc.eqb.ParamValues, ResultFormatCodes: cc.eqb.ResultFormats}
	}
	fe.SendBind(&cc.bind)
	fe.SendExecute(&cc.execute)
	cc.sendOwnTx(fe, cc.commit, "COMMIT", nil)
	cc.sendOwnTx(fe, cc.lsn, lsnQuery, binaryResult)
	fe.SendSync(&cc.sync)
	cc.bind, cc.parse = pgproto3.Bind{}, pgproto3.Parse{} // the caller's arguments are not kept
}

// sendOwnTx queues one of the capture's own statements on fe: the
// statement sd prepared, or sql when sd is nil, with its results in
// formats rf.
func (cc *captureConn) sendOwnTx(fe *pgproto3.Frontend, sd *pgconn.StatementDescription, sql string, rf []int16) {
	if sd != nil {
		cc.bind = pgproto3.Bind{PreparedStatement: sd.Name, ResultFormatCodes: rf}
	} else {
		cc.parse = pgproto3.Parse{Query: sql}
		fe.SendParse(&cc.parse)
		cc.bind = pgproto3.Bind{ResultFormatCodes: rf}
	}
	fe.SendBind(&cc.bind)
	fe.SendExecute(&cc.execute)
}

// A txReply is what readTx read of a capture's reply.
type txReply struct {
	tag        pgconn.CommandTag // the write's
	done       int               // statements completed (txBegin … txLSN)
	lsn        LSN
	positioned bool            // lsn was read
	pgErr      *pgconn.PgError // the server's error, for statement failed
	failed     int
	err        error // the connection's failure, or ctx's cut
}

// readTx reads the reply to sendTx on pc up to its ReadyForQuery, or up to
// a failure of the connection. ctx is watched once for the whole reply, by
// a watcher of the connection's own kind (see captureConn.watcher), and
// not at each message as pgconn's ReceiveMessage would (a context.AfterFunc
// each time): the messages are received with ctx's values and error but no
// Done channel (receiving), so that a failure is reported in ctx's terms
// exactly as pgconn's result readers report it.
func (cc *captureConn) readTx(ctx context.Context, pc *pgconn.PgConn) (rep txReply) {
	// A context that cannot be cancelled needs no watching, and its
	// error is always nil: pgconn skips its watcher for Background.
	rctx := context.Background()
	if ctx.Done() != nil {
		cc.watcher.Watch(ctx)
		cc.receiving = receiving{ctx}
		rctx = &cc.receiving
		defer func() {
			cc.receiving = receiving{}
			cc.watcher.Unwatch()
		}()
	}
	// Between two messages pgconn holds no lock: the connection shows
	// neither busy nor in a transaction (the status is the last reply's),
	// so a panic out of a handler the application configured (OnNotice,
	// OnNotification, OnPgError), which ReceiveMessage calls, would let
	// the pool take it back with the rest of this reply unread, for its
	// next caller to read as its own. pgconn's readers hold the lock for
	// the whole reply, and the pool drops a busy connection: so is this
	// one closed unless its reply was read to the end or failed.
	ended := false
	defer func() {
		if !ended {
			dropMidReply(pc)
		}
	}()
	for {
		msg, err := pc.ReceiveMessage(rctx)
		if err != nil {
			ended = true
			// ReceiveMessage wraps the error as safe to retry, which it
			// is not once the write went out: unwrapped, it is the one a
			// result reader returns.
			if inner := errors.Unwrap(err); inner != nil {
				err = inner
			}
			rep.err = err
			return rep
		}
		switch msg := msg.(type) {
		case *pgproto3.CommandComplete:
			if rep.done == txWrite {
				rep.tag = cc.commandTag(msg.CommandTag)
			}
			rep.done++
		case *pgproto3.EmptyQueryResponse:
			rep.done++
		case *pgproto3.DataRow:
			if rep.done == txLSN && len(msg.Values) == 1 && len(msg.Values[0]) == 8 {
				rep.lsn, rep.positioned = recordEnd(LSN(binary.BigEndian.Uint64(msg.Values[0]))), true
			}
		case *pgproto3.ErrorResponse:
			if rep.pgErr == nil {
				rep.pgErr, rep.failed = pgconn.ErrorResponseToPgError(msg), rep.done
			}
		case *pgproto3.ReadyForQuery:
			ended = true
			return rep
		}
	}
}

// commandTag returns the command tag b, as the last write's when it reads
// the same: a write's tag mostly repeats ("INSERT 0 1"), and the string of
// a new one is an allocation at every write.
func (cc *captureConn) commandTag(b []byte) pgconn.CommandTag {
	if string(b) != cc.tag.String() {
		cc.tag = pgconn.NewCommandTag(string(b))
	}
	return cc.tag
}

// receiving is a context as ReceiveMessage is given it in readTx: the
// caller's, without its Done channel (readTx's watcher watches it).
type receiving struct{ context.Context }

func (receiving) Done() <-chan struct{} { return nil }

// dropMidReply closes pc after its reply was cut short, as pgconn closes
// a connection that fails in the middle of a call (asyncClose: a cancel
// request for what the server still runs, then the connection closed in
// the background, pc marked closed at once so that the pool drops it).
// pgconn exports that only through a pipeline closed with a request that
// was never synced, which is what this is. A connection pgconn already
// closed (any failure but a timeout) is left as it is.
func dropMidReply(pc *pgconn.PgConn) {
	if pc.IsClosed() {
		return
	}
	p := pc.StartPipeline(context.Background())
	p.SendFlushRequest()
	_ = p.Close()
}

// startCapture sends, in one flush, the write, a Sync (which commits it),
// the LSN query and a second Sync: one round trip. It serves the writes
// the batch path cannot wrap in BEGIN … COMMIT (DDL, VACUUM, CALL…); the
// server flushes at each Sync, so it costs a second wake-up of the client.
// It returns the pipeline positioned at the write's result, and whether
// the write went as a prepared statement. A pgx Batch would not do: it is
// one implicit transaction, so an LSN read inside it precedes the commit
// record.
func startCapture(ctx context.Context, conn *pgx.Conn, sql string, args []any) (*pgconn.Pipeline, bool, error) {
	cc, err := captureConnOf(ctx, conn)
	if err != nil {
		return nil, false, err
	}
	var sd *pgconn.StatementDescription
	var plans *argPlans
	if len(args) > 0 && cc.prepares {
		w, err := cc.write(ctx, conn.PgConn(), sql, sqlHash(sql))
		if err != nil {
			return nil, false, err
		}
		sd, plans = w.sd, w.args
	}
	if err := cc.buildArgs(conn.TypeMap(), plans, sd, args); err != nil {
		return nil, false, err
	}
	p := conn.PgConn().StartPipeline(ctx)
	cc.sendCall(p, sd, sql, cc.eqb.ResultFormats)
	p.SendPipelineSync()
	// Through PgBouncer in transaction mode this may run on another of
	// the server's connections: the position is the server's, read after
	// the commit all the same.
	sendOwn(p, cc.lsn, lsnQuery)
	p.SendPipelineSync()
	if err := p.Flush(); err != nil {
		p.Close()
		return nil, false, err
	}
	return p, sd != nil, nil
}

// sendCall queues the caller's statement on p with the arguments cc.eqb
// holds: as the statement sd prepared, or as sql when sd is nil, its
// results in formats rf.
func (cc *captureConn) sendCall(p *pgconn.Pipeline, sd *pgconn.StatementDescription, sql string, rf []int16) {
	if sd != nil {
		p.SendQueryStatement(sd, cc.eqb.ParamValues, cc.eqb.ParamFormats, rf)
	} else {
		p.SendQueryParams(sql, cc.eqb.ParamValues, nil, cc.eqb.ParamFormats, rf)
	}
}

// sendOwn queues one of the capture's own queries (the position, the
// transaction-ID check) on p, in binary: as the statement sd this
// connection prepared, or as sql when it has none.
func sendOwn(p *pgconn.Pipeline, sd *pgconn.StatementDescription, sql string) {
	if sd != nil {
		p.SendQueryStatement(sd, nil, nil, binaryResult)
	} else {
		p.SendQueryParams(sql, nil, nil, nil, binaryResult)
	}
}

// startCaptureResult starts the capture pipeline and returns its first
// result. When the server no longer accepts a statement this connection
// prepared (staleStatement), the statements are prepared afresh and the
// write is sent once more: its Bind failed, so it never ran. A nil
// pipeline means err ended the call.
func startCaptureResult(ctx context.Context, conn *pgx.Conn, sql string, args []any) (*pgconn.Pipeline, any, error) {
	for attempt := 0; ; attempt++ {
		p, prepared, err := startCapture(ctx, conn, sql, args)
		if err != nil {
			return nil, nil, err
		}
		res, err := p.GetResults()
		// The write is the first statement: unprepared, it has no
		// statement of ours to lose, and an error is its own.
		if attempt == 0 && prepared && staleStatement(err, true) {
			// Read the rest (the LSN query may fail alike) to free the
			// connection; only a broken connection ends the call here.
			if _, _, ferr := finishCapture(p); ferr != nil && !errors.As(ferr, new(*pgconn.PgError)) {
				return nil, nil, err
			}
			forgetCaptureConn(ctx, conn)
			continue
		}
		return p, res, err
	}
}

// finishCapture reads what follows the write's result: its Sync, the LSN and
// the last Sync, and closes the pipeline. synced reports that the write's
// Sync came back, so that the write committed: an error before it is the
// commit's own (a deferred constraint) or leaves it unknown (the
// connection failed). An error after it is the LSN query's or the
// connection's, unwrapped (see positionAfter).
func finishCapture(p *pgconn.Pipeline) (lsn LSN, synced bool, err error) {
	for step := 0; step < 3; step++ {
		res, err := p.GetResults()
		if err != nil {
			p.Close()
			return 0, synced, err
		}
		synced = true
		if rr, ok := res.(*pgconn.ResultReader); ok {
			if lsn, err = position(rr); err != nil {
				p.Close()
				return 0, synced, err
			}
		}
	}
	return lsn, synced, p.Close()
}

// markOnPanic, deferred by a capture call (or a transaction's Commit),
// marks s (markLost) when the call is cut before *returned is set: a
// panic out of a handler of the application's that pgconn calls while it
// reads the reply (OnNotice, OnNotification, OnPgError; a trigger's RAISE
// NOTICE), or a runtime.Goexit there (t.FailNow in a test's handler),
// for which recover() returns nil, so it is not asked. The write went
// out with its COMMIT or Sync, which the server runs whatever the client
// does, so it may have committed with its position unread; the session's
// next read then asks the primary first. Nothing is recovered: the panic
// (or the Goexit) goes on untouched.
func markOnPanic(s *Session, returned *bool) {
	if !*returned {
		s.markLost()
	}
}

// releaseOnPanic is markOnPanic for a call that holds c until its rows
// do: it releases c too (the pool drops it, busy mid-reply), which
// nothing else would once the cut passed the call.
func releaseOnPanic(c *pgxpool.Conn, s *Session, returned *bool) {
	if !*returned {
		s.markLost()
		c.Release()
	}
}

// execCapture runs a write and captures the LSN after its commit in the
// same round trip; a read on the writer's read-write session goes to
// execReadCapture.
//
// h is sql's hash (sqlHash), computed with cl.
func (r *Router) execCapture(ctx context.Context, tg target, sql string, cl class, h uint64, args []any, s *Session) (pgconn.CommandTag, error) {
	returned := false
	defer markOnPanic(s, &returned)
	tag, err := func() (pgconn.CommandTag, error) {
		pool := tg.pool
		if !tg.write {
			return r.execReadCapture(ctx, pool, sql, cl, args, s)
		}
		if !pipelineable(cl, args) {
			tag, err := execOn(ctx, pool, sql, args, tg.n.server, 0)
			if err == nil {
				err = r.captureAfter(ctx, pool, s)
			} else {
				r.writeFailed(ctx, pool, s, err)
			}
			return tag, err
		}
		if cl&classDML != 0 {
			return r.execTxOn(ctx, tg.n.server, pool, sql, h, args, s)
		}
		c, err := acquireConn(ctx, pool)
		if err != nil {
			return pgconn.CommandTag{}, err
		}
		defer c.Release()
		p, res, err := startCaptureResult(ctx, c.Conn(), sql, args)
		if p == nil {
			outcomeUnknown(s, err)
			return pgconn.CommandTag{}, err
		}
		var tag pgconn.CommandTag
		var pgErr *pgconn.PgError
		switch {
		case err != nil && !errors.As(err, &pgErr):
			p.Close()
			outcomeUnknown(s, err)
			return tag, err
		case err == nil:
			rr, ok := res.(*pgconn.ResultReader)
			if !ok {
				p.Close()
				return tag, fmt.Errorf("routerlib: unexpected pipeline result %T", res)
			}
			tag, err = rr.Close()
		}
		lsn, synced, lerr := finishCapture(p)
		switch {
		case err != nil:
			// The write failed, but it may have committed part of its work
			// first (a procedure or DO block that commits, then raises): the
			// position read after its Sync is past that commit.
			if lerr == nil {
				s.Observe(lsn)
			} else {
				c.Release() // before writeFailed may take one of its own
				r.writeFailed(ctx, pool, s, err)
			}
			return tag, err
		case !synced:
			// Its commit failed (a deferred constraint), or its outcome is
			// unknown.
			outcomeUnknown(s, lerr)
			return tag, lerr
		case lerr != nil:
			lsn, lerr = positionAfter(ctx, c.Conn(), lerr)
		}
		return tag, r.observe(s, lsn, lerr)
	}()
	returned = true
	return tag, err
}

// execTxOn runs a classDML write of execCapture's on a connection of
// pool, srv's write pool, as a capture (execTxCapture): one kept between
// writes when there is one, and kept for the next after (see readConns).
func (r *Router) execTxOn(ctx context.Context, srv *server, pool *pgxpool.Pool, sql string, h uint64, args []any, s *Session) (pgconn.CommandTag, error) {
	c, gen, err := srv.acquire(ctx, pool)
	if err != nil {
		return pgconn.CommandTag{}, &unacquired{err}
	}
	defer srv.release(pool, c, gen)
	tag, lsn, err := execTxCapture(ctx, c.Conn(), sql, h, args)
	if err != nil && !errors.As(err, new(*positionUnread)) {
		outcomeUnknown(s, err)
	}
	return tag, r.observe(s, lsn, err)
}

// queryCapture runs a write that returns rows (INSERT … RETURNING) and
// captures the LSN in the same round trip. The rows stream as usual; the
// COMMIT's result and the LSN are read when they are closed.
// The LSN is read on t's pool after the call returned: t stays in flight
// until then, so that a reload does not close that pool first.
func (r *Router) queryCapture(ctx context.Context, t *topology, tg target, sql string, cl class, args []any, s *Session) (pgx.Rows, error) {
	pool := tg.pool
	if !tg.write {
		return r.queryReadCapture(ctx, pool, sql, cl, args, s)
	}
	c, err := acquireConn(ctx, pool)
	if err != nil {
		return errRows{err}, err
	}
	returned := false
	defer releaseOnPanic(c, s, &returned)
	rows, err := func() (pgx.Rows, error) {
		if !pipelineable(cl, args) {
			rows, err := c.Conn().Query(ctx, sql, args...)
			if err != nil {
				c.Release()
				return rows, err
			}
			leave := t.hold()
			return &captureRows{Rows: rows, session: s, finish: func() error {
				defer leave()
				c.Release() // before captureAfter takes one of its own
				return r.captureAfter(ctx, pool, s)
			}}, nil
		}
		if cl&classDML != 0 {
			cp, rr, err := startTxCapture(ctx, c.Conn(), sql, args, true)
			if cp == nil {
				// Cut before the write's result (the caller's context, the
				// connection): the COMMIT went out with it, and the server
				// may have run it.
				c.Release()
				outcomeUnknown(s, err)
				return errRows{err}, err
			}
			rows := pgx.RowsFromResultReader(c.Conn().TypeMap(), rr)
			return &captureRows{Rows: rows, session: s, finish: func() error {
				defer c.Release()
				// Even after an error of the rows: one the client raised (a
				// Scan into the wrong type) leaves the write to commit, and
				// then its LSN must be recorded; one the server raised makes
				// finish roll back and return it.
				lsn, err := cp.finish()
				if err != nil && !errors.As(err, new(*positionUnread)) {
					outcomeUnknown(s, err)
				}
				return r.observe(s, lsn, err)
			}}, nil
		}
		p, res, err := startCaptureResult(ctx, c.Conn(), sql, args)
		if p == nil {
			c.Release()
			outcomeUnknown(s, err)
			return errRows{err}, err
		}
		rows, err := pipelineRows(c, p, res, err, s)
		if err != nil {
			return errRows{err}, err
		}
		return &captureRows{Rows: rows, session: s, finish: func() error {
			defer c.Release()
			lsn, synced, err := finishCapture(p)
			switch {
			case rows.Err() != nil && errors.As(rows.Err(), new(*pgconn.PgError)):
				// The server failed the write, which may have committed part
				// of its work first (see execCapture): its error is the
				// rows'.
				if err == nil {
					s.Observe(lsn)
				} else {
					c.Release() // before writeFailed may take one of its own
					r.writeFailed(ctx, pool, s, rows.Err())
				}
				return nil
			case !synced:
				outcomeUnknown(s, err)
				return err
			case err != nil:
				lsn, err = positionAfter(ctx, c.Conn(), err)
			}
			return r.observe(s, lsn, err)
		}}, nil
	}()
	returned = true
	return rows, err
}

// pipelineRows returns the rows of res, the first result of the pipeline
// p on c, or of err, its failure: the server's error becomes the rows'
// own, read when they end (the pipeline's rest is still to read). A
// failure of the connection ends the call: p is closed, c released and s
// marked (outcomeUnknown), and the error returned.
func pipelineRows(c *pgxpool.Conn, p *pgconn.Pipeline, res any, err error, s *Session) (pgx.Rows, error) {
	switch {
	case err != nil && !errors.As(err, new(*pgconn.PgError)):
		p.Close()
		c.Release()
		outcomeUnknown(s, err)
		return nil, err
	case err != nil:
		return errRows{err}, nil
	}
	rr, ok := res.(*pgconn.ResultReader)
	if !ok {
		p.Close()
		c.Release()
		return nil, fmt.Errorf("routerlib: unexpected pipeline result %T", res)
	}
	return pgx.RowsFromResultReader(c.Conn().TypeMap(), rr), nil
}

// captureRows reads the LSN when its rows are done: Next returned false or
// Close was called.
type captureRows struct {
	pgx.Rows
	finish  func() error // releases the call's connection
	session *Session
	done    bool
	err     error
}

// end closes the rows and finishes the call. Closing reads the rest of
// the reply, where a handler of the application's may panic, as may
// finish: finish runs all the same, so that the connection is released,
// and the session is marked (markOnPanic).
func (w *captureRows) end() {
	if !w.done {
		w.done = true
		closed := false
		defer markOnPanic(w.session, &closed)
		w.closeFinish()
		closed = true
	}
}

// closeFinish closes the rows and runs finish even when the Close is cut.
func (w *captureRows) closeFinish() {
	defer w.finished()
	w.Rows.Close()
}

func (w *captureRows) finished() { w.err = w.finish() }

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
// strings, NamedArgs). It runs after the write committed, and returns nil:
// a position it cannot read is observe's.
func (r *Router) captureAfter(ctx context.Context, pool *pgxpool.Pool, s *Session) error {
	c, err := acquireConn(ctx, pool)
	if err != nil {
		return r.observe(s, 0, lsnUnread(err))
	}
	defer c.Release()
	return r.recordAt(ctx, c.Conn().PgConn(), s)
}

// recordAt reads the primary's position on pc, after a write committed,
// and records it in s (observe: a position that cannot be read marks s,
// and nil is returned).
func (r *Router) recordAt(ctx context.Context, pc *pgconn.PgConn, s *Session) error {
	lsn, err := readPosition(ctx, pc)
	if err != nil {
		err = lsnUnread(err)
	}
	return r.observe(s, lsn, err)
}

// writeFailed records in s what a write that failed with err, and was not
// wrapped in BEGIN … COMMIT, may have committed: a procedure or DO block
// that commits and then fails, or a string of several statements, or a
// batch, with a COMMIT among them, leaves committed rows behind an error.
// After the server's error the primary's position is read in a round trip
// of its own (on failure only; the session of the write may be gone, as
// when the server ended it); after a failure of the connection,
// outcomeUnknown's mark. The caller returns err, whatever happens here.
func (r *Router) writeFailed(ctx context.Context, pool *pgxpool.Pool, s *Session, err error) {
	if errors.As(err, new(*pgconn.PgError)) {
		_ = r.captureAfter(ctx, pool, s)
		return
	}
	outcomeUnknown(s, err)
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
		b.r.writeFailed(b.ctx, b.pool, b.session, err)
		return err
	}
	return b.r.captureAfter(b.ctx, b.pool, b.session)
}

// sendReadBatchCapture sends b, a batch of reads, to tg, the writer's
// read-write session (see startReadCapture), recording in s (recordIn).
// It is a resendBatch: sent again, whole, when the server had ended its
// session as idle. b itself is left as the caller queued it (sendable).
func (r *Router) sendReadBatchCapture(ctx context.Context, t *topology, tg target, b *pgx.Batch, s *Session) pgx.BatchResults {
	rb := &resendBatch{r: r, ctx: ctx, n: tg.n, pool: tg.pool, max: maxAttempts(t)}
	rb.send(rb.recordIn(sendable(b), s))
	return rb
}

// A readCapture is what a batch of reads on the writer's read-write
// session records (see resendBatch.recordIn): the session, and whether
// its reads wrote, which xactQuery, queued last, says. The batch is one
// implicit transaction (one Sync), so that query tells it in the same
// round trip; Close then reads the position after the commit, only when
// they did.
type readCapture struct {
	session *Session
	wrote   bool
	done    bool // closed: the outcome is recorded once
}

// recordIn makes b, the batch's next sending (sendable), record in s: with
// xactQuery queued last, whose answer the batch's Close reads after the
// caller's (see resendBatch.Close). With s nil it records nothing, and a
// sending that recorded loses its xactQuery. A batch of reads sent on the
// writer's read-write session records from the first sending
// (sendReadBatchCapture); one that moved there from a replica that failed
// under it records from then on, as a Query's read moved there does; one
// that moved off it (none of it went out there: see again) records
// nothing.
func (rb *resendBatch) recordIn(b *pgx.Batch, s *Session) *pgx.Batch {
	if rb.capture != nil {
		b.QueuedQueries = b.QueuedQueries[:len(b.QueuedQueries)-1] // its xactQuery
		rb.capture = nil
	}
	if s != nil {
		c := &readCapture{session: s}
		rb.capture = c
		b.Queue(xactQuery).QueryRow(func(row pgx.Row) error { return row.Scan(&c.wrote) })
	}
	return b
}

// recordOutcome records in the session of a batch that records (see
// recordIn), once, the outcome of its Close, which returned err.
func (rb *resendBatch) recordOutcome(err error) error {
	c := rb.capture
	if c == nil || c.done {
		return err
	}
	c.done = true
	switch {
	case err != nil:
		// The server's error rolled the batch back; a failure of the
		// connection leaves its commit unknown.
		outcomeUnknown(c.session, err)
	case c.wrote:
		// On a session of its own: the batch's went back to the pool at
		// Close. Any session of the primary reads a position at or past
		// the commit.
		err = rb.r.captureAfter(rb.ctx, rb.pool, c.session)
	}
	return err
}

// beginCapture starts a transaction whose Commit captures the LSN.
func (r *Router) beginCapture(ctx context.Context, tg target, opts pgx.TxOptions, s *Session) (pgx.Tx, error) {
	c, err := acquireConn(ctx, tg.pool)
	if err != nil {
		return nil, err
	}
	tx, err := c.BeginTx(ctx, opts)
	if err != nil {
		c.Release()
		return nil, err
	}
	w := newWriterTx(tx, r, tg.n)
	return &captureTx{Tx: w, writer: w, conn: c, session: s, r: r}, nil
}

// captureTx sends COMMIT and the LSN query in one round trip, with a Sync
// between them so the LSN is read after the commit.
type captureTx struct {
	pgx.Tx                // writer
	writer  *writerTx     // says what a failure of the transaction's connection means
	conn    *pgxpool.Conn // released when the transaction ends
	session *Session
	r       *Router
	batch   bool // begun by a batch (pgx.Batch.BeginTx), whose BEGIN may have failed
}

func (tx *captureTx) release() {
	if tx.conn != nil {
		tx.conn.Release()
		tx.conn = nil
	}
}

// The statements of a transaction that ended fail with [pgx.ErrTxClosed],
// as on pgx's own. The embedded Tx cannot tell: Commit sent the COMMIT in
// the capture's batch, not through it, and its connection is back in the
// pool, perhaps in another caller's transaction, where a statement sent
// now would run (and a write be rolled back with that caller's work).
// LargeObjects cannot be guarded so: pgx gives no way to build its value
// around another Tx than pgx's own, and a large object opened before the
// Commit keeps that one. So Commit closes pgx's own Tx too (closeTx),
// which then refuses every call, LargeObjects' included.

func (tx *captureTx) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	if tx.conn == nil {
		return pgconn.CommandTag{}, pgx.ErrTxClosed
	}
	returned := false
	defer tx.cutExec(sql, &returned)
	tag, err := tx.Tx.Exec(ctx, sql, args...)
	returned = true
	// Still in the transaction and no failure: the common case, decided
	// without lexing sql.
	if (err != nil || tx.conn.Conn().PgConn().TxStatus() != 'T') && endsTx(sql) {
		tx.ended(ctx, err)
	}
	return tag, err
}

// cutExec, deferred by Exec, handles a cut of the statement sql before
// *returned is set (see markOnPanic): a COMMIT sent so (endsTx) went out,
// and may commit with its position unread, so the session is marked. The
// connection, mid-reply, is released whatever sql was (the pool closes
// it, and notes its backend: see statementsDiscarded.TraceRelease), or
// its slot would be lost to an application that recovers the panic and
// does not roll back; the transaction's calls then fail with
// pgx.ErrTxClosed.
func (tx *captureTx) cutExec(sql string, returned *bool) {
	if *returned {
		return
	}
	if endsTx(sql) {
		tx.session.markLost()
	}
	tx.release()
}

func (tx *captureTx) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if tx.conn == nil {
		return errRows{err: pgx.ErrTxClosed}, pgx.ErrTxClosed
	}
	return tx.Tx.Query(ctx, sql, args...)
}

func (tx *captureTx) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	if tx.conn == nil {
		return errRow{pgx.ErrTxClosed}
	}
	return tx.Tx.QueryRow(ctx, sql, args...)
}

func (tx *captureTx) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	if tx.conn == nil {
		return pgx.FailedBatchResults(b, pgx.ErrTxClosed)
	}
	return tx.batchResults(tx.writer.batchResults(ctx, tx.writer.Tx.SendBatch(ctx, b), b, nil))
}

// A transaction may end with a COMMIT of its own before its Commit: one
// queued in the batch that began it ([pgx.Batch.BeginTx]), or sent
// through its Exec or SendBatch in a string of several statements or a
// batch (endsTx). Idiomatic code then only defers a Rollback, which finds
// the transaction over, and the session's next read may come before
// even that: so the position is read as soon as the statement or batch
// returns, on the transaction's connection (held until Commit or
// Rollback: in a pool of one, another could not be had). A COMMIT sent
// through Query, or the connection of Conn(), goes unrecorded.

// ended records in the session what a statement or batch of the
// transaction that held a COMMIT (endsTx) committed, now that it
// returned; err is its failure. A failure of the connection leaves the
// commit unknown (outcomeUnknown); a transaction still open and failed
// ('E': the failure came before the COMMIT, or after a COMMIT and a new
// BEGIN) cannot read the position, and marks the session for its next
// read to ask (markLost), on the safe side.
func (tx *captureTx) ended(ctx context.Context, err error) {
	if tx.conn == nil {
		return
	}
	pc := tx.conn.Conn().PgConn()
	switch {
	case err != nil && !errors.As(err, new(*pgconn.PgError)):
		outcomeUnknown(tx.session, err)
	case pc.TxStatus() == 'E':
		tx.session.markLost()
	default:
		_ = tx.r.recordAt(ctx, pc, tx.session)
	}
}

// batchResults are b, the results of a batch sent in tx or that began
// it, recording the session's position at their Close when the batch
// holds a COMMIT (see ended).
func (tx *captureTx) batchResults(b *writerTxBatch) pgx.BatchResults {
	if !b.commits {
		return b
	}
	return &captureTxBatch{writerTxBatch: b, tx: tx}
}

// captureTxBatch are the results of a batch that holds a COMMIT, sent in
// a captureTx or that began it.
type captureTxBatch struct {
	*writerTxBatch
	tx     *captureTx
	closed bool
}

// Close records the position once, at the first Close: a later one may
// come after the transaction ended and its connection went back to the
// pool.
func (b *captureTxBatch) Close() error {
	err := b.writerTxBatch.Close()
	if !b.closed {
		b.closed = true
		b.tx.ended(b.ctx, err)
	}
	return err
}

func (tx *captureTx) CopyFrom(ctx context.Context, tableName pgx.Identifier, columnNames []string, rowSrc pgx.CopyFromSource) (int64, error) {
	if tx.conn == nil {
		return 0, pgx.ErrTxClosed
	}
	return tx.Tx.CopyFrom(ctx, tableName, columnNames, rowSrc)
}

func (tx *captureTx) Prepare(ctx context.Context, name, sql string) (*pgconn.StatementDescription, error) {
	if tx.conn == nil {
		return nil, pgx.ErrTxClosed
	}
	return tx.Tx.Prepare(ctx, name, sql)
}

func (tx *captureTx) Begin(ctx context.Context) (pgx.Tx, error) {
	if tx.conn == nil {
		return nil, pgx.ErrTxClosed
	}
	return tx.Tx.Begin(ctx)
}

func (tx *captureTx) Commit(ctx context.Context) error {
	if tx.conn == nil {
		return pgx.ErrTxClosed
	}
	defer tx.release()
	returned := false
	defer markOnPanic(tx.session, &returned) // the COMMIT went out: see markOnPanic
	err := func() error {
		conn := tx.conn.Conn()
		if st := conn.PgConn().TxStatus(); st == 'E' || tx.batch && st == 'I' {
			// A failed transaction: its COMMIT rolls back and there is no
			// write to record (nor can statements be prepared in it). Or a
			// batch's transaction that never began (pgx's Tx is closed) or
			// that a COMMIT in the batch ended.
			return tx.Tx.Commit(ctx)
		}
		cc, err := captureConnOf(ctx, conn)
		if err != nil {
			tx.Tx.Rollback(ctx)
			return tx.writer.failed(ctx, err, "", false) // the COMMIT was not sent
		}
		if cc.traced {
			return tx.commitTraced(ctx, conn)
		}
		defer tx.closeTx() // before the connection goes back to the pool
		// COMMIT goes unprepared: a DEALLOCATE ALL in the transaction would
		// make a prepared one fail, and the transaction roll back. A missing
		// LSN statement only costs a second round trip after the commit (see
		// positionAfter).
		var b pgconn.Batch
		queue(&b, nil, "COMMIT", nil, nil)
		queue(&b, cc.lsn, lsnQuery, nil, binaryResult)
		cp := &capture{ctx: ctx, conn: conn, mrr: conn.PgConn().ExecBatch(ctx, &b)}
		if !cp.mrr.NextResult() {
			err := cp.fail()
			outcomeUnknown(tx.session, err)
			return tx.writer.failed(ctx, err, "", true)
		}
		tag, err := cp.mrr.ResultReader().Close()
		if err != nil {
			err := cp.fail()
			outcomeUnknown(tx.session, err)
			return tx.writer.failed(ctx, err, "", true)
		}
		if tag.String() == "ROLLBACK" {
			cp.mrr.Close()
			return pgx.ErrTxCommitRollback
		}
		lsn, err := cp.finishLSN()
		return tx.r.observe(tx.session, lsn, err)
	}()
	returned = true
	return err
}

// closeTx marks pgx's own Tx closed once the capture's COMMIT ended it,
// so that its calls fail with pgx.ErrTxClosed instead of running on the
// connection back in the pool (LargeObjects, above). pgx closes it only in
// its Commit or Rollback, which send a statement; Commit with a context
// already done sends nothing (pgconn checks the context first), and, the
// connection being out of its transaction, keeps the connection. A query
// tracer would see that as a failed "commit": a connection with a tracer
// of the application's commits through pgx instead (commitTraced).
func (tx *captureTx) closeTx() {
	done, cancel := context.WithCancel(context.Background())
	cancel()
	_ = tx.writer.Tx.Commit(done)
}

// commitTraced commits on a connection with a query tracer of the
// application's (WithPoolConfig) through pgx's own Tx: the tracer sees
// the COMMIT, as without routerlib, and pgx closes its Tx, its large
// objects included, with nothing that looks like a failure. The position
// is read after it, in a round trip of its own (on these connections
// only).
func (tx *captureTx) commitTraced(ctx context.Context, conn *pgx.Conn) error {
	err := tx.writer.Commit(ctx) // says whether a failure may have committed
	switch {
	case err == nil:
		return tx.r.recordAt(ctx, conn.PgConn(), tx.session)
	case !errors.Is(err, pgx.ErrTxCommitRollback):
		outcomeUnknown(tx.session, err)
	}
	return err
}

func (tx *captureTx) Rollback(ctx context.Context) error {
	if tx.conn == nil {
		return pgx.ErrTxClosed
	}
	defer tx.release()
	return tx.Tx.Rollback(ctx)
}

// xactQuery tells whether the statements before it in the same implicit
// transaction wrote: PostgreSQL assigns a transaction ID at a
// transaction's first write (to a table, a temporary one included, or a
// catalog), never for a read. Its one column comes back in binary (one
// byte). Named with its schema, as lsnQuery is.
const xactQuery = "SELECT pg_catalog.pg_current_xact_id_if_assigned() IS NOT NULL"

// A read that runs on the writer's read-write session (the session's
// writes not yet replayed anywhere, or the primary serving the read as the
// fallback) succeeds there even when a function it calls writes, which a
// replica would have refused (25006, then run again and recorded as a
// write). So such a read goes with xactQuery before one Sync: one implicit
// transaction and one round trip, the client woken once. Only when the
// read wrote is the position read, after the Sync committed it, in a round
// trip of its own: recording the primary's position after every read
// would hold the session on the primary while other sessions write.

// startReadCapture sends the read sql on conn followed by xactQuery, and
// returns the pipeline and the read's result. The read goes as pgx would
// send it: named arguments (any [pgx.QueryRewriter]) rewritten first; in
// the connection's exec mode, or the call's: prepared once per connection
// (the default), described as an unnamed statement first
// ([pgx.QueryExecModeDescribeExec], [pgx.QueryExecModeCacheDescribe]), or
// unnamed with its results as text ([pgx.QueryExecModeExec], and
// [pgx.QueryExecModeSimpleProtocol], which pgx documents as behaving the
// same); [pgx.QueryResultFormatsByOID] applied as pgx applies it (in the
// modes that describe the statement first; ignored in the others). sent
// false: the call is several statements (see execSimpleReadCapture and
// querySimpleReadCapture): it runs as usual. When the server no longer
// accepts the statement this connection prepared for the read
// (staleStatement), it is prepared afresh and sent once more: its Bind
// failed, so nothing ran. A nil pipeline with sent true means err ended
// the call.
func startReadCapture(ctx context.Context, conn *pgx.Conn, sql string, cl class, args []any) (p *pgconn.Pipeline, res any, sent bool, err error) {
	if cl&classMulti != 0 {
		return nil, nil, false, nil
	}
	var formats []int16
	var byOID pgx.QueryResultFormatsByOID
	var rewriter pgx.QueryRewriter
	cc, err := captureConnOf(ctx, conn)
	if err != nil {
		return nil, nil, true, err
	}
	mode := cc.mode // the call's, when it sets one
options:
	for len(args) > 0 {
		switch opt := args[0].(type) {
		case pgx.QueryResultFormats:
			formats = opt
		case pgx.QueryResultFormatsByOID:
			byOID = opt
		case pgx.QueryExecMode:
			mode = opt
		case pgx.QueryRewriter:
			rewriter = opt
		default:
			break options
		}
		args = args[1:]
	}
	if rewriter != nil {
		if sql, args, err = rewriter.RewriteQuery(ctx, conn, sql, args); err != nil {
			return nil, nil, true, fmt.Errorf("rewrite query failed: %w", err) // pgx's words
		}
	}
	for attempt := 0; ; attempt++ {
		if attempt > 0 { // its statements forgotten (forgetCaptureConn)
			if cc, err = captureConnOf(ctx, conn); err != nil {
				return nil, nil, true, err
			}
		}
		var named, describe bool
		switch mode {
		case pgx.QueryExecModeCacheStatement:
			named, describe = cc.prepares, !cc.prepares
		case pgx.QueryExecModeCacheDescribe, pgx.QueryExecModeDescribeExec:
			describe = true
		}
		// In the exec mode pgx's Query would send it in (the call's, else
		// the connection's default), even without arguments: prepared
		// (CacheStatement, on a connection that prepares), or described
		// first (the other modes but Exec and SimpleProtocol), its
		// columns then come back in binary where pgx has a binary codec.
		// Sent undescribed, they come back as text, which pgx cannot read
		// for a server's other DateStyle or IntervalStyle (a timestamptz
		// under DateStyle = 'SQL, DMY'), where the same read off the
		// primary works.
		var sd *pgconn.StatementDescription
		switch {
		case named:
			w, err := cc.write(ctx, conn.PgConn(), sql, sqlHash(sql))
			if err != nil {
				return nil, nil, true, err
			}
			sd = w.sd
		case describe:
			if sd, err = conn.PgConn().Prepare(ctx, "", sql, nil); err != nil {
				return nil, nil, true, err
			}
		}
		if sd == nil {
			byOID = nil // pgx sends it undescribed, its results as text
		}
		if err := cc.eqb.Build(conn.TypeMap(), sd, args); err != nil {
			return nil, nil, true, err
		}
		rf := cc.eqb.ResultFormats
		switch {
		case formats != nil:
			rf = formats
		case byOID != nil:
			cc.formats = cc.formats[:0]
			for _, f := range sd.Fields {
				cc.formats = append(cc.formats, byOID[f.DataTypeOID])
			}
			rf = cc.formats
		}
		p := conn.PgConn().StartPipeline(ctx)
		cc.sendCall(p, sd, sql, rf)
		sendOwn(p, cc.xact, xactQuery)
		p.SendPipelineSync()
		if err := p.Flush(); err != nil {
			p.Close()
			return nil, nil, true, err
		}
		res, err := p.GetResults()
		if attempt == 0 && named && staleStatement(err, true) {
			if _, ferr := readWrote(p); ferr != nil && !errors.As(ferr, new(*pgconn.PgError)) {
				return nil, nil, true, err
			}
			forgetCaptureConn(ctx, conn)
			continue
		}
		return p, res, true, err
	}
}

// readWrote reads what follows a read's result on its pipeline (the
// xactQuery's answer and the Sync) and closes the pipeline. It reports
// whether the read wrote, which the Sync committed. An error is the
// server's (the transaction rolled back: nothing was written) or the
// connection's.
func readWrote(p *pgconn.Pipeline) (wrote bool, err error) {
	for {
		res, err := p.GetResults()
		if err != nil {
			p.Close()
			return false, err
		}
		switch res := res.(type) {
		case *pgconn.PipelineSync:
			return wrote, p.Close()
		case *pgconn.ResultReader:
			wrote = res.NextRow() && len(res.Values()) == 1 && len(res.Values()[0]) == 1 && res.Values()[0][0] != 0
			if _, err := res.Close(); err != nil {
				p.Close()
				return false, err
			}
		}
	}
}

// readCaptured finishes a read startReadCapture sent: when it wrote, the
// position after its commit is recorded in s (observe: a position that
// cannot be read marks s). readErr is the read's own failure (the
// server's, or the client's, such as a Scan into the wrong type), and is
// returned first. A connection that failed before the Sync's answer
// leaves unknown whether the read's transaction committed: s is marked
// (outcomeUnknown).
//
// xactQuery goes prepared: sent unnamed, and so parsed each time, it made
// a sticky read take 1.36 to 1.52 times a strong-mode read's time, against
// 1.20 prepared (BenchmarkRYWStickyRead, at load 29). Should that
// statement be gone (a DEALLOCATE ALL that neither statementsDiscarded
// nor the capture path saw: sent with other statements in one string, or
// in a batch), its Bind fails, and the read's transaction rolls back after
// the caller had its rows: the call fails, saying so, and the next one
// prepares afresh.
func (r *Router) readCaptured(ctx context.Context, conn *pgx.Conn, p *pgconn.Pipeline, s *Session, readErr error) error {
	wrote, err := readWrote(p)
	if err == nil && readErr == nil && !wrote {
		return nil // the common case: a read that wrote nothing
	}
	if readErr == nil && staleStatement(err, false) {
		forgetCaptureConn(ctx, conn)
		return fmt.Errorf("routerlib: a read on the primary ran, but the check of whether it wrote failed, which rolled it back (a DISCARD ALL or DEALLOCATE ALL sent with other statements dropped the check's statement; run the read again): %w", err)
	}
	if err != nil && !errors.As(err, new(*pgconn.PgError)) {
		outcomeUnknown(s, err)
	}
	if readErr == nil {
		readErr = err
	}
	if !wrote || err != nil || errors.As(readErr, new(*pgconn.PgError)) {
		return readErr // rolled back, or unknown and marked
	}
	if err = r.recordAt(ctx, conn.PgConn(), s); readErr == nil {
		readErr = err
	}
	return readErr
}

// execReadCapture runs a read on the writer's read-write session and
// records its position when it wrote (see startReadCapture).
func (r *Router) execReadCapture(ctx context.Context, pool *pgxpool.Pool, sql string, cl class, args []any, s *Session) (pgconn.CommandTag, error) {
	c, err := acquireConn(ctx, pool)
	if err != nil {
		return pgconn.CommandTag{}, err
	}
	defer c.Release()
	if cl&classMulti != 0 && onlyModes(args) {
		return r.execSimpleReadCapture(ctx, c.Conn().PgConn(), sql, s)
	}
	p, res, sent, err := startReadCapture(ctx, c.Conn(), sql, cl, args)
	if !sent {
		return c.Conn().Exec(ctx, sql, args...)
	}
	if p == nil {
		return pgconn.CommandTag{}, err
	}
	var tag pgconn.CommandTag
	if err == nil {
		rr, ok := res.(*pgconn.ResultReader)
		if !ok {
			p.Close()
			return tag, fmt.Errorf("routerlib: unexpected pipeline result %T", res)
		}
		tag, err = rr.Close()
	}
	return tag, r.readCaptured(ctx, c.Conn(), p, s, err)
}

// onlyModes reports whether args are exec modes only, no arguments: pgx's
// Exec then sends the SQL as a simple query, whatever the mode.
func onlyModes(args []any) bool {
	for _, a := range args {
		if _, ok := a.(pgx.QueryExecMode); !ok {
			return false
		}
	}
	return true
}

// execSimpleReadCapture runs a string of several reads on the writer's
// read-write session, as pgx's Exec does (one simple query, one implicit
// transaction), with xactQuery as its last statement: the transaction
// then tells whether the reads wrote, in the same round trip, and the
// position is read after its commit only when they did. The string is
// one the classifier read through as reads only (no broken string or
// comment, no transaction control), so after a newline, which ends a
// trailing "--" comment, a statement of ours starts: a string ending
// inside a literal or block comment the server would refuse all the same.
// The command tag is that of the caller's last statement, as from pgx.
func (r *Router) execSimpleReadCapture(ctx context.Context, pc *pgconn.PgConn, sql string, s *Session) (pgconn.CommandTag, error) {
	mrr := pc.Exec(ctx, sql+"\n;"+xactQuery)
	tag, wrote := readSimpleWrote(mrr)
	if err := mrr.Close(); err != nil {
		// The server's error rolled the reads back; a failure of the
		// connection leaves their commit unknown.
		outcomeUnknown(s, err)
		return pgconn.CommandTag{}, err
	}
	if wrote {
		return tag, r.recordAt(ctx, pc, s)
	}
	return tag, nil
}

// readSimpleWrote reads the rest of mrr, the results of a string of reads
// with xactQuery appended (execSimpleReadCapture): it returns the command
// tag of the caller's last statement read here, and whether the reads
// wrote. The caller then closes mrr, whose error is the string's.
func readSimpleWrote(mrr *pgconn.MultiResultReader) (tag pgconn.CommandTag, wrote bool) {
	var last pgconn.CommandTag
	for mrr.NextResult() {
		rr := mrr.ResultReader()
		wrote = false // only the last result, xactQuery's, counts
		for rr.NextRow() {
			v := rr.Values()
			wrote = len(v) == 1 && string(v[0]) == "t"
		}
		tag = last
		last, _ = rr.Close()
	}
	return tag, wrote
}

// simpleQuery reports whether pgx's Query sends a call with args, exec
// modes only, on conn as one simple query, whose rows are its first
// statement's: the call's last exec mode, or else the connection's, is
// [pgx.QueryExecModeSimpleProtocol], and the connection's settings are
// those pgx then requires (it fails the call otherwise). In the other
// modes pgx prepares the string, which the server refuses for several
// statements.
func simpleQuery(conn *pgx.Conn, cc *captureConn, args []any) bool {
	mode := cc.mode
	for _, a := range args {
		mode = a.(pgx.QueryExecMode) // onlyModes
	}
	pc := conn.PgConn()
	return mode == pgx.QueryExecModeSimpleProtocol &&
		pc.ParameterStatus("standard_conforming_strings") == "on" && pc.ParameterStatus("client_encoding") == "UTF8"
}

// querySimpleReadCapture is execSimpleReadCapture for a string of several
// reads sent through Query (simpleQuery): the rows are its first
// statement's, as from pgx, and once they are done the rest is read,
// xactQuery's answer last, and the position after the commit recorded
// when the reads wrote. ok false: the call is not one pgx sends so; it
// runs as usual, on c. When ok, the call has c, and releases it.
func (r *Router) querySimpleReadCapture(ctx context.Context, c *pgxpool.Conn, sql string, args []any, s *Session) (rows pgx.Rows, ok bool, err error) {
	cc, err := captureConnOf(ctx, c.Conn())
	if err != nil {
		c.Release()
		return errRows{err}, true, err
	}
	if !simpleQuery(c.Conn(), cc, args) {
		return nil, false, nil
	}
	pc := c.Conn().PgConn()
	mrr := pc.Exec(ctx, sql+"\n;"+xactQuery)
	if !mrr.NextResult() {
		err := mrr.Close()
		c.Release()
		outcomeUnknown(s, err)
		return errRows{err}, true, err
	}
	rows = pgx.RowsFromResultReader(c.Conn().TypeMap(), mrr.ResultReader())
	return &captureRows{Rows: rows, session: s, finish: func() error {
		defer c.Release()
		_, wrote := readSimpleWrote(mrr)
		if err := mrr.Close(); err != nil {
			// The server's error rolled the reads back; a failure of
			// the connection leaves their commit unknown.
			outcomeUnknown(s, err)
			return err
		}
		if wrote {
			return r.recordAt(ctx, pc, s)
		}
		return nil
	}}, true, nil
}

// queryReadCapture is execReadCapture for a read whose rows the caller
// reads: what the read wrote is recorded once they are done.
func (r *Router) queryReadCapture(ctx context.Context, pool *pgxpool.Pool, sql string, cl class, args []any, s *Session) (pgx.Rows, error) {
	c, err := acquireConn(ctx, pool)
	if err != nil {
		return errRows{err}, err
	}
	returned := false
	defer releaseOnPanic(c, s, &returned)
	rows, err := func() (pgx.Rows, error) {
		if cl&classMulti != 0 && onlyModes(args) {
			if rows, ok, err := r.querySimpleReadCapture(ctx, c, sql, args, s); ok {
				return rows, err
			}
		}
		p, res, sent, err := startReadCapture(ctx, c.Conn(), sql, cl, args)
		if !sent {
			rows, err := c.Conn().Query(ctx, sql, args...)
			if err != nil {
				c.Release()
				return errRows{err}, err
			}
			return &captureRows{Rows: rows, session: s, finish: func() error { c.Release(); return nil }}, nil
		}
		if p == nil {
			c.Release()
			return errRows{err}, err
		}
		rows, err := pipelineRows(c, p, res, err, s)
		if err != nil {
			return errRows{err}, err
		}
		return &captureRows{Rows: rows, session: s, finish: func() error {
			defer c.Release()
			return r.readCaptured(ctx, c.Conn(), p, s, rows.Err())
		}}, nil
	}()
	returned = true
	return rows, err
}
