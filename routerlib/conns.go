package routerlib

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/puddle/v2"
)

// nodeConns holds every connection the router has open to one node: its
// pools' and its health checks' (not the cancel requests of the pools'
// connections: see cancelDials). When the
// node stops answering, closing their sockets ends at once every call
// blocked on it, wherever it is (a query, a transaction, a connection being
// set up), which no context can do for a call that is already running.
type nodeConns struct {
	name string
	// addr is the node's host and port as the router file writes them:
	// every nodeConns at one address reaches one server, whatever its
	// name or settings (see connRegistry.lost).
	addr string
	reg  *connRegistry

	mu   sync.Mutex
	open map[*trackedConn]struct{} // guarded by mu
	// down, while set, makes the pools' dials fail at once, so that a call
	// still aimed at a node just cut off does not wait connect_timeout for
	// it; the health checks still dial, to see it come back. Guarded by mu.
	down error
	// closed makes every dial fail: the Router is closed. Guarded by mu.
	closed bool
	// closing is closed with closed: it ends the waits that outlast the
	// Router's grace for the calls in flight (see reserveSlot).
	closing chan struct{}
	// answered is the latest answer on the pools' connections closed
	// since; written under mu.
	answered answer
}

// connRegistry holds the nodeConns of every node the Router has built and
// not yet closed, those of retired topologies still draining included, so
// that Close reaches them all.
type connRegistry struct {
	mu     sync.Mutex
	sets   map[*nodeConns]struct{} // guarded by mu
	closed bool                    // guarded by mu
	// lost holds the addresses of the servers that lost the writes and
	// have not taken them back nor answered in recovery since (see
	// Router.cutOldPrimaries). It is kept by address, not by node, so
	// that neither a reload that renames the node or changes its
	// settings (a new server, new pools) nor a check that failed when
	// the writes moved lets an old primary go uncut. Guarded by mu.
	lost map[string]struct{}
	// writer is the server taking writes in the topology in force, as
	// the last check applied to it saw it; its name "" when none does.
	// It is what a server a reload dropped is compared with (see
	// lostTo). Guarded by mu.
	writer writerSeen
}

// writerSeen is the node taking writes: its name and address, and the
// server its last check reached (see sameServer).
type writerSeen struct {
	name, addr       string
	cluster, started int64
}

// setWriter records the node taking writes in the topology in force
// (w.name "" for none).
func (r *connRegistry) setWriter(w writerSeen) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.writer = w
}

// lostTo returns the node that took the writes from the server at c's
// address, which answered res out of recovery: it lost them (see setLost)
// and another server has them now. "" if not so.
func (c *nodeConns) lostTo(res checkResult) string {
	c.reg.mu.Lock()
	defer c.reg.mu.Unlock()
	w := c.reg.writer
	if _, lost := c.reg.lost[c.addr]; !lost || w.name == "" || w.addr == c.addr ||
		res.started != 0 && res.cluster == w.cluster && res.started == w.started {
		return ""
	}
	return w.name
}

// add returns a new nodeConns for the node called name, at addr.
func (r *connRegistry) add(name, addr string) *nodeConns {
	c := &nodeConns{name: name, addr: addr, reg: r, open: map[*trackedConn]struct{}{}, closing: make(chan struct{})}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.sets == nil {
		r.sets = map[*nodeConns]struct{}{}
	}
	r.sets[c] = struct{}{}
	if r.closed {
		c.closed = true
		close(c.closing)
	}
	return c
}

// close closes every nodeConns, and those added later at once.
func (r *connRegistry) close() {
	r.mu.Lock()
	r.closed = true
	sets := make([]*nodeConns, 0, len(r.sets))
	for c := range r.sets {
		sets = append(sets, c)
	}
	r.mu.Unlock()
	for _, c := range sets {
		c.close()
	}
}

// remove takes c out of its registry: its node's pools are closed.
func (c *nodeConns) remove() {
	c.reg.mu.Lock()
	delete(c.reg.sets, c)
	c.reg.mu.Unlock()
}

// setLost records that the server at c's address lost the writes (lost),
// or that it took them back or answered in recovery since.
func (c *nodeConns) setLost(lost bool) {
	c.reg.mu.Lock()
	defer c.reg.mu.Unlock()
	if !lost {
		delete(c.reg.lost, c.addr)
		return
	}
	if c.reg.lost == nil {
		c.reg.lost = map[string]struct{}{}
	}
	c.reg.lost[c.addr] = struct{}{}
}

