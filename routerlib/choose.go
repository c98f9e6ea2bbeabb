package routerlib

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Choosing where a call goes is the first stage of its path (router.go
// calls choose, then run.go runs the call there, and capture.go records the
// LSN of a write on the wire): the statement's class, the context (Primary,
// Route, a read-your-writes Session), the read policy and each node's health
// decide the target. Nothing here sends a statement but the replay polls of
// read-your-writes, which decide whether a replica is eligible.

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
	n *node
	// pool is n's read-only pool for a replica read, and its read-write
	// pool for a write and for a read the primary serves (fallback,
	// read-your-writes): such a read runs again after a connection failure
	// only if nothing was sent (see retryable).
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
	// ended is the server that ended the previous attempt's session
	// (57P01), and endedAt when (Unix nanoseconds): an attempt there runs
	// on a session whose connect started after it (see newSession).
	ended   *server
	endedAt int64
	// avoid is a replica a read takes again only when no other can serve
	// it: the one where a pg_terminate_backend pass ended the previous
	// attempt's session. The pass may still be on its way through that
	// server's sessions, and behind PgBouncer a new client session can be
	// handed one it ends next.
	avoid *node
}

// choose decides where a call goes, and traces it. With the class cached
// and no tracer it does not allocate. route (router.go) does the same for
// the calls that may wait for a primary, calling decide itself: one layer
// less on every read's path.
func (r *Router) choose(ctx context.Context, t *topology, op Op, sql string, cl class, st retryState) (target, error) {
	tg, err := r.decide(ctx, t, cl, &st)
	if err == nil && r.opts.tracer != nil {
		r.trace(ctx, op, sql, tg)
	}
	return tg, err
}

// choosePrimary is where a call that needs the primary itself goes, with
// no statement to classify: [Router.Acquire], [Router.MigrationConn],
// [Router.Ping] and the session middleware's query of the primary's
// position. It is traced like every decision.
func (r *Router) choosePrimary(ctx context.Context, t *topology, op Op) (target, error) {
	tg, err := r.writeTarget(t, ReasonForcedPrimary)
	if err != nil {
		return tg, err
	}
	r.trace(ctx, op, "", tg)
	return tg, nil
}

// trace hands the decision to the tracer, if one is set.
func (r *Router) trace(ctx context.Context, op Op, sql string, tg target) {
	if tr := r.opts.tracer; tr != nil {
		tr.TraceRoute(ctx, Decision{Op: op, SQL: sql, Node: tg.n.name, Reason: tg.reason, Route: tg.route})
	}
}

func (r *Router) decide(ctx context.Context, t *topology, cl class, st *retryState) (target, error) {
	// Every read passes here: what only some take (the primary, a
	// session's position, an unknown route) is out of line, so that the
	// read's own path is a few cache lines.
	if st.readOnly || cl&(classTx|classWrite) != 0 || forcedPrimary(ctx) || t.mode == consistencyStrong {
		return r.decideWrite(ctx, t, cl, st)
	}
	rt := &t.reads
	if name, ok := ctx.Value(routeKey{}).(string); ok {
		if rt = t.routes[name]; rt == nil {
			return target{}, unknownRoute(name)
		}
	}
	reason := ReasonReplica
	if rt.name != "" {
		reason = ReasonRoute
	}
	if st.connRetry {
		reason = ReasonConnRetry
	}
	if t.mode == consistencyReadYourWrites {
		if s := SessionFrom(ctx); s != nil {
			if tg, done, err := r.decideSession(ctx, t, s, rt, st.exclude); done {
				return tg, err
			}
		}
	}
	if st.avoid != nil {
		return r.decideAvoiding(t, rt, st, reason)
	}
	if n := r.pick(t, rt, st.exclude, 0); n != nil {
		return target{n: n, pool: t.readPoolOf(n), reason: reason, route: rt.name}, nil
	}
	return r.fallback(t, rt, st.exclude)
}

// decideAvoiding is the end of decide for a read that takes st.avoid
// again only when no other replica can serve it.
//
//go:noinline
func (r *Router) decideAvoiding(t *topology, rt *route, st *retryState, reason Reason) (target, error) {
	if n := r.pick(t, rt, st.avoid, 0); n != nil {
		return target{n: n, pool: t.readPoolOf(n), reason: reason, route: rt.name}, nil
	}
	if n := r.pick(t, rt, st.exclude, 0); n != nil {
		return target{n: n, pool: t.readPoolOf(n), reason: reason, route: rt.name}, nil
	}
	return r.fallback(t, rt, st.exclude)
}

