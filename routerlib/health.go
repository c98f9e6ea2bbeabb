package routerlib

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// checkQuery asks a node everything one health check needs in one round
// trip: whether it is a standby, how far it has replayed (or, on a primary,
// written), the seconds since the last replayed transaction, out of
// recovery the timeline it writes on, and in recovery the latest timeline
// its WAL shows (see standbyTimeline), and, for a user allowed pg_ls_waldir,
// what standbyWAL adds.
//
// The timeline is the first 8 hex digits of the current WAL file's name:
// a promoted standby writes on its new timeline from the moment it leaves
// recovery. pg_control_checkpoint()'s timeline_id would not do: it changes
// only with the next checkpoint, which PostgreSQL 15 to 18 spread over
// minutes after a promotion, so a promoted node and the old primary read
// the same timeline until then (and it is for superusers only).
//
// The server's clock (clock_timestamp) comes with the replay age, which
// is the standby's clock minus a commit time the primary's clock gave: the
// clocks' offsets, each measured against the router's at its check
// (clockOffset), are taken off in lag, so a standby whose clock runs
// behind the primary's does not look caught up.
// pg_walfile_name fails during recovery, hence the CASE (both functions
// are volatile: never folded at plan time).
const checkQuery = checkColumns + standbyTimeline + ` ELSE 0 END, 0::int8, 0::int8, 0::int8`

// checkColumns is checkQuery up to the standby's timeline.
const checkColumns = `SELECT pg_is_in_recovery(),
	(CASE WHEN pg_is_in_recovery() THEN coalesce(pg_last_wal_replay_lsn(), '0/0') ELSE pg_current_wal_lsn() END - '0/0'::pg_lsn)::int8,
	extract(epoch FROM clock_timestamp() - pg_last_xact_replay_timestamp())::float8,
	extract(epoch FROM clock_timestamp())::float8,
	CASE WHEN pg_is_in_recovery() THEN '' ELSE pg_walfile_name(pg_current_wal_lsn()) END,
	CASE WHEN pg_is_in_recovery() THEN `

// standbyTimeline is the latest timeline a standby's WAL shows: the one
// its WAL receiver receives on (pg_stat_wal_receiver shows it to
// superusers and pg_read_all_stats, NULL to others; there is no row while
// the receiver is not connected), and the newest timeline history file in
// its pg_wal, which it keeps for every promotion it followed, whether it
// streamed the new timeline or restored it from the archive, and which
// stays when the promoted node goes away. pg_ls_waldir is for superusers
// and pg_monitor, and a query that calls a function the user may not run
// fails as a whole even where the CASE would not call it, so the
// monitor's connection asks once whether it may (checkHistoryQuery) and
// sends checkQueryHistory if so. Each is a lower bound of the timeline the
// standby is on, so the veto it feeds (writerByTimeline) never rests on a
// timeline that does not exist.
const standbyTimeline = `coalesce((SELECT received_tli FROM pg_stat_wal_receiver), 0)::int8`

// checkQueryHistory is checkQuery for a user allowed pg_ls_waldir.
const checkQueryHistory = checkColumns + `greatest(` + standbyTimeline + `,
		(SELECT coalesce(max(('x' || left(name, 8))::bit(32)::int8), 0) FROM pg_ls_waldir() WHERE name ~ '^[0-9A-F]{8}\.history$')) ELSE 0 END,` + standbyWAL

// standbyWAL is what shows whether a standby that knows the primary's
// timeline (its history file is in pg_wal) follows it: the latest timeline
// of the WAL segment files in its pg_wal, and the timeline its WAL
// receiver receives with the end of WAL its upstream last reported
// (latest_end_lsn: on a timeline the upstream left, where that timeline
// ends, the point where the next one forked). A standby that follows a
// promotion receives WAL of the new timeline right after the fork point,
// into a segment file named with that timeline, and a restartpoint never
// removes the segment it replays or receives. One that replayed its own
// timeline past the fork (an old primary restarted as a standby without
// pg_rewind) fetches the history file but never receives any, whatever
// it is told. Both views are read in recovery only: on a primary they
// show no standby state.
const standbyWAL = `
	CASE WHEN pg_is_in_recovery() THEN (SELECT coalesce(max(('x' || left(name, 8))::bit(32)::int8), 0) FROM pg_ls_waldir() WHERE name ~ '^[0-9A-F]{24}$') ELSE 0 END,
	coalesce((SELECT received_tli FROM pg_stat_wal_receiver), 0)::int8,
	coalesce((SELECT (latest_end_lsn - '0/0'::pg_lsn)::int8 FROM pg_stat_wal_receiver), 0)`

// checkHistoryQuery asks, once per monitor connection, whether the
// monitor's user may list pg_wal, when the server started (the incarnation
// of the cluster at the node's address: see checkResult.started), and the
// cluster's system identifier (see checkResult.cluster), which
// pg_control_system() shows to every user, in recovery too. The start time
// is read as microseconds since 1970, a number: the monitor's connection
// has the pool's exec mode, whose results may be text, and pgx parses a
// timestamptz's text only in DateStyle ISO, which a server may not have
// (datestyle = 'SQL, DMY' in its postgresql.conf made every node
// unreachable: TestServerDateStyleWithTextResults).
const checkHistoryQuery = `SELECT has_function_privilege('pg_catalog.pg_ls_waldir()', 'EXECUTE'),
	(extract(epoch FROM pg_postmaster_start_time()) * 1000000)::int8,
	(SELECT system_identifier FROM pg_catalog.pg_control_system())`

type checkResult struct {
	err       error
	recovery  bool
	lsn       uint64 // replay LSN on a standby, current LSN on a primary
	replayAge time.Duration
	// replayed says the standby replayed a transaction since it started
	// (pg_last_xact_replay_timestamp is not NULL): replayAge is 0 if not.
	replayed bool
	// clockOffset is the server's clock minus the router's, at the middle
	// of the check's round trip: off by half of took at most. The router's
	// clock is clockRef moved on by Go's monotonic clock, so a step of the
	// wall clock (NTP, an operator) between two nodes' checks is no lag.
	clockOffset time.Duration
	timeline    uint32 // out of recovery: the timeline written on; 0 if unreadable
	// seenTimeline, in recovery, is the latest timeline the standby's WAL
	// shows (see standbyTimeline); 0 if it shows none to the user.
	seenTimeline uint32
	// history says that seenTimeline includes the timeline history files
	// of the standby's pg_wal (checkQueryHistory), so that a standby
	// showing no timeline as late as the primary's has not followed it.
	history bool
	// walTimeline, in recovery and with history, is the latest timeline
	// of the WAL segment files in the standby's pg_wal; receivedTLI and
	// receiverEnd are the timeline its WAL receiver receives and the end
	// of WAL its upstream reported, 0 without a receiver (see standbyWAL).
	walTimeline uint32
	receivedTLI uint32
	receiverEnd uint64
	at          time.Time     // when the check began; zero for a deadline's failure
	took        time.Duration // how long the check query took to answer
	// started is when the server's postmaster started (Unix nanoseconds),
	// read once per monitor connection, which a restart ends. A WAL
	// position can go back only across a restart (a cluster re-initialised
	// or restored from a backup at the same address, on timeline 1 again),
	// so a position read on the server belongs to this value: see
	// SessionMiddleware.atPrimary.
	started int64
	// cluster is the system identifier of the cluster the node belongs
	// to: initdb draws it, and every standby cloned from the cluster, and
	// every node promoted from one, keeps it. Read once per monitor
	// connection, as started; 0 if unread. See clusterOf.
	cluster int64
}

// clockRef is the router's clock the servers' clocks are measured
// against (checkResult.clockOffset): the wall clock when the package was
// loaded, moved on by the monotonic clock, which no wall-clock step moves.
var clockRef = time.Now()

// errNotChecked is a server's last check result until its first check ends.
var errNotChecked = errors.New("not checked yet")

// check runs one health check on s over the monitor's own connection, so a
// pool exhausted by the application cannot make a healthy node look down.
// Setting up that connection is bounded by connect_timeout (in connConfig),
// the check's query by timeout: a new connection costs the server a
// process and an authentication, which on a busy machine take longer than
// the query.
func (s *server) check(ctx context.Context, timeout time.Duration) checkResult {
	s.hcMu.Lock()
	defer s.hcMu.Unlock()
	if s.closed {
		return checkResult{err: ErrClosed}
	}
	at := time.Now() // before checkAnew is read: see recheck
	if s.dialFailed.Load() && s.recovery.Load() {
		// A pool of this standby could not connect: only a new session
		// says whether the node takes them, and until one does it stays
		// out of rotation. (The writer keeps its session: writes on the
		// sessions it has still commit, and no other node can take them.)
		s.closeHealthConn()
	}
	var kept *monitorSession
	if s.checkAnew.Swap(false) && s.hc != nil {
		// A query saw the server end a session (57P01): a server
		// shutting down refuses new sessions (57P03) from then on, but
		// ends the ones it has one by one, and the monitor's, not ended
		// yet, would answer as if nothing were happening. A check in
		// flight, begun before, left this to the next. So a new session
		// checks; the monitor's is kept until it is set up (below).
		kept = s.detachHealthConn()
	}
	reused := s.hc != nil && !s.hc.IsClosed()
	res := s.checkOn(ctx, timeout)
	if kept != nil {
		if res.err != nil && serverFull(res.err) && !kept.conn.IsClosed() {
			// The server refused the new session for want of room (the
			// role's or its CONNECTION LIMIT, max_connections: sessions
			// shed by an operator, places taken by retrying clients): it
			// answers, and is not shutting down, which refuses with
			// 57P03. The monitor's session checks it, as before.
			s.hc, s.hcQuery, s.hcStarted, s.hcCluster = kept.conn, kept.query, kept.started, kept.cluster
			reused = true
			res = s.checkOn(ctx, timeout)
		} else {
			kept.close()
		}
	}
	// The monitor's session failed, not its deadline: the server may have
	// ended that one session alone (pg_terminate_backend, an idle
	// timeout), so a new one says whether the node is down. So may it the
	// new one, when sessions are being terminated in bulk: a server that
	// shuts down refuses new sessions (57P03) rather than ending them
	// (57P01), so a few more tries are safe; and a new session that sat
	// idle past idle_session_timeout before its first query (57P05: a busy
	// machine, a short timeout) says nothing of the node either. A node
	// that hangs is not asked twice.
	for tries := 1; res.err != nil && ctx.Err() == nil && !timedOut(res.err) && tries <= maxCheckRetries &&
		(tries == 1 && reused || sessionTerminated(res.err) || idleSessionEnded(res.err)); tries++ {
		res = s.checkOn(ctx, timeout)
	}
	res.at = at
	return res
}

