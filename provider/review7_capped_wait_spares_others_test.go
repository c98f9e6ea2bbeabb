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
	s, dbs := roleServer(t, server, "review7_spare", 3, 5)
	ctx := context.Background()
	p0, p, late := measuredThenKept(t, s, server)
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
	got := selectOneAside(ctx, p, 20*time.Second)
	time.Sleep(time.Second)
	idle := p0.Stat().IdleConns()
	c1.Release()
	if err := (<-got).err; err != nil {
		t.Fatalf("a second connection to %s, once the first was released: %v", late, err)
	}
	if idle != 2 {
		t.Errorf("the pool of %s had %d idle connections while a connection to %s waited for its database's one place, want 2: "+
			"the wait closed the idle connections of the role's other pools, which could not make room for it", dbs[0], idle, late)
	}
}
