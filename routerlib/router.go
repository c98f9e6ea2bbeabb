package routerlib

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgreplication/terraform-provider-pgreplication/internal/sqllex"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
)

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
	// A node whose first check does not complete (ctx ended) stays
	// EjectNotChecked until the monitor's first check.
	r.checkAll(ctx, t)
	if err := refused(t.declared); err != nil {
		t.closeServersNotIn(nil)
		r.opts.conns.close()
		return nil, err
	}
	r.cur.Store(t)
	r.background, r.stop = context.WithCancel(context.Background())
	r.wg.Add(1)
	go r.monitor(r.background)
	return r, nil
}

// Close stops the monitor and the file watcher, waits for the calls in
// flight and closes every pool. Open rows and transactions must be closed
// first, as with [pgxpool.Pool.Close]. A call still in flight
// health.timeout after Close began (stuck on a node that hangs) has its
// connection closed and fails with [ErrClosed], so that Close returns
// within health.timeout and a second. Calls after Close fail with
// [ErrClosed].
func (r *Router) Close() {
	r.closeOnce.Do(func() {
		r.closed.Store(true)
		r.stop()
		r.reloadMu.Lock() // no reload can publish a topology after this
		t := r.cur.Load()
		t.retired.Store(true)
		r.reloadMu.Unlock()
		done := make(chan struct{})
		go func() { // Close waits for it below
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
			<-done
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
	var pgErr *pgconn.PgError
	if !errors.As(*e, &pgErr) {
		return nil
	}
	switch pgErr.Code {
	case "28P01", "28000": // invalid_password, invalid_authorization_specification
		return fmt.Errorf("routerlib: node %q refuses the router file's user or password (fix user, password_env, passfile or WithPasswordFunc): %w", n.name, *e)
	case "3D000": // invalid_catalog_name
		return fmt.Errorf("routerlib: node %q has no database named as the router file says (fix database): %w", n.name, *e)
	}
	return nil
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

type primaryKey struct{}
type routeKey struct{}

// Primary returns a context that sends every statement to the primary: the
// counterpart of Django's using("default"), for a read that must see the
// latest data.
func Primary(ctx context.Context) context.Context {
	return context.WithValue(ctx, primaryKey{}, true)
}

// Route returns a context whose reads go to the route called name in the
// router file (its nodes, strategy and fallback). Writes still go to the
// primary. An unknown name makes each call fail with [ErrUnknownRoute].
func Route(ctx context.Context, name string) context.Context {
	return context.WithValue(ctx, routeKey{}, name)
}

// A target is where one call goes.
type target struct {
	n      *node
	pool   *pgxpool.Pool
	reason Reason
	write  bool   // on the writer as a write (captures the LSN in a session)
	route  string // the route's name, for tracing
}

// retryState carries what earlier attempts of one call learned.
type retryState struct {
	attempts  int
	exclude   *node // a replica whose connection just failed
	readOnly  bool  // a replica rejected the statement as a write
	connRetry bool  // the previous attempt's connection failed
}

// choose decides where a call goes. It is the hot path: with the class
// cached and no tracer it does not allocate.
func (r *Router) choose(ctx context.Context, t *topology, op Op, sql string, cl class, st retryState) (target, error) {
	tg, err := r.decide(ctx, t, cl, st)
	if err != nil {
		return tg, err
	}
	if tr := r.opts.tracer; tr != nil {
		tr.TraceRoute(ctx, Decision{Op: op, SQL: sql, Node: tg.n.name, Reason: tg.reason, Route: tg.route})
	}
	return tg, nil
}

func (r *Router) decide(ctx context.Context, t *topology, cl class, st retryState) (target, error) {
	switch {
	case st.readOnly:
		return r.writeTarget(t, ReasonReadOnlyRetry)
	case cl&classTx != 0:
		return r.writeTarget(t, ReasonInTransaction)
	case cl&classWrite != 0:
		return r.writeTarget(t, ReasonWrite)
	case forcedPrimary(ctx):
		return r.writeTarget(t, ReasonForcedPrimary)
	case t.mode == consistencyStrong:
		return r.writeTarget(t, ReasonStrong)
	}
	cands, pol, routeName := t.nodes, t.policy, ""
	if name, ok := ctx.Value(routeKey{}).(string); ok {
		rt := t.routes[name]
		if rt == nil {
			return target{}, fmt.Errorf("%w %q: the router file declares no such route", ErrUnknownRoute, name)
		}
		cands, pol, routeName = rt.nodes, rt.policy, rt.name
	}
	reason := ReasonReplica
	if routeName != "" {
		reason = ReasonRoute
	}
	if st.connRetry {
		reason = ReasonConnRetry
	}
	if t.mode == consistencyReadYourWrites {
		if s := SessionFrom(ctx); s != nil {
			if lsn := s.LSN(); lsn != 0 {
				return r.readYourWrites(ctx, t, cands, pol, st.exclude, lsn, routeName)
			}
		}
	}
	if n := r.pick(t, cands, pol, st.exclude, 0); n != nil {
		return target{n: n, pool: n.readPoolOf(), reason: reason, route: routeName}, nil
	}
	return r.fallback(t, cands, pol, routeName)
}

func forcedPrimary(ctx context.Context) bool {
	v, _ := ctx.Value(primaryKey{}).(bool)
	return v
}

func (r *Router) writeTarget(t *topology, reason Reason) (target, error) {
	w := t.writer.Load()
	if w == nil {
		return target{}, r.noPrimary(t)
	}
	return target{n: w, pool: w.writePool.Load(), reason: reason, write: true}, nil
}

func (r *Router) noPrimary(t *topology) error {
	if why := t.noWriter.Load(); why != nil {
		return fmt.Errorf("%w: %s", ErrNoPrimary, *why)
	}
	d := t.declared
	why := "is unreachable"
	switch {
	case EjectReason(d.ejected.Load()) == EjectNotChecked:
		why = "has not been checked yet"
	case d.reachable.Load() && d.recovery.Load():
		why = "is in recovery"
	}
	if e := d.lastErr.Load(); e != nil && !d.reachable.Load() {
		return fmt.Errorf("%w: declared primary %q %s (%w) and no other node has been promoted; writes resume when one is", ErrNoPrimary, d.name, why, *e)
	}
	return fmt.Errorf("%w: declared primary %q %s and no other node has been promoted; writes resume when one is", ErrNoPrimary, d.name, why)
}

// fallback serves a read no replica can take, as the policy says.
func (r *Router) fallback(t *topology, cands []*node, pol policy, routeName string) (target, error) {
	if !pol.fallbackPrimary {
		return target{}, r.noReplica(t, cands, pol, routeName)
	}
	w := t.writer.Load()
	if w == nil {
		return target{}, fmt.Errorf("%w, and the fallback primary is down: %w", r.noReplica(t, cands, pol, routeName), r.noPrimary(t))
	}
	reason := ReasonFallback
	for _, n := range cands {
		if e := EjectReason(n.ejected.Load()); e == EjectLagBytes || e == EjectLagTime {
			reason = ReasonLagging
			break
		}
	}
	return target{n: w, pool: w.writePool.Load(), reason: reason, route: routeName}, nil
}

// noReplica says why no replica among cands can serve a read: each one's
// reason, and the last error of those that do not answer, which the
// error wraps.
func (r *Router) noReplica(t *topology, cands []*node, pol policy, routeName string) error {
	where := fmt.Sprintf("the router file (read_policy fallback is %q)", pol.fallback)
	if routeName != "" {
		where = fmt.Sprintf("route %q (its fallback is %q)", routeName, pol.fallback)
	}
	var why nodeErrors
	writer := t.writer.Load()
	for _, n := range cands {
		if n == writer || n.readable.Load() {
			continue
		}
		reason := EjectReason(n.ejected.Load())
		if e := n.lastErr.Load(); e != nil && !n.reachable.Load() {
			why = append(why, fmt.Errorf("node %q is out of rotation (%s): %w", n.name, reason, *e))
		} else {
			why = append(why, fmt.Errorf("node %q is out of rotation (%s)", n.name, reason))
		}
	}
	if len(why) == 0 {
		return fmt.Errorf("%w in %s: check the replicas with Router.Stat", ErrNoReplica, where)
	}
	return fmt.Errorf("%w in %s: %w", ErrNoReplica, where, why)
}

// nodeErrors are the reasons of several nodes, each wrapped: errors.Is and
// errors.As look into every one.
type nodeErrors []error

func (e nodeErrors) Error() string {
	s := make([]string, len(e))
	for i, err := range e {
		s[i] = err.Error()
	}
	return strings.Join(s, "; ")
}

func (e nodeErrors) Unwrap() []error { return e }

// eligible reports whether n may serve a read that needs at least minLSN.
func eligible(n, writer, exclude *node, minLSN LSN) bool {
	return n != writer && n != exclude && n.readable.Load() && (minLSN == 0 || LSN(n.replayLSN.Load()) >= minLSN)
}

// pick chooses a replica among cands by the policy, or nil. It makes two
// passes (count, then select) instead of building a slice, so it does not
// allocate.
func (r *Router) pick(t *topology, cands []*node, pol policy, exclude *node, minLSN LSN) *node {
	writer := t.writer.Load()
	switch pol.strategy {
	case strategyLeastLag:
		var best *node
		for _, n := range cands {
			if eligible(n, writer, exclude, minLSN) && (best == nil || n.lagBytes.Load() < best.lagBytes.Load()) {
				best = n
			}
		}
		return best
	case strategyWeighted:
		total := 0
		for _, n := range cands {
			if eligible(n, writer, exclude, minLSN) {
				total += n.decl.Weight
			}
		}
		if total == 0 {
			return nil
		}
		x := rand.IntN(total)
		for _, n := range cands {
			if eligible(n, writer, exclude, minLSN) {
				if x -= n.decl.Weight; x < 0 {
					return n
				}
			}
		}
		return nil
	case strategyNearestZone:
		if r.opts.zone != "" {
			if n := r.nth(t, cands, writer, exclude, minLSN, r.opts.zone, false); n != nil {
				return n
			}
		}
	}
	return r.nth(t, cands, writer, exclude, minLSN, "", pol.strategy == strategyRandom)
}

// nth picks the k-th eligible candidate in zone ("" for any), k chosen
// round-robin or at random.
func (r *Router) nth(t *topology, cands []*node, writer, exclude *node, minLSN LSN, zone string, random bool) *node {
	count := 0
	for _, n := range cands {
		if eligible(n, writer, exclude, minLSN) && (zone == "" || n.decl.Zone == zone) {
			count++
		}
	}
	if count == 0 {
		return nil
	}
	var k int
	if random {
		k = rand.IntN(count)
	} else {
		k = int(t.rr.Add(1) % uint64(count))
	}
	for _, n := range cands {
		if eligible(n, writer, exclude, minLSN) && (zone == "" || n.decl.Zone == zone) {
			if k == 0 {
				return n
			}
			k--
		}
	}
	return nil
}

// maxAttempts bounds retries of one call: a replica connection failing, or
// a replica rejecting a write.
func maxAttempts(t *topology) int { return len(t.nodes) + 1 }

// retryable reports whether a call that failed with err on tg should run
// again elsewhere, and records what happened. Only a read runs again: on
// the primary when a replica rejected it as a write (SQLSTATE 25006, and
// the statement is remembered as a write), or on another node when the
// node failed under it (see nodeFault), which also takes the node out of
// rotation at once. Any other error the server sent is the caller's, and
// so is the caller's own deadline or cancel: returned as is, nothing
// ejected. The error to return is err, or err wrapped with what the caller
// must know (a write that may have committed).
func (r *Router) retryable(ctx context.Context, t *topology, tg target, sql string, err error, st retryState) (retryState, bool, error) {
	tg.n.errors.Add(1)
	st.attempts++
	st.connRetry, st.exclude = false, nil
	if ctx.Err() != nil || errors.Is(err, ErrClosed) {
		return st, false, err
	}
	if r.closed.Load() && nodeFault(err) {
		return st, false, fmt.Errorf("%w while the call was in flight on node %q: %w", ErrClosed, tg.n.name, err)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "25006" && !tg.write && st.attempts < maxAttempts(t) {
		if sql != "" {
			r.cache.set(sql, classWrite)
		}
		r.opts.logger.Info("routerlib: a replica rejected a statement as a write; it now goes to the primary", "node", tg.n.name, "sql", sqllex.Redact(sql))
		st.readOnly = true
		return st, true, err
	}
	if !nodeFault(err) {
		return st, false, err
	}
	tg.n.markDown(err)
	r.opts.logger.Warn("routerlib: connection failed; node out of rotation", "node", tg.n.name, "err", err)
	if tg.write {
		if pgconn.SafeToRetry(err) {
			return st, false, fmt.Errorf("routerlib: node %q: %w", tg.n.name, err)
		}
		// Never replayed: the server may have committed it before the
		// connection failed.
		if cause := tg.n.conns.cause(); cause != nil {
			return st, false, fmt.Errorf("routerlib: node %q stopped answering (%v) during a write, which may have committed: %w", tg.n.name, cause, err)
		}
		return st, false, fmt.Errorf("routerlib: node %q failed during a write, which may have committed: %w", tg.n.name, err)
	}
	if st.attempts >= maxAttempts(t) {
		return st, false, err
	}
	st.connRetry, st.exclude = true, tg.n
	return st, true, err
}

func (r *Router) count(tg target) {
	if tg.write {
		tg.n.writes.Add(1)
	} else {
		tg.n.reads.Add(1)
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
	defer t.leave()
	cl := r.cache.get(sql)
	var st retryState
	for {
		tg, err := r.choose(ctx, t, OpExec, sql, cl, st)
		if err != nil {
			return pgconn.CommandTag{}, err
		}
		r.count(tg)
		var tag pgconn.CommandTag
		if s := r.capturing(ctx, t, tg); s != nil {
			tag, err = r.execCapture(ctx, tg.pool, sql, cl, args, s)
		} else {
			tag, err = tg.pool.Exec(ctx, sql, args...)
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
	defer t.leave()
	return r.query(ctx, t, OpQuery, sql, r.cache.get(sql), args, retryState{})
}

func (r *Router) query(ctx context.Context, t *topology, op Op, sql string, cl class, args []any, st retryState) (pgx.Rows, error) {
	for {
		tg, err := r.choose(ctx, t, op, sql, cl, st)
		if err != nil {
			return errRows{err: err}, err
		}
		r.count(tg)
		var rows pgx.Rows
		if s := r.capturing(ctx, t, tg); s != nil {
			rows, err = r.queryCapture(ctx, tg.pool, sql, cl, args, s)
		} else {
			rows, err = tg.pool.Query(ctx, sql, args...)
		}
		if err == nil {
			if tg.write {
				return rows, nil
			}
			return &retryRows{Rows: rows, r: r, ctx: ctx, tg: tg, op: op, sql: sql, cl: cl, args: args, st: st}, nil
		}
		var retry bool
		if st, retry, err = r.retryable(ctx, t, tg, sql, err, st); !retry {
			if rows != nil {
				rows.Close()
			}
			return errRows{err: err}, err
		}
	}
}

// retryRows holds a replica's rows. If the replica fails before the first
// row (its connection broke, or it rejected the statement as a write), the
// query runs again elsewhere and the caller sees only the second result.
type retryRows struct {
	pgx.Rows
	r       *Router
	ctx     context.Context
	tg      target
	op      Op
	sql     string
	cl      class
	args    []any
	st      retryState
	started bool
	err     error
}

func (w *retryRows) Next() bool {
	if w.started || w.err != nil {
		return w.err == nil && w.Rows.Next()
	}
	w.started = true
	if w.Rows.Next() {
		return true
	}
	err := w.Rows.Err()
	if err == nil {
		return false
	}
	// The topology may have been reloaded since Query returned: retry on
	// the one in force now.
	t, terr := w.r.enter()
	if terr != nil {
		return false
	}
	defer t.leave()
	st, retry, err := w.r.retryable(w.ctx, t, w.tg, w.sql, err, w.st)
	if !retry {
		w.err = err
		return false
	}
	if st.readOnly {
		w.cl = classWrite
	}
	w.Rows.Close() // returns the failed replica's connection now
	rows, err := w.r.query(w.ctx, t, w.op, w.sql, w.cl, w.args, st)
	if err != nil {
		w.err = err
		return false
	}
	w.Rows = rows
	return w.Rows.Next()
}

func (w *retryRows) Err() error {
	if w.err != nil {
		return w.err
	}
	return w.Rows.Err()
}

// errRows is the Rows of a call that failed before reaching a server.
type errRows struct{ err error }

func (e errRows) Close()                                       {}
func (e errRows) Err() error                                   { return e.err }
func (e errRows) CommandTag() pgconn.CommandTag                { return pgconn.CommandTag{} }
func (e errRows) FieldDescriptions() []pgconn.FieldDescription { return nil }
func (e errRows) Next() bool                                   { return false }
func (e errRows) Scan(...any) error                            { return e.err }
func (e errRows) Values() ([]any, error)                       { return nil, e.err }
func (e errRows) RawValues() [][]byte                          { return nil }
func (e errRows) Conn() *pgx.Conn                              { return nil }
func (e errRows) TypeMap() *pgtype.Map                         { return nil }

// QueryRow runs sql like [Router.Query] and returns its first row. As with
// pgx, errors are deferred until Scan; no rows is [pgx.ErrNoRows].
func (r *Router) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	t, err := r.enter()
	if err != nil {
		return errRow{err}
	}
	defer t.leave()
	rows, err := r.query(ctx, t, OpQueryRow, sql, r.cache.get(sql), args, retryState{})
	if err != nil {
		return errRow{err}
	}
	return &row{rows: rows}
}

type row struct{ rows pgx.Rows }

func (r *row) Scan(dest ...any) error {
	defer r.rows.Close()
	if !r.rows.Next() {
		if err := r.rows.Err(); err != nil {
			return err
		}
		return pgx.ErrNoRows
	}
	if err := r.rows.Scan(dest...); err != nil {
		return err
	}
	r.rows.Close()
	return r.rows.Err()
}

type errRow struct{ err error }

func (e errRow) Scan(...any) error { return e.err }

// SendBatch sends b to the primary if any of its statements is a write,
// else to a replica. A batch is not retried on another node.
func (r *Router) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	t, err := r.enter()
	if err != nil {
		return errBatch{err}
	}
	defer t.leave()
	cl := classRead
	for _, q := range b.QueuedQueries {
		if r.cache.get(q.SQL)&classWrite != 0 {
			cl = classWrite
			break
		}
	}
	first := ""
	if len(b.QueuedQueries) > 0 {
		first = b.QueuedQueries[0].SQL
	}
	tg, err := r.choose(ctx, t, OpSendBatch, first, cl, retryState{})
	if err != nil {
		return errBatch{err}
	}
	r.count(tg)
	br := tg.pool.SendBatch(ctx, b)
	if s := r.capturing(ctx, t, tg); s != nil {
		return &captureBatch{BatchResults: br, r: r, ctx: ctx, pool: tg.pool, session: s}
	}
	return br
}

type errBatch struct{ err error }

func (e errBatch) Exec() (pgconn.CommandTag, error) { return pgconn.CommandTag{}, e.err }
func (e errBatch) Query() (pgx.Rows, error)         { return errRows(e), e.err }
func (e errBatch) QueryRow() pgx.Row                { return errRow(e) }
func (e errBatch) Close() error                     { return e.err }
func (e errBatch) Tx() pgx.Tx                       { return nil }

// CopyFrom copies rows into a table on the primary, like
// [pgxpool.Pool.CopyFrom].
func (r *Router) CopyFrom(ctx context.Context, tableName pgx.Identifier, columnNames []string, rowSrc pgx.CopyFromSource) (int64, error) {
	t, err := r.enter()
	if err != nil {
		return 0, err
	}
	defer t.leave()
	sql := ""
	if r.opts.tracer != nil {
		sql = "COPY " + tableName.Sanitize() // built only for the tracer: it allocates
	}
	tg, err := r.choose(ctx, t, OpCopyFrom, sql, classWrite, retryState{})
	if err != nil {
		return 0, err
	}
	r.count(tg)
	n, err := tg.pool.CopyFrom(ctx, tableName, columnNames, rowSrc)
	if err == nil {
		if s := r.capturing(ctx, t, tg); s != nil {
			err = r.captureAfter(ctx, tg.pool, s)
		}
	}
	return n, err
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
	defer t.leave()
	cl := classWrite | classTx
	if txOptions.AccessMode == pgx.ReadOnly && txOptions.IsoLevel != pgx.Serializable {
		cl = classRead
	}
	var st retryState
	for {
		tg, err := r.choose(ctx, t, OpBegin, "BEGIN", cl, st)
		if err != nil {
			return nil, err
		}
		r.count(tg)
		var tx pgx.Tx
		if s := r.capturing(ctx, t, tg); s != nil {
			tx, err = r.beginCapture(ctx, tg.pool, txOptions, s)
		} else {
			tx, err = tg.pool.BeginTx(ctx, txOptions)
		}
		if err == nil {
			return tx, nil
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
	defer t.leave()
	tg, err := r.writeTarget(t, ReasonForcedPrimary)
	if err != nil {
		return err
	}
	if err := tg.pool.Ping(ctx); err != nil {
		return fmt.Errorf("routerlib: ping primary %q: %w", tg.n.name, err)
	}
	return nil
}
