package routerlib

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/internal/driverhook"
)

// A call's path reads top down, one stage per file: router.go takes the
// call (the topology in force, and the loop of attempts), choose.go decides
// where it goes, run.go says what an attempt's failure means, and
// capture.go records a write's LSN on the wire. No stage calls back into an
// earlier one; only the loop here chooses again.

// A Router sends each query to the node the router file says should serve
// it: writes to the primary, reads to a healthy replica. It has
// [pgxpool.Pool]'s query surface, so it can replace a pool or serve as
// sqlc's DBTX. A Router is safe for concurrent use; Close it when done.
type Router struct {
	opts  options
	cache *classCache
	cur   atomic.Pointer[topology] // the topology in force; swapped by reload

	// checkMu serialises applying health checks (each node's, on its own
	// schedule, and a reload's) and guards what they alone touch: each
	// server's check counters, pool creation, and the swap of
	// topologies, which share servers. (A server's monitor connection has
	// its own lock, so a check in flight holds no other node up.)
	checkMu sync.Mutex

	path     string     // the file Open loaded; "" for New
	reloadMu sync.Mutex // serialises reloads
	fileSum  [32]byte   // SHA-256 of the file in force; guarded by reloadMu

	background context.Context // cancelled by Close: stops the monitor and the watcher
	stop       context.CancelFunc
	swapped    chan struct{}  // a reload published a topology: the monitor checks it
	wg         sync.WaitGroup // the monitor, the watcher and pool drainers
	closed     atomic.Bool
	closeOnce  sync.Once
	// writesLost is when the checks last took the writes from a node and
	// gave them to none (Unix nanoseconds; see moveWrites), 0 while a
	// node has them or none ever did: it opens awaitWriter's window.
	writesLost atomic.Int64
}

// Open loads the router file at path (see [artifact.Load]) and returns a
// Router for it, like [New]. It then watches the file (see [WithWatch]):
// when it changes, the new topology replaces the old without interrupting
// queries, and an invalid file is reported and ignored.
func Open(ctx context.Context, path string, opts ...Option) (*Router, error) {
	seen, _ := os.Stat(path)
	data, f, err := readFile(path)
	if err != nil {
		return nil, err
	}
	r, err := New(ctx, f, opts...)
	if err != nil {
		return nil, fmt.Errorf("routerlib: open %s: %w", path, err)
	}
	r.path = path
	r.fileSum = sum(data)
	if r.opts.watch > 0 {
		r.wg.Add(1)
		go r.watch(r.background, path, r.opts.watch, seen)
	}
	return r, nil
}

// New returns a Router for the topology f. It creates one [pgxpool.Pool]
// per node (two on a replica that is promoted), checks every node once,
// and starts the health monitor. Nodes that are down do not fail New: a
// replica joins when it comes up, and writes fail with [ErrNoPrimary] until
// a primary is reachable. New returns an error for an invalid topology or
// option, and when the declared primary refuses the file's connection
// settings themselves (a wrong password, an unknown role or database:
// SQLSTATE 28P01, 28000, 3D000): that is a mistake to fix, not an outage
// to ride out.
func New(ctx context.Context, f artifact.Topology, opts ...Option) (*Router, error) {
	r := &Router{opts: newOptions(opts), cache: newClassCache(), swapped: make(chan struct{}, 1)}
	t, err := buildTopology(f, &r.opts, nil)
	if err != nil {
		return nil, fmt.Errorf("routerlib: %w", err)
	}
	// A node whose first check does not complete (ctx ended, or a late
	// answer on a busy machine) stays EjectNotChecked until it does: the
	// check goes on as the monitor's.
	r.background, r.stop = context.WithCancel(context.Background())
	r.checkAll(ctx, t)
	if err := refused(t.declared); err != nil {
		r.stop()
		t.closeServersNotIn(nil)
		r.opts.conns.close()
		return nil, err
	}
	r.cur.Store(t)
	r.wg.Add(1)
	go r.monitor(r.background)
	return r, nil
}

// Close stops the monitor and the file watcher, waits for the calls in
// flight and closes every pool. A call still in flight health.timeout
// after Close began (stuck on a node that hangs) has its connection closed
// and fails with [ErrClosed], and so do the connections the application
// still holds then (an acquired connection, open rows, a transaction):
// their next use fails, and their pools close once they are released. So
// Close returns within health.timeout and a second whatever the
// application holds. Every call still waiting then ends with [ErrClosed]
// and is not sent: one waiting for a connection of a pool whose
// connections the application holds (each pool keeps for this one slot
// beyond max_conns, which connects nowhere), a read_your_writes read waiting for a
// replica to replay, a Ping; a call waiting for a restarted primary ends
// when Close begins. Calls after Close fail with [ErrClosed].
func (r *Router) Close() {
	r.closeOnce.Do(func() {
		r.closed.Store(true)
		r.stop()          // ends a reload's checks, which hold reloadMu
		r.reloadMu.Lock() // no reload can publish a topology after this
		t := r.cur.Load()
		t.retired.Store(true)
		r.reloadMu.Unlock()
		done := make(chan struct{})
		go func() { // not waited for past the bound: pgxpool.Close waits for every connection held
			defer close(done)
			r.wg.Wait()
			drain(t, nil)
		}()
		timer := time.NewTimer(t.timeout)
		defer timer.Stop()
		select {
		case <-done:
		case <-timer.C:
			r.opts.conns.close()
			// The calls cut off return at once; the connections the
			// application holds are not waited for.
			timer.Reset(500 * time.Millisecond)
			select {
			case <-done:
			case <-timer.C:
			}
		}
		// From now on every dial fails, such as the cancel requests pgx
		// sends for connections that failed.
		r.opts.conns.close()
	})
}