// lost reports whether the server at c's address lost the writes (see
// setLost).
func (c *nodeConns) lost() bool {
	c.reg.mu.Lock()
	defer c.reg.mu.Unlock()
	_, ok := c.reg.lost[c.addr]
	return ok
}

// others returns the other nodeConns at c's address not yet closed: those
// of the servers a reload replaced (other settings, or the node renamed),
// whose pools stay open while the application holds a connection of
// theirs, and of another database of the file on the same server.
func (c *nodeConns) others() []*nodeConns {
	c.reg.mu.Lock()
	defer c.reg.mu.Unlock()
	var others []*nodeConns
	for o := range c.reg.sets {
		if o != c && o.addr == c.addr {
			others = append(others, o)
		}
	}
	return others
}

// errRouterClosed is what a dial returns once the Router is closed.
var errRouterClosed = errors.New("the router is closed")

// cancelDialKey marks the context of a cancel request's dial (cancelCut,
// and pgx's own for a pool's connection: cancelDials): its connection is no
// pool's, and no cut or Close may close it before the server answered it
// (see cutCancelLinger).
type cancelDialKey struct{}

// dialer wraps next so that the connections it opens are tracked. A
// pool's dialer (check false) refuses to dial while the node is cut off.
// A cancel request's dial (cancelDialKey) is neither refused nor tracked.
func (c *nodeConns) dialer(next pgconn.DialFunc, check bool) pgconn.DialFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if ctx.Value(cancelDialKey{}) != nil {
			return next(ctx, network, addr)
		}
		if err := c.refuse(check); err != nil {
			return nil, err
		}
		conn, err := next(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		tc := &trackedConn{Conn: conn, set: c, check: check}
		c.mu.Lock()
		closed := c.closed
		if !closed {
			c.open[tc] = struct{}{}
		}
		c.mu.Unlock()
		if closed {
			conn.Close()
			return nil, errRouterClosed
		}
		return tc, nil
	}
}

func (c *nodeConns) refuse(check bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.closed:
		return errRouterClosed
	case c.down != nil && !check:
		return fmt.Errorf("node %q was cut off: %w", c.name, c.down)
	}
	return nil
}

// cut closes every connection the pools have open to the node, so that
// every call blocked on it fails now, and refuses the pools' dials until up
// is called. A connection with a call in flight is ended by a deadline
// instead, and closed by pgx after its cancel request (see cutMidCall). The health check's connection stays: its check in flight ends
// by itself, and answers when a node that was only slow does.
func (c *nodeConns) cut(cause error) {
	c.mu.Lock()
	c.down = cause
	c.mu.Unlock()
	c.closeOpen(false, cause)
}

// closeOpen closes the connections open to the node: the pools' only, or
// the health check's too. Each keeps cause (nil on Close), which a
// connection the application holds reports at its next use (cutCause).
func (c *nodeConns) closeOpen(checks bool, cause error) {
	c.mu.Lock()
	open := make([]*trackedConn, 0, len(c.open))
	for tc := range c.open {
		if checks || !tc.check {
			open = append(open, tc)
		}
	}
	c.mu.Unlock()
	for _, tc := range open {
		if cause != nil {
			tc.cutBy.Store(&cause)
			if ac := tc.ac.Load(); ac != nil && ac.sent.Load() != 0 {
				tc.cutMidCall()
				continue
			}
		}
		tc.Close()
	}
}

// cutMidCallClose bounds how long a connection cutMidCall ended stays
// open if no call reads it: over pgx's own bound on the cancel request and
// the close that follow a failed read (15 s, pgconn's asyncClose).
const cutMidCallClose = 20 * time.Second

// cutMidCall ends the call in flight on tc, cut off with its node: its
// read fails now (a deadline met), and pgx, which closes a connection whose
// call failed, sends the server a cancel request first and closes it next
// (asyncClose), or at the latest after cutMidCallClose. Closed at once, as
// the connections with no call in flight are, the statement ran on after
// the node came back when PgBouncer was in front of it: pgx's cancel came
// after the close, and PgBouncer forwards no cancel of a client gone
// (TestCutOffCallIsCancelledWhenNodeThaws). On a direct connection the
// cancel names the backend alone, and it comes before the Terminate.
func (tc *trackedConn) cutMidCall() {
	_ = tc.Conn.SetDeadline(time.Unix(1, 0))
	time.AfterFunc(cutMidCallClose, func() { _ = tc.Close() })
}

