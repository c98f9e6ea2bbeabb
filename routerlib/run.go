package routerlib

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgreplication/terraform-provider-pgreplication/internal/sqllex"
)

// Running a call on the target choose picked is the second stage of its
// path: what an attempt's failure means (run the read again elsewhere, or
// return the error as is, or say that a write may have committed), and the
// rows and row wrappers of calls. Choosing again for a new attempt is
// router.go's loop (and retryRows', which continues it past Query's
// return), so this stage never calls back into choose.

// maxAttempts bounds retries of one call: a replica connection failing, or
// a replica rejecting a write.
func maxAttempts(t *topology) int { return len(t.nodes) + 1 }

// retryable reports whether a call that failed with err on tg should run
// again, and records what happened. A read runs again: on the primary when
// a replica rejected it as a write (SQLSTATE 25006, and the statement is
// remembered as a write), or on another node when the node failed under it
// (see nodeFault), which also takes the node out of rotation at once. A
// read or a write whose idle session the server ended (idleSessionEnded)
// runs again, since it never ran, and nothing is ejected. Any other error
// the server sent is the caller's, and so is the caller's own deadline or
// cancel: returned as is, nothing ejected. A read on a read-write session
// (see target.pool) runs again after a node fault only when the failure
// came before anything was sent (notSent). A call on the writer that was
// not sent because the writes left its node while it waited (writesLeft:
// its wait for room, or the checks moving the writes) runs again, on the
// node taking them now. A write's error says what writeError says of it;
// a read on the writer (readOnWriter) fails as a read. The error to
// return is err, or err wrapped with what the caller must know (a write
// that may have committed).
func (r *Router) retryable(ctx context.Context, t *topology, tg target, sql string, err error, st retryState) (retryState, bool, error) {
	tg.n.errors.Add(1)
	st.attempts++
	st.connRetry, st.exclude, st.ended, st.avoid = false, nil, nil, nil
	// BeginTx's BEGIN, which commits nothing, comes with no SQL; a
	// read on the writer (readOnWriter) fails as a read does.
	write := tg.write && sql != "" && !readOnWriter(ctx, t, r.cache.get(sql))
	f := failureOf(ctx, err)
	switch {
	case f == failContext || f == failCut:
		if write {
			return st, false, r.writeError(ctx, f, tg.n, whatWrite, err)
		}
		return st, false, err
	case r.closed.Load() && f != failServer:
		if write {
			return st, false, r.writeError(ctx, f, tg.n, whatWrite, err)
		}
		return st, false, fmt.Errorf("%w while the call was in flight on node %q: %w", ErrClosed, tg.n.name, err)
	case tg.write && writesLeft(t, tg.n, f, err) && st.attempts < maxAttempts(t):
		// Not sent, and the writes left the node while the call waited
		// for it: it goes to the node taking them now, or fails as a
		// call with none does (ErrNoPrimary). The node did not fail.
		st.connRetry = true
		return st, true, err
	case f == failIdle:
		// The call never ran (see idleSessionEnded): a write runs again
		// as safely as a read, on the same node or another; the node
		// stays in rotation.
		if !r.idleAgain(tg.n, st.attempts, maxAttempts(t)) {
			if write {
				return st, false, r.writeError(ctx, f, tg.n, whatWrite, err)
			}
			return st, false, idleEnded(tg.n, "the statement", err)
		}
		st.connRetry = true
		return st, true, err
	case f == failServer:
		if rejectedAsWrite(err) && !tg.write && st.attempts < maxAttempts(t) {
			r.cache.markWrite(sql)
			r.opts.logger.Info("routerlib: a replica rejected a statement as a write; it now goes to the primary", "node", tg.n.name, "sql", sqllex.Redact(sql))
			st.readOnly = true
			return st, true, err
		}
		return st, false, err
	}
	r.nodeFailed(tg.n, err)
	switch {
	case write:
		// Never replayed: the server may have committed it before the
		// connection failed.
		return st, false, r.writeError(ctx, f, tg.n, whatWrite, err)
	case tg.write && sql == "":
		return st, false, fmt.Errorf("routerlib: node %q failed while a transaction began; nothing of it ran or committed: %w", tg.n.name, err)
	case tg.write && f == failNotSent:
		// A read under Primary: the primary alone may serve it.
		return st, false, fmt.Errorf("routerlib: node %q: the read was not sent: %w", tg.n.name, err)
	}
	if bouncerTimedOut(err) {
		return st, false, bouncerTimedOutRead(tg.n, "read", err)
	}
	if tg.pool != tg.n.readPool.Load() && f != failNotSent {
		// A read on a read-write session (the primary serving a fallback
		// or a read-your-writes read): a function it called may have
		// written, and may have committed elsewhere (dblink) or left a
		// trace no rollback undoes (a sequence), before the connection
		// failed. Run again only what never reached the server.
		return st, false, fmt.Errorf("routerlib: node %q %s during a read on its read-write session, not run again in case a function it called wrote: %w", tg.n.name, howFailed(tg.n), err)
	}
	if st.attempts >= maxAttempts(t) {
		// Named as every other failure of a node is: pgx's own text
		// ("unexpected EOF", a FATAL) names none.
		return st, false, fmt.Errorf("routerlib: node %q %s during a read, its last attempt (%d of %d, each failed): %w", tg.n.name, howFailed(tg.n), st.attempts, maxAttempts(t), err)
	}
	st.connRetry, st.exclude = true, tg.n
	if sessionTerminated(err) {
		// The node may well be healthy: it may serve the read again, when
		// no other node can, on a session made after the one that ended
		// (see newSession), which no pg_terminate_backend pass that began
		// before can reach. Behind PgBouncer in transaction pooling that
		// new session is a client session only, which PgBouncer may hand
		// a server session the same pass ends next: one pass can end two
		// attempts of one read there (TestPgBouncerTerminatePassAttempts):
		// so another replica that can serve the read is taken first.
		st.exclude, st.avoid = nil, tg.n
		st.ended, st.endedAt = tg.n.server, time.Now().UnixNano()
	}
	return st, true, err
}