// refused returns an error naming n and the cause when n's last check
// failed because the server refused the connection settings themselves.
func refused(n *node) error {
	e := n.lastErr.Load()
	if e == nil || n.reachable.Load() {
		return nil
	}
	if err := refusal(n.name, *e); err != nil {
		return fmt.Errorf("routerlib: %w", err)
	}
	return nil
}

// refusal returns an error naming the node and the cause when err, from
// connecting to it, is the server refusing the router file's connection
// settings themselves (user, password, database): a mistake to fix, not
// an outage to ride out. Otherwise it returns nil.
// The health monitor's connection, when [WithMonitorConfig] gave it a
// user, password or database of its own, has its own text (see
// monitorRefused): the file's settings are not the ones to fix then.
func refusal(node string, err error) error {
	var mon *monitorRefusedError
	if errors.As(err, &mon) {
		return fmt.Errorf("node %q: %w", node, err)
	}
	switch refusedCode(err) {
	case "28P01", "28000": // invalid_password, invalid_authorization_specification
		return fmt.Errorf("node %q refuses the router file's user or password (fix user, password_env, passfile or WithPasswordFunc): %w", node, err)
	case "3D000": // invalid_catalog_name
		return fmt.Errorf("node %q has no database named as the router file says (fix database): %w", node, err)
	}
	return nil
}

// refusedCode returns the SQLSTATE of err when it is the server refusing
// a connection's settings themselves (28P01 invalid_password, 28000
// invalid_authorization_specification: no pg_hba.conf entry, 3D000
// invalid_catalog_name), else "".
func refusedCode(err error) string {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return ""
	}
	switch pgErr.Code {
	case "28P01", "28000", "3D000":
		return pgErr.Code
	}
	return ""
}

// enter returns the topology in force with the call counted in flight.
func (r *Router) enter() (*topology, error) {
	for {
		if r.closed.Load() {
			return nil, ErrClosed
		}
		if t := r.cur.Load(); t.enter() {
			return t, nil
		}
	}
}

// Exec runs sql on the node it routes to; see the package documentation for
// the rules. A read whose replica fails (connection lost, or SQLSTATE 25006
// because it writes after all) runs again elsewhere.
func (r *Router) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	t, err := r.enter()
	if err != nil {
		return pgconn.CommandTag{}, err
	}
	defer func() { t.leave() }() // awaitWriter may move the call to a new topology
	cl, h := r.cache.lookup(sql)
	var st retryState
	for {
		tg, err := r.route(ctx, &t, OpExec, sql, cl, &st)
		if err != nil {
			return pgconn.CommandTag{}, err
		}
		r.count(tg)
		var tag pgconn.CommandTag
		if s := r.recording(ctx, t, &tg); s != nil {
			tag, err = r.execCapture(ctx, tg, sql, cl, h, args, s)
		} else {
			tag, err = execOn(ctx, tg.pool, sql, args, tg.n.server, st.after(tg.n.server))
		}
		if err == nil {
			return tag, nil
		}
		var retry bool
		if st, retry, err = r.retryable(ctx, t, tg, sql, err, st); !retry {
			return tag, err
		}
	}
}

// Query runs sql on the node it routes to. A read whose replica fails
// before returning its first row (connection lost, or SQLSTATE 25006) runs
// again elsewhere, invisibly to the caller.
func (r *Router) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	t, err := r.enter()
	if err != nil {
		return nil, err
	}
	defer func() { t.leave() }() // awaitWriter may move the call to a new topology
	return r.query(ctx, &t, OpQuery, sql, r.cache.get(sql), args, retryState{}, nil)
}

func init() {
	driverhook.Query = queryInto
	driverhook.Again = func(rows pgx.Rows) bool {
		w, ok := rows.(*retryRows)
		return ok && w.againAfterRow(w.Err())
	}
}

// queryInto is [Router.Query] on the Router ra for routerlib/stdlib: a
// read's rows take the reader slot keeps (a database/sql handle's, whose
// previous rows are closed) instead of a new one, and leave theirs there.
// It is driverhook.Query itself, not a method a func of the hook calls:
// one layer less on every read of the driver.
func queryInto(ra any, ctx context.Context, sql string, args []any, slot *driverhook.Slot) (pgx.Rows, error) {
	r := ra.(*Router)
	t, err := r.enter()
	if err != nil {
		return nil, err
	}
	defer func() { t.leave() }() // awaitWriter may move the call to a new topology
	w, _ := slot.Get().(*retryRows)
	if w == nil {
		w = new(retryRows)
		slot.Set(w)
	}
	return r.query(ctx, &t, OpQuery, sql, r.cache.get(sql), args, retryState{}, w)
}