// maxCheckRetries bounds the new sessions one check tries after its
// session was ended.
const maxCheckRetries = 3

// timedOut reports whether err is a deadline: the context's or a socket's.
func timedOut(err error) bool {
	var netErr net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &netErr) && netErr.Timeout()
}

// notDown reports whether err, a check's failure, leaves open that the
// node is up: the check timed out (a slow answer: a busy machine, the
// client's or the server's), or the server ended each session the check
// opened (57P01: pg_terminate_backend run by an operator's script; a
// server shutting down refuses new sessions instead). Such a failure
// counts toward eject_after, but does not take the node out at once after
// a query saw a session end (see server.recheck), and none counts while
// the node answers calls on the pools' sessions in time (see watchNode).
func notDown(err error) bool {
	return timedOut(err) || sessionTerminated(err)
}

// checkOn runs checkQuery on the monitor's connection, connecting first
// when there is none; the caller holds hcMu.
func (s *server) checkOn(ctx context.Context, timeout time.Duration) checkResult {
	if s.hc == nil || s.hc.IsClosed() {
		cctx, cancel := context.WithTimeout(ctx, s.connConfig.ConnectTimeout)
		defer cancel()
		cc := s.connConfig
		pool := &s.baseCfg.ConnConfig.Config
		poolPassword := pool.Password
		if s.beforeConnect != nil {
			cc = s.connConfig.Copy() // the hook sets the password on it, as on a pool's
			if err := s.beforeConnect(cctx, cc); err != nil {
				return checkResult{err: err}
			}
			poolPassword = cc.Password
			if s.monitor != nil {
				s.monitor(cc)
			}
		}
		c, err := pgx.ConnectConfig(cctx, cc)
		if err != nil {
			if s.monitor != nil && monitorRefused(err, cc, pool, poolPassword) {
				// The settings refused are the ones WithMonitorConfig set.
				err = &monitorRefusedError{user: cc.User, database: cc.Database, err: err}
			}
			return checkResult{err: err}
		}
		s.hc, s.hcQuery = c, ""
		s.dialFailed.Store(false)
	}
	if s.hcQuery == "" {
		// Once per session, part of setting it up: bounded as the
		// connection is, by connect_timeout. A new session's first
		// query pays for what connecting left undone (its catalog
		// caches), slower on a busy machine than a check's.
		var history bool
		var started, cluster int64
		sctx, cancel := context.WithTimeout(ctx, s.connConfig.ConnectTimeout)
		err := s.hc.QueryRow(sctx, checkHistoryQuery).Scan(&history, &started, &cluster)
		cancel()
		if err != nil {
			s.closeHealthConn()
			return checkResult{err: err}
		}
		s.hcStarted, s.hcCluster = started*int64(time.Microsecond), cluster
		s.hcQuery = checkQuery
		if history {
			s.hcQuery = checkQueryHistory
		}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var r checkResult
	var lsn, seen, walTLI, receivedTLI, receiverEnd int64
	var age *float64
	var clock float64
	var walfile string
	asked := time.Now()
	if err := s.hc.QueryRow(ctx, s.hcQuery).Scan(&r.recovery, &lsn, &age, &clock, &walfile, &seen, &walTLI, &receivedTLI, &receiverEnd); err != nil {
		s.closeHealthConn()
		return checkResult{err: err}
	}
	r.took = time.Since(asked)
	mid := asked.Add(r.took / 2)
	r.clockOffset = time.Duration(clock*float64(time.Second)) - time.Duration(clockRef.UnixNano()) - mid.Sub(clockRef)
	r.seenTimeline = uint32(seen)
	r.walTimeline, r.receivedTLI, r.receiverEnd = uint32(walTLI), uint32(receivedTLI), uint64(receiverEnd)
	r.started, r.cluster = s.hcStarted, s.hcCluster
	r.history = s.hcQuery == checkQueryHistory
	if len(walfile) >= 8 {
		if tli, err := strconv.ParseUint(walfile[:8], 16, 32); err == nil {
			r.timeline = uint32(tli)
		}
	}
	r.lsn = uint64(lsn)
	if age != nil {
		r.replayed, r.replayAge = true, time.Duration(*age*float64(time.Second))
	}
	return r
}

// monitorSession is the monitor's connection and what was learnt on it,
// set aside while a new one is set up (see check).
type monitorSession struct {
	conn             *pgx.Conn
	query            string
	started, cluster int64
}

// detachHealthConn sets the monitor's connection aside; the caller holds
// hcMu and s.hc is not nil.
func (s *server) detachHealthConn() *monitorSession {
	m := &monitorSession{conn: s.hc, query: s.hcQuery, started: s.hcStarted, cluster: s.hcCluster}
	s.hc, s.hcQuery = nil, ""
	return m
}

func (m *monitorSession) close() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	m.conn.Close(ctx)
	cancel()
}

// serverFull reports whether err is the server's refusal of a session for
// want of room (SQLSTATE class 53: too many connections, out of memory):
// a server that answers.
func serverFull(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && strings.HasPrefix(pgErr.Code, "53")
}

// closeHealthConn closes the monitor's connection; the caller holds hcMu.
func (s *server) closeHealthConn() {
	if s.hc != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		s.hc.Close(ctx)
		cancel()
		s.hc = nil
	}
}

// startCheck starts a check of n that goes on in the background as the
// monitor's check in flight (n.watch.running), its answer sent on
// n.watch.results: bounded as the monitor bounds a check in flight
// (eject_after × interval + timeout), and cut when the server or the
// Router closes. The caller owns n.watch (checkNew before any watcher
// runs, or n's watcher).
func (r *Router) startCheck(t *topology, n *node) {
	w := &n.watch
	w.running = true
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		cctx, cancel := context.WithCancel(n.life)
		defer cancel()
		defer context.AfterFunc(r.background, cancel)()
		w.results <- n.check(cctx, time.Duration(t.eject)*t.interval+t.timeout)
	}()
}

// checkAll checks every node of t at once and applies the results, for New:
// no monitor runs yet.
func (r *Router) checkAll(ctx context.Context, t *topology) {
	results, fresh := r.checkNew(ctx, t, nil)
	if ctx.Err() != nil {
		return // closing: do not eject everything because checks were cancelled
	}
	r.applyAll(t, results, fresh)
}

// checkNew checks at once each node of t whose server prev (the topology in
// force, nil in New) does not have, and returns when every check has ended,
// or when ctx ends, or at the latest 2 × connect_timeout + timeout after it
// began: what a first check may take to connect, set up its session and
// answer. fresh[i] says whether results[i] is such a check. A check still
// running then goes on, as the monitor's check in flight on that server
// (see watchNode): a first answer that comes late, on a busy machine, is
// used when it comes, and until then the node is not checked, rather than
// counted as failed; a node that hangs fails the monitor's deadlines. A
// server prev has is not checked again: the monitor checks it on its own
// schedule, and waiting here for a node that hangs would hold the reload
// up as long as its check. The checks end when the Router or the server
// closes (the reload that made it gave up, or New failed).
func (r *Router) checkNew(ctx context.Context, t, prev *topology) (results []checkResult, fresh []bool) {
	results, fresh = make([]checkResult, len(t.nodes)), make([]bool, len(t.nodes))
	started := time.Now()
	checked := make([]int, 0, len(t.nodes))
	for i, n := range t.nodes {
		if prev.nodeOn(n.server) != nil {
			continue
		}
		checked = append(checked, i)
		// The monitor's schedule goes on from this check, not from when
		// its watcher first runs (later on a busy machine): the next
		// check starts an interval after this one, as the bound of an
		// ejection counts (see watchNode). No watcher has run on a
		// server prev does not have.
		n.watch.next = started.Add(t.interval)
		n.watch.results = make(chan checkResult, 1)
		r.startCheck(t, n)
	}
	wait := time.NewTimer(2*t.connect + t.timeout)
	defer wait.Stop()
	waiting := true
	for _, i := range checked {
		n := t.nodes[i]
		w := &n.watch
		if waiting {
			select {
			case results[i] = <-w.results:
				w.running, fresh[i] = false, true
				continue
			case <-wait.C:
			case <-ctx.Done():
			}
			waiting = false
		}
		select {
		case results[i] = <-w.results:
			w.running, fresh[i] = false, true
		default: // the monitor's now
			results[i] = n.last
		}
	}
	return results, fresh
}

// keepNewer replaces a fresh check of a node whose server a reload
// replaced (other settings, same address: see newNode) with the last check
// of the server it replaces that answered, when the fresh one answered too
// and began earlier. Both asked the same node: the monitor's check, on its
// schedule while the reload waited for another node, may have seen what
// the reload's did not (a promotion), and applying the older answer would
// undo it, such as moving the writes back to an old primary. A check of
// the old server that failed since (a slow answer on a busy machine) does
// not make the older answer true again. The caller holds r.checkMu.
func keepNewer(t, prev *topology, results []checkResult, fresh []bool) {
	for i, n := range t.nodes {
		p := prev.byName[n.name]
		if !fresh[i] || p == nil || p.server == n.server || !p.sameAddress(n.decl) {
			continue
		}
		if results[i].err == nil && p.lastGood.at.After(results[i].at) {
			results[i] = p.lastGood
		}
	}
}