// decideWrite is decide for a call the primary serves: a write, a
// statement of a transaction, a read under Primary or strong consistency,
// or one a replica rejected as a write.
//
//go:noinline
func (r *Router) decideWrite(ctx context.Context, t *topology, cl class, st *retryState) (target, error) {
	switch {
	case st.readOnly:
		return r.writeTarget(t, ReasonReadOnlyRetry)
	case cl&classTx != 0:
		return r.writeTarget(t, ReasonInTransaction)
	case cl&classWrite != 0:
		return r.writeTarget(t, ReasonWrite)
	case forcedPrimary(ctx):
		return r.writeTarget(t, ReasonForcedPrimary)
	}
	return r.writeTarget(t, ReasonStrong)
}

// decideSession is decide for a read of session s under read-your-writes:
// done when the session's position chose the target (or failed to), not
// when it has none and the read goes where any read goes.
//
//go:noinline
func (r *Router) decideSession(ctx context.Context, t *topology, s *Session, rt *route, exclude *node) (tg target, done bool, err error) {
	if lost := s.unsettled(); lost != 0 {
		if err := r.settle(ctx, t, s, lost, false); errors.Is(err, errCutRunning) {
			// The primary has the work once it committed; the session
			// settles once the cut backends ended (see cutBackends).
			tg, err = r.stickyTarget(t, exclude, rt.name)
			return tg, true, err
		} else if err != nil {
			// The primary has the work, whatever its position.
			r.opts.logger.Warn("routerlib: a session's position is unknown and the primary could not tell its own; the read goes to the primary", "err", err)
			tg, err = r.stickyTarget(t, exclude, rt.name)
			return tg, true, err
		}
	}
	if lsn := s.LSN(); lsn != 0 {
		tg, err = r.readYourWrites(ctx, t, rt, exclude, lsn)
		return tg, true, err
	}
	return target{}, false, nil
}