// query runs the call on *tp, the topology it entered, or on the one
// route moves it to (which it leaves then); a read's rows are into, or a
// new retryRows when into is nil.
func (r *Router) query(ctx context.Context, tp **topology, op Op, sql string, cl class, args []any, st retryState, into *retryRows) (pgx.Rows, error) {
	for {
		tg, err := r.route(ctx, tp, op, sql, cl, &st)
		if err != nil {
			return failedRows(err)
		}
		r.count(tg)
		var rows pgx.Rows
		var conn *pgxpool.Conn
		var gen uint64
		if s := r.recording(ctx, *tp, &tg); s != nil {
			rows, err = r.queryCapture(ctx, *tp, tg, sql, cl, args, s)
		} else {
			rows, conn, gen, err = queryOn(ctx, tg.pool, sql, args, tg.n.server, st.after(tg.n.server))
		}
		if err == nil {
			// A captured write's rows too: the server's first answer
			// may still be to come (a query option left the write
			// outside the capture's pipeline, see pipelineable), and
			// an idle session the server ended then shows at the
			// first Next, where retryRows runs the write again.
			if into == nil {
				into = new(retryRows)
			}
			// Field by field: every one is set, and cheaper than copying
			// a whole new struct in.
			into.rows, into.conn, into.gen, into.r, into.ctx, into.n, into.pool = rows, conn, gen, r, ctx, tg.n, tg.pool
			into.sql, into.args, into.st, into.err = sql, args, st, nil
			into.op, into.cl, into.started, into.write = op, cl, false, tg.write
			into.read = tg.write && readOnWriter(ctx, *tp, cl)
			return into, nil
		}
		if err = r.queryAgain(ctx, *tp, &tg, sql, rows, err, &st); err != nil {
			return failedRows(err)
		}
	}
}

// queryAgain is query after the attempt on tg failed with err (rows,
// when not nil, its rows): nil when the call is to run again, with st
// updated, else the call's error. It is out of line, as failedRows is:
// every read runs query, and few fail.
//
//go:noinline
func (r *Router) queryAgain(ctx context.Context, t *topology, tg *target, sql string, rows pgx.Rows, err error, st *retryState) error {
	var retry bool
	if *st, retry, err = r.retryable(ctx, t, *tg, sql, err, *st); !retry {
		if rows != nil {
			rows.Close()
		}
		return err
	}
	return nil
}

// failedRows is the result of a query that failed with err.
//
//go:noinline
func failedRows(err error) (pgx.Rows, error) { return errRows{err: err}, err }

// route is choose, for a call of this file on *tp, the topology it
// entered: one that finds no node taking writes while the last one may
// only be unreachable for a moment (a fast restart) waits for a check
// first (awaitWriter, which may move the call to the topology a reload
// put in force), then chooses again. The wait is out of line (routeAgain):
// every read comes through here, and a failed choice is rare.
func (r *Router) route(ctx context.Context, tp **topology, op Op, sql string, cl class, st *retryState) (target, error) {
	tg, err := r.decide(ctx, *tp, cl, st) // choose, one layer less
	if err != nil {
		return r.routeAgain(ctx, tp, op, sql, cl, st, err)
	}
	if r.opts.tracer != nil {
		r.trace(ctx, op, sql, tg)
	}
	return tg, nil
}

// routeAgain is route after choose failed with err.
//
//go:noinline
func (r *Router) routeAgain(ctx context.Context, tp **topology, op Op, sql string, cl class, st *retryState, err error) (tg target, _ error) {
	err = r.awaitWriter(ctx, tp, err, func() (err error) {
		tg, err = r.choose(ctx, *tp, op, sql, cl, *st)
		return err
	})
	return tg, err
}

// closedWaiting is err, a failure to choose a node, made to match
// [ErrClosed] when the Router was closed: Close ended the call's wait for
// a node to take the writes (awaitWriter), or took the node it was to
// run on again, and the call was not sent.
func (r *Router) closedWaiting(err error) error {
	if err == nil || !r.closed.Load() || errors.Is(err, ErrClosed) {
		return err
	}
	return fmt.Errorf("%w before the call was sent: %w", ErrClosed, err)
}

// routePrimary is choosePrimary for a call that needs the primary itself
// (Ping, Acquire, MigrationConn): like route, it waits for a check when
// the last writer may only be restarting (awaitWriter), then chooses again.
func (r *Router) routePrimary(ctx context.Context, tp **topology, op Op) (target, error) {
	tg, err := r.choosePrimary(ctx, *tp, op)
	if err != nil {
		err = r.awaitWriter(ctx, tp, err, func() (err error) {
			tg, err = r.choosePrimary(ctx, *tp, op)
			return err
		})
	}
	return tg, err
}

