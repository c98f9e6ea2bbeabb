package routerlib

import (
	"context"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// checkQuery asks a node everything one health check needs in one round
// trip: whether it is a standby, how far it has replayed (or, on a primary,
// written), how far it has received, and the seconds since the last replayed
// transaction.
const checkQuery = `SELECT pg_is_in_recovery(),
	(CASE WHEN pg_is_in_recovery() THEN coalesce(pg_last_wal_replay_lsn(), '0/0') ELSE pg_current_wal_lsn() END - '0/0'::pg_lsn)::int8,
	(coalesce(pg_last_wal_receive_lsn(), '0/0') - '0/0'::pg_lsn)::int8,
	coalesce(extract(epoch FROM clock_timestamp() - pg_last_xact_replay_timestamp()), 0)::float8`

type checkResult struct {
	err        error
	recovery   bool
	lsn        uint64 // replay LSN on a standby, current LSN on a primary
	receiveLSN uint64
	replayAge  time.Duration
}

// check runs one health check on n over the monitor's own connection, so a
// pool exhausted by the application cannot make a healthy node look down.
func (n *node) check(ctx context.Context, timeout time.Duration) checkResult {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if n.hc == nil || n.hc.IsClosed() {
		cc := n.connConfig
		if n.beforeConnect != nil {
			cc = n.connConfig.Copy() // the hook sets the password on it, as on a pool's
			if err := n.beforeConnect(ctx, cc); err != nil {
				return checkResult{err: err}
			}
		}
		c, err := pgx.ConnectConfig(ctx, cc)
		if err != nil {
			return checkResult{err: err}
		}
		n.hc = c
	}
	var r checkResult
	var lsn, recv int64
	var age float64
	if err := n.hc.QueryRow(ctx, checkQuery).Scan(&r.recovery, &lsn, &recv, &age); err != nil {
		n.closeHealthConn()
		return checkResult{err: err}
	}
	r.lsn, r.receiveLSN = uint64(lsn), uint64(recv)
	r.replayAge = time.Duration(age * float64(time.Second))
	return r
}

func (n *node) closeHealthConn() {
	if n.hc != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		n.hc.Close(ctx)
		cancel()
		n.hc = nil
	}
}

// checkAll checks every node of t at once and applies the results: the
// writer, each node's lag, and read rotation. It runs on the monitor
// goroutine, or before t is published.
func (r *Router) checkAll(ctx context.Context, t *topology) {
	results := make([]checkResult, len(t.nodes))
	var wg sync.WaitGroup
	for i, n := range t.nodes {
		wg.Go(func() { results[i] = n.check(ctx, t.timeout) })
	}
	wg.Wait()
	if ctx.Err() != nil {
		return // closing: do not eject everything because checks were cancelled
	}
	now := time.Now()
	for i, n := range t.nodes {
		res := results[i]
		failed := res.err != nil
		if failed {
			s := res.err.Error()
			n.lastErr.Store(&s)
			n.reachable.Store(false)
			n.fails++
			n.goods = 0
		} else {
			n.reachable.Store(true)
			n.recovery.Store(res.recovery)
			n.replayLSN.Store(res.lsn)
			n.fails = 0
		}
	}
	r.chooseWriter(t, results)
	writer := t.writer.Load()
	var primaryLSN uint64
	if writer != nil {
		primaryLSN = writer.replayLSN.Load()
	}
	for i, n := range t.nodes {
		res := results[i]
		connFailed := n.connFailed.Swap(false)
		reason := EjectNone
		switch {
		case res.err != nil:
			if n.readable.Load() && n.fails < t.eject && !connFailed {
				continue // one failed check is not yet an ejection
			}
			reason = EjectUnreachable
		case !res.recovery:
			reason = EjectNotInRecovery
			n.lagBytes.Store(0)
			n.lagNanos.Store(0)
		default:
			lagBytes, lag := n.lag(res, primaryLSN, now)
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
			// The reason first: Stat reads readable, then ejected, and
			// must never see a node out of rotation with no reason.
			n.ejected.Store(uint32(reason))
			if n.readable.Swap(false) {
				r.opts.logger.Warn("routerlib: replica out of rotation", "node", n.name, "reason", reason.String(), "lag_bytes", n.lagBytes.Load(), "lag", time.Duration(n.lagNanos.Load()))
			}
			continue
		}
		n.goods++
		if n.readable.Load() {
			continue
		}
		// A node never admitted joins on its first good check (it was down
		// at Open); an ejected one needs readmit_after good checks.
		if !n.admitted || n.goods >= t.readmit {
			n.admitted = true
			n.ejected.Store(uint32(EjectNone))
			n.readable.Store(true)
			r.opts.logger.Info("routerlib: replica in rotation", "node", n.name)
		} else {
			n.ejected.Store(uint32(EjectReadmitting))
		}
	}
}

