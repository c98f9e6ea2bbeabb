package provider

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// A connection waiting for a place under the role's CONNECTION LIMIT
// closes the role's idle connections to free one, each waiting until its
// session has ended on the server (closeHeld), at most connect_timeout. It
// closed them one after the other: on a server that stopped answering
// (SIGSTOP, as a frozen host), n idle connections kept the waiting handler
// n times connect_timeout before its own connection even started (4 here:
// 8 s of connect_timeout 2 s, then its own 2 s), where the plan should say
// after one connect_timeout that the server does not answer. They are now
// closed together.
func TestRoomfixFrozenServerIdleConnectionsCloseTogether(t *testing.T) {
	testAccPreCheck(t)
	topo := routertest.Start(t, routertest.WithStandbys(0)) // frozen: not the shared one
	n := topo.Primary
	role := "roomfix_idle_frozen"
	const connectTimeout = 2
	s, dbs := roleServer(t, n, role, 4, connectTimeout)
	ctx := context.Background()
	p0 := testPool(t, s, dbs[0])
	// The role's four places, idle in the pool of dbs[0].
	var held []*pgxpool.Conn
	for range 4 {
		c, err := p0.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	for _, c := range held {
		c.Release()
	}
	if err := n.Freeze(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Thaw() })
	actx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	began := time.Now()
	q, err := s.Pool(actx, dbs[1])
	took := time.Since(began)
	thaw(t, n)
	if q != nil {
		closeTestPool(q)
	}
	t.Logf("the pool of %s, the server frozen and the role's 4 places idle in the pool of %s: %s, %v", dbs[1], dbs[0], took.Round(time.Millisecond), err)
	if err == nil {
		t.Fatalf("the pool of %s was made on a frozen server", dbs[1])
	}
	if most := 2*connectTimeout*time.Second + 1500*time.Millisecond; took > most {
		t.Errorf("the pool of %s failed after %s on a frozen server, want at most %s: the 4 idle connections' closes (connect_timeout %d s each) and its own connection's, "+
			"the closes together", dbs[1], took.Round(time.Millisecond), most, connectTimeout)
	}
}
