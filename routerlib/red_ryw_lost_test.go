package routerlib_test

import (
	"context"
	"testing"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// TestSessionAheadOfAPromotedPrimary: a read_your_writes Session kept in
// the process (a worker's, not carried by the middleware, which drops such
// a value) recorded a write that the failover lost: the standby promoted
// never had it, so the new primary's WAL position is behind the session's.
// No replica can replay that far until the new primary writes as much, so
// each of the session's reads waited wait_timeout for a replica and then
// went to the primary (10 of 10 here). Once the primary says it is behind
// the session, the read goes to a replica at the primary's position. The
// session keeps its own position, which another Router's cluster may hold
// (TestSessionAheadOfAnotherCluster).
func TestSessionAheadOfAPromotedPrimary(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(2))
	ctx := context.Background()
	a := withMode(steadyHealth(topo.Artifact(), 200*time.Millisecond), artifact.ModeReadYourWrites)
	a.Consistency.WaitTimeout = "300ms"
	r := newRouter(t, a)
	if _, err := r.Exec(ctx, "CREATE TABLE lost_t (id int, pad text)"); err != nil {
		t.Fatal(err)
	}
	promoted, follower := topo.Standbys[0], topo.Standbys[1]
	for _, s := range topo.Standbys {
		if err := s.WaitStreaming(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// Both standbys stop before the write: the failover loses it.
	for _, s := range topo.Standbys {
		if err := s.Stop(ctx); err != nil {
			t.Fatal(err)
		}
	}
	s := routerlib.NewSession(0)
	if _, err := r.Exec(routerlib.WithSession(ctx, s), "INSERT INTO lost_t SELECT g, repeat('x', 200) FROM generate_series(1, 5000) g"); err != nil {
		t.Fatal(err)
	}
	lost := s.LSN()
	if err := topo.Primary.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	for _, n := range topo.Standbys {
		if err := n.Start(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := promoted.Promote(ctx); err != nil {
		t.Fatal(err)
	}
	if err := follower.Follow(ctx, promoted); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "writes on the promoted node and the follower in rotation", func() bool {
		return nodeStat(r, promoted.Name).Writer && nodeStat(r, follower.Name).Readable
	})
	var pos string
	if err := promoted.QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()::text").Scan(&pos); err != nil {
		t.Fatal(err)
	}
	t.Logf("session at %v, the promoted primary at %s", lost, pos)
	ports := map[int]int{}
	var slowest time.Duration // each read waits wait_timeout: it learns the primary is behind
	for i := range 10 {
		// Other users write on the new primary meanwhile, which flushes
		// its WAL for the replicas to replay.
		if _, err := r.Exec(ctx, "INSERT INTO lost_t VALUES ($1, 'other user')", -i); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		var port int
		if err := r.QueryRow(routerlib.WithSession(ctx, s), "SELECT inet_server_port()").Scan(&port); err != nil {
			t.Fatal(err)
		}
		slowest = max(slowest, time.Since(start))
		ports[port]++
	}
	t.Logf("reads by port %v, slowest %v; session now at %v", ports, slowest, s.LSN())
	if ports[promoted.Port] > 1 {
		t.Errorf("%d of 10 reads of the session went to the primary (slowest %v): the session's lost write holds them there", ports[promoted.Port], slowest)
	}
}

// TestSessionAheadOfAnotherCluster: one Session serves the Routers of two
// clusters (orders and users), and the session's write on orders puts its
// position far past the users primary's. A read through the users Router
// goes to a users replica after wait_timeout; the session keeps its
// position, so a read through the orders Router, whose replica has not
// replayed the write, still sees it. When the users read lowered the
// session to the users primary's position, the orders read went to the
// lagging replica and missed the write.
func TestSessionAheadOfAnotherCluster(t *testing.T) {
	orders := routertest.Start(t, routertest.WithStandbys(1))
	users := routertest.Start(t, routertest.WithStandbys(1))
	ctx := context.Background()
	router := func(topo *routertest.Topology) *routerlib.Router {
		a := withMode(steadyHealth(topo.Artifact(), 200*time.Millisecond), artifact.ModeReadYourWrites)
		a.Consistency.WaitTimeout = "300ms"
		return newRouter(t, a)
	}
	ro, ru := router(orders), router(users)
	if _, err := ro.Exec(ctx, "CREATE TABLE orders_t (id int, pad text)"); err != nil {
		t.Fatal(err)
	}
	lagging := orders.Standbys[0]
	eventually(t, 15*time.Second, "the orders replica to replay the CREATE TABLE", func() bool {
		var ok bool
		return lagging.QueryRow(ctx, "SELECT to_regclass('orders_t') IS NOT NULL").Scan(&ok) == nil && ok
	})
	if err := lagging.PauseReplay(ctx); err != nil {
		t.Fatal(err)
	}
	s := routerlib.NewSession(0)
	sctx := routerlib.WithSession(ctx, s)
	if _, err := ro.Exec(sctx, "INSERT INTO orders_t SELECT g, repeat('x', 200) FROM generate_series(1, 5000) g"); err != nil {
		t.Fatal(err)
	}
	written := s.LSN()
	var text string
	if err := users.Primary.QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()::text").Scan(&text); err != nil {
		t.Fatal(err)
	}
	usersAt, err := routerlib.ParseLSN(text)
	if err != nil {
		t.Fatal(err)
	}
	if usersAt >= written {
		t.Fatalf("the users primary is at %v, past the session's %v: the test proves nothing", usersAt, written)
	}
	if err := ru.QueryRow(sctx, "SELECT 1").Scan(new(int)); err != nil {
		t.Fatal(err)
	}
	if got := s.LSN(); got != written {
		t.Errorf("a read through the users Router moved the session from %v to %v", written, got)
	}
	var n int
	if err := ro.QueryRow(sctx, "SELECT count(*) FROM orders_t").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 5000 {
		t.Errorf("the session's read on orders saw %d rows of its own 5000 (the replica has not replayed them)", n)
	}
}