// cause returns why the node was cut off, or nil while it is not.
func (c *nodeConns) cause() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.down
}

// up lets the pools dial the node again: a health check passed.
func (c *nodeConns) up() {
	c.mu.Lock()
	c.down = nil
	c.mu.Unlock()
}

// close refuses every dial from now on and closes every connection open.
func (c *nodeConns) close() {
	c.mu.Lock()
	if !c.closed {
		c.closed = true
		close(c.closing)
	}
	c.mu.Unlock()
	c.closeOpen(true, nil)
}

// answeredSince reports whether the node answered a call on one of the
// pools' connections since at, within within of its sending: it answers
// calls in time, whatever its health check shows (see watchNode). The
// health check's own connections do not count.
func (c *nodeConns) answeredSince(at time.Time, within time.Duration) bool {
	since := int64(at.Sub(monoEpoch))
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.answered.after(since, within) {
		return true
	}
	for tc := range c.open {
		if tc.answered.after(since, within) {
			return true
		}
	}
	return false
}

// monoEpoch is the origin of the times of an answer: a time on the
// monotonic clock, so that a step of the wall clock moves no answer.
var monoEpoch = time.Now()

// An answer is the last time a node answered on a connection: when the
// first bytes after a write came (time since monoEpoch; 0 if never), and
// how long after the write. Its words are written by the one call using
// the connection (and pgconn's background reader) and read by the
// monitor; a reader may see one from one answer and the other from the
// next, as good a sign.
type answer struct {
	at, took atomic.Int64
}

// after reports whether a came after since, within within of its write.
func (a *answer) after(since int64, within time.Duration) bool {
	at := a.at.Load()
	// 0 is no answer yet, whatever since is: a time before monoEpoch (a
	// check stale since before the process began) is negative.
	return at != 0 && at > since && a.took.Load() <= int64(within)
}

// set records an answer that came at, took after its write.
func (a *answer) set(at, took int64) {
	a.took.Store(took)
	a.at.Store(at)
}

// A trackedConn is a connection in a nodeConns; closing it removes it.
type trackedConn struct {
	net.Conn
	set   *nodeConns
	check bool // dialed for the health check (or a cancel request of its connection)
	once  sync.Once
	// answered is when the node last answered a call on it, a pool's
	// (see answerConn). Its own words, not the node's: calls on other
	// connections do not share them.
	answered answer
	// cutBy is why the router closed it (nodeConns.cut), nil if it did not.
	cutBy atomic.Pointer[error]
	// ac is the answerConn over it, once its startup began (a pool's).
	ac atomic.Pointer[answerConn]
}

// trackedOf returns the trackedConn under nc (a TLS connection over it,
// an answerConn), nil if there is none.
func trackedOf(nc net.Conn) *trackedConn {
	for {
		switch c := nc.(type) {
		case *trackedConn:
			return c
		case *answerConn: // over the application's connection, which may hide it
			return c.tc
		case interface{ NetConn() net.Conn }:
			nc = c.NetConn()
		default:
			return nil
		}
	}
}

// cutCause returns why the router cut pc's connection off, nil if it did
// not: the node stopped answering, or lost the writes. It is the
// connection's own, so it stays after the node is back.
func cutCause(pc *pgconn.PgConn) error {
	if tc := trackedOf(pc.Conn()); tc != nil {
		if cause := tc.cutBy.Load(); cause != nil {
			return *cause
		}
	}
	return nil
}

