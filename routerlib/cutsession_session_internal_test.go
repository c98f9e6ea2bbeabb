package routerlib

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// refuseCancels makes the pool's cancel requests fail before they reach
// the server, as when the server's address no longer takes a connection:
// a cut backend then runs on, as it did before the router sent one.
func refuseCancels(c *pgxpool.Config) {
	next := c.ConnConfig.DialFunc
	c.ConnConfig.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := next(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return cancelRefused{conn}, nil
	}
}

type cancelRefused struct{ net.Conn }

func (c cancelRefused) Write(b []byte) (int, error) {
	if len(b) >= 8 && binary.BigEndian.Uint32(b[4:8]) == 80877102 { // CancelRequest
		c.Conn.Close()
		return 0, errors.New("cutsession test: cancel request refused")
	}
	return c.Conn.Write(b)
}

// cutsessionWrite runs review15Write through r under ctx, cut by the
// notice handler's panic, and reports whether it panicked.
func cutsessionWrite(t *testing.T, r *Router, ctx context.Context, query bool) (panicked bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	defer func() { panicked = recover() != nil }()
	if query {
		var n int
		err := r.QueryRow(ctx, review15Write+" RETURNING v").Scan(&n)
		t.Logf("cut write (QueryRow): %v", err)
		return false
	}
	_, err := r.Exec(ctx, review15Write)
	t.Logf("cut write (Exec): %v", err)
	return false
}

// TestCutsessionPendingBySession: each cut is looked up by the session
// whose write it carried, and a cut of no session's write is not noted.
func TestCutsessionPendingBySession(t *testing.T) {
	var c cutBackends
	a, b := &Session{}, &Session{}
	c.add(11, a)
	c.add(12, b)
	c.add(13, nil)
	if got := c.pending(a); len(got) != 1 || got[0] != 11 {
		t.Errorf("pending(a) = %v, want [11]", got)
	}
	if got := c.pending(b); len(got) != 1 || got[0] != 12 {
		t.Errorf("pending(b) = %v, want [12]", got)
	}
	if got := c.pending(&Session{}); got != nil {
		t.Errorf("pending of a session with no cut = %v, want none", got)
	}
	if len(c.cuts) != 2 {
		t.Errorf("%d cuts noted, want 2 (none without a session)", len(c.cuts))
	}
	// b's lookup found 12 gone: a's cut stays.
	asked := time.Now()
	c.ended(c.pending(b), asked, nil)
	if got := c.pending(a); len(got) != 1 || got[0] != 11 {
		t.Errorf("after b's cut ended, pending(a) = %v, want [11]", got)
	}
}

// TestCutsessionOtherSessionsCut: session B's write and a write without
// a session are cut by a notice handler's panic while they wait on a row
// lock, and their backends wait on (their cancel requests lost). Session
// A, marked for work of its own that ended cleanly, must not wait for
// either: its settle returns while the lock is held and its reads go to
// the standby. B must wait: its reads go to the primary, and its settle
// returns only after the lock's release, once its backend ended.
func TestCutsessionOtherSessionsCut(t *testing.T) {
	topo := review15Lock(t)
	r := rywpathRouter(t, topo, time.Minute, func(c *pgxpool.Config) {
		review15PanicOnNotice(c)
		refuseCancels(c)
		// pgx closes a connection left busy in the background, reading
		// until its server ends it (up to 15 s), and the pool's slot is
		// taken meanwhile: with the cancel lost, until the lock's release.
		c.MaxConns = 4
	})
	release := review15Hold(t, topo)
	b := &Session{}
	if !cutsessionWrite(t, r, WithSession(context.Background(), b), false) {
		t.Fatal("session B's write was not cut by the notice handler's panic")
	}
	if !cutsessionWrite(t, r, context.Background(), false) {
		t.Fatal("the write without a session was not cut by the notice handler's panic")
	}
	if n := review15Waiting(t, topo); n != 2 {
		t.Fatalf("%d cut backends wait on the lock, want 2", n)
	}
	if b.unsettled() == 0 {
		t.Fatal("session B is not marked by its cut write")
	}
	const hold = 4 * time.Second
	var released atomic.Int64 // when the release began (Unix nanoseconds)
	go func() {
		time.Sleep(hold)
		released.Store(time.Now().UnixNano())
		release()
	}()

	a := &Session{}
	a.markLost()
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	start := time.Now()
	err := r.settleSession(ctx, a, a.unsettled())
	aTook, aLate := time.Since(start), released.Load() != 0
	// A's position is the primary's insert position, past the held row's
	// WAL, which no commit flushed yet: a commit of another client
	// flushes it, for the standby to replay.
	if err := topo.Primary.Exec(context.Background(), "CREATE TABLE cutsession_flush ()"); err != nil {
		t.Fatal(err)
	}
	where := map[string]int{}
	for range 10 {
		where[review15Where(t, r, WithSession(context.Background(), a))]++
	}
	t.Logf("session A: settled (%v) in %s, the lock released by then: %v; 10 reads: %v; %d unsettled", err, aTook.Round(time.Millisecond), aLate, where, a.unsettled())
	if err != nil || aLate || where["primary"] != 0 || a.unsettled() != 0 {
		t.Errorf("session A waited for other clients' cut writes: settled (%v) in %s, after the lock's release: %v; reads %v (want all on the standby)", err, aTook.Round(time.Millisecond), aLate, where)
	}

	bWhere := review15Where(t, r, WithSession(context.Background(), b))
	if released.Load() == 0 && bWhere != "primary" {
		t.Errorf("session B read on the %s while its cut write's backend still waited on the lock, want the primary", bWhere)
	}
	start = time.Now()
	err = r.settleSession(ctx, b, b.unsettled())
	bTook, bEnd := time.Since(start), time.Now().UnixNano()
	t.Logf("session B: read on the %s; settled (%v) in %s", bWhere, err, bTook.Round(time.Millisecond))
	if rel := released.Load(); err != nil || rel == 0 || bEnd < rel {
		t.Errorf("session B settled (%v) in %s, before the lock's release: its cut write's backend still ran", err, bTook.Round(time.Millisecond))
	}
	if n := review15Waiting(t, topo); n != 0 {
		t.Errorf("%d cut backends still wait after B settled", n)
	}
}