// applyAll applies to t the checks checkNew returned: the fresh ones as
// checks, and for the other nodes their server's last check, so that what
// the new topology changed (lag limits, nodes) takes effect at once: the
// writer, each node's lag, and read rotation. The caller holds r.checkMu,
// or is New.
func (r *Router) applyAll(t *topology, results []checkResult, fresh []bool) {
	for i, n := range t.nodes {
		if fresh[i] {
			r.record(t, n, results[i], 1)
		} else {
			results[i] = n.last
		}
	}
	r.chooseWriter(t, results)
	now := time.Now()
	for i, n := range t.nodes {
		if fresh[i] || !errors.Is(n.last.err, errNotChecked) {
			r.rotate(t, n, now, !fresh[i])
		}
	}
}

// applyCheck applies one check of n, which ran on n's own schedule: its
// health, the writer, and n's read rotation. A failed check counts as fails
// failed checks (0 when they were counted already, at their deadlines).
func (r *Router) applyCheck(t *topology, n *node, res checkResult, fails int) {
	r.checkMu.Lock()
	defer r.checkMu.Unlock()
	if t.retired.Load() {
		// A reload took over the servers: the check counts for the
		// topology in force, if n's server is still in it.
		t = r.cur.Load()
		if n = t.nodeOn(n.server); n == nil || t.retired.Load() {
			return
		}
	}
	r.record(t, n, res, fails)
	results := make([]checkResult, len(t.nodes))
	for i, m := range t.nodes {
		results[i] = m.last
	}
	r.chooseWriter(t, results)
	r.rotate(t, n, time.Now(), false)
}

// record stores a check's result on n. A node that failed eject_after
// checks in a row is cut off: every connection still open to it is closed,
// so the calls blocked on a node that hangs fail now (reads then run
// elsewhere) instead of waiting for it. The caller holds r.checkMu.
func (r *Router) record(t *topology, n *node, res checkResult, fails int) {
	n.last = res
	if res.err == nil {
		n.seeRestart(t, res)
		n.lastGood = res
		n.checkedAt.Store(time.Now().UnixNano())
		n.reachable.Store(true)
		n.recovery.Store(res.recovery)
		n.replayLSN.Store(res.lsn)
		n.timeline.Store(res.timeline) // 0 in recovery
		n.started.Store(res.started)
		n.fails = 0
		if res.recovery || !lostWrites(t, n) {
			// An old primary's pools stay cut off (see cutOldPrimaries).
			n.conns.up()
		}
		if n.down {
			n.down = false
			r.opts.logger.Warn("routerlib: node answers again", "node", n.name)
		}
		return
	}
	err := res.err
	n.lastErr.Store(&err)
	n.reachable.Store(false)
	if !n.down {
		// Once per change of state, with its cause: a node that keeps
		// failing is not logged at every check.
		n.down = true
		r.opts.logger.Warn("routerlib: node does not answer", "node", n.name, "err", err)
	}
	if fails > 0 {
		n.fails += fails
		n.goods = 0
	}
	if n.fails >= t.eject {
		n.cut(res.err)
	}
}

// rotate puts n in read rotation or takes it out, from its last check.
// again says that check was applied already (a reload applies it to the
// new topology's settings): it is not counted as one more good check. The
// caller holds r.checkMu.
func (r *Router) rotate(t *topology, n *node, now time.Time, again bool) {
	res := n.last
	var primaryLSN uint64
	var primaryTLI uint32
	var primary checkResult
	if writer := t.writer.Load(); writer != nil {
		primaryLSN, primaryTLI = writer.replayLSN.Load(), writer.timeline.Load()
		primary = writer.lastGood
	}
	connFailed := n.connFailed.Load() != 0
	if !again {
		if connFailed {
			// A query saw the node fail (markDown): the good checks
			// before do not count toward readmit_after.
			n.goods = 0
		}
		n.seenFailures(res) // what a query saw after res began stays
	}
	if res.err == nil && res.recovery && !res.history && !n.blind {
		// Once per server: without pg_ls_waldir the standby's timelines
		// cannot be seen, so the two timeline reasons below never apply.
		n.blind = true
		r.opts.logger.Warn("routerlib: the router's user may not list this standby's pg_wal, so a standby that did not follow a promotion, or diverged from the primary, keeps serving reads",
			"node", n.name, "fix", "GRANT pg_monitor TO "+pgx.Identifier{n.decl.User}.Sanitize())
	}
	reason := EjectNone
	switch {
	case otherCluster(res, t.cluster), res.err == nil && !res.recovery && n.cloneTLI != 0:
		reason = EjectOtherCluster
		n.lagBytes.Store(0)
		n.lagNanos.Store(0)
	case res.err != nil:
		// A check that timed out, or whose own sessions the server
		// ended too, is one failure toward eject_after even after a
		// query saw the server end a session (recheck): a server
		// shutting down refuses at once (57P03, or no listener), while
		// a slow answer on a busy machine, or an operator's script
		// ending sessions, is no shutdown (see notDown). After a connection
		// failure a query saw (markDown) the node is out already.
		// A replica with max_lag whose last check answered longer
		// ago than an interval and the lag it may have is out at
		// once: its lag is unknown (see watchNode).
		lagUnknown := n.maxLag > 0 && n.checkedAt.Load() != 0 && now.Sub(time.Unix(0, n.checkedAt.Load())) > n.maxLag+t.interval
		if n.inRotation() && n.fails < t.eject && !lagUnknown && (!connFailed || notDown(res.err)) {
			return // one failed check is not yet an ejection
		}
		reason = EjectUnreachable
		n.caughtUp = false // what it replays meanwhile is unknown: see lag
	case !res.recovery:
		reason = EjectNotInRecovery
		n.lagBytes.Store(0)
		n.lagNanos.Store(0)
	case onOldTimeline(res, primaryTLI):
		n.seeFork(res, primaryTLI)
		reason = notFollowing(res, primaryTLI, n.fork)
		n.lagBytes.Store(0)
		n.lagNanos.Store(0)
	default:
		lagBytes, lag := n.lag(res, primaryLSN, primary, now)
		n.lagBytes.Store(lagBytes)
		n.lagNanos.Store(int64(lag))
		switch {
		case n.decl.MaxLagBytes > 0 && lagBytes > n.decl.MaxLagBytes:
			reason = EjectLagBytes
		case n.maxLag > 0 && lag > n.maxLag:
			reason = EjectLagTime
		}
	}
	if reason != EjectNone {
		n.goods = 0
		if reason == EjectOtherCluster && EjectReason(n.ejected.Load()) != EjectOtherCluster {
			if otherCluster(res, t.cluster) {
				r.opts.logger.Error("routerlib: node of another cluster in the router file", "node", n.name, "why", otherClusterWhy(n, res, t.cluster))
			} else {
				// chooseWriter has just said why from this round's checks.
				var why string
				if sb := n.splitBrain.Load(); sb != nil {
					why = *sb
				}
				r.opts.logger.Error("routerlib: a copy of the cluster runs as a primary of its own at a replica's address", "node", n.name, "why", why)
			}
		}
		if reason == EjectDiverged && EjectReason(n.ejected.Load()) != EjectDiverged {
			// With what it shows and what to do: a standby that
			// diverged was usually out already (an old primary, down,
			// restarted), and its rotation record says only the reason.
			r.opts.logger.Error("routerlib: standby diverged from the primary; it serves no reads until it is rewound (pg_rewind) or cloned again from the primary",
				"node", n.name, "why", divergedWhy(res, primaryTLI))
		}
		n.setEjected(reason, res.err)
		return
	}
	switch {
	case again:
	case res.took > t.timeout:
		// A late answer says where the node is (its role and position
		// count), but not that it answers in time: a node that answers
		// every check late (a network whose latency spiked) is not
		// readmitted on each answer, to be ejected again at the next
		// deadline with reads waiting on it.
		n.goods = 0
	default:
		n.goods++
	}
	if n.inRotation() {
		return
	}
	// A node never admitted joins on its first good check (it was down
	// at Open); an ejected one needs readmit_after good checks.
	if !n.admitted || n.goods >= t.readmit {
		n.admitted = true
		n.setEjected(EjectNone, nil)
	} else {
		n.setEjected(EjectReadmitting, nil)
	}
}

// setEjected sets why n is out of read rotation (EjectNone puts it in) and
// logs each change of that reason, not only a node leaving or joining, so
// that an operator follows a replica from "lagging bytes" to "unreachable",
// "readmitting" and back in rotation. err, if any, is the failure that
// made it unreachable. The record comes before the change shows in Stat
// (and in what the query path chooses), so whoever sees the change there
// finds the record, when the logger's handler writes as it is called.
//
// A node never admitted to rotation (the primary, a replica down since it
// was first checked) has no rotation to leave: its changes between "not
// checked", "not in recovery" and "unreachable" are not logged here, as
// the records of its checks ("node does not answer") and of the writer
// say them. The caller holds Router.checkMu.
func (n *node) setEjected(reason EjectReason, err error) {
	if EjectReason(n.ejected.Load()) == reason {
		return // the common case: every check of a healthy node
	}
	n.rotationMu.Lock()
	defer n.rotationMu.Unlock()
	was := EjectReason(n.ejected.Load())
	if was == reason {
		return
	}
	if n.admitted || !outOfService(was) || !outOfService(reason) {
		n.logRotation(was, reason, err)
	}
	n.ejected.Store(uint32(reason))
}

// outOfService reports whether reason says only that a node cannot serve
// reads as a replica yet: not checked, not a standby, or not answering.
func outOfService(reason EjectReason) bool {
	return reason == EjectNotChecked || reason == EjectNotInRecovery || reason == EjectUnreachable
}

