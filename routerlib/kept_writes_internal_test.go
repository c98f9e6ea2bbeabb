package routerlib

import (
	"context"
	"testing"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// TestKeptWriterCarriesItsCallsSession: a connection the primary kept
// between writes carries, while a call holds it, that call's session, as
// one from pgxpool does (TraceAcquireEnd), and none once kept again: a
// cut of the call is noted with the session whose write it carried (see
// cutBackends), never with the previous call's.
func TestKeptWriterCarriesItsCallsSession(t *testing.T) {
	topo := routertest.Shared(t)
	r := rywpathRouter(t, topo, time.Minute, nil)
	n := r.cur.Load().declared
	pool := n.writePool.Load()
	ctx := context.Background()
	a, b := &Session{}, &Session{}
	take := func(ctx context.Context, want *Session, wantPID uint32) uint32 {
		t.Helper()
		c, gen, err := n.acquire(ctx, pool)
		if err != nil {
			t.Fatal(err)
		}
		pc := c.Conn().PgConn()
		if got := callSession(pc); got != want {
			t.Errorf("the connection carries session %p, want %p", got, want)
		}
		if wantPID != 0 && pc.PID() != wantPID {
			t.Errorf("took backend %d, want the kept one, %d", pc.PID(), wantPID)
		}
		pid := pc.PID()
		n.release(pool, c, gen)
		if k := n.keptW.count.Load(); k != 1 {
			t.Fatalf("after the release the primary keeps %d connections, want 1", k)
		}
		if got := callSession(pc); got != nil {
			t.Errorf("the kept connection still carries session %p", got)
		}
		return pid
	}
	pid := take(WithSession(ctx, a), a, 0)
	take(WithSession(ctx, b), b, pid)
	take(ctx, nil, pid)
	// An expiry (the server ended a session, or its node was cut off)
	// gives it back, and a connection out with a call then is not kept.
	c, gen, err := n.acquire(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	n.sessionEnded()
	n.release(pool, c, gen)
	if k := n.keptW.count.Load(); k != 0 {
		t.Errorf("a connection acquired before the server ended a session was kept (%d kept)", k)
	}
}
