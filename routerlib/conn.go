package routerlib

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/multitracer"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// A Conn is one connection to the primary held by one caller, from
// [Router.Acquire] or [Router.MigrationConn]. It is a [pgxpool.Conn] with
// two differences: in read_your_writes mode, Release first records the
// primary's WAL position in the [Session] of the context the connection
// was acquired with, so that the session's next reads see what was done on
// it (a new table, rows written in a session-scoped transaction); and
// once the router has closed it (its node stopped answering, or lost the
// writes to a promoted node, or [Router.Close] ran), the errors of Exec,
// Query, QueryRow, Begin, BeginTx and Ping say so, with the node and why
// (after Close, [ErrClosed]). A statement whose connection failed after it
// went out (the router cut it, the server ended the session, the network
// broke) fails with [ErrMaybeCommitted], and so does the Commit of a
// transaction from Begin or BeginTx (whose errors are those of
// [Router.BeginTx]'s transactions), and so do SendBatch's results and
// CopyFrom: the connection's failure alone ("conn closed") would not say
// that the write may have committed.
type Conn struct {
	*pgxpool.Conn
	ctx     context.Context
	session *Session // nil: nothing to record
	r       *Router
	n       *node
	node    string
}

// Exec is [pgxpool.Conn.Exec]; when the router had cut the connection off
// (the node stopped answering, or lost the writes: see the package
// documentation), the error says so, with the node and why.
// A statement in flight when the router cut the connection off may have
// committed (an autocommit write): its error is an [ErrMaybeCommitted].
func (c *Conn) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	tag, err := c.Conn.Exec(ctx, sql, args...)
	return tag, c.statementCutOff(ctx, err)
}

// Query is [pgxpool.Conn.Query], with the error of [Conn.Exec], from Query
// or from the rows' Err.
func (c *Conn) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	rows, err := c.Conn.Query(ctx, sql, args...)
	if err != nil {
		return rows, c.statementCutOff(ctx, err)
	}
	return cutRows{rows, c, ctx}, nil
}

// QueryRow is [pgxpool.Conn.QueryRow], with the error of [Conn.Exec].
func (c *Conn) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return cutRow{c.Conn.QueryRow(ctx, sql, args...), c, ctx}
}

// Begin is [pgxpool.Conn.Begin], with the error of [Conn.Exec]; the
// transaction's errors are those of [Router.BeginTx]'s.
func (c *Conn) Begin(ctx context.Context) (pgx.Tx, error) {
	return c.BeginTx(ctx, pgx.TxOptions{})
}

// BeginTx is [pgxpool.Conn.BeginTx], with the error of [Conn.Exec]; the
// transaction's errors are those of [Router.BeginTx]'s.
func (c *Conn) BeginTx(ctx context.Context, txOptions pgx.TxOptions) (pgx.Tx, error) {
	tx, err := c.Conn.BeginTx(ctx, txOptions)
	if err != nil {
		return nil, c.cutOff(err)
	}
	return newWriterTx(tx, c.r, c.n), nil
}

// SendBatch is [pgxpool.Conn.SendBatch], with the errors of [Conn.Exec]
// from its results.
func (c *Conn) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	return cutBatch{c.Conn.SendBatch(ctx, b), c, ctx}
}

// CopyFrom is [pgxpool.Conn.CopyFrom], with the error of [Conn.Exec].
func (c *Conn) CopyFrom(ctx context.Context, tableName pgx.Identifier, columnNames []string, rowSrc pgx.CopyFromSource) (int64, error) {
	n, err := c.Conn.CopyFrom(ctx, tableName, columnNames, rowSrc)
	return n, c.statementCutOff(ctx, err)
}

// Ping is [pgxpool.Conn.Ping], with the error of [Conn.Exec].
func (c *Conn) Ping(ctx context.Context) error { return c.cutOff(c.Conn.Ping(ctx)) }