// awaitWriter is the error of a call that needs the primary and failed to
// choose one with err ([ErrNoPrimary]), after it waited for a node to take
// the writes: again's (the call choosing again, on *tp) when a node took
// them while it waited, or the wait ended without one (err, from before
// it, may say what the checks no longer see, and name a retired
// topology's nodes), else err. Either matches [ErrClosed] when the Router
// was closed (closedWaiting): applied here, no caller can leave it out. It waits only in the window that opens when
// the checks take the writes from a node and give them to none
// (writesLost), and
// lasts as long as a primary that hangs keeps the writes before it is
// ejected (eject_after × interval + timeout): a postmaster restarted fast
// (pg_ctl restart, or killed and started again by its supervisor) is back
// within it; past it, the primary is down, and writes fail at once as
// before. It waits only when no rule of the checks keeps the writes from
// every node (t.noWriter: split brain, an old timeline, a clone, another
// cluster), and a node last seen out of recovery, such as the one that
// had them, is unreachable: it asks each such node for a check now,
// again as each ends, and waits at most health.timeout, never past the
// window, ctx or the Router's Close. Before, such writes failed until the
// next scheduled check saw the primary back. The writer is still only
// what the checks choose (chooseWriter), every rule of theirs applied: no
// write goes to a node they did not confirm. *tp is the topology the
// call entered; when a reload retires it during the wait (or before), the
// wait goes on on the topology in force, whose checks alone choose a
// writer now, within the same bound: the call enters that one, leaves
// *tp and sets *tp to it, so that it chooses, and leaves, there. It reads
// the writer and the nodes' state under checkMu, as a check applies them:
// between a check that sees the primary back, out of recovery, and the
// writer that check then chooses, the primary would look like a node that
// answers and takes no writes, and the wait would end in ErrNoPrimary a
// moment before the writer is there.
func (r *Router) awaitWriter(ctx context.Context, tp **topology, err error, again func() error) error {
	if r.waitForWriter(ctx, tp, err) {
		err = again()
	}
	return r.closedWaiting(err)
}

// waitForWriter is awaitWriter's wait: it reports whether to choose again.
func (r *Router) waitForWriter(ctx context.Context, tp **topology, err error) bool {
	t := *tp
	lost := r.writesLost.Load()
	if lost == 0 || !errors.Is(err, ErrNoPrimary) || errors.Is(err, ErrNoReplica) || ctx.Err() != nil {
		return false // no window, a read's error (no replica, nor the fallback), or the caller's end
	}
	until := time.Until(time.Unix(0, lost).Add(time.Duration(t.eject)*t.interval + t.timeout))
	if until <= 0 {
		return false
	}
	var wait, tick *time.Timer
	waited := false // err may be stale: choose again
	for {
		if r.closed.Load() {
			return false
		}
		if t.retired.Load() {
			nt, err := r.enter()
			if err != nil {
				return false // closed
			}
			t.leave()
			t, *tp, waited = nt, nt, true
		}
		found, asked := r.askForWriter(t)
		if found || !asked {
			// The writer, or none to wait for: a rule of the checks
			// keeps the writes from every node (t.noWriter), or every
			// node answers and none out of recovery is left unchosen.
			return found || waited
		}
		if wait == nil {
			wait, tick = time.NewTimer(min(until, t.timeout)), time.NewTimer(awaitWriterPoll)
			defer wait.Stop()
			defer tick.Stop()
		} else {
			tick.Reset(awaitWriterPoll)
		}
		select {
		case <-ctx.Done():
			return false
		case <-r.background.Done(): // Close began (see closedWaiting)
			return false
		case <-wait.C:
			return true // to say why none, as the checks see it now
		case <-tick.C:
		}
		waited = true
	}
}

// askForWriter reports, for awaitWriter, whether t has a writer and, if
// not, whether one may come: no rule of the checks keeps the writes from
// every node, and a node last seen out of recovery is unreachable, which
// it then asks for a check now. It reads under checkMu, so that it sees
// each check's node state and the writer it chose together.
func (r *Router) askForWriter(t *topology) (found, asked bool) {
	r.checkMu.Lock()
	defer r.checkMu.Unlock()
	if t.writer.Load() != nil {
		return true, false
	}
	if t.noWriter.Load() != nil {
		return false, false
	}
	for _, n := range t.nodes {
		if !n.reachable.Load() && !n.recovery.Load() {
			asked = true
			n.askCheck()
		}
	}
	return false, asked
}

// awaitWriterPoll is how often awaitWriter looks for a writer: a check of
// a node that is down ends about as soon (its connection refused).
const awaitWriterPoll = 10 * time.Millisecond

// queryOn runs sql on a connection from pool, as [pgxpool.Pool.Query]
// does, and leaves the connection to the caller, who releases it once the
// rows are done (see retryRows.done): so the rows need no wrapper of
// pgxpool's inside retryRows, whose methods every call of the application
// and of database/sql on the rows went through as well. On s's read
// pool, the connection is one s keeps between reads (see readConns),
// acquired in generation gen; once its sessions were seen without
// default_transaction_read_only (at connect: the first one's too, hence
// after acquire), the read is sent in a read-only transaction (see
// queryReadOnly). With after set, the session is one whose connect
// started after it (see newSession).
func queryOn(ctx context.Context, pool *pgxpool.Pool, sql string, args []any, s *server, after int64) (rows pgx.Rows, c *pgxpool.Conn, gen uint64, err error) {
	if c, gen, err = s.newSession(ctx, pool, after); err != nil {
		return nil, nil, 0, &unacquired{err}
	}
	returned := false
	defer closeOnPanic(s.cutBackends, c, &returned)
	if s.readOnlyLost.Load() && pool == s.readPool.Load() {
		rows, err = queryReadOnly(ctx, c.Conn(), sql, args)
	} else {
		rows, err = c.Conn().Query(ctx, sql, args...)
	}
	returned = true
	if err != nil {
		s.release(pool, c, gen)
		return nil, nil, 0, err
	}
	return rows, c, gen, nil
}