// readOnWriter reports whether a statement of class cl, sent to the
// writer, is a read there: the classifier knows it as one (classRead: no
// primary-only function, see classify), and it is on the primary only
// because the caller asked for it (Primary) or the policy sends every
// read there (consistency strong). Its failure is a read's: nothing it
// ran may have committed (ErrMaybeCommitted is a write's).
func readOnWriter(ctx context.Context, t *topology, cl class) bool {
	return cl&(classWrite|classTx) == 0 && (forcedPrimary(ctx) || t.mode == consistencyStrong)
}

// writesLeft reports whether a call on n that needs the writer failed (f,
// err) before anything was sent because the writes left n while it
// waited there: its wait for room ended once n was seen in recovery
// (errInRecovery), or the checks gave the writes to another node, or to
// none, and cut n off (see cutOldPrimary).
func writesLeft(t *topology, n *node, f failure, err error) bool {
	return f == failServer && errors.Is(err, errInRecovery) || f == failNotSent && t.writer.Load() != n
}

// copyFailed returns err, the failure of a CopyFrom on tg, as writeError
// says it, and records it as retryable does; read says whether pgx had
// read rowSrc (copySource). pgx reads the source on a goroutine it starts
// once it has described the table's columns (a round trip in the exec
// modes, and the first time on a session in the default one), just before
// it sends the COPY statement: a failure before it read anything came
// before the COPY statement went out, so the copy did not commit, and may
// run again (again) when the server had ended the session as idle, the
// source intact, its attempts so far under max. After pgx read rows, the
// copy never runs again (the source cannot be read twice); a session the
// server had ended as idle never read the COPY statement then, and the
// error says so; so does a connection pgx itself closed (writerClosed):
// the copy's end never went out. cut is why the router cut the copy's
// connection off (cutCause), nil if it did not.
func (r *Router) copyFailed(ctx context.Context, tg target, err, cut error, read bool, attempts, max int) (again bool, _ error) {
	tg.n.errors.Add(1)
	f := failureOf(ctx, err)
	if !read {
		switch f {
		case failIdle:
			if !r.closed.Load() && r.idleAgain(tg.n, attempts, max) {
				return true, err
			}
		case failNotSent, failSent:
			if !r.closed.Load() {
				r.nodeFailed(tg.n, err)
			}
		case failCut:
			return false, fmt.Errorf("routerlib: the caller's context ended (%v) before the COPY statement was sent to node %q; the copy did not commit: %w", context.Cause(ctx), tg.n.name, err)
		default:
			return false, err
		}
		if f == failIdle {
			err = idleEnded(tg.n, "the copy", err)
		} else {
			err = fmt.Errorf("routerlib: node %q failed before the COPY statement was sent; the copy did not commit: %w", tg.n.name, err)
		}
		if r.closed.Load() {
			err = fmt.Errorf("%w: %w", ErrClosed, err)
		}
		return false, err
	}
	switch {
	case f == failIdle:
		tg.n.sessionEnded()
		err = fmt.Errorf("routerlib: node %q had ended the session as idle (idle_session_timeout) before it read the COPY statement: the copy did not run, so it did not commit, and was not run again, %s: %w", tg.n.name, sourceRead, err)
		if r.closed.Load() {
			err = fmt.Errorf("%w: %w", ErrClosed, err)
		}
		return false, err
	case f == failSent && writerClosed(err, cut) && !r.closed.Load():
		// Why pgx's writer failed, it did not say: the server may have
		// ended the session as idle (its FATAL unread), or the node may
		// have failed. A check now tells, as after a session the server
		// ended, rather than the node leaving the writes at once.
		tg.n.recheck()
		return false, fmt.Errorf("routerlib: node %q failed under the copy: pgx closed the connection after a write of the copy's rows failed, so the copy's end (CopyDone) never went out: the copy did not commit, and was not run again, %s: %w", tg.n.name, sourceRead, err)
	case (f == failNotSent || f == failSent) && !r.closed.Load():
		r.nodeFailed(tg.n, err)
	}
	return false, r.writeError(ctx, f, tg.n, whatCopy, err)
}