// cutOff returns err, naming the node and why when the router cut the
// connection off: pgx's own error is then "use of closed network
// connection" or "conn closed", which says neither.
func (c *Conn) cutOff(err error) error {
	if err == nil || c.Conn == nil {
		return err
	}
	cause := cutCause(c.Conn.Conn().PgConn())
	if cause == nil {
		if c.r.closed.Load() && c.Conn.Conn().IsClosed() {
			return fmt.Errorf("%w, which closed this acquired connection on node %q: %w", ErrClosed, c.node, err)
		}
		return err
	}
	return fmt.Errorf("routerlib: node %q %s (%w); the router closed this acquired connection: %w", c.node, cutReason(cause), cause, err)
}

// statementCutOff is cutOff for a statement sent under ctx: one whose
// connection failed after it went out may have committed (as a write
// through the Router: see failureOf), and the caller must not take the
// advice to run it again on a new connection as is.
func (c *Conn) statementCutOff(ctx context.Context, err error) error {
	if err == nil || c.Conn == nil {
		return c.cutOff(err)
	}
	const what = "a statement on an acquired connection"
	switch failureOf(ctx, err) {
	case failCut:
		return callerCut(ctx, c.node, what, err)
	case failSent:
		cause := cutCause(c.Conn.Conn().PgConn())
		if cause == nil && c.r.closed.Load() {
			cause = ErrClosed
		}
		return maybeCommitted(c.node, what, cause, err)
	}
	return c.cutOff(err)
}

// cutRow is a Conn's row, with the error of [Conn.Exec].
type cutRow struct {
	row pgx.Row
	c   *Conn
	ctx context.Context
}

func (r cutRow) Scan(dest ...any) error { return r.c.statementCutOff(r.ctx, r.row.Scan(dest...)) }

// cutRows are a Conn's rows, with the error of [Conn.Exec].
type cutRows struct {
	pgx.Rows
	c   *Conn
	ctx context.Context
}

func (r cutRows) Err() error { return r.c.statementCutOff(r.ctx, r.Rows.Err()) }

// cutBatch are a Conn's batch results, with the error of [Conn.Exec].
type cutBatch struct {
	pgx.BatchResults
	c   *Conn
	ctx context.Context
}

func (b cutBatch) Exec() (pgconn.CommandTag, error) {
	tag, err := b.BatchResults.Exec()
	return tag, b.c.statementCutOff(b.ctx, err)
}

func (b cutBatch) Query() (pgx.Rows, error) {
	rows, err := b.BatchResults.Query()
	if err != nil {
		return rows, b.c.statementCutOff(b.ctx, err)
	}
	return cutRows{rows, b.c, b.ctx}, nil
}

func (b cutBatch) QueryRow() pgx.Row { return cutRow{b.BatchResults.QueryRow(), b.c, b.ctx} }

func (b cutBatch) Close() error { return b.c.statementCutOff(b.ctx, b.BatchResults.Close()) }

// statementsDiscarded is a pgx tracer that resets a connection's statement
// cache when the server reports that it dropped every prepared statement
// of the session: a DISCARD ALL or DEALLOCATE ALL run through an acquired
// [Conn] (as Release's documentation suggests) or through the router. pgx
// would otherwise go on sending its cached statements by name, and each
// would fail once with SQLSTATE 26000 before pgx prepares it again: on
// that connection, and in the calls that get it from the pool later.
// Only the primary's pools have it, where those statements are routed.
// It also notes, as each connection goes back to its pool, one cut with a
// call in flight (see TraceRelease).
type statementsDiscarded struct{ cut *cutBackends }

// discardTracer returns a tracer for a write pool's connections of a
// server whose cut backends are cut: next, the application's own
// (WithPoolConfig), combined with statementsDiscarded.
func discardTracer(next pgx.QueryTracer, cut *cutBackends) pgx.QueryTracer {
	if next == nil {
		return statementsDiscarded{cut}
	}
	return multitracer.New(next, statementsDiscarded{cut})
}