// countAnswers makes a connection set up with cc, a pool's (one dialed by
// nodeConns.dialer), record on its trackedConn when the node answers a
// call on it: the first bytes that come after a write, from the end of the
// startup on, unless they are PgBouncer's own (see answerConn). It wraps
// the hooks cc has, the application's: the pools' BeforeConnect calls it
// on each connection's configuration (see startedAlive).
//
// What a PgBouncer in front of a server that is down sends a client says
// nothing of the server: the answer to the SSLRequest, the TLS handshake,
// its own AuthenticationOk with the server's parameters it keeps (the
// whole startup, with the server down), then its refusal of the call,
// FATAL 08P01 ("server login has been failing", "pgbouncer cannot connect
// to server"). Counted as answers, they excused the late checks of a
// stopped primary behind its PgBouncer, and once those had failed for
// roleWindow they made its role unknown, which kept the writes off a
// promoted standby for good (TestPgBouncerFailover under load;
// TestPgBouncerTLSFailover). They were told apart on the socket, which TLS
// encrypts: so they are told apart where pgconn reads the protocol,
// decrypted (AfterNetConnect), by where the connection is (the startup
// ends at AfterConnect) and by the errors pgconn decodes (OnPgError).
func countAnswers(cc *pgconn.Config) {
	afterNet, after, onPgError := cc.AfterNetConnect, cc.AfterConnect, cc.OnPgError
	cc.AfterNetConnect = func(ctx context.Context, cfg *pgconn.Config, nc net.Conn) (net.Conn, error) {
		// The trackedConn is looked for before the application's hook,
		// whose connection may hide it (a wrapper without NetConn), and
		// the answerConn goes over what the hook returned, the one pgconn
		// reads: taken after, the wrapper left every answer uncounted and
		// each late check of a busy node failed (TestConnreviewAnswers*).
		tc := trackedOf(nc)
		if afterNet != nil {
			var err error
			if nc, err = afterNet(ctx, cfg, nc); err != nil {
				return nil, err
			}
		}
		if tc != nil && !tc.check {
			ac := &answerConn{Conn: nc, tc: tc}
			tc.ac.Store(ac)
			return ac, nil
		}
		return nc, nil
	}
	cc.AfterConnect = func(ctx context.Context, pc *pgconn.PgConn) error {
		if ac, ok := pc.Conn().(*answerConn); ok {
			ac.started.Store(true)
		}
		if after != nil {
			return after(ctx, pc)
		}
		return nil
	}
	cc.OnPgError = func(pc *pgconn.PgConn, pgErr *pgconn.PgError) bool {
		if ac, ok := pc.Conn().(*answerConn); ok {
			ac.errorRead(pgErr)
		}
		if onPgError != nil {
			return onPgError(pc, pgErr)
		}
		return true
	}
}

// An answerConn is a pool's connection as pgconn reads and writes it: the
// protocol's bytes, decrypted if TLS carries them. Once the startup
// ended, the first bytes that come after a write are the node's answer to
// a call, recorded on tc; unless they begin an ErrorResponse, whose answer
// is held until pgconn has decoded it (errorRead): a FATAL, PgBouncer's
// refusal or a session's end the server sent unasked, is no answer, and
// it must never be seen as one, even for a moment (the
// monitor keeps what it saw: see aliveAt). What comes during the startup
// is no answer: through PgBouncer it all comes from PgBouncer.
type answerConn struct {
	net.Conn
	tc *trackedConn
	// started is set once the startup ended (countAnswers' AfterConnect).
	started atomic.Bool
	// sent is when the first write since the last read went out (time
	// since monoEpoch), until the first bytes after it come; 0 if none.
	sent atomic.Int64
	// held is the answer whose bytes begin an ErrorResponse, until
	// errorRead.
	held answer
}

// NetConn returns the connection under c (see trackedOf).
func (c *answerConn) NetConn() net.Conn { return c.Conn }

func (c *answerConn) Write(b []byte) (int, error) {
	if c.started.Load() {
		c.sent.CompareAndSwap(0, int64(time.Since(monoEpoch)))
	}
	return c.Conn.Write(b)
}

func (c *answerConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		if sent := c.sent.Swap(0); sent != 0 {
			now := int64(time.Since(monoEpoch))
			if b[0] == 'E' { // an ErrorResponse
				c.held.set(now, now-sent)
			} else {
				c.held.at.Store(0) // one a call cut short left
				c.tc.answered.set(now, now-sent)
			}
		}
	}
	return n, err
}

// errorRead records the answer held for the ErrorResponse pgconn decoded
// as pgErr if it is an ERROR: the server's answer to the call. A FATAL
// ends the session and need be no answer to the call at all: the server
// sends one unasked to a session it ends (57P01: a shutdown,
// pg_terminate_backend; 57P05, 25P03: its idle timeouts), which waits in
// the socket until the next call on it reads it first, as if the node
// answered that call, when it may have stopped since (a primary shutting
// down then excused the check its monitor's session failed with 57P01:
// see notDown). Nothing tells it from a FATAL that ends the call itself.
// PgBouncer's refusals are FATAL 08P01 (bouncerEnded). An ErrorResponse
// that came later finds none held.
func (c *answerConn) errorRead(pgErr *pgconn.PgError) {
	at := c.held.at.Swap(0)
	if at != 0 && severity(pgErr) == "ERROR" {
		c.tc.answered.set(at, c.held.took.Load())
	}
}