// writerClosed reports whether err, the failure of a CopyFrom after pgx
// read its source, with the caller's context live and the Router open, is
// the connection closed by pgx's own copy writer: "use of closed network
// connection" (net.ErrClosed) when the router did not cut the connection
// off (cut, see cutCause). Only a local Close gives net.ErrClosed; pgx
// (pgconn's CopyFrom, v5.13) closes the connection itself only in its
// writer goroutine, when a write of CopyData failed, and then sends
// CopyFail, never CopyDone, whether its reader or its writer reports the
// failure first: the server never had the copy's end, so it did not
// commit. Every other Close of the connection is the router's (cut, or
// Close) or pgxpool's on a connection no call holds.
func writerClosed(err, cut error) bool {
	return cut == nil && errors.Is(err, net.ErrClosed)
}

// sourceRead says why a copy that did not commit was not run again.
const sourceRead = "since pgx had read rows of its source, which cannot be read twice (call CopyFrom again with a new source)"

// copySource is a CopyFrom's source, which records whether pgx read it.
// pgx reads it on a goroutine of its own, which ends before CopyFrom
// returns.
type copySource struct {
	pgx.CopyFromSource
	read bool
}

func (s *copySource) Next() bool {
	s.read = true
	return s.CopyFromSource.Next()
}

