package routerlib

import "time"

// EjectReason says why a node is out of read rotation.
type EjectReason uint32

const (
	// EjectNone: the node serves reads (or has not been checked yet).
	EjectNone EjectReason = iota
	// EjectUnreachable: eject_after checks in a row failed, or a query
	// could not reach it.
	EjectUnreachable
	// EjectLagBytes: its replay lag exceeded max_lag_bytes.
	EjectLagBytes
	// EjectLagTime: its replay lag exceeded max_lag.
	EjectLagTime
	// EjectNotInRecovery: it is not a standby (it is the primary, or was
	// promoted), so it does not serve reads as a replica.
	EjectNotInRecovery
	// EjectReadmitting: it is healthy again and waiting for readmit_after
	// good checks in a row.
	EjectReadmitting
	// EjectNotChecked: no health check has completed yet.
	EjectNotChecked
	// EjectOldTimeline: it is a standby that has not followed the
	// primary's promotion: it replays an older timeline, so its position
	// says nothing of what it has of the primary's writes, and it may
	// hold writes the promotion lost. It returns once it follows the
	// primary (WAL of the primary's timeline shows in its pg_wal), which
	// one pointed at the promoted node does when it reaches the fork.
	// Seen only when the router's user may list pg_wal.
	EjectOldTimeline
	// EjectDiverged: it is a standby that cannot follow the primary's
	// timeline: it has the timeline's history file but no WAL of it, and
	// its WAL receiver does not stream the older timeline it replays up
	// to where the primary's forked. Typically it replayed past that
	// point: an old primary restarted as a standby of the promoted node
	// without pg_rewind, holding writes the promotion lost. It returns
	// once it receives WAL of the primary's timeline: rewind it, or clone
	// it again. A standby whose WAL receiver stopped short of the fork
	// that an earlier check saw it stream towards is EjectOldTimeline
	// instead. Seen only when the router's user may list pg_wal.
	EjectDiverged
	// EjectOtherCluster: it belongs to another cluster than the primary's
	// (its system identifier differs from the one most nodes share, or
	// the primary's): a wrong host in the router file, or a standby
	// cloned from another primary; or a copy of the cluster (the same
	// identifier) out of recovery as a primary of its own, on the declared
	// primary's timeline, or on timeline 1, which no promotion leads to,
	// while no node shows a later one (beside a promotion, a node on
	// timeline 1 is an old primary: EjectNotInRecovery). It takes
	// neither reads nor writes, and the router logs the cause and the fix
	// as an error. It returns when its identifier matches and it follows
	// the primary: correct the router file, or clone it again.
	EjectOtherCluster
)

var ejectNames = [...]string{
	EjectNone:          "",
	EjectUnreachable:   "unreachable",
	EjectLagBytes:      "lagging bytes",
	EjectLagTime:       "lagging time",
	EjectNotInRecovery: "not in recovery",
	EjectReadmitting:   "readmitting",
	EjectNotChecked:    "not checked",
	EjectOldTimeline:   "old timeline",
	EjectDiverged:      "diverged",
	EjectOtherCluster:  "other cluster",
}

// String returns the reason in words, or "" for EjectNone.
func (e EjectReason) String() string {
	if int(e) < len(ejectNames) {
		return ejectNames[e]
	}
	return "unknown"
}

// NodeStat is one node's state as [Router.Stat] reports it.
type NodeStat struct {
	Name         string
	DeclaredRole string // "primary" or "replica", as the router file says
	// ObservedRole is "primary" when the last check found the node out of
	// recovery, "replica" when in recovery, "" when it was not reachable,
	// and "unknown" when the node answers calls but none of its checks
	// has answered for eject_after + 1 intervals and health.timeout: it
	// may have been promoted since. No other node takes the writes over
	// it then (a writer keeps them), and a replica leaves read rotation
	// once its role has been unknown that long again.
	ObservedRole string
	Writer       bool        // writes go to this node now
	Healthy      bool        // the last health check succeeded
	Readable     bool        // in read rotation
	Ejected      EjectReason // why not in read rotation
	LastError    string      // the last check or connection error, if any
	LagBytes     int64       // primary's WAL position minus this node's replay position
	Lag          time.Duration
	ReplayLSN    LSN // replay position of a standby; current WAL position of a primary
	Reads        int64
	Writes       int64
	Errors       int64
	Pool         PoolStat // the pool that serves reads (the write pool on the primary)
	// Timeline is the WAL timeline the node was last seen writing on out
	// of recovery; 0 for a standby. A promotion starts a new one.
	Timeline uint32
	// SplitBrain says why a node out of recovery takes no writes: another
	// node is on a later timeline (this one is an old primary that came
	// back), or on the same one; or it belongs to another cluster, or is a
	// copy of this one running as a primary of its own. "" otherwise.
	SplitBrain string
}