// bouncerEnded reports whether err is a PgBouncer in front of the node
// ending the client's session, FATAL 08P01, which is no answer of the node
// to the call: it refused the call before any server had it, most often
// because the server is down (see bouncerRefused), or gave up on its
// answer (query_timeout: see bouncerTimedOut; "server conn crashed?": the
// server session died under it). A server sends FATAL 08P01 only to a
// client that broke the protocol, which says nothing of the node either.
func bouncerEnded(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "08P01" && severity(pgErr) == "FATAL"
}

func (tc *trackedConn) Close() error {
	err := net.ErrClosed
	tc.once.Do(func() {
		tc.set.mu.Lock()
		delete(tc.set.open, tc)
		if at := tc.answered.at.Load(); at > tc.set.answered.at.Load() {
			tc.set.answered.at.Store(at)
			tc.set.answered.took.Store(tc.answered.took.Load())
		}
		tc.set.mu.Unlock()
		err = tc.Conn.Close()
	})
	return err
}

// readConns holds a replica's read-pool connections between reads, so
// that a read takes one and gives it back without pgxpool's acquire and
// release, whose lock and semaphore every core takes (about 2% of a GORM
// read's CPU with eight goroutines on two cores: see the benchmarks
// guide). A server's write pool has one too (server.keptW, write set),
// which holds its connections between writes: every acquire of the
// write pool takes a kept connection first (acquire, which
// acquireConn finds through keptWrites), and the calls that give theirs
// back through server.release keep them (a write, a captured write, a
// read on the primary; about a tenth of a captured write's instructions
// on the client: see the benchmarks guide). pgxpool stays the
// authority: every connection here was
// acquired from it and counts against max_conns, and each one goes back
// to it (where the lifetime, the ping after a second idle and a Reset
// apply) within readConnsTick, as soon as a call may be waiting in
// pgxpool for a connection, when the server ended a session, when the
// node is cut off, and before its pool closes.
type readConns struct {
	mu     sync.Mutex
	conns  []*pgxpool.Conn // guarded by mu
	armed  bool            // tick is scheduled; guarded by mu
	closed bool            // the pool is closing: nothing is kept; guarded by mu
	tick   *time.Timer     // guarded by mu
	every  time.Duration   // readConnsTick (but in tests); set before use
	// off keeps nothing: the application set a pgxpool hook that runs on
	// each acquire or release (PrepareConn, BeforeAcquire, AfterRelease),
	// such as one that sets the caller's tenant for row-level security,
	// and a kept connection would skip it. Set before use.
	off bool
	// gen changes (under mu) whenever every connection acquired from
	// pgxpool before must go back to it: a connection is kept only while
	// gen is the one read before it was acquired.
	gen atomic.Uint64
	// waiting counts the calls that may wait in pgxpool for a connection of
	// the read pool (see acquire and direct): while any does, connections
	// go back to pgxpool, where it waits, instead of being kept.
	waiting atomic.Int64
	count   atomic.Int32 // len(conns), for Stat
	// write marks a write pool's: a connection carries the session of
	// the call that holds it (callSessionKey), which pgxpool's acquire
	// sets and its release drops (statementsDiscarded), and
	// acquire and release do for the kept ones. Set before use.
	write bool
}

// readConnsTick bounds how long a connection stays kept: under
// pgxpool's second of idleness after which it pings a connection, so
// that no connection is handed out unpinged that pgxpool would have
// pinged.
const readConnsTick = 500 * time.Millisecond

// acquire takes a kept connection, or one from pool (acquireRoom, with
// awaits), and the generation to give back with it. On a write pool a
// kept connection carries the call's session, as one from pgxpool does
// (see write).
func (k *readConns) acquire(ctx context.Context, pool *pgxpool.Pool, awaits func(error) bool) (*pgxpool.Conn, uint64, error) {
	if k.off {
		c, err := acquireRoom(ctx, pool, awaits)
		return c, 0, err
	}
	c, gen := k.pop()
	if c == nil {
		k.waiting.Add(1)
		defer k.waiting.Add(-1)
		// Once waiting shows, a release either keeps nothing or hands
		// back what it kept; one kept before may be here now.
		if c, gen = k.pop(); c == nil {
			gen = k.gen.Load()
			c, err := acquireRoom(ctx, pool, awaits)
			return c, gen, err
		}
	}
	if k.write {
		if s := SessionFrom(ctx); s != nil {
			c.Conn().PgConn().CustomData()[callSessionKey] = s
		}
	}
	return c, gen, nil
}