// logRotation writes the record of n's reason for being out of read
// rotation changing from was to reason (EjectNone: in rotation); the
// caller holds rotationMu. Leaving rotation, or a worse reason, is a
// warning; joining it, or waiting for readmit_after good checks, is not.
func (n *node) logRotation(was, reason EjectReason, err error) {
	if reason == EjectNone {
		n.logger.Info("routerlib: replica in rotation", "node", n.name, "was", rotationName(was))
		return
	}
	level := slog.LevelWarn
	if reason == EjectReadmitting {
		level = slog.LevelInfo
	}
	attrs := []any{"node", n.name, "reason", reason.String(), "was", rotationName(was),
		"lag_bytes", n.lagBytes.Load(), "lag", time.Duration(n.lagNanos.Load())}
	if err != nil {
		attrs = append(attrs, "err", err)
	}
	n.logger.Log(context.Background(), level, "routerlib: replica out of rotation", attrs...)
}

// rotationName is reason as a log record's "was" says it.
func rotationName(reason EjectReason) string {
	if reason == EjectNone {
		return "in rotation"
	}
	return reason.String()
}

// onOldTimeline reports whether the standby that answered res replays a
// timeline older than tli, the primary's. A standby that followed the
// promotion which started the primary's timeline has its history file
// (its WAL receiver fetches it before streaming) and WAL of that timeline
// (see standbyWAL), and one on timeline 1 has nothing to follow. This one
// replays an older timeline: perhaps past the point where the primary's
// forked, with writes the primary lost, and a replay position that cannot
// be compared with the primary's (notFollowing says which).
func onOldTimeline(res checkResult, tli uint32) bool {
	return res.recovery && res.history && tli > 1 && (res.seenTimeline < tli || res.walTimeline < tli)
}

// notFollowing says why a standby with no WAL of the primary's timeline
// primaryTLI (see standbyWAL) is out of rotation. Without the timeline's
// history file it was not pointed at the promoted node (EjectOldTimeline).
// With it, a standby that has replayed no further than the end of WAL its
// upstream reported is catching up to the fork, or has just reached it and
// asked for the new timeline, whose first WAL it is about to receive
// (EjectOldTimeline too).
// Otherwise it cannot follow the primary (EjectDiverged): it replayed its
// timeline past the fork, as its upstream's end of that timeline shows
// when it streamed it (the fork and its position in one segment), or its
// upstream refuses to stream from where it is and it has no receiver (and
// PostgreSQL logs that the new timeline forked off before its current
// recovery point).
//
// A standby whose WAL receiver stopped (its upstream went away, or it was
// pointed elsewhere) before it reached the fork shows no receiver either,
// but it is only old: what it replayed is the primary's history, and it
// follows the primary once it streams again. The fork its receiver showed
// at an earlier check (fork, see forkPoint) tells it apart: replayed no
// further than that on the same timeline, it is EjectOldTimeline.
func notFollowing(res checkResult, primaryTLI uint32, fork forkPoint) EjectReason {
	switch {
	case res.seenTimeline < primaryTLI:
		return EjectOldTimeline
	case res.receivedTLI != 0 && res.receiverEnd > 0 && res.lsn <= res.receiverEnd:
		return EjectOldTimeline
	case res.receivedTLI == 0 && fork.primaryTLI == primaryTLI && fork.tli == res.walTimeline && res.lsn <= fork.end:
		return EjectOldTimeline
	default:
		return EjectDiverged
	}
}

// divergedWhy says, for the log, how a standby shows it diverged.
func divergedWhy(res checkResult, primaryTLI uint32) string {
	if res.receivedTLI != 0 && res.receivedTLI < primaryTLI && res.receiverEnd > 0 {
		return fmt.Sprintf("it replayed timeline %d up to %s, past %s, where its upstream's timeline %d ends and the primary's history leaves it for timeline %d",
			res.receivedTLI, LSN(res.lsn), LSN(res.receiverEnd), res.receivedTLI, primaryTLI)
	}
	return fmt.Sprintf("it replayed up to %s and has the history file of the primary's timeline %d but no WAL of it, and its WAL receiver does not stream: "+
		"its upstream refuses to stream from where it is (PostgreSQL logs that the new timeline forked off before its current recovery point), "+
		"or it lost its upstream before it reached the fork, before the router saw where the fork is", LSN(res.lsn), primaryTLI)
}

// A forkPoint is where a standby's WAL receiver, at a check, showed the
// timeline it streams end (pg_stat_wal_receiver.latest_end_lsn on a
// timeline its upstream left): the fork of the primary's timeline, as far
// as the standby's WAL is concerned. notFollowing uses it once the
// receiver is gone.
type forkPoint struct {
	primaryTLI uint32 // the primary's timeline at that check
	tli        uint32 // the timeline that ends
	end        uint64 // where it ends
}

// seeFork records on n the fork its WAL receiver shows in res, if any:
// it streams a timeline older than the primary's, primaryTLI, and its
// upstream reported where that timeline ends. The caller holds
// Router.checkMu.
func (n *node) seeFork(res checkResult, primaryTLI uint32) {
	if res.err == nil && res.recovery && res.receivedTLI != 0 && res.receivedTLI < primaryTLI && res.receiverEnd > 0 {
		n.fork = forkPoint{primaryTLI: primaryTLI, tli: res.receivedTLI, end: res.receiverEnd}
	}
}

// lag returns how far n is behind the writer, in bytes and in time. An idle
// primary is not lag: a standby that has replayed everything the primary had
// written at its last check is 0 behind however old its last transaction.
// Otherwise the time is the age of the last replayed transaction, capped by
// how long the monitor has seen n behind, so the first write after an idle
// hour does not look like an hour of lag. The cap needs the monitor to have
// seen n caught up since it was last out of rotation as unreachable: a
// standby first seen behind (by a Router just started, or once it answers
// again) may have stopped replaying long before, and its last
// transaction's age is all that says how long. One failed check that does
// not eject it (a busy machine) keeps what was seen.
//
// That age is read on the standby's clock, and the transaction's commit
// time is the primary's: the primary's clock minus the standby's, as the
// router's last checks of each (primary) saw them, is added, so a standby
// whose clock runs a minute slow (a VM without NTP) is not a minute ahead
// of its lag. Each offset is uncertain by half its check's round trip: a
// skew within the two halves is taken for none (clocks NTP keeps within
// milliseconds read as they are), and a larger one is corrected to within
// them. A standby that replayed no transaction since it started has no
// age to correct. No clocks make a lag below 0.
func (n *node) lag(res checkResult, primaryLSN uint64, primary checkResult, now time.Time) (int64, time.Duration) {
	if primaryLSN == 0 || res.lsn >= primaryLSN {
		n.behindSince = time.Time{}
		n.caughtUp = n.caughtUp || primaryLSN != 0
		return 0, 0
	}
	if n.behindSince.IsZero() {
		n.behindSince = now
	}
	lag := res.replayAge
	if res.replayed {
		// Without a check of the primary (none has answered yet), the
		// router's clock stands for its.
		skew := primary.clockOffset - res.clockOffset
		if bound := (primary.took + res.took) / 2; skew > bound || skew < -bound {
			lag += skew
		}
	}
	lag = max(lag, 0)
	if since := now.Sub(n.behindSince); n.caughtUp && lag > since {
		lag = since
	}
	return int64(primaryLSN - res.lsn), lag
}

// chooseWriter decides which node takes writes from what the servers
// report; the role declared in the file plays no part. One node out of
// recovery takes them. Of several, the one on the latest timeline does,
// and only if no other node, reachable now or last seen out of recovery, is
// on a timeline as late: a standby's promotion starts a new timeline, so
// the others are old primaries that came back (nobody fenced them), and
// writing to them would fork the data. Equal or unreadable timelines leave
// no node taking writes (ErrNoPrimary naming the nodes) until an operator
// fences one. So does a reachable standby that shows a later timeline than
// the node's (vetoOf): a router that never saw the promoted node learns of
// its promotion from the standbys that followed it. One failed check keeps
// the writer (a blip should not stop all writes) unless a query already
// saw its connection fail (after a query saw the server end a session, as
// pg_terminate_backend does, only a refused check is such a failure: see
// server.recheck), it failed eject_after checks, or another node may take
// over.
func (r *Router) chooseWriter(t *topology, results []checkResult) {
	next, why, conflict := writerByTimeline(t, results)
	cur := t.writer.Load()
	if next == nil && cur != nil {
		i := slices.Index(t.nodes, cur)
		if results[i].err != nil && cur.fails < t.eject && !rivalOf(t, results, cur) &&
			(cur.connFailed.Load() == 0 || cur.queryFailed.Load() == 0 && notDown(results[i].err)) {
			next, why = cur, ""
		}
	}
	if next != nil && next != cur {
		// The writes move only when every node that answers has a role
		// known: the current writer keeps them (as through an
		// unreachable standby), but none takes them over a node that
		// may have been promoted.
		if u := unknownRole(t, next); u != nil {
			why = fmt.Sprintf("node %q is out of recovery, but node %q, last seen in recovery, answered calls after its health check stopped answering: it may have been promoted since, so %q does not take the writes. "+
				"Writes resume when a check of %q answers (its monitor connection was closed and is made anew at each interval) or it leaves the router file", next.name, u.name, next.name, u.name)
			next = nil
		}
	}
	for i, n := range t.nodes {
		if results[i].err != nil {
			continue // as last seen
		}
		var reason *string
		if c, ok := conflict[n]; ok && n != next {
			reason = &c
		}
		old := n.splitBrain.Swap(reason)
		if reason != nil && (old == nil || *old != *reason) {
			r.opts.logger.Error("routerlib: a node out of recovery takes no writes", "node", n.name, "reason", *reason)
		}
	}
	for i, j := range twinsOf(t, results) {
		n, was := t.nodes[i], t.nodes[i].twinOf
		switch {
		case j < 0:
			n.twinOf = ""
		case was != t.nodes[j].name:
			n.twinOf = t.nodes[j].name
			// Neither host nor port is shown, as in the file's own
			// same-server message: a host field may hold a password
			// typed there by mistake.
			r.opts.logger.Error("routerlib: the router file lists one server twice", "node", n.name, "same_as", n.twinOf,
				"why", fmt.Sprintf("nodes %q and %q reach one server (the same system identifier and postmaster start time) under two names: its host is written two ways (a host name and its address, or a DNS alias). Node %q is taken as a second name of %q: it is no primary, rival or old primary of its own. List each server once in the router file", n.twinOf, n.name, n.name, n.twinOf))
		}
	}
	if why == "" {
		t.noWriter.Store(nil)
	} else {
		t.noWriter.Store(&why)
	}
	if next != cur {
		r.moveWrites(t, cur, next)
	}
	r.cutOldPrimaries(t, results)
}

