package routerlib

import (
	"errors"
	"io"
	"net"
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
		sev := pgErr.SeverityUnlocalized // PostgreSQL 9.6 and later; Severity may be translated
		if sev == "" {
			sev = pgErr.Severity
		}
		return sev == "FATAL" || sev == "PANIC"
	}
	var netErr net.Error
	return errors.As(err, &netErr) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, pgconn.ErrConnClosed) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNREFUSED)
}

// rejectedAsWrite reports whether err is a standby's refusal of a write
// (SQLSTATE 25006, read_only_sql_transaction).
func rejectedAsWrite(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "25006"
}