// acquireRoom is pool.Acquire; when its dial was refused for want of
// room and awaits (nil: never) says to, it waits for room (awaitRoom).
func acquireRoom(ctx context.Context, pool *pgxpool.Pool, awaits func(error) bool) (*pgxpool.Conn, error) {
	c, err := pool.Acquire(ctx)
	if err != nil && awaits != nil && awaits(err) {
		c, err = awaitRoom(ctx, pool, err)
	}
	return c, err
}

// pop takes the connection kept last, and the generation now. It unlocks
// without defer: nothing in between can panic, and every read comes here.
func (k *readConns) pop() (*pgxpool.Conn, uint64) {
	k.mu.Lock()
	n := len(k.conns)
	if n == 0 {
		k.mu.Unlock()
		return nil, 0
	}
	c := k.conns[n-1]
	k.conns[n-1] = nil
	k.conns = k.conns[:n-1]
	k.count.Store(int32(n - 1))
	gen := k.gen.Load()
	k.mu.Unlock()
	return c, gen
}

// release keeps c, acquired in generation gen, for the next call, or
// gives it back to pgxpool: a connection that is closed, busy or in a
// transaction (pgxpool destroys it), one of an earlier generation, and
// any while a call may wait in pgxpool.
func (k *readConns) release(c *pgxpool.Conn, gen uint64) {
	pc := c.Conn().PgConn()
	if k.off || pc.IsClosed() || pc.IsBusy() || pc.TxStatus() != 'I' || k.waiting.Load() > 0 {
		c.Release()
		return
	}
	if k.write {
		// Dropped as TraceRelease drops it: the next call sets its own.
		delete(pc.CustomData(), callSessionKey)
	}
	k.mu.Lock()
	if k.closed || gen != k.gen.Load() {
		k.mu.Unlock()
		c.Release()
		return
	}
	k.conns = append(k.conns, c)
	k.count.Store(int32(len(k.conns)))
	if !k.armed {
		k.arm()
	}
	k.mu.Unlock()
	if k.waiting.Load() > 0 {
		k.giveBack(false) // a call began to wait before seeing c
	}
}

// arm starts the timer that expires the kept connections, for release
// (k.mu held), out of its line: release runs at the end of every call.
//
//go:noinline
func (k *readConns) arm() {
	k.armed = true
	if k.tick == nil {
		k.tick = time.AfterFunc(k.every, k.expire)
	} else {
		k.tick.Reset(k.every)
	}
}

// direct marks a call that takes the read pool from pgxpool itself (a
// batch, a transaction, the replay poll): the kept connections go back
// to it, and none is kept until the func it returns is called.
func (k *readConns) direct() func() {
	k.waiting.Add(1)
	k.giveBack(false)
	return func() { k.waiting.Add(-1) }
}

// keptWrites maps each open write pool to its server's kept connections
// (server.keptW), for acquireConn, whose callers hold the pool alone.
var keptWrites sync.Map // *pgxpool.Pool → *readConns

// expire gives every connection back to pgxpool, the kept ones now and
// those in use when they are done: readConnsTick passed, or the server
// ended a session (the others, idle as long, are pinged there).
func (k *readConns) expire() { k.giveBack(true) }

// close gives every connection back to pgxpool and keeps none from now
// on: the pool is about to close, which waits for them.
func (k *readConns) close() {
	k.mu.Lock()
	k.closed = true
	k.mu.Unlock()
	k.giveBack(true)
}

// giveBack releases the kept connections to pgxpool; with expire, those
// in use follow when they are done.
func (k *readConns) giveBack(expire bool) {
	k.mu.Lock()
	if expire {
		k.gen.Add(1)
		k.armed = false
		if k.tick != nil {
			k.tick.Stop()
		}
	}
	conns := k.conns
	k.conns = nil
	k.count.Store(0)
	k.mu.Unlock()
	for _, c := range conns {
		c.Release()
	}
}

// startedKey is the key, in a session's [pgconn.PgConn.CustomData], of
// when its connect started (Unix nanoseconds; see startedAlive).
const startedKey = "routerlib.started"

// after returns when the previous attempt's session ended, if it was a
// session of s (see retryState.ended); else 0.
func (st *retryState) after(s *server) int64 {
	if st.ended != s {
		return 0
	}
	return st.endedAt
}