// moveWrites makes next (nil: none) the node taking writes in place of
// cur, and records that cur's server lost them, unless next reaches the
// same server. The caller holds r.checkMu.
func (r *Router) moveWrites(t *topology, cur, next *node) {
	if next != nil {
		if err := next.ensureWritePool(); err != nil {
			r.opts.logger.Error("routerlib: cannot create a pool for the new primary", "node", next.name, "err", err)
			next = nil
		}
	}
	if next != nil {
		holdOldTimelines(t, next)
	}
	t.writer.Store(next)
	switch {
	case next == nil && cur != nil:
		// Writes wait a while for a check that sees it back (see
		// Router.awaitWriter): a fast restart.
		r.writesLost.Store(time.Now().UnixNano())
	case next != nil:
		r.writesLost.Store(0)
	}
	if next != nil {
		// A node cut off when it lost the writes (cutOldPrimaries) takes
		// new connections again as soon as it has them back, not at its
		// next check: it answered this one.
		next.conns.up()
	}
	switch {
	case next == nil:
		r.opts.logger.Warn("routerlib: no primary is taking writes", "was", nameOf(cur))
	case cur != nil || next != t.declared:
		r.opts.logger.Warn("routerlib: writes go to a new primary", "node", next.name, "was", nameOf(cur), "timeline", next.timeline.Load())
	}
	if cur != nil && !oneServer(cur, next) {
		cur.conns.setLost(true)
	}
}

// oneServer reports whether n and m (either may be nil) reach one server:
// the same server, the same address, or two names of one server (twins,
// see twinsOf). The caller holds Router.checkMu.
func oneServer(n, m *node) bool {
	return n != nil && m != nil && (n.server == m.server || n.conns.addr == m.conns.addr || n.twinOf == m.name || m.twinOf == n.name)
}

// lostWrites reports whether n's server lost the writes and has neither
// taken them back nor answered in recovery since (see connRegistry.lost),
// under any of its names in t. The caller holds Router.checkMu.
func lostWrites(t *topology, n *node) bool {
	for _, m := range t.nodes {
		if oneServer(n, m) && m.conns.lost() {
			return true
		}
	}
	return false
}

// cutOldPrimaries closes the connections open to each server of t that
// lost the writes and answers out of recovery still while another node
// has them, or while none does (a split brain, a promotion nobody fenced
// it for): a connection held there, from [Router.Acquire],
// [Router.MigrationConn] or a transaction begun before, would go on
// writing to a server whose writes the promotion forks off, and lose them.
// Their next use fails instead, saying why, and a new Acquire or Begin
// reaches the node taking the writes; the node's pools open none until it
// takes the writes back or answers in recovery. It decides from state,
// at every check applied, not only when the writes move: a server whose
// check failed then (frozen, or restarted), and one that a reload renamed
// or gave new settings (its connections from before are in the
// nodeConns of the server replaced, at the same address), is cut at its
// first check that answers out of recovery. A node down has no session
// to cut, or none that answers; one back in recovery lost its sessions
// when it restarted. The caller holds r.checkMu.
func (r *Router) cutOldPrimaries(t *topology, results []checkResult) {
	w := t.writer.Load()
	if w == nil {
		r.opts.conns.setWriter(writerSeen{})
	} else {
		r.opts.conns.setWriter(writerSeen{name: w.name, addr: w.conns.addr, cluster: w.lastGood.cluster, started: w.lastGood.started})
	}
	for i, n := range t.nodes {
		switch {
		case oneServer(n, w):
			n.conns.setLost(false)
			continue
		case results[i].err != nil:
			continue // as last seen
		case results[i].recovery:
			n.conns.setLost(false)
			continue
		case !lostWrites(t, n):
			continue
		}
		var moved *writesMoved
		if errors.As(n.conns.cause(), &moved) {
			continue // cut already; its pools dial nothing since
		}
		now := fmt.Sprintf("writes go to %q now", nameOf(w))
		if w == nil {
			now = "no node takes writes"
			if why := t.noWriter.Load(); why != nil {
				now += ": " + *why
			}
		}
		n.cutOldPrimary(now)
	}
}

// cutOldPrimary closes the connections open to n, an old primary, and
// those of every server at its address (see cutOldPrimaries); now says
// where the writes go.
func (n *node) cutOldPrimary(now string) {
	cause := &writesMoved{fmt.Sprintf("%s; %q, out of recovery still, was cut off so that no write on a connection held there (Acquire, MigrationConn, a transaction begun before) reaches it; a new Acquire or Begin reaches the node taking the writes", now, n.name)}
	n.cut(cause)
	for _, o := range n.conns.others() {
		o.cut(cause)
	}
	n.logger.Warn("routerlib: the connections to an old primary were closed", "node", n.name, "why", cause.msg)
}

// holdOldTimelines takes out of read rotation, before next takes the
// writes, each replica whose last check shows it on a timeline older than
// next's (as rotate would at its next check), and asks for a check of it
// now. Until that check, up to an interval, it would serve reads of the
// old timeline: rows the promotion lost, and to a read-your-writes session
// whose write went to next, a replay position on the old timeline that
// looks past the write. One that follows next already comes back at that
// check (it was in rotation, healthy: no readmit_after wait); one that
// does not stays out as rotate keeps it. The caller holds r.checkMu.
func holdOldTimelines(t *topology, next *node) {
	for _, n := range t.nodes {
		if n == next || !n.inRotation() || !onOldTimeline(n.lastGood, next.timeline.Load()) {
			continue
		}
		n.goods = max(n.goods, t.readmit-1)
		n.setEjected(EjectOldTimeline, nil)
		n.askCheck()
	}
}

// writerByTimeline returns the node out of recovery that may take writes.
// With none it returns why, when some node is out of recovery. conflict
// holds, for each node out of recovery that may not take writes, why not.
//
// A node that reaches the same server as another (twin, see twinsOf) is
// that node's second name, not a node of its own: never a writer, a rival
// or an old primary.
func writerByTimeline(t *topology, results []checkResult) (next *node, why string, conflict map[*node]string) {
	twin := twinsOf(t, results)
	cluster, tie := clusterOf(t, results, twin)
	d := declaredOf(t, twin)
	clone := clonesOf(t, results, twin, cluster, d)
	up := func(i int) bool {
		return twin[i] < 0 && results[i].err == nil && !results[i].recovery && !otherCluster(results[i], cluster) && !clone[i]
	}
	top := -1
	for i := range t.nodes {
		if up(i) && (top < 0 || results[i].timeline > results[top].timeline) {
			top = i
		}
	}
	conflict = map[*node]string{}
	for i, n := range t.nodes {
		if twin[i] < 0 && results[i].err == nil && !results[i].recovery && otherCluster(results[i], cluster) {
			// Never a writer, nor a rival of one: what it holds is
			// another cluster's, and writes there would never reach
			// the primary's standbys.
			conflict[n] = otherClusterWhy(n, results[i], cluster)
			if top < 0 && why == "" {
				why = conflict[n]
			}
		}
		if clone[i] && results[i].err == nil {
			conflict[n] = cloneWhy(t.nodes[d], results[d], n, results[i])
		}
	}
	if top < 0 {
		if why == "" {
			// The declared primary is down or in recovery: say why the
			// copy answering out of recovery takes no writes either.
			for i, n := range t.nodes {
				if clone[i] && results[i].err == nil {
					why = conflict[n]
					break
				}
			}
		}
		return nil, why, conflict
	}
	w, tli := t.nodes[top], results[top].timeline
	if tie {
		why = tieWhy(t, results, twin)
		conflict[w] = why
		return nil, why, conflict
	}
	for i, n := range t.nodes {
		last := n.timeline.Load()
		switch {
		case i == top, twin[i] >= 0, otherCluster(results[i], cluster), clone[i]:
		case up(i) && (results[i].timeline == 0 || results[i].timeline == tli):
			what := fmt.Sprintf("on timeline %d", tli)
			if results[i].timeline == 0 {
				what = "and the timeline of one cannot be read"
			}
			why = fmt.Sprintf("split brain: nodes %q and %q are both out of recovery %s; no node takes writes until one is fenced", w.name, n.name, what)
			conflict[n] = why
		case up(i):
			conflict[n] = fmt.Sprintf("node %q is out of recovery on timeline %d, behind node %q on timeline %d: an old primary that came back (or a copy of the cluster started as a primary of its own); it takes no writes: fence it, then rewind it (pg_rewind) or clone it again from %q (pg_basebackup)", n.name, results[i].timeline, w.name, tli, w.name)
		case last > 0 && (tli == 0 || last >= tli):
			// Unreachable now, but last seen writing on a timeline as late.
			switch {
			case tli != 0 && last > tli:
				why = fmt.Sprintf("node %q is out of recovery on timeline %d, but node %q was last seen out of recovery on timeline %d: %q is an old primary; fence it. Writes resume when %q is back, or when a standby is promoted", w.name, tli, n.name, last, w.name, n.name)
			case tli != 0:
				why = fmt.Sprintf("node %q is out of recovery on timeline %d, and node %q was last seen out of recovery on timeline %d too: a split brain; fence one of them: writes go to %q once %q answers in recovery or leaves the router file, or to %q once it is back and %q is fenced", w.name, tli, n.name, last, w.name, n.name, n.name, w.name)
			default:
				why = fmt.Sprintf("node %q is out of recovery and its timeline cannot be read, and node %q was last seen out of recovery on timeline %d: no node takes writes until %q is back", w.name, n.name, last, n.name)
			}
		}
	}
	if v := vetoOf(t, results, tli); why == "" && v >= 0 {
		why = fmt.Sprintf("node %q is out of recovery on timeline %d, but standby %q has WAL of timeline %d: a standby was promoted since, and %q is an old primary; fence it, and writes resume when the promoted node is back. "+
			"If no standby was promoted (a timeline history file fetched from a WAL archive by restore_command after an abandoned promotion), remove %08X.history from %q's pg_wal",
			w.name, tli, t.nodes[v].name, results[v].seenTimeline, w.name, results[v].seenTimeline, t.nodes[v].name)
	}
	if why != "" {
		conflict[w] = why
		return nil, why, conflict
	}
	return w, "", conflict
}