// nodeFailed records that n failed under a call with err, a nodeFault:
// a session ended, maybe by pg_terminate_backend on a healthy node, asks
// for a check now, which takes the node out of rotation if it fails; any
// other failure takes it out at once. A node last seen out of recovery
// that refused a new session for want of room (tooManyConnections: a
// call's wait for room, awaitRoom, ended first) answered: it is full, not
// down, and stays as it is, the writes its own and its health the checks'
// (it was marked unreachable before, its state unknown until the next
// check). A replica that refused so leaves rotation, as awaitRoom says:
// its reads go to another node meanwhile.
func (r *Router) nodeFailed(n *node, err error) {
	if tooManyConnections(err) && !n.recovery.Load() {
		r.opts.logger.Warn("routerlib: the primary has no room for another session; it stays as it is", "node", n.name, "err", err)
		return
	}
	if bouncerTimedOut(err) {
		// The statement's limit, not the node's failure (see
		// bouncerTimedOut); a check now tells a server that hangs
		// behind PgBouncer, which meets the timeout too: it counts as
		// a failed check when it does not answer within health.timeout.
		n.askCheck()
		r.opts.logger.Info("routerlib: PgBouncer ended a call that ran past its query_timeout; the node stays, checked now", "node", n.name, "err", err)
		return
	}
	if sessionTerminated(err) {
		n.recheck()
		r.opts.logger.Info("routerlib: the server ended a session (terminated, or shutting down); checking the node now", "node", n.name, "err", err)
		return
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		// The connection closed in the middle of a message: what
		// PgBouncer's query_timeout does to a call whose rows were
		// streaming (its FATAL lands inside a row it was forwarding,
		// and pgx reads no error), as do a crash and a pooler's KILL.
		// Only a check tells a server that answers from one that is
		// gone; one that is gone refuses it and leaves at once.
		n.recheck()
		r.opts.logger.Info("routerlib: a connection closed in the middle of an answer; checking the node now", "node", n.name, "err", err)
		return
	}
	n.markDown(err) // logs the replica's leaving rotation
	r.opts.logger.Warn("routerlib: connection failed", "node", n.name, "err", err)
}

// bouncerTimedOutRead is the error of a read (what: "read", "read batch")
// PgBouncer ended past its query_timeout on n (see bouncerTimedOut).
func bouncerTimedOutRead(n *node, what string, err error) error {
	return fmt.Errorf("routerlib: PgBouncer in front of node %q ended the %s, which ran past its query_timeout; not run again, since it would run as long on another node (raise query_timeout, or make the query faster): %w", n.name, what, err)
}

// idleAgain records that n ended a call's session as idle
// (idleSessionEnded), and reports whether the call, which never ran, runs
// again: its attempts so far are under max. The sessions idle as long
// are gone too: they are pinged before they are handed out.
func (r *Router) idleAgain(n *node, attempts, max int) bool {
	n.sessionEnded()
	if attempts >= max {
		return false
	}
	r.opts.logger.Debug("routerlib: the server ended an idle session (idle_session_timeout); the call, which did not run, runs again", "node", n.name)
	return true
}

// resendBatch are the results of a batch sent outside a transaction the
// caller holds: an autocommit write batch (write, see sendWriteBatch), or
// a batch of reads (sendReadBatch), which may begin a read-only
// transaction of its own. A session the server had ended as idle
// (idleSessionEnded: the failure of the batch's first result) ran none of
// it: as an Exec or a Query there, the batch is sent again, whole, on
// another session of its pool, while the caller has none of its results
// (again); so is a batch of reads on a replica whose session
// pg_terminate_backend ended, and a batch of reads on a read-write session
// (the primary serving it) that met such an ending before any of it went
// out. A write batch's other failures say what those of a write
// through [Router.Exec] say (writeError), though they take no node out of
// rotation: once it went out, a failure of its connection, or the
// caller's cut, may have come after the server committed it
// ([ErrMaybeCommitted]), whichever result the failure shows in, and it is
// never sent again; a failure sure to have come before anything went out
// (notSent: pgx preparing the batch's statements in a round trip of their
// own, first) says it was not sent. A read batch's say which node failed.
type resendBatch struct {
	pgx.BatchResults
	r          *Router
	ctx        context.Context
	n          *node
	pool       *pgxpool.Pool
	b          *pgx.Batch   // as sent last, the router's own (sendable)
	write      bool         // an autocommit write batch
	readOnlyTx bool         // b begins a read-only transaction
	tx         *releasingTx // the transaction b begins, if it does: the same for every sending
	attempts   int          // sendings that failed: a session the server ended, or a node that failed
	after      int64        // the last ending (57P01) seen on n's server, Unix nanoseconds: a new sending goes on a session made after it
	max        int          // sendings at most (maxAttempts)
	read       bool         // a result was read: the batch is never sent again
	capture    *readCapture // what a batch of reads on the writer's read-write session records (recordIn); nil when it records nothing
}

