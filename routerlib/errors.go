package routerlib

import "errors"

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
