package routerlib

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

var (
	// ErrNoPrimary means no node is taking writes: the declared primary is
	// unreachable or in recovery, and no other declared node has been
	// promoted. Writes fail fast with it rather than reach a standby.
	ErrNoPrimary = errors.New("routerlib: no primary is taking writes")

	// ErrNoReplica means no replica can serve a read (all are ejected,
	// unreachable or lagging) and the read policy's fallback is "error".
	ErrNoReplica = errors.New("routerlib: no healthy replica")

	// ErrUnknownRoute means [Route] named a route the router file does not
	// declare.
	ErrUnknownRoute = errors.New("routerlib: unknown route")

	// ErrClosed means the [Router] was closed.
	ErrClosed = errors.New("routerlib: router closed")
)

// ErrMaybeCommitted means that a write, or a transaction's COMMIT, was sent
// and its connection then failed before the answer came (the node stopped
// answering and the router cut it off, the server ended the session, the
// network broke, the Router was closed, the caller's own deadline or cancel
// came first: pgx closes the connection then, and the cancel request it
// sends the server can come after the commit; the error then also matches
// the context's): the server may
// have committed it, or not. The router never sends it again; look at
// what the server holds before running it again, once no session of the
// server runs it (pg_stat_activity): a connection closed under a
// statement does not stop it, for the server notices only when it
// answers, so it may commit after the error (behind PgBouncer's
// query_timeout a read back at once showed no row, 2 s later the row),
// and a server that hung runs it on when it resumes. Test for it with [errors.Is]; the error wraps
// the connection's failure too, and [ErrClosed] when the Router was
// closed under it. A write the server refused, or that was never sent,
// is not one; nor is a read that ran on the primary only because the
// caller ([Primary]) or the consistency mode (strong) sends reads there: a
// statement the router classifies as a read fails as a read does.
var ErrMaybeCommitted = errors.New("routerlib: may have committed")

// maybeCommitted returns err, the failure of what on node after it was
// sent, as an ErrMaybeCommitted, saying why the router cut the node off
// when it did (cause).
func maybeCommitted(node, what string, cause, err error) error {
	msg := fmt.Sprintf("routerlib: node %q failed during %s, which may have committed", node, what)
	switch {
	case cause == ErrClosed:
		msg = fmt.Sprintf("%v while %s was in flight on node %q, which may have committed", ErrClosed, what, node)
	case cause != nil:
		msg = fmt.Sprintf("routerlib: node %q %s (%v) during %s, which may have committed", node, cutReason(cause), cause, what)
	case bouncerTimedOut(err):
		// PgBouncer closed the server session under the statement,
		// which the server does not notice until it answers: a read
		// back now may not see a commit still to come.
		msg = fmt.Sprintf("routerlib: PgBouncer in front of node %q ended %s, which ran past its query_timeout; the server runs it on to its end, so it may have committed, or commit later: before reading it back, wait until the server no longer runs it (pg_stat_activity)", node, what)
	}
	return &commitUnknown{msg: msg, cause: cause, err: err}
}

// A writesMoved is why the router cut off a node that still answers out
// of recovery: it took the writes, and another node took them from it (a
// promotion nobody fenced it for), or a split brain left none.
type writesMoved struct{ msg string }

func (e *writesMoved) Error() string { return e.msg }

// cutReason says, for the message of a call the router cut off, why it
// cut the node's connections (cause, not nil): the node stopped
// answering, or lost the writes while it still answers.
func cutReason(cause error) string {
	var moved *writesMoved
	if errors.As(cause, &moved) {
		return "lost the writes"
	}
	return "stopped answering"
}

// A commitUnknown is an [ErrMaybeCommitted].
type commitUnknown struct {
	msg   string
	cause error // why the router cut the connection, or nil
	err   error // the connection's failure
}

func (e *commitUnknown) Error() string { return e.msg + ": " + e.err.Error() }

func (e *commitUnknown) Is(target error) bool { return target == ErrMaybeCommitted }

func (e *commitUnknown) Unwrap() []error {
	if e.cause == nil {
		return []error{e.err}
	}
	return []error{e.cause, e.err}
}

// An unacquired is the failure of a call's wait for a connection from
// pgxpool (the caller's deadline or cancel there is the bare context
// error, as on a connection): nothing was sent (see notSent). Its text is
// the wait's error's.
type unacquired struct{ err error }

func (e *unacquired) Error() string { return e.err.Error() }

func (e *unacquired) Unwrap() error { return e.err }

// acquireConn is [pgxpool.Pool.Acquire], its failure marked unacquired;
// a dial the writer's server refused for want of room waits for room
// (awaitRoom). On a write pool it takes one of the connections kept
// between writes first (see readConns).
func acquireConn(ctx context.Context, pool *pgxpool.Pool) (c *pgxpool.Conn, err error) {
	if k, ok := keptWrites.Load(pool); ok {
		c, _, err = k.(*readConns).acquire(ctx, pool, tooManyConnections)
	} else {
		c, err = acquireRoom(ctx, pool, tooManyConnections)
	}
	if err != nil {
		return nil, &unacquired{err}
	}
	return c, nil
}

// A monitorRefusedError is the server refusing the settings of the health
// monitor's own connection that [WithMonitorConfig] set (its user,
// password or database differ from the pools'): the router file's are
// not the ones to fix. It names the user and database, never the
// password.
type monitorRefusedError struct {
	user, database string
	err            error // the connection's failure, a refusal (see refusedCode)
}

func (e *monitorRefusedError) Error() string {
	switch refusedCode(e.err) {
	case "3D000":
		return fmt.Sprintf("the health monitor's connection has no database %q, which WithMonitorConfig sets (fix the Database it sets, or create the database): %v", e.database, e.err)
	case "28000":
		return fmt.Sprintf("the health monitor's connection as user %q to database %q, which WithMonitorConfig sets, has no pg_hba.conf entry or that role may not log in (fix the User or Database it sets, or the server's pg_hba.conf): %v", e.user, e.database, e.err)
	}
	return fmt.Sprintf("the health monitor's connection as user %q to database %q, which WithMonitorConfig sets, is refused (fix the User and Password it sets): %v", e.user, e.database, e.err)
}

func (e *monitorRefusedError) Unwrap() error { return e.err }

// monitorRefused reports whether err, the failure of the monitor's
// connection cc, is the server refusing a setting WithMonitorConfig
// changed from the pools' (pool, whose password is poolPassword): 28P01
// refuses the user's password, 3D000 the database, 28000 the user or the
// database (pg_hba.conf, a role that may not log in). A refusal of one
// it left as the pools' is the router file's to fix.
func monitorRefused(err error, cc *pgx.ConnConfig, pool *pgconn.Config, poolPassword string) bool {
	user, database := cc.User != pool.User, cc.Database != pool.Database
	switch refusedCode(err) {
	case "28P01":
		return user || cc.Password != poolPassword
	case "3D000":
		return database
	case "28000":
		return user || database
	}
	return false
}