// again sends the batch again on another session of its pool when err,
// the failure of its first result, says that the server had ended the
// session it went out on as idle (idleSessionEnded), or, for reads on a
// replica's read pool, or reads none of which went out, ended it
// (sessionTerminated: pg_terminate_backend), and reports whether it did:
// the caller then reads that result from the new results.
func (rb *resendBatch) again(err error) bool {
	if rb.read || err == nil || rb.r.closed.Load() || bouncerTimedOut(err) {
		return false
	}
	switch f := failureOf(rb.ctx, err); {
	case f == failIdle:
		rb.attempts++
		if !rb.r.idleAgain(rb.n, rb.attempts, rb.max) {
			return false
		}
	case (f == failSent || f == failNotSent) && !rb.write && (rb.pool == rb.n.readPool.Load() || f == failNotSent):
		// A read on a replica's read pool, which is read only, or one
		// on a read-write session (the primary serving it) that none
		// of went out: pgx met the failure while it prepared the
		// batch's statements, in a round trip before them. Once it
		// went out on a read-write session, a function it called may
		// have written before the failure, and committed elsewhere
		// (dblink) or left a trace no rollback undoes (a sequence), as
		// retryable says of a read there. Where it goes again is
		// chosen as for a Query's read (see Router.readBatchAgain):
		// another node when this one failed, or this one, on a session
		// made after the ending, when the server ended the session
		// (pg_terminate_backend) and no other node can take it.
		next, s, err := rb.r.readBatchAgain(rb, err)
		if next.n == nil && err == nil {
			return false
		}
		fresh := sendable(rb.b)
		detach(rb.b)
		_ = rb.BatchResults.Close() // gives the failed session back to its pool, which drops it
		if rb.tx != nil {
			rb.tx.release()
		}
		if err != nil {
			rb.b = fresh
			rb.failSending(fresh, err)
			return true
		}
		rb.n, rb.pool = next.n, next.pool
		rb.send(rb.recordIn(fresh, s))
		return true
	default:
		return false
	}
	fresh := sendable(rb.b)
	detach(rb.b)
	_ = rb.BatchResults.Close() // gives the ended session back to its pool, which drops it
	if rb.tx != nil {
		rb.tx.release()
	}
	rb.send(fresh)
	return true
}

// failed is err, the failure of one of the batch's results, as the caller
// must see it: a write batch's as writeError says; a read batch's saying
// which node failed and why, when it did (pgx's own error is the server's
// FATAL or a closed connection, which name neither).
func (rb *resendBatch) failed(err error) error {
	if err == nil {
		return nil
	}
	f := failureOf(rb.ctx, err)
	switch {
	case rb.write:
		return rb.r.writeError(rb.ctx, f, rb.n, whatBatch, err)
	case f == failIdle:
		return idleEnded(rb.n, "the read batch", err)
	case f != failNotSent && f != failSent:
		return err
	case bouncerTimedOut(err):
		return bouncerTimedOutRead(rb.n, "read batch", err)
	case rb.r.closed.Load():
		return fmt.Errorf("%w while a read batch was in flight on node %q: %w", ErrClosed, rb.n.name, err)
	case f == failSent && rb.pool != rb.n.readPool.Load():
		return fmt.Errorf("routerlib: node %q failed under a read batch on its read-write session, which was not sent again in case a function it called wrote: %w", rb.n.name, err)
	}
	return fmt.Errorf("routerlib: node %q failed under a read batch, which was not sent again: %w", rb.n.name, err)
}

func (rb *resendBatch) Exec() (pgconn.CommandTag, error) {
	tag, err := rb.BatchResults.Exec()
	for rb.again(err) {
		tag, err = rb.BatchResults.Exec()
	}
	rb.read = true
	return tag, rb.failed(err)
}

func (rb *resendBatch) Query() (pgx.Rows, error) {
	rows, err := rb.BatchResults.Query()
	for rb.again(err) {
		rows, err = rb.BatchResults.Query()
	}
	rb.read = true
	if err != nil {
		return rows, rb.failed(err)
	}
	return &resendBatchRows{Rows: rows, b: rb}, nil
}

func (rb *resendBatch) QueryRow() pgx.Row {
	rows, err := rb.Query()
	if err != nil {
		return errRow{err}
	}
	return writerTxRow{rows}
}