// vetoOf returns the index of a reachable standby whose WAL shows a
// timeline later than tli, the timeline of the node out of recovery that
// would take writes, or -1. Only a promotion makes a timeline, so that node
// is an old primary, even when the router cannot see the promoted one (down
// since the router started, so never seen): a standby that followed the
// promotion has its timeline. A standby behind a healthy primary is on
// the primary's timeline or an earlier one, and vetoes nothing; nor does
// one that shows no timeline (see standbyTimeline).
func vetoOf(t *topology, results []checkResult, tli uint32) int {
	if tli == 0 {
		return -1 // unreadable: nothing to compare
	}
	for i := range t.nodes {
		if results[i].err == nil && results[i].recovery && results[i].seenTimeline > tli && !otherCluster(results[i], t.cluster) {
			return i
		}
	}
	return -1
}

// clusterOf returns the system identifier of the cluster t's nodes belong
// to, from results (their last checks) and what t learnt before: the one
// most of the nodes that answered share, if at least two do and no other
// identifier is as common (then t remembers it: a node down or replaced
// later does not make it forgotten), else the one t remembers, else the
// one of the node out of recovery on the latest timeline; 0 if none is
// known. It stores the answer in t.cluster, for rotate. A node is of
// another cluster when its identifier differs (see otherCluster): a
// wrong host in the router file, a standby cloned from another primary,
// a cluster initialised again at the same address. The majority is what
// catches a "primary" of another cluster: the standbys of the right one,
// which agree with each other, outvote it. A server the file lists twice
// (twin, see twinsOf) counts once.
//
// tie says that the nodes that answered disagree and that neither a
// majority nor memory says which identifier is the cluster's (one primary
// and one standby that disagree, when the Router starts): the primary's
// identifier is returned, so that the standby serves no reads, but the
// primary takes no writes either (see writerByTimeline). Nothing tells a
// primary initialised again (a fresh initdb, whose standby still holds the
// cluster's data) from a standby of another cluster (a wrong host in the
// file), and writes to the former would go to the wrong cluster: an
// application's migrations would build its schema there. This is what a
// Router that watched both agree before decides for the primary
// initialised again: the identifier it remembers is the standby's, and the
// primary, of another cluster, takes no writes. The caller holds
// Router.checkMu.
func clusterOf(t *topology, results []checkResult, twin []int) (id int64, tie bool) {
	counts := make(map[int64]int, 2)
	for i := range results {
		if twin[i] < 0 && results[i].err == nil && results[i].cluster != 0 {
			counts[results[i].cluster]++
		}
	}
	var best, second int
	for c, n := range counts {
		switch {
		case n > best:
			id, second, best = c, best, n
		case n > second:
			second = n
		}
	}
	switch {
	case best >= 2 && best > second:
		if t.clusterSeen != id { // written only on a change: t's line is read by every call
			t.clusterSeen = id
		}
	case t.clusterSeen != 0:
		id = t.clusterSeen
	default:
		id, tie = 0, len(counts) > 1
		top := -1
		for i := range results {
			if twin[i] < 0 && results[i].err == nil && !results[i].recovery && (top < 0 || results[i].timeline > results[top].timeline) {
				top = i
			}
		}
		if top >= 0 {
			id = results[top].cluster
		}
	}
	if t.cluster != id {
		t.cluster = id
	}
	return id, tie
}

// tieWhy says, for the log, Stat and ErrNoPrimary, that the nodes that
// answered disagree on the cluster and nothing says which is right (see
// clusterOf), with each node's identifier and what to do.
func tieWhy(t *topology, results []checkResult, twin []int) string {
	var ids []string
	for i, n := range t.nodes {
		if twin[i] < 0 && results[i].err == nil && results[i].cluster != 0 {
			ids = append(ids, fmt.Sprintf("%q %d", n.name, results[i].cluster))
		}
	}
	return fmt.Sprintf("the nodes belong to different clusters (system identifiers: %s) and no majority of them, nor an earlier check, says which is the application's; no node takes writes, since writes to the wrong cluster would be lost to the other: "+
		"if the primary was initialised again, clone its standbys again from it (pg_basebackup); if a standby belongs to another cluster, correct its host and port in the router file or clone it again from the primary",
		strings.Join(ids, ", "))
}

// clonesOf returns, for each node of t, whether it is a copy of the
// cluster running as a primary of its own, and records the answer on the
// nodes (cloneTLI). Only a promotion makes a timeline, and a standby
// promoted from the primary's timeline starts a later one, so a declared
// replica out of recovery on the very timeline of the declared primary,
// which is out of recovery too and takes the writes (or nothing does
// yet), was not promoted from it: it is a copy of the cluster (a data
// directory made from the same image or template, a backup restored and
// started without recovery) that shares its system identifier, so
// clusterOf does not tell it. Its writes would never reach the primary's
// standbys: it takes no reads and no writes, and the declared primary
// keeps the writes instead of a split brain stopping them. A replica on
// an earlier timeline is an old primary (see writerByTimeline), and one
// on a later timeline was promoted, a failover or a split brain as
// before. A clone that stops answering stays one (an old primary's
// timeline must not block the writes it never had) until it answers in
// recovery or on another timeline. With a writer that is not the
// declared primary (after a failover) nothing on that writer's timeline
// is a clone: the declared primary is then the node to suspect.
//
// Timeline 1 is the cluster's first, which no promotion leads to, so a
// declared replica out of recovery on it was never promoted: while no
// node shows a later timeline (see promotionSeen), with the declared
// primary down (a Router just started remembers no timeline of it) or in
// recovery, it is a copy of the cluster, the primary with the router
// file's roles the wrong way round, or an old primary whose promoted
// standby the router cannot see. Nothing tells them apart, and writes to
// a copy are lost to the cluster: it takes no writes, and ErrNoPrimary
// names the fixes (see cloneWhy). Once a node shows a later timeline, a
// promotion happened, and the node on timeline 1 is an old primary
// (writerByTimeline says so, and to fence it), not a node that may be
// the primary: the router file updated after a failover declares the
// promoted node the primary and the old one a replica. A standby
// promoted in a failover is on timeline 2 or later and takes the writes
// as before. A file without a declared primary (artifact.Validate
// refuses one) has no copies. The caller holds Router.checkMu.
func clonesOf(t *topology, results []checkResult, twin []int, cluster int64, d int) []bool {
	clone := make([]bool, len(t.nodes))
	var tli uint32 // the declared primary's, when it answers out of recovery
	if cur := t.writer.Load(); d >= 0 && (cur == nil || cur == t.nodes[d]) && results[d].err == nil && !results[d].recovery && !otherCluster(results[d], cluster) {
		tli = results[d].timeline
	}
	promoted := promotionSeen(t, results, twin, cluster)
	for i, n := range t.nodes {
		res := results[i]
		switch {
		case d < 0, i == d, twin[i] >= 0:
			n.cloneTLI = 0
		case res.err != nil:
			// As last seen.
		case res.recovery || res.timeline == 0 || otherCluster(res, cluster):
			n.cloneTLI = 0
		case tli != 0 && res.timeline == tli, res.timeline == firstTimeline && !promoted:
			n.cloneTLI = res.timeline
		case tli != 0 || n.cloneTLI != res.timeline || res.timeline == firstTimeline:
			// On timeline 1 here, a promotion is seen: not a copy
			// remembered, but an old primary behind it.
			n.cloneTLI = 0
		}
		clone[i] = n.cloneTLI != 0
	}
	return clone
}

// firstTimeline is the timeline initdb starts a cluster on, which no
// promotion leads to (see clonesOf).
const firstTimeline = 1

// promotionSeen reports whether a node of the cluster shows a timeline
// later than the first, which only a promotion makes: out of recovery on
// one (now, or when last seen if it does not answer), or a standby with
// WAL of one (see vetoOf). A node on timeline 1 out of recovery beside it
// is then an old primary, or a copy, behind the promotion; neither may be
// the primary. The caller holds Router.checkMu.
func promotionSeen(t *topology, results []checkResult, twin []int, cluster int64) bool {
	for i, n := range t.nodes {
		res := results[i]
		switch {
		case twin[i] >= 0, otherCluster(checkOf(t, results, i), cluster):
		case res.err != nil:
			if n.timeline.Load() > firstTimeline {
				return true
			}
		case res.recovery && res.seenTimeline > firstTimeline, !res.recovery && res.timeline > firstTimeline:
			return true
		}
	}
	return false
}