// newSession is acquire, of a session whose connect started after after
// (Unix nanoseconds) when it is set: the read it is for met a session the
// server ended (57P01), and every session older may be ended by the same
// pg_terminate_backend pass. Such a pass ends the sessions of its snapshot
// of pg_stat_activity one by one, and on a busy machine the router can
// see the first ended before the pass signals the others: a ping of one
// answers, and the read that follows meets the FATAL (seen under load: a
// read met two sessions of one pass, pinged in between, and with a third
// the read failed). A session whose connect started after the router saw
// the ending is in no snapshot taken before it. The older sessions the
// read is handed are closed, not given back: pgxpool hands out idle ones
// first, and most of them are ending. There are at most MaxConns of them,
// and none is made after after.
func (s *server) newSession(ctx context.Context, pool *pgxpool.Pool, after int64) (c *pgxpool.Conn, gen uint64, err error) {
	c, gen, err = s.acquire(ctx, pool)
	if after == 0 {
		return c, gen, err
	}
	for range pool.Stat().MaxConns() {
		if err != nil {
			return nil, 0, err
		}
		if started, _ := c.Conn().PgConn().CustomData()[startedKey].(int64); started > after {
			break
		}
		_ = c.Hijack().Close(ctx) // out of the pool: its slot is free for a new session
		c, gen, err = s.acquire(ctx, pool)
	}
	return c, gen, err
}

// reserveKey marks the context of the acquire that takes a pool's reserved
// slot (see reserveSlot).
type reserveKey struct{}

// firstFillKey marks the context of the connections that pgxpool sets up
// for min_conns when the pool is made (see server.newPool).
type firstFillKey struct{}

// reserveSlot wraps a pool's BeforeConnect (next) so that the pool, made
// with one slot more than max_conns, keeps that slot for the Router's
// Close: the acquire whose context carries reserveKey takes it, closes
// taken and holds it, connecting nowhere, until the pool or the Router is
// closed. No other connection of the pool is set up before (the
// connections of min_conns among them), so that the pool never opens
// more than max_conns. Of the connections of the pool's first fill, fill
// (min_conns, at most max_conns) are set up; those past it give their
// slot back with puddle.ErrNotAvailable, which pgxpool's fill ignores
// (another error would cancel the fill's other connections).
//
// Why: a call waiting for a connection of a pool whose connections the
// application holds (an acquired connection, rows not closed) waits in
// puddle for a slot under its own context alone, and pgxpool's Close
// wakes no such wait. A context of the Router's own for each acquire
// would end it, at a cost on every call (a context, an AfterFunc: ~1 µs
// and 6 allocations). Instead, when the Router is closed, the reserved
// slot comes free and wakes the first wait, whose connection fails at
// once with [ErrClosed] here, which frees the slot for the next wait, and
// so on: every wait ends, and nothing is paid until one begins.
func (c *nodeConns) reserveSlot(next func(context.Context, *pgx.ConnConfig) error, taken chan struct{}, fill *atomic.Int32) func(context.Context, *pgx.ConnConfig) error {
	return func(ctx context.Context, cc *pgx.ConnConfig) error {
		if ctx.Value(firstFillKey{}) != nil && fill.Add(-1) < 0 {
			return puddle.ErrNotAvailable
		}
		if ctx.Value(reserveKey{}) != nil {
			close(taken)
			// ctx ends when the pool closes (puddle's constructor
			// context), not with the acquire that took the slot.
			select {
			case <-ctx.Done():
			case <-c.closing:
			}
			return c.closedWhile("the call waited for a connection to")
		}
		select {
		case <-taken:
		case <-c.closing:
		case <-ctx.Done():
			return ctx.Err()
		}
		select {
		case <-c.closing:
			return c.closedWhile("the call waited for a connection to")
		default:
		}
		if next != nil {
			return next(ctx, cc)
		}
		return nil
	}
}

// closedWhile is the failure of a call that waited (what, before the
// node's name) when the Router's Close ended the wait: it was not sent.
func (c *nodeConns) closedWhile(what string) error {
	return fmt.Errorf("%w while %s node %q; it was not sent", ErrClosed, what, c.name)
}

// isClosed reports whether the Router was closed (see close); the slot
// that c's pools reserve for it is free then (see reserveSlot).
func (c *nodeConns) isClosed() bool {
	select {
	case <-c.closing:
		return true
	default:
		return false
	}
}

// tooManyConnections reports whether err is the server refusing a new
// session for want of room (SQLSTATE 53300: max_connections, or the
// role's or the database's CONNECTION LIMIT, reached).
func tooManyConnections(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "53300"
}