// retryRows holds a read's rows, or a write's (a read-your-writes capture's
// included). If the node fails before the first row (its connection broke,
// or a replica rejected the statement as a write), the query runs again
// elsewhere and the caller sees only the second result; a write runs
// again only when the server ended the session as idle before it ran
// (retryable decides). Every replica read allocates one, so it keeps only
// what running the call again needs: the node, its pool and whether the
// call is a write, not the whole target. The rows are a named field, not
// embedded, so that retryRow (the same struct) has no method but Scan.
type retryRows struct {
	rows    pgx.Rows
	conn    *pgxpool.Conn // the rows' connection, until done; nil when rows hold their own
	gen     uint64        // conn's generation (see readConns)
	r       *Router
	ctx     context.Context
	n       *node
	pool    *pgxpool.Pool
	sql     string
	args    []any
	st      retryState
	err     error
	op      Op
	cl      class
	started bool
	write   bool // on the writer
	read    bool // a read there all the same (readOnWriter): it fails as a read
}

var _ pgx.Rows = (*retryRows)(nil)

func (w *retryRows) Next() bool {
	if w.err != nil {
		return false
	}
	if w.started {
		if w.next() {
			return true
		}
		w.rememberWrite()
		return false
	}
	w.started = true
	if w.next() {
		return true
	}
	err := w.rows.Err()
	if err == nil {
		return false
	}
	return w.again(err) && w.rows.Next()
}

// again runs the call again after the replica failed with err before the
// caller had anything of it, and reports whether w.rows are the new rows;
// if not, w.err says why.
func (w *retryRows) again(err error) bool {
	// The topology may have been reloaded since Query returned: retry on
	// the one in force now.
	t, terr := w.r.enter()
	if terr != nil {
		w.err = err
		return false
	}
	defer func() { t.leave() }() // awaitWriter may move the call to a new topology
	st, retry, err := w.r.retryable(w.ctx, t, target{n: w.n, pool: w.pool, write: w.write}, w.sql, err, w.st)
	if !retry {
		w.err = err
		return false
	}
	if st.readOnly {
		w.cl = asWrite(w.cl)
	}
	w.done() // returns the failed replica's connection now
	rows, err := w.r.query(w.ctx, &t, w.op, w.sql, w.cl, w.args, st, nil)
	if err != nil {
		w.err = err
		return false
	}
	w.rows = rows
	return true
}

// rememberWrite: a replica rejected a later statement of a multi-statement
// string as a write (SQLSTATE 25006) after the rows of an earlier one were
// delivered. The call cannot be run again now, since its caller has rows,
// and the error goes to it; but the string is a write from now on, so the
// next call runs on the primary instead of failing the same way.
func (w *retryRows) rememberWrite() {
	// Rows that ended well are not asked: errors.As allocates its target.
	if err := w.rows.Err(); err != nil && rejectedAsWrite(err) {
		w.r.cache.markWrite(w.sql)
	}
}

// Err is the rows' error; a write's says what writeError says (most
// often ErrMaybeCommitted): its rows failed after the caller had some, or
// closed them, and it never runs again. A read's, on the writer too
// (readOnWriter), when its node failed after the caller had rows, says
// which node and why (readCut).
func (w *retryRows) Err() error {
	if w.err != nil {
		return w.err
	}
	err := w.rows.Err()
	if err == nil {
		return nil
	}
	if w.write && !w.read {
		w.err = w.r.writeError(w.ctx, failureOf(w.ctx, err), w.n, whatWrite, err)
		return w.err
	}
	if f := failureOf(w.ctx, err); f == failSent || f == failNotSent || f == failIdle {
		// Not kept in w.err, which would stop QueryRow's and the
		// driver's run again after the first row (againAfterRow).
		return w.r.readCut(w.n, err)
	}
	return err
}

// readCut returns err, the failure of node n under a read whose caller
// already had rows, so that it cannot run again, naming the node and, when
// the router cut the node off (it stopped answering) or was closed, why:
// pgx's own error is "use of closed network connection" then, or the
// server's FATAL, which name neither.
func (r *Router) readCut(n *node, err error) error {
	cause := n.conns.cause()
	if r.closed.Load() {
		cause = ErrClosed
	}
	switch {
	case cause == ErrClosed:
		return fmt.Errorf("%w while a read was in flight on node %q; it was not run again, since its rows had been delivered: %w", ErrClosed, n.name, err)
	case cause != nil:
		return fmt.Errorf("routerlib: node %q %s (%v) after a read had delivered rows; it was not run again: %w", n.name, cutReason(cause), cause, err)
	}
	return fmt.Errorf("routerlib: node %q failed after a read had delivered rows; it was not run again: %w", n.name, err)
}

// next advances the rows, and once they are done returns their
// connection to its pool, as pgxpool's own rows do.
func (w *retryRows) next() bool {
	if w.rows.Next() {
		return true
	}
	w.done()
	return false
}

