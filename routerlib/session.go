package routerlib

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// An LSN is a PostgreSQL write-ahead log position, as pg_lsn holds it.
type LSN uint64

// String formats l the way PostgreSQL does, such as "0/16B3748".
func (l LSN) String() string { return fmt.Sprintf("%X/%X", uint64(l)>>32, uint32(l)) }

// ParseLSN parses PostgreSQL's "X/Y" form of an LSN.
func ParseLSN(s string) (LSN, error) {
	hi, lo, ok := strings.Cut(s, "/")
	if !ok {
		return 0, fmt.Errorf("routerlib: invalid LSN %q: want the form X/Y, such as 0/16B3748", s)
	}
	h, err1 := strconv.ParseUint(hi, 16, 32)
	l, err2 := strconv.ParseUint(lo, 16, 32)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("routerlib: invalid LSN %q: want the form X/Y, such as 0/16B3748", s)
	}
	return LSN(h<<32 | l), nil
}

// A Session remembers the WAL position of the latest write a user (or a
// request chain) made through the router, so that with consistency mode
// read_your_writes its reads go only to replicas that have replayed that
// far. The zero value is an empty session. A Session is safe for concurrent
// use.
type Session struct {
	lsn atomic.Uint64
	// lost counts the writes through the session whose position could not
	// be read (see [Conn.Release]); settled is the count a position read
	// from the primary since covers. While lost > settled the session's
	// next read learns the primary's position first (Router.settle).
	lost, settled atomic.Uint64
}

// NewSession returns a session that has seen writes up to lsn, as carried
// between requests by a [SessionMiddleware].
func NewSession(lsn LSN) *Session {
	s := &Session{}
	s.lsn.Store(uint64(lsn))
	return s
}

// LSN returns the highest WAL position the session has seen; 0 if none.
func (s *Session) LSN() LSN { return LSN(s.lsn.Load()) }

// Observe raises the session's position to lsn; it never lowers it.
func (s *Session) Observe(lsn LSN) { raise(&s.lsn, uint64(lsn)) }

// markLost records that work through s may have committed past its
// position, which could not be read.
func (s *Session) markLost() { s.lost.Add(1) }

// unsettled returns the count of lost positions a read from the primary
// must cover, 0 if none: the caller passes it to settle.
func (s *Session) unsettled() uint64 {
	if n := s.lost.Load(); n > s.settled.Load() {
		return n
	}
	return 0
}

// settle records lsn, the primary's position read after the lost
// positions counted by n (unsettled's answer before the read): it is at or
// past each one's commit, when the work committed at all.
func (s *Session) settle(lsn LSN, n uint64) {
	s.Observe(lsn)
	raise(&s.settled, n)
}

// raise stores v in a if it is higher than what a holds: the one way a WAL
// position only ever moves forward (a session's, a replica's replay, the
// primary's as the session middleware saw it).
func raise(a *atomic.Uint64, v uint64) {
	for {
		cur := a.Load()
		if v <= cur || a.CompareAndSwap(cur, v) {
			return
		}
	}
}

type sessionKey struct{}

// WithSession returns a context that carries s. Writes through the router
// with this context record their LSN in s; reads honour it when the router
// file's consistency mode is read_your_writes.
func WithSession(ctx context.Context, s *Session) context.Context {
	return context.WithValue(ctx, sessionKey{}, s)
}

// SessionFrom returns the session ctx carries, or nil.
func SessionFrom(ctx context.Context) *Session {
	s, _ := ctx.Value(sessionKey{}).(*Session)
	return s
}

// cutAwaitLimit bounds how long a cut backend is awaited (see
// cutBackends): one still running after it, in a COMMIT that waits for a
// synchronous standby that never answers say, is dropped from the list,
// and sessions settle as if it had ended.
const cutAwaitLimit = 30 * time.Second

// cutBackends are the process ids of a server's backends whose connection
// the router closed, or saw closed, with a call in flight: a handler of
// the application's that panicked mid-reply, a context that ended, a
// socket that failed. Such a backend may still be running a COMMIT that
// went out, a deferred trigger's work say, and commit after a position
// read from another connection: the session whose write it carried, had
// it settled at that position (Session.settle), would read on a replica
// without the write, and then, once the write committed, see it on the
// primary and miss it again on that replica. So each cut is noted with
// that session, the one in the context of the connection's acquire (see
// statementsDiscarded.TraceAcquireEnd), and the session settles only once
// its cut backends are gone from pg_stat_activity (Router.settle): its
// reads go to the primary until then. A cut of no session's write is not
// noted: no session recorded the write, so none has to wait for it; and
// another session's own work is past its position read whatever the cut
// backend still does.
//
// A process id means a backend only on a direct connection: through
// PgBouncer it is PgBouncer's key for the client, which no backend of the
// server has (or an unrelated one has, and the session then waits for it,
// up to cutAwaitLimit). It is only ever looked up, never signalled.
// Through PgBouncer the guarantee is what a cancel request gives: pgx
// sends one when a context ends mid-call, and the router one when it
// closes a connection cut mid-reply (cancelCut); PgBouncer forwards it.
type cutBackends struct {
	mu   sync.Mutex
	cuts []cutBackend // guarded by mu
}

type cutBackend struct {
	pid     uint32
	at      time.Time
	session *Session // whose write the connection carried
}

// add notes the backend pid, cut now while it served s; none is noted
// for pid 0 (a connection never set up) or without a session. The ones
// noted more than cutAwaitLimit ago go: they are in the order noted, and
// without s's settle (a session never read again) nothing else would drop
// them, while every write cut by a context's end adds one.
func (c *cutBackends) add(pid uint32, s *Session) {
	if pid == 0 || s == nil {
		return
	}
	now := time.Now()
	c.mu.Lock()
	old := 0
	for old < len(c.cuts) && now.Sub(c.cuts[old].at) >= cutAwaitLimit {
		old++
	}
	if old > 0 {
		n := copy(c.cuts, c.cuts[old:])
		clear(c.cuts[n:])
		c.cuts = c.cuts[:n]
	}
	c.cuts = append(c.cuts, cutBackend{pid, now, s})
	c.mu.Unlock()
}

// pending returns the process ids for s to look up, nil if none: those
// noted with s within cutAwaitLimit. The older ones, of any session, go.
func (c *cutBackends) pending(s *Session) []uint32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.cuts) == 0 {
		return nil
	}
	keep := c.cuts[:0]
	var pids []uint32
	for _, b := range c.cuts {
		if time.Since(b.at) < cutAwaitLimit {
			keep = append(keep, b)
			if b.session == s {
				pids = append(pids, b.pid)
			}
		}
	}
	clear(c.cuts[len(keep):])
	c.cuts = keep
	return pids
}

// ended drops the backends of asked, noted before since (taken before
// pending gave asked), that running, the ones of them the server still
// has, does not hold, whichever session they were noted with: the
// process is gone. One noted since has a process id the lookup may have
// found gone before the kernel gave it again to a new backend, the one
// cut: it stays for the next lookup.
func (c *cutBackends) ended(asked []uint32, since time.Time, running []uint32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	keep := c.cuts[:0]
	for _, b := range c.cuts {
		if b.at.After(since) || !slices.Contains(asked, b.pid) || slices.Contains(running, b.pid) {
			keep = append(keep, b)
		}
	}
	clear(c.cuts[len(keep):])
	c.cuts = keep
}