// Close reads the batch's first result itself, when nothing of it was
// read yet: pgx's Close would run that result's callback, and the next
// ones, with the failure of a session ended as idle, before the batch
// could be sent again (a QueryRow callback ran with the FATAL, then with
// the new sending's row). The rest is pgx's, with its rule: a callback's
// error ends the batch, and no callback after it runs.
func (rb *resendBatch) Close() error {
	returned := false
	defer rb.markCut(&returned)
	err := rb.close()
	returned = true
	return rb.recordOutcome(err)
}

// markCut, deferred by Close, marks the session of a batch that records
// (recordIn) when Close is cut before *returned is set (see markOnPanic):
// the batch's Sync went out, and a read of it that wrote commits with its
// position unread. Its connection is released by releasingBatch.Close.
func (rb *resendBatch) markCut(returned *bool) {
	if c := rb.capture; !*returned && c != nil && !c.done {
		c.done = true
		c.session.markLost()
	}
}

func (rb *resendBatch) close() error {
	var fnErr error
	if !rb.read && len(rb.b.QueuedQueries) > 0 {
		if fn := rb.b.QueuedQueries[0].Fn; fn == nil {
			_, _ = rb.Exec() // its failure is the batch's, which Close returns
		} else if fnErr = fn(rb); fnErr != nil {
			for _, q := range rb.b.QueuedQueries[1:] {
				q.Fn = nil
			}
		}
	}
	err := rb.BatchResults.Close()
	for rb.again(err) {
		err = rb.BatchResults.Close()
	}
	rb.read = true
	if fnErr != nil {
		return fnErr
	}
	return rb.failed(err)
}

// Tx is the transaction the batch begins, on its last session (one that
// never began, saying why, when that sending got no connection: see
// resendBatch.unbegun), or nil when it begins none.
func (rb *resendBatch) Tx() pgx.Tx {
	if rb.tx == nil {
		return nil
	}
	return rb.tx
}

// resendBatchRows are the rows of a resendBatch's Query, whose failure
// shows in Err.
type resendBatchRows struct {
	pgx.Rows
	b *resendBatch
}

func (w *resendBatchRows) Err() error { return w.b.failed(w.Rows.Err()) }

// sendable is b as the router sends it, outside a transaction the caller
// holds: new queued queries with b's text, arguments and callbacks, and
// the rest of b (the transaction [pgx.Batch.BeginTx] queued) as it was.
// pgx writes into the queued queries it sends: the description of each
// statement on the session it went out on (its prepared name there,
// undescribed when the server ended the session first), and the text and
// arguments a [pgx.QueryRewriter] gives. Sent so, the caller's own Batch
// stays as the caller queued it, and goes out again as well as the first
// time (pgx keeps a statement's description from before and, for one the
// ended session never described, fails "mismatched param and argument
// count"). A batch sent again (resendBatch.again) is sendable of the one
// sent last, whose callbacks it then takes (detach).
func sendable(b *pgx.Batch) *pgx.Batch {
	fresh := *b
	qs := make([]pgx.QueuedQuery, len(b.QueuedQueries))
	fresh.QueuedQueries = make([]*pgx.QueuedQuery, len(b.QueuedQueries), len(b.QueuedQueries)+1) // room for sendReadBatchCapture's query
	for i, q := range b.QueuedQueries {
		qs[i] = pgx.QueuedQuery{SQL: q.SQL, Arguments: q.Arguments, Fn: q.Fn}
		fresh.QueuedQueries[i] = &qs[i]
	}
	return &fresh
}

// detach takes the callbacks out of b, a sending of the router's own
// (sendable) that failed, so that closing it, which its caller does
// next, runs none of them with its error (a QueryRow callback would see
// the FATAL, then the new sending's row).
func detach(b *pgx.Batch) {
	for _, q := range b.QueuedQueries {
		q.Fn = nil
	}
}

// idleEnded is the error of a call (what) that met a session n had ended
// as idle at its last attempt, or its only one.
func idleEnded(n *node, what string, err error) error {
	return fmt.Errorf("routerlib: node %q had ended the session as idle (idle_session_timeout); %s did not run: %w", n.name, what, err)
}

// A failure is what the failure of a call on a node says of the call:
// failureOf tells it, the same for every call, and retryable (reads and
// writes), writeError (writes outside a transaction) and writerTx.failed
// (a transaction's) say what it means.
type failure uint8

