package routerlib

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"

	"github.com/jackc/pgx/v5/pgconn"
)

// nodeConns holds every connection the router has open to one node: its
// pools', its health checks', and the cancel requests pgx sends. When the
// node stops answering, closing their sockets ends at once every call
// blocked on it, wherever it is (a query, a transaction, a connection being
// set up), which no context can do for a call that is already running.
type nodeConns struct {
	name string
	reg  *connRegistry

	mu   sync.Mutex
	open map[*trackedConn]struct{} // guarded by mu
	// down, while set, makes the pools' dials fail at once, so that a call
	// still aimed at a node just cut off does not wait connect_timeout for
	// it; the health checks still dial, to see it come back. Guarded by mu.
	down error
	// closed makes every dial fail: the Router is closed. Guarded by mu.
	closed bool
}

// connRegistry holds the nodeConns of every node the Router has built and
// not yet closed, those of retired topologies still draining included, so
// that Close reaches them all.
type connRegistry struct {
	mu     sync.Mutex
	sets   map[*nodeConns]struct{} // guarded by mu
	closed bool                    // guarded by mu
}

// add returns a new nodeConns for the node called name.
func (r *connRegistry) add(name string) *nodeConns {
	c := &nodeConns{name: name, reg: r, open: map[*trackedConn]struct{}{}}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.sets == nil {
		r.sets = map[*nodeConns]struct{}{}
	}
	r.sets[c] = struct{}{}
	c.closed = r.closed
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

// errRouterClosed is what a dial returns once the Router is closed.
var errRouterClosed = errors.New("the router is closed")

// dialer wraps next so that the connections it opens are tracked. A
// pool's dialer (check false) refuses to dial while the node is cut off.
func (c *nodeConns) dialer(next pgconn.DialFunc, check bool) pgconn.DialFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
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
// is called. The health check's connection stays: its check in flight ends
// by itself, and answers when a node that was only slow does.
func (c *nodeConns) cut(cause error) {
	c.mu.Lock()
	c.down = cause
	c.mu.Unlock()
	c.closeOpen(false)
}

// closeOpen closes the connections open to the node: the pools' only, or
// the health check's too.
func (c *nodeConns) closeOpen(checks bool) {
	c.mu.Lock()
	open := make([]*trackedConn, 0, len(c.open))
	for tc := range c.open {
		if checks || !tc.check {
			open = append(open, tc)
		}
	}
	c.mu.Unlock()
	for _, tc := range open {
		tc.Close()
	}
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
	c.closed = true
	c.mu.Unlock()
	c.closeOpen(true)
}

// A trackedConn is a connection in a nodeConns; closing it removes it.
type trackedConn struct {
	net.Conn
	set   *nodeConns
	check bool // dialed for the health check (or a cancel request of its connection)
	once  sync.Once
}

func (tc *trackedConn) Close() error {
	err := net.ErrClosed
	tc.once.Do(func() {
		tc.set.mu.Lock()
		delete(tc.set.open, tc)
		tc.set.mu.Unlock()
		err = tc.Conn.Close()
	})
	return err
}