// declaredOf returns the index in t.nodes of the declared primary, or of
// the node that stands for its server when the file lists it twice (see
// twinsOf); -1 without one.
func declaredOf(t *topology, twin []int) int {
	d := slices.Index(t.nodes, t.declared)
	if d >= 0 && twin[d] >= 0 {
		d = twin[d]
	}
	return d
}

// cloneWhy says, for the log, Stat and ErrNoPrimary, that n, which
// answered res, is a copy of the cluster running as a primary of its own
// (see clonesOf), and what to do, from this round's checks: primary is
// the declared primary (the node that stands for its server), which
// answered pres. With the primary out of recovery on res's timeline it
// keeps the writes; without it, n on the first timeline, with no node on
// a later one, may also be the primary under the wrong role in the router
// file, or an old primary whose promoted node does not answer, and
// nothing takes the writes.
func cloneWhy(primary *node, pres checkResult, n *node, res checkResult) string {
	if pres.err == nil && !pres.recovery && pres.timeline == res.timeline {
		return fmt.Sprintf("node %q is out of recovery on timeline %d, the timeline of the primary %q, so it was not promoted from it (a promotion starts a later timeline): it is a copy of the cluster (the same system identifier %d) running as a primary of its own, "+
			"such as a data directory made from the same image or template or a backup restored without recovery; its writes would never reach the primary: it takes no reads and no writes, and %q keeps the writes. "+
			"Clone it again from the primary (pg_basebackup) or correct its host and port in the router file",
			n.name, res.timeline, primary.name, res.cluster, primary.name)
	}
	state := "does not answer"
	switch {
	case pres.err != nil:
	case pres.recovery:
		state = "is in recovery"
	default:
		state = fmt.Sprintf("is out of recovery on timeline %d", pres.timeline)
	}
	return fmt.Sprintf("node %q is out of recovery on timeline %d, the cluster's first, so it was never promoted (a promotion starts a later timeline); the declared primary %q %s, and no node shows a later timeline. "+
		"%q takes no reads and no writes, for it may be a copy of the cluster (the same system identifier %d) running as a primary of its own, such as a data directory made from the same image or template or a backup restored without recovery, whose writes would never reach the cluster: clone it again from the primary (pg_basebackup) or correct its host and port in the router file; "+
		"or an old primary that came back after %q was promoted: fence it, and writes resume when %q is back. "+
		"Only if %q has never been promoted (it is a standby of %q), %q is the primary with the router file's roles the wrong way round: then declare it as the primary in the router file",
		n.name, res.timeline, primary.name, state, n.name, res.cluster, primary.name, primary.name, primary.name, n.name, n.name)
}

// otherCluster reports whether the node that answered res belongs to
// another cluster than cluster (see clusterOf); false when either
// identifier is unknown.
func otherCluster(res checkResult, cluster int64) bool {
	return res.err == nil && res.cluster != 0 && cluster != 0 && res.cluster != cluster
}

// otherClusterWhy says, for the log, Stat and ErrNoPrimary, that n, which
// answered res, belongs to another cluster than cluster, and what to do.
func otherClusterWhy(n *node, res checkResult, cluster int64) string {
	role := "standby"
	if !res.recovery {
		role = "node out of recovery"
	}
	return fmt.Sprintf("%s %q belongs to another cluster: its system identifier is %d, the cluster's (the identifier most nodes of the router file share, or the primary's) is %d; "+
		"it takes no reads and no writes: correct its host and port in the router file, or clone it again from the primary (pg_basebackup)",
		role, n.name, res.cluster, cluster)
}

// sameServer reports whether the checks a and b, which answered, come from
// one server: the same cluster (system identifier) and the same postmaster
// start time, both read once per monitor session. Two servers of one
// cluster (a primary and the standbys cloned from it) share the
// identifier but not the start time.
func sameServer(a, b checkResult) bool {
	return a.err == nil && b.err == nil && a.cluster != 0 && a.started != 0 && a.cluster == b.cluster && a.started == b.started
}

// seeRestart records on n, which answered res, that its server's
// postmaster restarted since its last answer (see restartedSince), and
// asks for a check now of each node whose last answer showed the start
// time n had before: a second name of n's server, which is compared as
// last seen until it answers again. The caller holds Router.checkMu.
func (n *node) seeRestart(t *topology, res checkResult) {
	was := n.lastGood.started
	if was == 0 || res.started == 0 || res.started == was {
		return
	}
	n.startedBefore, n.restartSeen = was, time.Now()
	for _, m := range t.nodes {
		if m != n && m.lastGood.started == was {
			m.askCheck()
		}
	}
}

// restartedSince reports whether the server of n, which answered a,
// restarted after b, another node's last answer, began, and b shows the
// start time n's server had before: b may be n's server before its
// restart, reached under another name whose check has not connected
// again since (each name's check does on its own schedule). A check of
// another server begun after the router saw the restart shows that
// server's own start time. The caller holds Router.checkMu.
func restartedSince(n *node, a, b checkResult) bool {
	return a.err == nil && b.err == nil && b.started != 0 && b.cluster == a.cluster &&
		n.startedBefore == b.started && b.at.Before(n.restartSeen)
}

// twins reports whether t's nodes i and j reach one server: their checks
// (see checkOf) say so (sameServer), or one of them restarted since the
// other last answered (restartedSince). The caller holds Router.checkMu.
func twins(t *topology, results []checkResult, i, j int) bool {
	a, b := checkOf(t, results, i), checkOf(t, results, j)
	return sameServer(a, b) || restartedSince(t.nodes[i], a, b) || restartedSince(t.nodes[j], b, a)
}

// checkOf is the check of t's node i that says which server it reaches:
// results[i], or when that failed, the last that answered.
func checkOf(t *topology, results []checkResult, i int) checkResult {
	if results[i].err != nil {
		return t.nodes[i].lastGood
	}
	return results[i]
}

// twinsOf returns, for each node of t, the index of the node that stands
// for the server it reaches when the router file lists that server under
// several names (see twins), or -1 for the node that stands for it,
// and for a server listed once. The file's own rule (artifact.Validate)
// compares host, port and database as written, so one server under two
// spellings (localhost and 127.0.0.1, a DNS alias) passes it; at run time
// the primary listed twice would be two nodes out of recovery on one
// timeline, a split brain for which no node takes writes. The node that
// stands for a server is the first in file order whose check answered
// (else the first). A node whose check failed is compared by its last
// check that answered. The caller holds Router.checkMu.
func twinsOf(t *topology, results []checkResult) []int {
	twin := make([]int, len(t.nodes))
	for i := range twin {
		twin[i] = -1
	}
	for i := range t.nodes {
		if twin[i] >= 0 {
			continue
		}
		stand := i
		for j := i + 1; j < len(t.nodes); j++ {
			if twin[j] < 0 && twins(t, results, i, j) {
				twin[j] = i
				if results[stand].err != nil && results[j].err == nil {
					stand = j
				}
			}
		}
		if stand != i {
			for j := range twin {
				if twin[j] == i {
					twin[j] = stand
				}
			}
			twin[stand], twin[i] = -1, stand
		}
	}
	return twin
}

// rivalOf reports whether a node other than cur is out of recovery on a
// timeline at least as late as cur's: then cur, unreachable, does not keep
// the writes through a failed check.
func rivalOf(t *topology, results []checkResult, cur *node) bool {
	i := slices.Index(t.nodes, cur)
	for j, n := range t.nodes {
		if n != cur && !twins(t, results, i, j) && results[j].err == nil && !results[j].recovery && results[j].timeline >= cur.timeline.Load() && !otherCluster(results[j], t.cluster) &&
			(n.cloneTLI == 0 || results[j].timeline != n.cloneTLI) {
			return true
		}
	}
	return false
}

func nameOf(n *node) string {
	if n == nil {
		return ""
	}
	return n.name
}

// monitor runs the health checks of the topology in force until ctx is
// done: one watchNode per node, restarted for the new topology after a
// reload. The Router owns it: Close cancels ctx and waits for it.
func (r *Router) monitor(ctx context.Context) {
	defer r.wg.Done()
	for {
		t := r.cur.Load()
		tctx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		for _, n := range t.nodes {
			wg.Go(func() { r.watchNode(tctx, t, n) })
		}
		for r.cur.Load() == t && ctx.Err() == nil {
			select {
			case <-ctx.Done():
			case <-r.swapped:
			}
		}
		cancel()
		wg.Wait()
		if ctx.Err() != nil {
			return
		}
	}
}