// done closes the rows and returns their connection to its pool, once.
// A handler's panic out of the Close (the rest of the reply read) closes
// the connection instead (see closeOnPanic).
func (w *retryRows) done() {
	if w.conn != nil {
		c := w.conn
		w.conn = nil
		closed := false
		defer closeOnPanic(w.n.cutBackends, c, &closed)
		w.rows.Close()
		closed = true
		w.n.release(w.pool, c, w.gen)
		return
	}
	w.rows.Close()
}

// closeOnPanic, deferred while c is out of its pool for a call, closes c
// when the call is cut before *returned is set: a panic out of a handler
// of the application's (OnNotice, OnNotification or OnPgError, which
// pgconn calls while it reads the reply), or a runtime.Goexit there
// (t.FailNow in a test's handler), for which recover() returns nil, so
// it is not asked. c leaves the pool, so that its slot is free: nothing
// else would release c once the cut passed the call, and with every slot
// so lost each later call waits for a connection forever. c is
// mid-reply, its protocol state unknown: it is closed, not given back,
// after a cancel request (cancelCut), for the server goes on with what c
// sent, a COMMIT say, unaware. Nothing is recovered: the panic (or the
// Goexit) goes on untouched. c's backend is noted in cut with the call's
// session, for it to settle after the backend ended (see cutBackends).
func closeOnPanic(cut *cutBackends, c *pgxpool.Conn, returned *bool) {
	if !*returned {
		pc := c.Conn().PgConn()
		if !pc.IsClosed() {
			cancelCut(pc)
		}
		cut.add(pc.PID(), callSession(pc))
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = c.Hijack().Close(ctx)
		cancel()
	}
}

func (w *retryRows) Close() { w.done() }

func (w *retryRows) CommandTag() pgconn.CommandTag { return w.rows.CommandTag() }

func (w *retryRows) FieldDescriptions() []pgconn.FieldDescription {
	return w.rows.FieldDescriptions()
}

// Scan scans the current row; rows that fail to scan are done, as
// pgxpool's are.
func (w *retryRows) Scan(dest ...any) error {
	err := w.rows.Scan(dest...)
	if err != nil {
		w.done()
	}
	return err
}

// Values returns the current row's values; like Scan, a failure ends the
// rows.
func (w *retryRows) Values() ([]any, error) {
	v, err := w.rows.Values()
	if err != nil {
		w.done()
	}
	return v, err
}

func (w *retryRows) RawValues() [][]byte { return w.rows.RawValues() }

func (w *retryRows) Conn() *pgx.Conn { return w.rows.Conn() }

func (w *retryRows) TypeMap() *pgtype.Map { return w.rows.TypeMap() }

// QueryRow runs sql like [Router.Query] and returns its first row. As with
// pgx, errors are deferred until Scan; no rows is [pgx.ErrNoRows].
func (r *Router) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	t, err := r.enter()
	if err != nil {
		return errRow{err}
	}
	defer func() { t.leave() }() // awaitWriter may move the call to a new topology
	rows, err := r.query(ctx, &t, OpQueryRow, sql, r.cache.get(sql), args, retryState{}, nil)
	if err != nil {
		return errRow{err}
	}
	return (*retryRow)(rows.(*retryRows)) // no second wrapper
}

// SendBatch sends b to the primary if any of its statements is a write,
// else to a replica. A batch of reads outside a transaction the caller
// holds is sent again, whole, while none of its results was read, as a
// Query's read runs again: on another node when its node failed under it
// (the node leaves rotation), on a new session of the same node when the
// server had ended its session as idle (idle_session_timeout), and, after
// pg_terminate_backend ended it, on another replica first, else on the
// same node on a session made after the ending. On the primary's
// read-write session (the fallback, a read_your_writes read) a batch of
// reads goes again after a failure only when none of it went out (pgx met
// the failure preparing the batch's statements, in a round trip before
// them): once it went out, a function it called may have written, and its
// error says it was not sent again for that reason. In read_your_writes
// mode a batch of reads on the primary's read-write session, sent there
// first or again after its replica failed, records in the context's
// [Session] what a function it called wrote, as a Query's read does. A
// write batch outside a transaction is sent again, whole, only when the
// server had ended its session as idle (none of it ran), as an Exec there
// runs again, never on another node. A batch that begins a read-only
// transaction, not serializable ([pgx.Batch.BeginTx]
// with [pgx.ReadOnly], or a first statement BEGIN … READ ONLY), is a read
// as [Router.BeginTx] takes it, and so are the COMMIT or ROLLBACK that end
// it in the batch; its transaction keeps its replica connection until
// Commit or Rollback, as with [pgxpool.Pool.SendBatch]. Any other batch
// that begins a transaction goes to the primary (its BEGIN is not a
// read), and its Tx is the transaction [Router.BeginTx] gives: a failed
// Commit says whether it may have committed, and in read_your_writes
// mode Commit records the session's position (or the batch's Close, when
// the batch queues its own COMMIT).
func (r *Router) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	t, err := r.enter()
	if err != nil {
		return pgx.FailedBatchResults(b, err)
	}
	defer func() { t.leave() }() // awaitWriter may move the call to a new topology
	cl := classRead
	readOnlyTx := false
	for i, q := range b.QueuedQueries {
		if r.cache.get(q.SQL)&classWrite == 0 {
			continue
		}
		// Lexed again only when classified a write.
		if i == 0 && readOnlyBegin(q.SQL) {
			readOnlyTx = true
			continue
		}
		if readOnlyTx && endsReadOnlyTx(q.SQL) {
			continue
		}
		cl = classWrite
		break
	}
	first := ""
	if len(b.QueuedQueries) > 0 {
		first = b.QueuedQueries[0].SQL
	}
	tg, err := r.route(ctx, &t, OpSendBatch, first, cl, &retryState{})
	if err != nil {
		return pgx.FailedBatchResults(b, err)
	}
	r.count(tg)
	if tg.write && !readOnWriter(ctx, t, cl) {
		sb := sendable(b)
		for attempts := 1; ; attempts++ {
			c, err := acquireConn(ctx, tg.pool) // waits for room on a full primary (awaitRoom)
			if err == nil {
				return r.sendWriteBatch(ctx, t, tg, sb, c)
			}
			if again, err := r.writeElsewhere(ctx, &t, &tg, OpSendBatch, first, cl, attempts, err); !again {
				return pgx.FailedBatchResults(sb, err)
			}
		}
	}
	// Reads, on the writer too when the caller (Primary) or the policy
	// (consistency strong) sends them there: they fail as reads do.
	if readOnlyTx {
		// Read only: nothing to record, and its own BEGIN makes it so.
		return r.sendReadBatch(ctx, t, tg, b, true)
	}
	if s := r.recording(ctx, t, &tg); s != nil {
		return r.sendReadBatchCapture(ctx, t, tg, b, s)
	}
	return r.sendReadBatch(ctx, t, tg, b, false)
}

