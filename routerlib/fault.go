package routerlib

import (
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
)

// nodeFault reports whether err, returned by a call on a node, says that the
// node or the network to it failed, rather than the statement: connecting
// failed (dial, TLS, authentication), the server ended the session (an
// error of severity FATAL or PANIC: it shut down, crashed or terminated the
// backend), or the connection broke under the call (closed, reset, timed
// out). Only such a failure counts against the node.
//
// A FATAL the session earned itself is not one: the server ended it
// because the statement's transaction ran past a limit (see
// sessionTimeout), which says nothing about the node.
//
// An error the server sent for the statement is the caller's, whatever its
// SQLSTATE, class 08 included: the server raises those when its own
// outbound connection fails (dblink, postgres_fdw), and that says nothing
// about the server itself. So does an error pgx raised before sending (an
// argument it cannot encode). The caller's own deadline or cancel is
// checked before: once it is ruled out, a deadline in err is one below it
// (connect_timeout, a socket timeout), which does count.
func nodeFault(err error) bool {
	if err == nil {
		return false
	}
	var connectErr *pgconn.ConnectError
	if errors.As(err, &connectErr) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		sev := severity(pgErr)
		return (sev == "FATAL" || sev == "PANIC") && !sessionTimeout(pgErr)
	}
	var netErr net.Error
	return errors.As(err, &netErr) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, pgconn.ErrConnClosed) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNREFUSED)
}

// sessionTerminated reports whether err is the server ending the session
// with FATAL 57P01 (admin_shutdown): pg_terminate_backend() on that one
// session of a healthy server, or a shutdown, which sends it to every
// session. A nodeFault all the same, since the connection is gone, but
// not proof that the node is: see server.recheck. Behind PgBouncer in
// transaction mode the same ending can come as PgBouncer's FATAL 08P01
// "invalid server parameter": the server session it gave the call was
// ended while PgBouncer set the client's parameters on it (application_name
// and the like, before it forwards the call), and PgBouncer ends the
// client's session with that message instead of the server's error.
func sessionTerminated(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || severity(pgErr) != "FATAL" {
		return false
	}
	return pgErr.Code == "57P01" || pgErr.Code == "08P01" && pgErr.Message == bouncerSetFailed
}

// bouncerSetFailed is PgBouncer's message (1.18 and later) when the server
// session it gave a call answered its setting of the client's parameters
// with an error; see sessionTerminated.
const bouncerSetFailed = "invalid server parameter"

// sessionTimeout reports whether pgErr is the server ending the session
// because its transaction ran past a limit the DBA set: transaction_timeout
// (25P04, PostgreSQL 17) or idle_in_transaction_session_timeout (25P03).
// Like statement_timeout's ERROR 57014 it is the statement's: run again
// elsewhere it would only time out again, and the transaction it ended
// was rolled back, so a write did not commit. The server ends the session
// rather than the statement, and pgx drops the connection from its pool.
func sessionTimeout(pgErr *pgconn.PgError) bool {
	return pgErr.Code == "25P04" || pgErr.Code == "25P03"
}

// idleSessionEnded reports whether err is the server ending a session that
// sat idle longer than idle_session_timeout (FATAL 57P05, PostgreSQL 14 on).
// The server raises it while it waits for the next command, and exits
// without processing what the client sent meanwhile: PostgresMain checks
// for the timeout after reading a message and before running it ("so that
// any last-moment timeout is certain to be detected"). So the call that
// meets it never ran, a write no more than a read, and nothing is wrong
// with the node: the call runs again on a live session (see retryable).
// The timeout applies only outside a transaction, so no earlier statement
// of a transaction is lost with the session either.
func idleSessionEnded(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "57P05" && severity(pgErr) == "FATAL"
}

// severity is the error's severity in English: SeverityUnlocalized from
// PostgreSQL 9.6 on; before, Severity, which lc_messages may translate.
func severity(pgErr *pgconn.PgError) string {
	if pgErr.SeverityUnlocalized != "" {
		return pgErr.SeverityUnlocalized
	}
	return pgErr.Severity
}

// rejectedAsWrite reports whether err is a standby's refusal of a write
// (SQLSTATE 25006, read_only_sql_transaction).
func rejectedAsWrite(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "25006"
}

// bouncerTimedOut reports whether err is PgBouncer ending a client's
// session because its statement ran past query_timeout (FATAL 08P01
// "query timeout"): PgBouncer's statement_timeout, the statement's and
// not the node's. PgBouncer cannot cancel it: it closes the server
// session too, and the server runs the statement to its end, so a write
// may have committed (a nodeFault all the same: the connection is gone,
// and what the caller must know of a write is failSent's). But the node
// answered, and a read run again would run as long everywhere: so it
// takes no node out of rotation (nodeFailed), and a read is not run
// again. A node that hangs behind PgBouncer meets the timeout too: the
// call asks for a check now, which does not answer either, and the checks
// eject it after eject_after failures, as any node that hangs; until then
// a read there fails after query_timeout rather than run elsewhere.
func bouncerTimedOut(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "08P01" && severity(pgErr) == "FATAL" && pgErr.Message == bouncerQueryTimeout
}

// bouncerQueryTimeout is PgBouncer's message (1.18 and later) for a client
// it ends past query_timeout; see bouncerTimedOut.
const bouncerQueryTimeout = "query timeout"

// bouncerRefused reports whether err is PgBouncer ending a client's
// session before it gave the call a server connection, so that the call
// never reached a server: the server's logins fail (server_login_retry),
// it cannot connect to the server, no server connection came free within
// query_wait_timeout or query_timeout, or it takes no more clients; or the
// server session it gave the call ended while it set the client's
// parameters there, before the call (see sessionTerminated). PgBouncer sends each as
// FATAL 08P01 with a fixed English message (it has no SQLSTATE of its own
// and is never translated), which a PostgreSQL server does not send: its
// 08P01 says the client broke the protocol. Other PgBouncer errors, such as
// "server conn crashed?" or "query timeout", come after the call was
// forwarded, and say nothing of whether it ran.
func bouncerRefused(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "08P01" || severity(pgErr) != "FATAL" {
		return false
	}
	for _, m := range bouncerNotForwarded {
		if strings.HasPrefix(pgErr.Message, m) {
			return true
		}
	}
	return false
}

// bouncerNotForwarded are the beginnings of PgBouncer's messages (1.18 and
// later) for a client it ends while the client waits for a server
// connection, or for one ready for its call; see bouncerRefused.
var bouncerNotForwarded = []string{
	"server login has been failing",      // the pool's last server login failed (server_login_retry)
	"pgbouncer cannot connect to server", // no server connection, and the last connect failed
	"query_wait_timeout",                 // no server connection came free in time
	"query_timeout",                      // none came free within query_timeout (a forwarded call's is "query timeout", see bouncerTimedOut)
	"no more connections allowed",        // max_client_conn
	bouncerSetFailed,                     // the server session it gave the call ended before the call went
}