// cutsessionBouncerConfig is review15PanicOnNotice with the exec mode
// the package documentation asks for through PgBouncer: nothing
// prepared, as a server session a cut client left may be another's next.
func cutsessionBouncerConfig(c *pgxpool.Config) {
	review15PanicOnNotice(c)
	c.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeExec
}

// TestCutsessionCancelOnPanic: a write blocked on a row lock and cut by
// a notice handler's panic, through Exec with a session (the capture
// path) and without (released busy: TraceRelease), directly and through
// PgBouncer: the router
// sends a cancel request before it closes the connection, so the backend
// stops waiting, and the row keeps its value. Through PgBouncer the
// process id cannot be looked up: the cancel is all that ends the
// backend.
func TestCutsessionCancelOnPanic(t *testing.T) {
	for _, bouncer := range []bool{false, true} {
		t.Run(fmt.Sprintf("pgbouncer=%v", bouncer), func(t *testing.T) {
			var opts []routertest.Option
			if bouncer {
				opts = append(opts, routertest.WithPgBouncer())
			}
			topo := review15Lock(t, opts...)
			r := rywpathRouter(t, topo, time.Minute, cutsessionBouncerConfig)
			for _, c := range []struct {
				query, session bool
			}{{false, true}, {false, false}} {
				query := c.query
				before := cutsessionValue(t, topo)
				release := review15Hold(t, topo)
				s := &Session{}
				ctx := context.Background()
				if c.session {
					ctx = WithSession(ctx, s)
				}
				if !cutsessionWrite(t, r, ctx, query) {
					t.Fatalf("query %v, session %v: the write was not cut by the notice handler's panic", query, c.session)
				}
				cutAt := time.Now()
				n := review15Waiting(t, topo)
				for n != 0 && time.Since(cutAt) < 2*time.Second {
					time.Sleep(10 * time.Millisecond)
					n = review15Waiting(t, topo)
				}
				t.Logf("query %v, session %v: %d cut backends wait on the lock %s after the cut", query, c.session, n, time.Since(cutAt).Round(time.Millisecond))
				if n != 0 {
					t.Errorf("query %v, session %v: the cut backend still waits on the lock %s after the cut: no cancel reached it", query, c.session, time.Since(cutAt).Round(time.Millisecond))
				}
				release()
				if v := cutsessionValue(t, topo); v != before {
					t.Errorf("query %v, session %v: the cancelled write committed: v = %d, was %d", query, c.session, v, before)
				}
				ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				err := r.settleSession(ctx, s, s.unsettled())
				cancel()
				if err != nil {
					t.Errorf("query %v, session %v: settling the cut write's session: %v", query, c.session, err)
				}
				nextCallWorks(t, r, "the cancelled cut")
			}
		})
	}
}

// cutsessionValue is review15_l's value, read on the primary.
func cutsessionValue(t *testing.T, topo *routertest.Topology) int {
	t.Helper()
	var v int
	if err := topo.Primary.QueryRow(context.Background(), "SELECT v FROM review15_l WHERE id = 1").Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestCutsessionCancelRace: through PgBouncer in transaction pooling, a
// cut write's cancel request may come after the write ended and its
// server connection went to another client. PgBouncer (1.18 on) forwards
// no cancel once the server connection it was for went idle, and does
// not give one with a cancel in flight to another client: another
// client's statements, run without a pause meanwhile, must never be
// cancelled (SQLSTATE 57014).
func TestCutsessionCancelRace(t *testing.T) {
	topo := review15Lock(t, routertest.WithPgBouncer())
	r := rywpathRouter(t, topo, time.Minute, cutsessionBouncerConfig)
	other, err := pgx.Connect(context.Background(), topo.Primary.BouncerDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close(context.Background())
	stop := make(chan struct{})
	done := make(chan struct{})
	var ran, cancelled atomic.Int64
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			_, err := other.Exec(context.Background(), "SELECT pg_sleep(0.002)")
			ran.Add(1)
			var pgErr *pgconn.PgError
			if errors.As(err, &pgErr) && pgErr.Code == "57014" {
				cancelled.Add(1)
			} else if err != nil {
				t.Errorf("the other client's statement: %v", err)
				return
			}
		}
	}()
	const cuts = 30
	notCut := 0
	for i := range cuts {
		if !cutsessionWrite(t, r, context.Background(), i%2 == 1) {
			notCut++
		}
	}
	close(stop)
	<-done
	if notCut != 0 {
		t.Errorf("%d of %d writes were not cut by the notice handler's panic", notCut, cuts)
	}
	t.Logf("%d cut writes through PgBouncer; the other client ran %d statements meanwhile, %d cancelled", cuts, ran.Load(), cancelled.Load())
	if cancelled.Load() != 0 {
		t.Errorf("a cut write's cancel request cancelled %d of another client's statements", cancelled.Load())
	}
}