// readBatchAgain chooses where rb, a batch of reads, goes again after err,
// its node's failure before the caller read any of it (see
// resendBatch.again), as query's loop does for a read: retryable decides
// and records it (the node out of rotation, or checked at once when the
// server ended the session), and choose picks the node, another one first.
// It returns the target, with the session the batch records in there
// (recording: a read_your_writes read on the writer's read-write session,
// as a Query's read moved there records), or the error to fail the batch
// with when no node can take it, or neither when the batch is not sent
// again (its failure is then err, as resendBatch.failed says it).
func (r *Router) readBatchAgain(rb *resendBatch, err error) (target, *Session, error) {
	t, terr := r.enter()
	if terr != nil {
		return target{}, nil, nil
	}
	defer t.leave()
	first := ""
	if len(rb.b.QueuedQueries) > 0 {
		first = rb.b.QueuedQueries[0].SQL
	}
	st, retry, _ := r.retryable(rb.ctx, t, target{n: rb.n, pool: rb.pool}, first, err, retryState{attempts: rb.attempts})
	rb.attempts = st.attempts
	if !retry {
		return target{}, nil, nil
	}
	tg, cerr := r.choose(rb.ctx, t, OpSendBatch, first, classRead, st)
	if cerr != nil {
		return target{}, nil, fmt.Errorf("routerlib: node %q failed under a read batch, which found no node to go to again (%w): %w", rb.n.name, cerr, err)
	}
	r.count(tg)
	rb.after = st.after(tg.n.server)
	if rb.readOnlyTx {
		return tg, nil, nil // read only: nothing to record, and its own BEGIN makes it so
	}
	return tg, r.recording(rb.ctx, t, &tg), nil
}

// writeElsewhere decides, after err failed attempt attempts to acquire a
// connection of tg's pool for a write (op, sql, cl), whether the call, not
// sent, goes to the node taking the writes now because they left tg's
// node while it waited there (writesLeft), as retryable says of a write:
// then it routes the call again into *t and *tg and reports true.
// Otherwise it returns err, or the new route's failure.
func (r *Router) writeElsewhere(ctx context.Context, t **topology, tg *target, op Op, sql string, cl class, attempts int, err error) (bool, error) {
	if attempts >= maxAttempts(*t) || r.closed.Load() || !writesLeft(*t, tg.n, failureOf(ctx, err), err) {
		return false, err
	}
	next, err := r.route(ctx, t, op, sql, cl, &retryState{connRetry: true})
	if err != nil {
		return false, err
	}
	r.count(next)
	*tg = next
	return true, nil
}

// CopyFrom copies rows into a table on the primary, like
// [pgxpool.Pool.CopyFrom]. A copy whose session the server had ended as
// idle (idle_session_timeout) before pgx read anything of rowSrc runs
// again on a live session, as an Exec there; one that failed after pgx
// read rows of rowSrc never runs again, since a [pgx.CopyFromSource]
// cannot be read twice: its error says whether it may have committed.
func (r *Router) CopyFrom(ctx context.Context, tableName pgx.Identifier, columnNames []string, rowSrc pgx.CopyFromSource) (int64, error) {
	t, err := r.enter()
	if err != nil {
		return 0, err
	}
	defer func() { t.leave() }() // awaitWriter may move the call to a new topology
	sql := ""
	if r.opts.tracer != nil {
		sql = "COPY " + tableName.Sanitize() // built only for the tracer: it allocates
	}
	tg, err := r.route(ctx, &t, OpCopyFrom, sql, classWrite, &retryState{})
	if err != nil {
		return 0, err
	}
	r.count(tg)
	src := &copySource{CopyFromSource: rowSrc}
	for attempts := 1; ; attempts++ {
		c, err := acquireConn(ctx, tg.pool)
		if err != nil {
			if again, err := r.writeElsewhere(ctx, &t, &tg, OpCopyFrom, sql, classWrite, attempts, err); !again {
				return 0, err
			}
			continue
		}
		n, err := c.Conn().CopyFrom(ctx, tableName, columnNames, src)
		var cut error
		if err != nil {
			cut = cutCause(c.Conn().PgConn()) // the connection's own: read before it goes back
		}
		c.Release()
		if err != nil {
			var again bool
			if again, err = r.copyFailed(ctx, tg, err, cut, src.read, attempts, maxAttempts(t)); again {
				continue
			}
			return n, err
		}
		if s := r.capturing(ctx, t, tg); s != nil {
			err = r.captureAfter(ctx, tg.pool, s)
		}
		return n, err
	}
}