// Bounds of awaitRoom's pause between two tries.
const (
	roomFirstPause = 10 * time.Millisecond
	roomMaxPause   = 200 * time.Millisecond
)

// awaitRoom is what an acquire of the writer's pool does after pgxpool's
// dial for it was refused for want of room (err, tooManyConnections):
// nothing was sent, so waiting is safe, and it is what the application
// wants of a primary whose sessions are all taken for a moment. It tries
// again, pausing longer each time, until a connection of the pool comes
// back to it or the server takes a new session, within the caller's
// context and connect_timeout, the router file's bound on setting up a
// connection (so a ctx without a deadline still ends it). Then the error
// says which limit and how to fix it. A replica's read pool (sessions
// with default_transaction_read_only) does not wait: its read leaves for
// another node, and the replica leaves rotation (see markDown).
func awaitRoom(ctx context.Context, pool *pgxpool.Pool, err error) (*pgxpool.Conn, error) {
	cfg := pool.Config() // a copy, on this rare path only
	if cfg.ConnConfig.RuntimeParams["default_transaction_read_only"] == "on" {
		return nil, err
	}
	bound := cfg.ConnConfig.ConnectTimeout
	wctx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	timer := time.NewTimer(roomFirstPause)
	defer timer.Stop()
	for pause := roomFirstPause; ; pause = min(2*pause, roomMaxPause) {
		select {
		case <-wctx.Done():
			return nil, noRoom(ctx, bound, err)
		case <-timer.C:
		}
		c, again := pool.Acquire(context.WithValue(wctx, roomWaitKey{}, true))
		switch {
		case again == nil:
			return c, nil
		case wctx.Err() != nil:
			return nil, noRoom(ctx, bound, err)
		case !tooManyConnections(again):
			return nil, again
		}
		err = again
		timer.Reset(pause)
	}
}

// roomWaitKey marks the context of awaitRoom's tries: a write pool's
// BeforeConnect (refuseInRecovery) ends the wait once its server is seen
// in recovery.
type roomWaitKey struct{}

// errInRecovery is the end of a call's wait for room (awaitRoom) on a
// server that a check saw in recovery meanwhile: the call was not sent.
var errInRecovery = errors.New("the server was seen in recovery (demoted, or restarted as a standby) while the call waited for room there: it takes no writes, so the call no longer waits for it")

// refuseInRecovery wraps the BeforeConnect (next) of s's write pool so
// that a try of awaitRoom, which has no handle on the server its pool
// reaches (acquireConn), fails with errInRecovery once s was seen in
// recovery: a check saw the primary demoted (a standby promoted and the
// old primary restarted as its standby, with no reload) while a call
// waited for room there, and the call, not sent, goes to the node taking
// the writes now, if any (see retryable), rather than wait out
// connect_timeout for a session that would refuse it (25006).
func (s *server) refuseInRecovery(next func(context.Context, *pgx.ConnConfig) error) func(context.Context, *pgx.ConnConfig) error {
	return func(ctx context.Context, cc *pgx.ConnConfig) error {
		if ctx.Value(roomWaitKey{}) != nil && s.recovery.Load() {
			return errInRecovery
		}
		if next != nil {
			return next(ctx, cc)
		}
		return nil
	}
}

// awaitsRoom reports whether a call on s whose dial was refused with err
// waits for room (awaitRoom): a refusal for want of room, by a server
// last seen out of recovery. One in recovery takes no write, and a read
// on it leaves for another node at once, as a replica's read pool's
// does: a demoted declared primary serves reads through its write pool
// (readPoolOf), whose refusal would otherwise hold each read there up to
// connect_timeout.
func (s *server) awaitsRoom(err error) bool {
	return tooManyConnections(err) && !s.recovery.Load()
}

// noRoom is awaitRoom's error when no room came within its wait (bound),
// or the caller's context (ctx) ended first; err is the server's refusal.
func noRoom(ctx context.Context, bound time.Duration, err error) error {
	waited := fmt.Sprintf("none came free within connect_timeout (%s)", bound)
	if ctx.Err() != nil {
		waited = fmt.Sprintf("the caller's context ended (%v) before one came free", context.Cause(ctx))
	}
	return fmt.Errorf("the server has no room for another session (max_connections, or the role's or database's CONNECTION LIMIT, reached) and %s: raise max_connections or the CONNECTION LIMIT, or lower pool.max_conns of the routers and clients that share the server: %w", waited, err)
}