const (
	failServer  failure = iota // the server's answer to the statement, or pgx refused it before sending: the caller's, as is
	failContext                // the caller's deadline or cancel before the call went out, or the Router refused it as closed: as is
	failCut                    // the caller's deadline or cancel after it went out (cutByCaller)
	failIdle                   // the server had ended the session as idle: the call never ran (idleSessionEnded)
	failNotSent                // the node failed before the call went out (notSent)
	failSent                   // the node failed after the call went out: a write may have committed
)

// failureOf says what err, the failure of a call made under ctx, says of
// the call (see failure).
func failureOf(ctx context.Context, err error) failure {
	switch {
	case ctx.Err() != nil || errors.Is(err, ErrClosed):
		if cutByCaller(ctx, err) {
			return failCut
		}
		return failContext
	case idleSessionEnded(err):
		return failIdle
	case !nodeFault(err):
		return failServer
	case notSent(err):
		return failNotSent
	}
	return failSent
}

// What writeError's errors call the write that failed.
const (
	whatWrite = "write"
	whatBatch = "write batch"
	whatCopy  = "copy"
)

// writeError returns err, the failure f of a write (what: whatWrite,
// whatBatch, whatCopy) sent on node n outside BEGIN … COMMIT, as its
// caller must see it: one answer for each way a write fails, whichever
// call sent it (Exec, Query and QueryRow through retryable, an autocommit
// SendBatch through resendBatch, CopyFrom). The server's answer, or the
// caller's context ending before the write went out, is the error as is;
// the caller's cut after it went out may have come after the commit
// (callerCut, an [ErrMaybeCommitted] that matches the context's error
// too); a session the server had ended as idle never ran it (the callers
// that can send it again do so first, see idleAgain); a node that failed
// before it went out did not run it; one that failed after may have
// committed it ([ErrMaybeCommitted], with why the router cut the node off,
// or [ErrClosed]). A Router closed under a write that did not run makes
// the error match ErrClosed too.
func (r *Router) writeError(ctx context.Context, f failure, n *node, what string, err error) error {
	switch f {
	case failCut:
		return callerCut(ctx, n.name, "a "+what, err)
	case failIdle:
		err = idleEnded(n, "the "+what, err)
	case failNotSent:
		if what == whatCopy {
			// pgconn says nothing went out also of a copy whose rows, or
			// whose end (CopyDone), it could not write at all after its
			// COPY statement went out: the server commits a COPY at its
			// end, which it never had.
			err = fmt.Errorf("routerlib: node %q failed before the end of the %s was sent; it did not commit, and was not run again, %s: %w", n.name, what, sourceRead, err)
			break
		}
		err = fmt.Errorf("routerlib: node %q: the %s was not sent: %w", n.name, what, err)
	case failSent:
		cause := n.conns.cause()
		if r.closed.Load() {
			cause = ErrClosed
		}
		return maybeCommitted(n.name, "a "+what, cause, err)
	default:
		return err
	}
	if r.closed.Load() {
		return fmt.Errorf("%w: %w", ErrClosed, err)
	}
	return err
}

// howFailed says, for the message of a read that failed on node n, how:
// "failed", or why the router cut n off while the read was in flight
// (pgx's own text, a deadline met or "conn closed", names neither the
// node nor why; see cutMidCall). Writes say it in maybeCommitted.
func howFailed(n *node) string {
	if cause := n.conns.cause(); cause != nil {
		return fmt.Sprintf("%s (%v)", cutReason(cause), cause)
	}
	return "failed"
}

// cutByCaller reports whether err is the caller's own deadline or cancel
// (ctx's) cutting a call after it went out, before its answer came: pgx
// then closes the connection and sends the server a cancel request, which
// can come after the commit (a COMMIT waiting for a synchronous standby has
// committed locally: the cancel ends only its wait).
// pgconn marks a deadline met on the connection (pgconn.Timeout); a cancel
// is the bare context.Canceled, as is the caller's deadline or cancel met
// while the call waits in pgxpool for a connection, which the write paths
// mark unacquired (notSent).
func cutByCaller(ctx context.Context, err error) bool {
	if ctx.Err() == nil || notSent(err) || errors.As(err, new(*pgconn.PgError)) {
		return false
	}
	return pgconn.Timeout(err) || errors.Is(err, context.Canceled)
}

