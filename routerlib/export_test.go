package routerlib

import (
	"context"
	"net"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/internal/sqllex"
)

// ClassifyForTest reports whether the classifier sends sql to the primary.
func ClassifyForTest(sql string) (write bool) { return classify(sql)&classWrite != 0 }

// ChooseForTest runs the routing decision for a read or write of sql (with
// its class cached) and returns the chosen node's name. It is the hot path
// that must not allocate.
func (r *Router) ChooseForTest(ctx context.Context, sql string) (string, error) {
	return r.routeForTest(ctx, sql, false)
}

// ReadForTest makes what a read does to the Router's shared state short of
// running on a connection: enter the topology, choose the node, count the
// read, leave. It returns the node's name.
func (r *Router) ReadForTest(ctx context.Context, sql string) (string, error) {
	return r.routeForTest(ctx, sql, true)
}

func (r *Router) routeForTest(ctx context.Context, sql string, count bool) (string, error) {
	t, err := r.enter()
	if err != nil {
		return "", err
	}
	defer t.leave()
	tg, err := r.choose(ctx, t, OpQuery, sql, r.cache.get(sql), retryState{})
	if err != nil {
		return "", err
	}
	if count {
		r.count(tg)
	}
	return tg.n.name, nil
}

// FunctionForTest says how the classifier treats a call of the function
// named exactly name (as pg_proc spells it): primary-only, or read-safe with
// the reviewed reason; neither when it is in no list.
func FunctionForTest(name string) (primary bool, readSafeReason string) {
	return primaryFunction(sqllex.Token{Kind: sqllex.Quoted, Text: `"` + name + `"`}), readSafeFunctions[name]
}

// ReadSafeFunctionsForTest returns the reviewed read-safe list.
func ReadSafeFunctionsForTest() map[string]string { return readSafeFunctions }

// CachedPositionForTest returns the primary position the middleware has
// cached, 0 if none.
func (m *SessionMiddleware) CachedPositionForTest() LSN {
	if p := m.primary.Load(); p != nil {
		return p.lsn
	}
	return 0
}

// KeptForTest returns how many read-pool connections the node called name
// keeps between reads (see readConns).
func (r *Router) KeptForTest(name string) int32 {
	n := r.cur.Load().byName[name]
	return n.kept.count.Load()
}

// KeptWritesForTest returns how many write-pool connections the node
// called name keeps between writes (see readConns).
func (r *Router) KeptWritesForTest(name string) int32 {
	n := r.cur.Load().byName[name]
	return n.keptW.count.Load()
}

// WithKeptTickForTest sets how long a node keeps a read-pool connection
// between reads at most (readConnsTick): an hour shows what keeping them
// does when nothing else gives them back.
func WithKeptTickForTest(d time.Duration) Option {
	return func(o *options) { o.keptTick = d }
}

// WrapChecksForTest wraps each health check connection to node with
// wrap, from its next connection on (the one it has is closed): a test
// makes the monitor's checks answer late while the pools' connections
// answer as fast as ever.
func (r *Router) WrapChecksForTest(node string, wrap func(net.Conn) net.Conn) {
	n := r.cur.Load().byName[node]
	n.hcMu.Lock()
	defer n.hcMu.Unlock()
	cc := n.connConfig.Copy()
	dial := cc.DialFunc
	cc.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return wrap(c), nil
	}
	n.connConfig = cc
	n.closeHealthConn()
}

// OnCancelCutEndedForTest has f told when a cancel request the router sent
// for a connection cut mid-reply ended; restore undoes it.
func OnCancelCutEndedForTest(f func(error)) (restore func()) {
	cancelCutEnded.Store(&f)
	return func() { cancelCutEnded.Store(nil) }
}