// callSessionKey is the key, in a write pool connection's
// [pgconn.PgConn.CustomData], of the [Session] in the context it was
// acquired with, while it is out of the pool: the session whose writes
// the call carries, with which a cut of the call is noted (cutBackends).
const callSessionKey = "routerlib.session"

func (statementsDiscarded) TraceAcquireStart(ctx context.Context, _ *pgxpool.Pool, _ pgxpool.TraceAcquireStartData) context.Context {
	return ctx
}

// TraceAcquireEnd keeps the acquire's session on the connection (see
// callSessionKey): every call on the write pool acquires through
// [pgxpool.Pool.Acquire], with its context, or takes a connection kept
// between writes, which readConns.acquire sets it on. TraceRelease
// drops it, or readConns.release for one kept.
func (statementsDiscarded) TraceAcquireEnd(ctx context.Context, _ *pgxpool.Pool, d pgxpool.TraceAcquireEndData) {
	if d.Conn == nil {
		return
	}
	if s := SessionFrom(ctx); s != nil {
		d.Conn.PgConn().CustomData()[callSessionKey] = s
	}
}

// callSession returns the session of pc's call (see callSessionKey), or
// nil.
func callSession(pc *pgconn.PgConn) *Session {
	s, _ := pc.CustomData()[callSessionKey].(*Session)
	return s
}

// TraceRelease runs in [pgxpool.Conn.Release], before the pool destroys a
// connection closed or still busy: one whose call was cut (a handler's
// panic mid-reply, a context that ended, a failed socket) after it may
// have sent a COMMIT that its backend is still running. Its backend is
// noted with the call's session, so that the session's position read
// waits until it ended (see cutBackends). One still open, cut by a panic
// mid-reply, is first sent a cancel request (cancelCut); pgx sent its own
// before it closed one whose context ended.
func (d statementsDiscarded) TraceRelease(_ *pgxpool.Pool, r pgxpool.TraceReleaseData) {
	pc := r.Conn.PgConn()
	s := callSession(pc)
	if s != nil {
		delete(pc.CustomData(), callSessionKey)
	}
	if pc.IsClosed() || pc.IsBusy() {
		if !pc.IsClosed() {
			cancelCut(pc)
		}
		d.cut.add(pc.PID(), s)
	}
}

// cutCancelTimeout bounds how long cancelCut, which runs on a panic's way
// out (closeOnPanic) or in a Release, waits for its cancel request: a
// server that does not answer holds neither longer.
const cutCancelTimeout = 500 * time.Millisecond

// cutCancelLinger bounds how long a cancel request cancelCut stopped
// waiting for stays open: until the server answers it (closes the
// connection), at most this long. PgBouncer before 1.19 exits (FATAL
// "bad client state: 0", pgbouncer#801) when the client of a cancel
// request hangs up before the server has answered it, which a server that
// hangs (a frozen node, a partition) answers only when it is back: a
// cancel given up after cutCancelTimeout took down the PgBouncer in front
// of the node as it came back. An open connection and a goroutine each
// are what it costs, only while a server does not answer.
const cutCancelLinger = 5 * time.Minute

// cancelCutEnded, when set (by tests), is told when a request of
// cancelCut's ended, and with what error.
var cancelCutEnded atomic.Pointer[func(error)]