// Begin starts a transaction on the primary.
func (r *Router) Begin(ctx context.Context) (pgx.Tx, error) {
	return r.BeginTx(ctx, pgx.TxOptions{})
}

// BeginTx starts a transaction: on a replica when txOptions.AccessMode is
// [pgx.ReadOnly] (unless IsoLevel is [pgx.Serializable], which a hot
// standby refuses), otherwise on the primary. Every statement of the
// transaction runs where it started. In read_your_writes mode, Commit also
// records the commit's LSN in the context's [Session], in the same round
// trip.
func (r *Router) BeginTx(ctx context.Context, txOptions pgx.TxOptions) (pgx.Tx, error) {
	t, err := r.enter()
	if err != nil {
		return nil, err
	}
	defer func() { t.leave() }() // awaitWriter may move the call to a new topology
	cl := classWrite | classTx
	if txOptions.AccessMode == pgx.ReadOnly && txOptions.IsoLevel != pgx.Serializable {
		cl = classRead
	}
	var st retryState
	for {
		tg, err := r.route(ctx, &t, OpBegin, "BEGIN", cl, &st)
		if err != nil {
			return nil, err
		}
		r.count(tg)
		var tx pgx.Tx
		if s := r.capturing(ctx, t, tg); s != nil {
			tx, err = r.beginCapture(ctx, tg, txOptions, s)
		} else if tx, err = beginTx(ctx, tg, txOptions, st.after(tg.n.server)); err == nil && tg.write {
			tx = newWriterTx(tx, r, tg.n)
		}
		if err == nil {
			return tx, nil
		}
		if tg.write && sessionTerminated(err) && ctx.Err() == nil && !r.closed.Load() && st.attempts+1 < maxAttempts(t) {
			// The BEGIN met a session the server had ended (an
			// operator's pg_terminate_backend of idle sessions, say):
			// whether or not it ran, nothing of the transaction did, so
			// it begins again, on a session made after this one ended,
			// which no termination pass that ended it can reach. A
			// write is never sent again so: it may have committed.
			tg.n.errors.Add(1)
			r.nodeFailed(tg.n, err)
			st.attempts++
			st.connRetry, st.exclude, st.avoid = true, nil, nil
			st.ended, st.endedAt = tg.n.server, time.Now().UnixNano()
			continue
		}
		var retry bool
		if st, retry, err = r.retryable(ctx, t, tg, "", err, st); !retry {
			return nil, err
		}
	}
}

// Ping checks that the primary answers.
func (r *Router) Ping(ctx context.Context) error {
	t, err := r.enter()
	if err != nil {
		return err
	}
	defer func() { t.leave() }() // awaitWriter may move the call to a new topology
	tg, err := r.routePrimary(ctx, &t, OpPing)
	if err != nil {
		return err
	}
	if err := tg.pool.Ping(ctx); err != nil {
		if r.closed.Load() && !errors.Is(err, ErrClosed) {
			// Close cut the ping off: the primary did not fail.
			return fmt.Errorf("%w while the ping was in flight on primary %q: %w", ErrClosed, tg.n.name, err)
		}
		return fmt.Errorf("routerlib: ping primary %q: %w", tg.n.name, err)
	}
	return nil
}

// beginTx is [pgxpool.Pool.BeginTx] on tg's pool: on the writer's, on a
// session whose connect started after after when it is set (see
// newSession); on a replica's read pool, the connections its node keeps go
// back to the pool first, where the transaction takes one (see
// readConns.direct).
func beginTx(ctx context.Context, tg target, txOptions pgx.TxOptions, after int64) (pgx.Tx, error) {
	if tg.pool == tg.n.readPool.Load() {
		defer tg.n.kept.direct()()
		return tg.pool.BeginTx(ctx, txOptions)
	}
	// The writer's session, made after after when it is set (see
	// newSession), waiting for room on a full primary as every write
	// does (awaitsRoom): pgxpool's BeginTx failed at once with 53300.
	c, _, err := tg.n.server.newSession(ctx, tg.pool, after)
	if err != nil {
		return nil, &unacquired{err}
	}
	tx, err := c.BeginTx(ctx, txOptions)
	if err != nil {
		c.Release()
		return nil, err
	}
	return &releasingTx{Tx: tx, c: c}, nil
}