// watchNode checks n every interval until ctx is done. Each node has its
// own schedule, so a node that does not answer delays no other node's
// checks. A node fails one check for each interval in which it does not
// answer within timeout: a check still in flight at the next interval
// (setting up a connection may take connect_timeout) stands for that
// interval too, and each interval it stands for fails at its own deadline,
// or all at once when the check fails. So a node that hangs fails
// eject_after checks, and is ejected, within eject_after × interval +
// timeout. An interval during which the node answered a call on the
// pools' sessions within timeout fails nothing at its deadline, nor does a
// check that then times out or has its sessions ended (see notDown): the
// node neither hangs nor answers slowly, and the check is late for the
// machine's reasons.
//
// A reload ends the watchers of the topology it retires, not their checks:
// a check in flight, and the deadlines it stands for, pass to the watcher
// of the new topology on the same server (the monitor starts it once the
// old one returned), so that a reload neither delays the ejection of a
// node that hangs nor cancels a check, which would cost the server its
// monitor connection. The check ends when the Router or the server closes.
func (r *Router) watchNode(ctx context.Context, t *topology, n *node) {
	w := &n.watch // this watcher's alone until it returns
	if w.results == nil {
		w.results = make(chan checkResult, 1)
	}
	// The schedule goes on from the server's first check (checkNew) and
	// then from the last watcher's: a reload must not push the next check,
	// and the deadline it brings, an interval later.
	ticker := time.NewTimer(time.Until(w.next))
	defer ticker.Stop()
	deadline := time.NewTimer(t.timeout)
	deadline.Stop()
	defer deadline.Stop()
	// soon starts the check asked for too soon after the last (askedCheckGap).
	soon := time.NewTimer(askedCheckGap)
	soon.Stop()
	defer soon.Stop()
	if w.again && !w.running {
		// Asked for from the last watcher, which stopped before the gap
		// passed.
		soon.Reset(max(askedCheckGap-time.Since(w.asked), 0))
	}
	arm := func() {
		if len(w.pending) > 0 {
			deadline.Reset(time.Until(w.pending[0]))
		} else {
			deadline.Stop()
		}
	}
	arm()
	// excused reports whether a check that failed with err (a deadline,
	// or sessions the server ended), for the interval that began at
	// since, is the machine's: the node answered a call on the pools'
	// sessions in time since then. Past roleWindow after its last check
	// that answered, the node is up but nothing measures its role (the
	// monitor's connection lost by a firewall or NAT, a check waiting on
	// a stalled pg_wal volume; each failed check closed its session, so
	// each interval tries a new one): aliveAt records it (see
	// unknownRole). Past max_lag and an interval, a replica with max_lag
	// has a lag unknown: the failure counts, and err says why. Its role
	// unknown for another roleWindow, a node last seen in recovery that
	// does not take the writes leaves read rotation at once (fails is
	// eject_after): it may have been promoted, and without max_lag
	// nothing else would take it out, however far behind it falls (a
	// stalled pg_wal volume stalls its replay too). Reads wait the second
	// window, which writes do not: a check that answers only late (a
	// client starved of CPU, TestLateChecksOfAnAnsweringReplica) must
	// not fail the reads of a replica that serves them. The writer keeps
	// the writes, as chooseWriter says.
	excused := func(since time.Time, err error) (ok bool, fails int, _ error) {
		if !n.conns.answeredSince(since, t.timeout) {
			return false, 1, err
		}
		at := n.checkedAt.Load()
		if at == 0 {
			return true, 0, nil
		}
		age := time.Since(time.Unix(0, at))
		if age > roleWindow(t) {
			if n.aliveAt.Swap(time.Now().UnixNano()) <= at {
				r.opts.logger.Warn("routerlib: a node answers calls, but its health checks do not: its role is unknown, and no other node takes over the writes until a check of it answers",
					"node", n.name, "last_check", time.Unix(0, at).UTC(), "err", err)
			}
			if age > 2*roleWindow(t) && n.recovery.Load() && t.writer.Load() != n {
				return false, max(t.eject, 1), fmt.Errorf("it answers calls, but no health check has answered for %v, so its role is unknown (it may have been promoted since its last check saw it in recovery), and it leaves read rotation until a check answers: %w", age.Round(time.Millisecond), err)
			}
		}
		if n.maxLag > 0 && age > n.maxLag+t.interval {
			return false, 1, fmt.Errorf("it answers calls, but no health check has answered for %v, so its lag is unknown (max_lag %v): %w", age.Round(time.Millisecond), n.maxLag, err)
		}
		return true, 0, nil
	}
	// handle applies the check that ended, for every interval it stood
	// for; false when the watcher is stopping.
	handle := func(res checkResult) bool {
		if ctx.Err() != nil {
			// Stopping (a reload, or Close) with an answer in hand: it
			// goes back for the next watcher, with the intervals it
			// stands for, as a check still in flight would. (The
			// buffer's one place is free: this is the one check.)
			w.results <- res
			w.running = true
			return false
		}
		failed := len(w.pending)
		w.pending = w.pending[:0]
		arm()
		if res.err != nil && notDown(res.err) && !res.at.IsZero() {
			// Not an answer, but no sign of a node down either when it
			// answered calls in time meanwhile (see the deadlines
			// below).
			ok, fails, err := excused(res.at, res.err)
			if ok {
				r.opts.logger.Debug("routerlib: a health check failed, but the node answered calls in time meanwhile; not counted", "node", n.name, "err", res.err)
				return true
			}
			res.err, failed = err, max(failed, fails)
		}
		r.applyCheck(t, n, res, failed)
		return true
	}
	// start stands a check for the interval that begins at now: it starts
	// one unless one is in flight, and fails it at now + timeout.
	start := func(now time.Time) {
		if !w.running {
			// The deadlines below fail the check at timeout; the
			// check itself goes on until the node is ejected (its
			// connection is cut then), so that an answer that comes
			// late still counts, as the good check it is. (The
			// monitor's own count keeps r.wg above 0.)
			r.startCheck(t, n)
		}
		w.pending = append(w.pending, now.Add(t.timeout))
		if len(w.pending) == 1 {
			arm()
		}
	}
	// asked starts the check asked for (checkNow), unless one is in
	// flight or the last asked for started less than askedCheckGap ago:
	// then it starts once that one ends, and the gap has passed.
	asked := func(now time.Time) {
		switch wait := askedCheckGap - now.Sub(w.asked); {
		case w.running:
			w.again = true
		case wait > 0:
			w.again = true
			soon.Reset(wait)
		default:
			w.again = false
			w.asked = now
			start(now)
		}
	}
	// ended handles the answer of the check in flight and starts the
	// one asked for meanwhile, if any; false when the watcher is
	// stopping (the request waits for the next watcher).
	ended := func(res checkResult) bool {
		w.running = false
		if !handle(res) {
			return false
		}
		if w.again {
			asked(time.Now())
		}
		return true
	}
	for {
		select {
		case <-ctx.Done():
			return // a check in flight goes on, for the next watcher
		case now := <-ticker.C:
			for !w.next.After(now) { // ticks a busy machine missed are dropped, as by a Ticker
				w.next = w.next.Add(t.interval)
			}
			ticker.Reset(time.Until(w.next))
			start(now)
		case <-n.checkNow:
			// A query asked for a check now (see recheck): one outside
			// the schedule, with its own deadline. One in flight began
			// before the query saw what it saw, and may have answered
			// before (a server shut down since): another starts once
			// it ends.
			asked(time.Now())
		case now := <-soon.C:
			if w.again {
				asked(now)
			}
		case <-deadline.C:
			select {
			case res := <-w.results:
				// The answer came in time, and this goroutine woke too late
				// to see it first (a busy machine): it is not a failure.
				if !ended(res) {
					return
				}
				continue
			default:
			}
			began := w.pending[0].Add(-t.timeout)
			w.pending = w.pending[1:]
			arm()
			late := fmt.Errorf("no answer within health.timeout (%v): %w", t.timeout, os.ErrDeadlineExceeded)
			ok, fails, err := excused(began, late)
			if ok {
				// The check is late, but since this interval
				// began the node answered a call on the pools'
				// sessions within health.timeout: it neither
				// hangs nor answers slowly, and a check this late
				// is the machine's (a client starved of CPU
				// between two calls, the monitor's own session
				// ended under it). Ejecting it would fail the
				// reads it serves, or move them all to the
				// primary. A node that hangs (frozen, a network
				// that drops everything) answers on no session,
				// and one that answers slowly (a latency spike)
				// answers none in time: either fails this
				// deadline.
				r.opts.logger.Debug("routerlib: a health check is late, but the node answered calls in time since its interval began; not counted", "node", n.name)
				continue
			}
			r.applyCheck(t, n, checkResult{err: err}, fails)
		case res := <-w.results:
			if !ended(res) {
				return
			}
		}
	}
}

// roleWindow is how long after a node's last check that answered its role
// is unknown (see watchNode): the interval before the next check starts
// and the bound of a check in flight, eject_after × interval + timeout (a
// check that takes longer fails).
func roleWindow(t *topology) time.Duration {
	return time.Duration(t.eject+1)*t.interval + t.timeout
}

// unknownRole returns a node of t, other than next and its server's
// other names, that answers calls but whose role is unknown: none of its
// checks answered for roleWindow, and it answered a call on the pools'
// sessions in time since then (now, or as the monitor saw it: aliveAt,
// see watchNode). It may have been promoted since its last check said it
// was in recovery, and then it holds the writes, and its standbys the
// timeline that would veto next. nil if none. The caller holds
// Router.checkMu.
func unknownRole(t *topology, next *node) *node {
	for _, n := range t.nodes {
		if n == next || oneServer(n, next) {
			continue
		}
		if n.roleUnknown(t) {
			return n
		}
	}
	return nil
}

// roleUnknown reports whether n, a node of t, answers calls but has a role
// unknown: none of its checks answered for roleWindow, and it answered a
// call on the pools' sessions in time since then (now, or as the monitor
// saw it: aliveAt, see watchNode). A node never checked has none.
func (n *node) roleUnknown(t *topology) bool {
	at := n.checkedAt.Load()
	if at == 0 {
		return false // never checked: never in rotation nor a writer
	}
	unknown := time.Unix(0, at).Add(roleWindow(t))
	return n.aliveAt.Load() > at || time.Now().After(unknown) && n.conns.answeredSince(unknown, t.timeout)
}

// watchState is a server's check in flight, which passes from one
// topology's watcher to the next across a reload: only the watcher in
// force touches it, and the monitor starts the next one after the last
// returned.
type watchState struct {
	results chan checkResult // the check in flight's result; buffered
	running bool             // a check is in flight
	again   bool             // a check was asked for while it ran, or too soon after the last asked for: one starts when it ends, askedCheckGap after that one
	asked   time.Time        // when the last check asked for (checkNow) started
	pending []time.Time      // the deadlines of the intervals the check in flight stands for
	next    time.Time        // when the next interval starts
}

// askedCheckGap is the least time between two checks of a node asked for
// outside the schedule (checkNow). Calls waiting for a writer ask for one
// every few milliseconds (awaitWriter), and each check of a primary that
// is down is a new connection: back to back, hundreds a second from each
// application instance, against a server that is starting up (each
// refusal a new process there) or a host already in trouble.
const askedCheckGap = 50 * time.Millisecond