// cancelCut sends a cancel request for pc, whose call was cut mid-reply
// and which is closed next: the server would otherwise go on with what pc
// sent, a write blocked on a lock or a COMMIT's deferred work, until it
// ended, and a session marked by the cut waits that long (cutBackends).
// It is what pgx sends when a context ends mid-call, and as safe: on a
// direct connection the request names the backend by process id and
// secret key, so it reaches no other backend, and one that finished the
// call waits idle for pc's next message, which is the Terminate: the
// server ignores a cancel that comes then. Through PgBouncer it is the
// only way to end the backend (the process id is PgBouncer's key, not a
// backend's): PgBouncer forwards it to the server connection pc's client
// holds, and, from 1.18, only while that one still runs pc's call, which
// it does not give to another client until the cancel is done. It is
// sent before the close, for PgBouncer forwards no cancel of a client
// gone. Its failure leaves the backend to end on its own, as before:
// the process id lookup still holds the session back on a direct
// connection. cancelCut returns after cutCancelTimeout at most; the
// request goes on in the background up to cutCancelLinger (see there).
// It reads only what pc fixed at connect (its address, configuration,
// process id and key), so pc may be closed meanwhile.
//
// Its connection is no pool's (cancelDialKey): a node cut off (its checks
// failed) or a Router closed would otherwise close it with the pool's,
// before a frozen server could answer.
func cancelCut(pc *pgconn.PgConn) {
	ctx, cancel := context.WithTimeout(context.WithValue(context.Background(), cancelDialKey{}, true), cutCancelLinger)
	done := make(chan struct{})
	go func() {
		defer cancel()
		defer close(done)
		err := pc.CancelRequest(ctx)
		if hook := cancelCutEnded.Load(); hook != nil {
			(*hook)(err)
		}
	}()
	t := time.NewTimer(cutCancelTimeout)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	}
}

// cancelDials sets cc, the configuration of one pool connection's connect
// (see startedAlive), to send its cancel requests as cancelCut sends its
// own: every dial of the connection's DialFunc once connected is one
// (pgconn's CancelRequest: pgx sends one when a call's context ends
// mid-reply, before it closes the connection, and gives up on it after
// 15 s; an application's CancelRequestContextWatcherHandler sends one too,
// and gives up after its DeadlineDelay). Such a dial is neither refused on
// a node cut off nor tracked with the pool's connections (cancelDialKey),
// and its connection stays open after pgx closes it, until the server
// closes it, for up to cutCancelLinger (lingerConn): PgBouncer before
// 1.19 exits when a cancel's client hangs up before the server answered
// it, which a frozen server does only when it is back. Both hung up first
// on a node frozen behind PgBouncer: pgx after 15 s, and the router's
// cut-off of the node at once, which refused the cancel of a call it cut
// too, so that the statement ran on when the node came back
// (TestContextCutOnFrozenNodeKeepsPgBouncerUp). connected is called once
// the connect succeeded (in its AfterConnect).
func cancelDials(cc *pgconn.Config) (connected func()) {
	var done atomic.Bool
	dial := cc.DialFunc
	cc.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if !done.Load() {
			return dial(ctx, network, addr)
		}
		nc, err := dial(context.WithValue(ctx, cancelDialKey{}, true), network, addr)
		if err != nil {
			return nil, err
		}
		return &lingerConn{Conn: nc}, nil
	}
	return func() { done.Store(true) }
}

// A lingerConn is a cancel request's connection (cancelDials): its Close
// returns at once, and leaves the connection open until the server closes
// it (having acted on the request), for up to cutCancelLinger.
type lingerConn struct {
	net.Conn
	once sync.Once
}

func (c *lingerConn) Close() error {
	c.once.Do(func() {
		go func() {
			defer c.Conn.Close()
			if c.Conn.SetDeadline(time.Now().Add(cutCancelLinger)) != nil {
				return
			}
			_, _ = io.Copy(io.Discard, c.Conn)
		}()
	})
	return nil
}

func (statementsDiscarded) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	return ctx
}

// TraceQueryEnd runs when the statement's result is read (Exec's return,
// or the rows' Close), while the connection is free: DeallocateAll resets
// pgx's caches, and sends a DEALLOCATE ALL, which finds nothing left. The
// tag is the last statement's, which a DISCARD ALL always is: the server
// refuses it in a multi-statement string.
func (statementsDiscarded) TraceQueryEnd(ctx context.Context, conn *pgx.Conn, d pgx.TraceQueryEndData) {
	if d.Err != nil {
		return
	}
	if tag := d.CommandTag.String(); tag == "DISCARD ALL" || tag == "DEALLOCATE ALL" {
		_ = conn.DeallocateAll(ctx) // the caches are reset before it sends: its error changes nothing
		// The capture path's statements are gone too: it prepares afresh.
		delete(conn.PgConn().CustomData(), captureConnKey)
	}
}