// lag returns how far n is behind the writer, in bytes and in time. An idle
// primary is not lag: a standby that has replayed everything the primary had
// written at its last check is 0 behind however old its last transaction.
// Otherwise the time is the age of the last replayed transaction, capped by
// how long the monitor has seen n behind, so the first write after an idle
// hour does not look like an hour of lag.
func (n *node) lag(res checkResult, primaryLSN uint64, now time.Time) (int64, time.Duration) {
	if primaryLSN == 0 || res.lsn >= primaryLSN {
		n.behindSince = time.Time{}
		return 0, 0
	}
	if n.behindSince.IsZero() {
		n.behindSince = now
	}
	lag := res.replayAge
	if since := now.Sub(n.behindSince); lag > since {
		lag = since
	}
	return int64(primaryLSN - res.lsn), lag
}

// chooseWriter keeps the current writer while it takes writes; otherwise it
// picks the declared primary, else a declared node that reports it is out of
// recovery (it was promoted). With none, writes fail with ErrNoPrimary.
func (r *Router) chooseWriter(t *topology, results []checkResult) {
	ok := func(i int) bool { return results[i].err == nil && !results[i].recovery }
	index := func(n *node) int {
		for i, m := range t.nodes {
			if m == n {
				return i
			}
		}
		return -1
	}
	cur := t.writer.Load()
	if cur != nil {
		i := index(cur)
		if ok(i) {
			return
		}
		// One failed check keeps the writer (a blip should not stop all
		// writes) unless a query already saw its connection fail, it
		// failed eject_after checks, it went into recovery, or a promoted
		// node can take over.
		down := results[i].err != nil
		if down && !cur.connFailed.Load() && cur.fails < t.eject && !r.anyOther(t, results, cur) {
			return
		}
	}
	var next *node
	if i := index(t.declared); ok(i) {
		next = t.declared
	} else {
		for i, n := range t.nodes {
			if ok(i) {
				next = n
				break
			}
		}
	}
	if next == cur {
		return
	}
	if next != nil {
		if err := next.ensureWritePool(); err != nil {
			r.opts.logger.Error("routerlib: cannot create a pool for the new primary", "node", next.name, "err", err)
			next = nil
		}
	}
	t.writer.Store(next)
	switch {
	case next == nil:
		r.opts.logger.Warn("routerlib: no primary is taking writes", "was", nameOf(cur))
	case cur != nil || next != t.declared:
		r.opts.logger.Warn("routerlib: writes go to a new primary", "node", next.name, "was", nameOf(cur))
	}
}

// anyOther reports whether a node other than cur is out of recovery.
func (r *Router) anyOther(t *topology, results []checkResult, cur *node) bool {
	for i, n := range t.nodes {
		if n != cur && results[i].err == nil && !results[i].recovery {
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

// monitor checks the current topology every health.interval until ctx is
// done. The Router owns it: Close cancels ctx and waits for it.
func (r *Router) monitor(ctx context.Context) {
	defer r.wg.Done()
	var last *topology
	defer func() {
		if last != nil {
			for _, n := range last.nodes {
				n.closeHealthConn()
			}
		}
	}()
	for {
		t := r.cur.Load()
		if last != nil && last != t {
			for _, n := range last.nodes {
				n.closeHealthConn() // the monitor owns these connections
			}
		}
		last = t
		timer := time.NewTimer(t.interval)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
		if t = r.cur.Load(); t != last {
			continue // reloaded while waiting: close the old connections first
		}
		r.checkAll(ctx, t)
	}
}
