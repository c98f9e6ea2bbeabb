package routerlib

import (
	"context"

	"github.com/pgreplication/terraform-provider-pgreplication/internal/sqllex"
)

// Reason says why a statement went to the node it went to.
type Reason uint8

const (
	// ReasonReplica: a read sent to a healthy replica by the read policy.
	ReasonReplica Reason = iota + 1
	// ReasonWrite: a write, DDL, locking read or call to a writing function.
	ReasonWrite
	// ReasonForcedPrimary: the context carried [Primary], or the call
	// needs the primary itself ([Router.Acquire], [Router.MigrationConn],
	// [Router.Ping], [SessionMiddleware.Verify]).
	ReasonForcedPrimary
	// ReasonInTransaction: Begin, or BeginTx without read-only access mode
	// or with serializable isolation (a hot standby refuses it).
	ReasonInTransaction
	// ReasonCaughtUp: a read-your-writes read sent to a replica that has
	// replayed the session's last write.
	ReasonCaughtUp
	// ReasonSticky: a read-your-writes read sent to the primary because no
	// replica replayed the session's last write within wait_timeout, or
	// because the session's position is unknown (see [Conn.Release]) and
	// the primary could not be asked for its own.
	ReasonSticky
	// ReasonStrong: consistency mode "strong" sends every read to the primary.
	ReasonStrong
	// ReasonFallback: no replica could serve the read; the policy's fallback
	// sent it to the primary.
	ReasonFallback
	// ReasonLagging: like ReasonFallback, and at least one replica was out
	// of rotation because it lagged.
	ReasonLagging
	// ReasonRoute: a read on a named [Route].
	ReasonRoute
	// ReasonReadOnlyRetry: a replica rejected the statement as a write
	// (SQLSTATE 25006); it was retried on the primary and is now known to
	// be a write.
	ReasonReadOnlyRetry
	// ReasonConnRetry: the connection to a replica failed; the read was
	// retried on another node.
	ReasonConnRetry
)

var reasonNames = [...]string{
	ReasonReplica:       "replica",
	ReasonWrite:         "write",
	ReasonForcedPrimary: "forced primary",
	ReasonInTransaction: "in transaction",
	ReasonCaughtUp:      "caught up",
	ReasonSticky:        "sticky",
	ReasonStrong:        "strong",
	ReasonFallback:      "fallback",
	ReasonLagging:       "lagging",
	ReasonRoute:         "route",
	ReasonReadOnlyRetry: "read-only retry",
	ReasonConnRetry:     "connection retry",
}

// String returns the reason in words, such as "forced primary".
func (r Reason) String() string {
	if int(r) < len(reasonNames) && reasonNames[r] != "" {
		return reasonNames[r]
	}
	return "unknown"
}

// Op is the [Router] method that made a decision.
type Op uint8

// The operations a [Decision] can come from.
const (
	OpExec Op = iota + 1
	OpQuery
	OpQueryRow
	OpSendBatch
	OpCopyFrom
	OpBegin
	OpAcquire // Router.Acquire
	OpMigrate // Router.MigrationConn
	OpPing    // Router.Ping
	// OpVerifySession: [SessionMiddleware.Verify] asks the primary for its
	// WAL position, for an LSN beyond every position seen so far.
	OpVerifySession
)

var opNames = [...]string{
	OpExec: "Exec", OpQuery: "Query", OpQueryRow: "QueryRow", OpSendBatch: "SendBatch", OpCopyFrom: "CopyFrom", OpBegin: "Begin",
	OpAcquire: "Acquire", OpMigrate: "MigrationConn", OpPing: "Ping", OpVerifySession: "SessionMiddleware.Verify",
}

// String returns the method name, such as "QueryRow".
func (o Op) String() string {
	if int(o) < len(opNames) && opNames[o] != "" {
		return opNames[o]
	}
	return "unknown"
}

// A Decision is one routing decision: which node serves a call and why.
type Decision struct {
	Op Op
	// SQL is the statement as the caller wrote it, literals included: the
	// batch's first for SendBatch, "COPY table" for CopyFrom, "BEGIN" for
	// Begin, empty for Acquire, MigrationConn, Ping and VerifySession.
	// Log it through [RedactSQL].
	SQL    string
	Node   string // the node's name in the router file
	Reason Reason
	Route  string // the route's name for ReasonRoute, else empty
}

// A Tracer receives every routing decision. TraceRoute runs on the caller's
// goroutine before the statement is sent, so it must be fast and safe for
// concurrent use. With no tracer set, routing costs no allocation.
type Tracer interface {
	TraceRoute(ctx context.Context, d Decision)
}

// TracerFunc adapts a function to [Tracer].
type TracerFunc func(ctx context.Context, d Decision)

// TraceRoute calls f(ctx, d).
func (f TracerFunc) TraceRoute(ctx context.Context, d Decision) { f(ctx, d) }

// RedactSQL returns sql as routerlib's own log lines show it: every string
// constant ('…', E'…', U&'…', $tag$…$tag$) replaced by '?', every numeric
// constant by ?, and every comment by /* ? */ or -- ?, read with the same
// lexer that classifies statements, so a comment or a quoted name cannot hide
// a literal from it. Use it before a [Tracer] logs [Decision.SQL]: a token or
// password written into the SQL text, or into a comment, would otherwise
// reach the log. Parameters ($1) are not part of the text and need no
// redaction.
func RedactSQL(sql string) string { return sqllex.Redact(sql) }