// Release records the primary's position in the session (see [Conn]) and
// returns the connection to its pool. When the position cannot be read on
// the connection (its session was cut, its transaction aborted, the
// context ended), the session's next read first asks the primary for its
// position on another connection, which is past the work if it committed,
// and goes to the primary itself if that cannot be read either; a
// [SessionMiddleware] asks the same before it signs the session's value.
// So reads after the work see it all the same. Calls after the first do
// nothing. A setting changed on the connection stays with it, as with
// [pgxpool.Conn.Release]: RESET or DISCARD ALL what the work changed. After
// a DISCARD ALL or DEALLOCATE ALL the connection's pgx statement cache is
// emptied too, so the statements pgx had prepared there are prepared again
// when next used, on this Conn or in a later call that gets the
// connection, instead of failing once each with SQLSTATE 26000 (what pgx
// alone does). A DEALLOCATE ALL followed by another statement in one
// string, or sent in a batch, is not seen: send it on its own.
func (c *Conn) Release() {
	if c.Conn == nil {
		return
	}
	if c.session != nil {
		lsn, err := readPosition(c.ctx, c.Conn.Conn().PgConn())
		if err == nil {
			c.session.Observe(lsn)
		} else {
			// An aborted transaction left open, a cut connection or a
			// cancelled context: the next read asks the primary.
			c.session.markLost()
			c.r.opts.logger.Info("routerlib: releasing a primary connection: its WAL position could not be read; the session's next read asks the primary for it", "node", c.node, "err", err)
		}
	}
	c.Conn.Release()
	c.Conn = nil
}

// Acquire returns a connection to the primary for work that needs one
// session, like [pgxpool.Pool.Acquire]: SET, temporary tables, session
// advisory locks, LISTEN, prepared statements by name. Statements sent
// through [Router.Exec] run on whichever pooled connection is free, so such
// state set there is lost or, worse, seen by an unrelated later call. With
// no primary taking writes Acquire fails with [ErrNoPrimary], after the
// wait a write makes for a primary restarted fast (see the package
// documentation). Release the
// connection when done; a DISCARD ALL before that resets the session and
// pgx's statement cache alike (see [Conn.Release]).
func (r *Router) Acquire(ctx context.Context) (*Conn, error) {
	return r.acquire(ctx, OpAcquire)
}

// MigrationConn returns a connection on the primary for schema migrations:
// the counterpart of Django's allow_migrate. It never returns a replica's
// connection: with no primary taking writes it fails with [ErrNoPrimary],
// after the wait a write makes for a primary restarted fast.
// The [Tracer] sees it as [OpMigrate]. Release the connection when the
// migration is done: in read_your_writes mode that records the migration
// in the context's [Session], so a read right after it sees the new schema.
func (r *Router) MigrationConn(ctx context.Context) (*Conn, error) {
	return r.acquire(ctx, OpMigrate)
}

func (r *Router) acquire(ctx context.Context, op Op) (*Conn, error) {
	t, err := r.enter()
	if err != nil {
		return nil, err
	}
	defer func() { t.leave() }() // awaitWriter may move the call to a new topology
	for attempts := 1; ; attempts++ {
		tg, err := r.routePrimary(ctx, &t, op)
		if err != nil {
			return nil, err
		}
		r.count(tg)
		c, err := acquireConn(ctx, tg.pool) // waits for room on a full primary (awaitRoom)
		if err != nil {
			if attempts < maxAttempts(t) && !r.closed.Load() && writesLeft(t, tg.n, failureOf(ctx, err), err) {
				continue // to the node taking the writes now
			}
			return nil, fmt.Errorf("routerlib: %s: connection to primary %q: %w", op, tg.n.name, err)
		}
		return &Conn{Conn: c, ctx: ctx, session: r.capturing(ctx, t, tg), r: r, n: tg.n, node: tg.n.name}, nil
	}
}
