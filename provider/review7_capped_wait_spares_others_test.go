package provider

import (
	"context"
	"testing"
	"time"
)

// A connection of a pool kept for a database missing when it was made,
// held back both by its pool's cap (caps) and by the role's room, closed
// the idle connections of the role's other pools while it waited: they
// freed places of the role that it could not take, its pool's cap still
// holding it back, and those pools made their connections again. Only its
// own pool's idle connections free what it waits for (its cap, and a place
// of the role with it).
func TestReview7CappedAndRoomFullClosesOnlyItsPoolsIdle(t *testing.T) {
	server := testAccTopology(t).Primary
	role := "review7_spare"
	dbs := roleOfLimit2In3Databases(t, server, role)
	execSQL(t, server, "postgres", `ALTER ROLE `+role+` CONNECTION LIMIT 3`)
	late := role + "_late"
	s := newServer(connSettings{Host: server.Host, Port: int64(server.Port), Database: dbs[0], Username: role,
		SSLMode: "disable", MaxConnections: 4, ConnectTimeout: 5})
	ctx := context.Background()
	p0, err := s.Pool(ctx, dbs[0])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeTestPool(p0) })
	// Kept first: its connections to the missing database have the
	// role's places to spare (a refused one's backend is counted a while
	// after its refusal).
	p := keptPoolThenCreated(t, s, server, late, `OWNER `+role+` CONNECTION LIMIT 1`)
	a, err := p0.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b, err := p0.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	a.Release()
	b.Release()
	c1, err := p.Acquire(ctx)
	if err != nil {
		t.Fatalf("the first connection to %s once created: %v", late, err)
	}
	// The role's 3 places: p0's 2 idle connections and c1. A second
	// connection to late waits for c1, its database's one place.
	got := make(chan error, 1)
	go func() {
		actx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		c2, err := p.Acquire(actx)
		if err == nil {
			_, err = c2.Exec(actx, `SELECT 1`)
			c2.Release()
		}
		got <- err
	}()
	time.Sleep(time.Second)
	idle := p0.Stat().IdleConns()
	c1.Release()
	if err := <-got; err != nil {
		t.Fatalf("a second connection to %s, once the first was released: %v", late, err)
	}
	if idle != 2 {
		t.Errorf("the pool of %s had %d idle connections while a connection to %s waited for its database's one place, want 2: "+
			"the wait closed the idle connections of the role's other pools, which could not make room for it", dbs[0], idle, late)
	}
}