// unknownRoute is the error of a call under [Route] with a name the
// router file does not declare.
//
//go:noinline
func unknownRoute(name string) error {
	return fmt.Errorf("%w %q: the router file declares no such route", ErrUnknownRoute, name)
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

// fallback serves a read no replica can take, as the policy says. The
// primary is no fallback for a read whose connection to it just failed
// (exclude).
func (r *Router) fallback(t *topology, rt *route, exclude *node) (target, error) {
	if !rt.policy.fallbackPrimary {
		return target{}, r.noReplica(t, rt)
	}
	w := t.writer.Load()
	if w == nil {
		return target{}, fmt.Errorf("%w, and the fallback primary is down: %w", r.noReplica(t, rt), r.noPrimary(t))
	}
	if w == exclude {
		return target{}, fmt.Errorf("%w, and the fallback primary %w", r.noReplica(t, rt), failedUnder(w))
	}
	reason := ReasonFallback
	for _, n := range rt.nodes {
		if e := EjectReason(n.ejected.Load()); e == EjectLagBytes || e == EjectLagTime {
			reason = ReasonLagging
			break
		}
	}
	return target{n: w, pool: w.writePool.Load(), reason: reason, route: rt.name}, nil
}

// noReplica says why no replica among cands can serve a read: each one's
// reason, and the last error of those that do not answer, which the
// error wraps.
func (r *Router) noReplica(t *topology, rt *route) error {
	where := fmt.Sprintf("the router file (read_policy fallback is %q)", rt.policy.fallback)
	if rt.name != "" {
		where = fmt.Sprintf("route %q (its fallback is %q)", rt.name, rt.policy.fallback)
	}
	var why nodeErrors
	writer := t.writer.Load()
	for _, n := range rt.nodes {
		if n == writer || n.inRotation() {
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
	return n != writer && n != exclude && n.inRotation() && (minLSN == 0 || LSN(n.replayLSN.Load()) >= minLSN)
}

// pick chooses a replica among cands by the policy, or nil. It makes two
// passes (count, then select) instead of building a slice, so it does not
// allocate.
func (r *Router) pick(t *topology, rt *route, exclude *node, minLSN LSN) *node {
	writer, cands := t.writer.Load(), rt.nodes
	switch rt.policy.strategy {
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
	return r.nth(t, cands, writer, exclude, minLSN, "", rt.policy.strategy == strategyRandom)
}

// nth picks the k-th eligible candidate in zone ("" for any), k chosen
// round-robin or at random. The pass that counts them keeps the first
// few on the stack, where the k-th usually is: a second pass looks for it
// only beyond them.
func (r *Router) nth(t *topology, cands []*node, writer, exclude *node, minLSN LSN, zone string, random bool) *node {
	var found [8]*node
	count := 0
	for _, n := range cands {
		if eligible(n, writer, exclude, minLSN) && (zone == "" || n.decl.Zone == zone) {
			if count < len(found) {
				found[count] = n
			}
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
	if k < len(found) {
		return found[k]
	}
	return nthBeyond(cands, writer, exclude, minLSN, zone, k)
}

// nthBeyond is nth's second pass, for a k-th candidate past the first
// few it kept: out of line, as few reads have so many replicas.
//
//go:noinline
func nthBeyond(cands []*node, writer, exclude *node, minLSN LSN, zone string, k int) *node {
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

// readYourWrites picks a replica that has replayed lsn: one the monitor
// already saw there, else one it asks directly (waiting up to
// wait_timeout), else the primary. There is no time window: a session stops
// sticking to the primary the moment a replica has caught up.
func (r *Router) readYourWrites(ctx context.Context, t *topology, rt *route, exclude *node, lsn LSN) (target, error) {
	routeName := rt.name
	if n := r.pick(t, rt, exclude, lsn); n != nil {
		return target{n: n, pool: t.readPoolOf(n), reason: ReasonCaughtUp, route: routeName}, nil
	}
	// wait_timeout 0s: the primary at once, without asking a replica.
	if n := r.pick(t, rt, exclude, 0); n != nil && t.wait > 0 {
		caughtUp, err := n.awaitReplay(ctx, lsn, time.Now().Add(t.wait))
		if err != nil && ctx.Err() != nil {
			return target{}, ctx.Err()
		}
		if errors.Is(err, ErrClosed) {
			return target{}, err
		}
		if caughtUp {
			return target{n: n, pool: t.readPoolOf(n), reason: ReasonCaughtUp, route: routeName}, nil
		}
		if pos, ok := r.primaryBehind(ctx, t, lsn); ok {
			if n := r.pick(t, rt, exclude, pos); n != nil {
				return target{n: n, pool: t.readPoolOf(n), reason: ReasonCaughtUp, route: routeName}, nil
			}
		}
	}
	return r.stickyTarget(t, exclude, routeName)
}

// primaryBehind asks the primary, after a read waited wait_timeout in
// vain for a replica to replay lsn (a session's), whether it is behind lsn
// itself: the write the session recorded is not on it (a failover lost it,
// or the session recorded it through a Router of another cluster), and no
// replica replays that far until the primary has written as much, so that
// the read would go to the primary. It returns the primary's position,
// which this read takes: a replica that has replayed that far is as fresh
// as the primary. The session keeps its own position: it may serve a
// Router of another cluster too, where its write is, and a lower position
// would let a read there miss it.
func (r *Router) primaryBehind(ctx context.Context, t *topology, lsn LSN) (LSN, bool) {
	w := t.writer.Load()
	if w == nil || lsn <= LSN(w.replayLSN.Load()) { // the primary had it at its last check
		return 0, false
	}
	pos, err := r.primaryPosition(ctx, t)
	if err != nil || recordEnd(lsn) <= pos.lsn {
		return 0, false
	}
	r.opts.logger.Debug("routerlib: a session's position is ahead of the primary's: the write it recorded is not on this primary (lost in a failover, or made on another cluster); the read goes to a replica at the primary's position",
		"node", w.name, "session", lsn.String(), "primary", pos.lsn.String())
	return pos.lsn, true
}

// stickyTarget sends a read-your-writes read to the primary: no replica
// has replayed the session's writes, or their position is unknown.
func (r *Router) stickyTarget(t *topology, exclude *node, routeName string) (target, error) {
	w := t.writer.Load()
	if w == nil {
		return target{}, r.noPrimary(t)
	}
	if w == exclude {
		return target{}, fmt.Errorf("routerlib: no replica has replayed the session's writes, and the primary %w", failedUnder(w))
	}
	return target{n: w, pool: w.writePool.Load(), reason: ReasonSticky, route: routeName}, nil
}

// settle records in s the primary's WAL position, read on a connection of
// its own, after Release could not read the position of work done through
// s (lost is s.unsettled()): any position read since on the same primary,
// once the backends of s's connections cut with a call in flight ended,
// is past that work's commit, when it committed. The session then sees
// the work in every read, and never again misses it: its reads are
// monotonic. With wait settle waits for those backends (up to
// cutAwaitLimit after each cut, and while ctx lasts); without, it fails
// with errCutRunning at once while one runs, and the read goes to the
// primary. The cuts of other sessions' writes, or of writes with no
// session, are not awaited (see cutBackends). Limits: the backends are
// looked up by process id, which names one only on a direct connection,
// not through PgBouncer (see cutBackends); and a connection that failed
// without the router closing it (a network partition) is noted only when
// its call returns, so the backend, unreachable by a cancel, may run on
// unseen. Cost: the insert position read may be past WAL that no one
// flushes yet (an open transaction's records in the last page on an idle
// primary: the WAL writer writes whole pages, or up to a commit), which no
// standby can replay until a commit flushes it (on an idle primary, the
// running-transactions record the background writer logs every 15 s); the
// session's reads go to the primary until then. A lower position (the
// flush or write position) would let the read miss work committed with
// synchronous_commit off.
func (r *Router) settle(ctx context.Context, t *topology, s *Session, lost uint64, wait bool) error {
	if err := r.awaitCut(ctx, t, s, wait); err != nil {
		return err
	}
	pos, err := r.primaryPosition(ctx, t)
	if err != nil {
		return err
	}
	s.settle(pos.lsn, lost)
	return nil
}

// errCutRunning is settle's failure, without wait, while a backend of a
// connection cut with a call in flight still runs.
var errCutRunning = errors.New("routerlib: a backend whose connection was cut mid-call still runs on the primary")

// cutPollPeriod is how often awaitCut asks the primary again.
const cutPollPeriod = 10 * time.Millisecond

// awaitCut waits, with wait, until the primary's backends of its write
// pool's connections cut with a call of s in flight (cutBackends) are gone
// from pg_stat_activity; without, it reports errCutRunning while one is
// there.
func (r *Router) awaitCut(ctx context.Context, t *topology, s *Session, wait bool) error {
	w := t.writer.Load()
	if w == nil {
		return nil // primaryPosition fails with its own error
	}
	for {
		since := time.Now()
		pids := w.cutBackends.pending(s)
		if pids == nil {
			return nil
		}
		running, err := runningBackends(ctx, w.writePool.Load(), pids)
		if err != nil {
			return fmt.Errorf("routerlib: asking primary %q whether the backends of connections cut mid-call ended: %w", w.name, err)
		}
		w.cutBackends.ended(pids, since, running)
		if len(running) == 0 {
			return nil
		}
		if !wait {
			return errCutRunning
		}
		tm := time.NewTimer(cutPollPeriod)
		select {
		case <-ctx.Done():
			tm.Stop()
			return fmt.Errorf("%w (process %d on %q): %w", errCutRunning, running[0], w.name, context.Cause(ctx))
		case <-tm.C:
		}
	}
}

// runningBackends returns the process ids of pids that the server of pool
// still runs. It only reads pg_stat_activity: a process id through
// PgBouncer is no backend's, and must never be signalled.
func runningBackends(ctx context.Context, pool *pgxpool.Pool, pids []uint32) ([]uint32, error) {
	if pool == nil {
		return nil, errors.New("no write pool")
	}
	asked := make([]int64, len(pids))
	for i, p := range pids {
		asked[i] = int64(p)
	}
	// Unprepared: through PgBouncer in transaction mode a server session
	// may hold another client's pgx statement of the same name (42P05).
	rows, err := pool.Query(ctx, "SELECT pid FROM pg_catalog.pg_stat_activity WHERE pid = ANY($1::int8[])", pgx.QueryExecModeSimpleProtocol, asked)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (uint32, error) {
		var pid int64
		err := row.Scan(&pid)
		return uint32(pid), err
	})
}

// failedUnder says that w's connection failed under the read being
// retried, with the failure when it is known.
func failedUnder(w *node) error {
	if e := w.lastErr.Load(); e != nil {
		return fmt.Errorf("%q failed under this read: %w", w.name, *e)
	}
	return fmt.Errorf("%q failed under this read", w.name)
}

// replayPollPeriod is how often the reads waiting on one replica ask it
// how far it has replayed.
const replayPollPeriod = 5 * time.Millisecond

// A replayPoll shares one replay-position query among all the reads that
// wait for a replica to replay their session's LSN: a hundred waiting
// reads cost one query per replayPollPeriod, not a hundred.
type replayPoll struct {
	mu    sync.Mutex
	round *replayRound // the query in flight; nil when none
	next  time.Time    // no query starts before then
}

// A replayRound is one replay-position query; err is set before done closes.
type replayRound struct {
	done chan struct{}
	err  error
}

// awaitReplay waits until s has replayed lsn, as far as the monitor or a
// shared query saw, and reports whether it has by deadline. The reads
// waiting on s take turns to send the query: one sends it while the others
// wait for its answer, and the next is sent replayPollPeriod after it at
// the earliest. A failed query ends the wait with its error, so that the
// read goes to the primary; a query that ended because the context or the
// deadline of the read sending it did is sent again by another. No wait,
// the sender's query included, lasts past deadline.
func (s *server) awaitReplay(ctx context.Context, lsn LSN, deadline time.Time) (bool, error) {
	p := &s.replay
	for {
		if LSN(s.replayLSN.Load()) >= lsn {
			return true, nil
		}
		now := time.Now()
		if !now.Before(deadline) {
			return false, nil
		}
		p.mu.Lock()
		rd := p.round
		if rd == nil && now.Before(p.next) {
			wait := p.next.Sub(now)
			p.mu.Unlock()
			if err := sleepUntil(ctx, min(wait, deadline.Sub(now))); err != nil {
				return false, err
			}
			continue
		}
		if rd != nil {
			p.mu.Unlock()
			timer := time.NewTimer(deadline.Sub(now))
			select {
			case <-rd.done:
				timer.Stop()
			case <-timer.C:
				return false, nil
			case <-ctx.Done():
				timer.Stop()
				return false, ctx.Err()
			}
			if rd.err != nil && !errors.Is(rd.err, context.Canceled) && !errors.Is(rd.err, context.DeadlineExceeded) {
				return false, rd.err
			}
			continue
		}
		rd = &replayRound{done: make(chan struct{})}
		p.round, p.next = rd, now.Add(replayPollPeriod)
		p.mu.Unlock()
		// The query ends at the wait's deadline too: a replica that does
		// not answer must not hold the read past wait_timeout.
		qctx, cancel := context.WithDeadline(ctx, deadline)
		rd.err = s.queryReplay(qctx)
		cancel()
		if rd.err != nil && s.conns.isClosed() {
			// Close cut the query off, or ended its wait for a
			// connection: the read goes nowhere else.
			rd.err = s.conns.closedWhile("the read waited for the session's writes to be replayed on")
		}
		p.mu.Lock()
		p.round = nil
		p.mu.Unlock()
		close(rd.done)
		if rd.err != nil {
			return false, rd.err
		}
	}
}

// sleepUntil waits for d or until ctx ends.
func sleepUntil(ctx context.Context, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}

// replayQuery reads how far a standby has replayed, on a read pool's
// connection: the function is named with its schema, as in lsnQuery.
const replayQuery = "SELECT (coalesce(pg_catalog.pg_last_wal_replay_lsn(), '0/0') - '0/0'::pg_lsn)::int8"

// queryReplay asks s how far it has replayed and raises what the monitor
// last saw, for every read that waits on s.
func (s *server) queryReplay(ctx context.Context) error {
	pool := s.readPool.Load()
	if pool == nil {
		pool = s.writePool.Load()
	} else {
		defer s.kept.direct()()
	}
	var v int64
	if err := pool.QueryRow(ctx, replayQuery).Scan(&v); err != nil {
		return err
	}
	raise(&s.replayLSN, uint64(v))
	return nil
}