// PoolStat holds the [pgxpool.Stat] figures of one node's pool.
type PoolStat struct {
	TotalConns      int32
	IdleConns       int32
	AcquiredConns   int32
	MaxConns        int32
	AcquireCount    int64
	AcquireDuration time.Duration
	EmptyAcquires   int64 // acquires that had to wait for a connection
}

// Stat reports every node of the current router file, in file order. The
// order follows the file, so it can change when the file is reloaded: use
// [Router.NodeStat] to follow one node.
func (r *Router) Stat() []NodeStat {
	t := r.cur.Load()
	writer := t.writer.Load()
	out := make([]NodeStat, 0, len(t.nodes))
	for _, n := range t.nodes {
		out = append(out, nodeStat(t, n, writer))
	}
	return out
}

// NodeStat reports the node called name in the current router file, and
// false if the file has no such node.
func (r *Router) NodeStat(name string) (NodeStat, bool) {
	t := r.cur.Load()
	n := t.byName[name]
	if n == nil {
		return NodeStat{}, false
	}
	return nodeStat(t, n, t.writer.Load()), true
}

func nodeStat(t *topology, n, writer *node) NodeStat {
	s := NodeStat{
		Name:         n.name,
		DeclaredRole: n.decl.Role,
		Writer:       n == writer,
		Healthy:      n.reachable.Load(),
		LagBytes:     n.lagBytes.Load(),
		Lag:          time.Duration(n.lagNanos.Load()),
		ReplayLSN:    LSN(n.replayLSN.Load()),
		Reads:        n.reads.Load(),
		Writes:       n.writes.Load(),
		Errors:       n.errors.Load(),
	}
	// One value says both, so a node out of rotation always has a reason.
	s.Ejected = EjectReason(n.ejected.Load())
	s.Readable = s.Ejected == EjectNone
	switch {
	case n.roleUnknown(t):
		s.ObservedRole = "unknown"
	case s.Healthy:
		s.ObservedRole = "primary"
		if n.recovery.Load() {
			s.ObservedRole = "replica"
		}
	}
	s.Timeline = n.timeline.Load()
	if sb := n.splitBrain.Load(); sb != nil {
		s.SplitBrain = *sb
	}
	if e := n.lastErr.Load(); e != nil {
		s.LastError = (*e).Error()
	}
	if p := t.readPoolOf(n); p != nil {
		ps := p.Stat()
		// The connections kept between calls are idle, although pgxpool
		// counts them acquired.
		var kept int32
		switch p {
		case n.readPool.Load():
			kept = min(n.kept.count.Load(), ps.AcquiredConns())
		case n.writePool.Load():
			kept = min(n.keptW.count.Load(), ps.AcquiredConns())
		}
		// Nor do they count the slot that the pool keeps for Close
		// (see nodeConns.reserveSlot).
		var reserved int32
		if !n.conns.isClosed() {
			reserved = 1
		}
		s.Pool = PoolStat{
			TotalConns:      ps.TotalConns() - reserved,
			IdleConns:       ps.IdleConns() + kept,
			AcquiredConns:   ps.AcquiredConns() - kept,
			MaxConns:        ps.MaxConns() - 1,
			AcquireCount:    ps.AcquireCount(),
			AcquireDuration: ps.AcquireDuration(),
			EmptyAcquires:   ps.EmptyAcquireCount(),
		}
	}
	return s
}