// callerCut is the error of a write, or of a transaction's COMMIT (what),
// on node that cutByCaller: an [ErrMaybeCommitted] that still matches the
// context's error.
func callerCut(ctx context.Context, node, what string, err error) error {
	return &commitUnknown{msg: fmt.Sprintf("routerlib: the caller's context ended (%v) during %s on node %q, which may have committed", context.Cause(ctx), what, node), err: err}
}

// notSent reports whether err is sure to have come before the statement
// reached the server: the connection was never made, pgconn says so,
// PgBouncer refused the call before forwarding it (see bouncerRefused),
// the call never had a connection (unacquired), or a batch failed while
// pgx prepared its statements, in a round trip of their own before any
// of them went out ([pgx.ErrPreprocessingBatch]).
func notSent(err error) bool {
	var connectErr *pgconn.ConnectError
	return errors.As(err, &connectErr) || pgconn.SafeToRetry(err) || bouncerRefused(err) ||
		errors.As(err, new(*unacquired)) || errors.As(err, new(pgx.ErrPreprocessingBatch))
}

func (r *Router) count(tg target) {
	if tg.write {
		tg.n.writes.Add(1)
	} else {
		tg.n.reads.Add(1)
	}
}

// errRows is the Rows of a call that failed before reaching a server.
type errRows struct{ err error }

func (e errRows) Close() {}

func (e errRows) Err() error { return e.err }

func (e errRows) CommandTag() pgconn.CommandTag { return pgconn.CommandTag{} }

func (e errRows) FieldDescriptions() []pgconn.FieldDescription { return nil }

func (e errRows) Next() bool { return false }

func (e errRows) Scan(...any) error { return e.err }

func (e errRows) Values() ([]any, error) { return nil, e.err }

func (e errRows) RawValues() [][]byte { return nil }

func (e errRows) Conn() *pgx.Conn { return nil }

func (e errRows) TypeMap() *pgtype.Map { return nil }

// retryRow is QueryRow's [pgx.Row] for a retryRows: the retryRows itself
// under the Row's Scan, so that a replica read allocates one wrapper, not
// a retryRows and a row around it.
type retryRow retryRows

var _ pgx.Row = (*retryRow)(nil)

// Scan scans the row. When the row came and the session failed before the
// statement's end (pg_terminate_backend between the row and
// CommandComplete, or the node going down), the caller has nothing of the
// call yet but dest, which a second run overwrites: a read runs again as
// one that failed before its first row would (retryable decides, and
// bounds it; a write it never runs again then).
func (w *retryRow) Scan(dest ...any) error {
	rows := (*retryRows)(w)
	err := scanRow(rows, dest)
	if !rows.againAfterRow(err) {
		if rows.err != nil {
			return rows.err // why it did not run again
		}
		return err // a Scan error, or the server's answer: the caller's
	}
	return scanRow(rows.rows, dest)
}

// againAfterRow runs the call again when its session failed with err
// after the first row came, while the caller keeps nothing of it yet:
// QueryRow's dest, which the second run overwrites, or the first row
// routerlib/stdlib reads ahead of database/sql (see driverhook.Again).
// A read runs again as one that failed before its first row would
// (retryable decides, and bounds it; a write it never runs again then).
// It reports whether w.rows are the new rows; if not, and retryable said
// no, w.err says why.
func (w *retryRows) againAfterRow(err error) bool {
	if err == nil || w.err != nil || !w.started || !nodeFault(err) {
		return false
	}
	return w.again(err)
}

// scanRow scans the first row of rows into dest and closes rows, as
// [pgx.Row] says: no row is [pgx.ErrNoRows].
func scanRow(rows pgx.Rows, dest []any) error {
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return err
		}
		return pgx.ErrNoRows
	}
	if err := rows.Scan(dest...); err != nil {
		return err
	}
	rows.Close()
	return rows.Err()
}

type errRow struct{ err error }

func (e errRow) Scan(...any) error { return e.err }
