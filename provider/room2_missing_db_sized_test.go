package provider

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// A pool kept for a database missing when it was made (3D000) could not be
// sized by newPool, which reads the limits on the pool's first connection:
// it stayed at max_connections. Once the database is created, WITH
// CONNECTION LIMIT 1 here, its first connection that succeeds reads the
// limits and the pool opens no more connections than they leave: a second
// connection waits for the first one's release, where the server refused
// it (53300, too many connections for database) and the handler failed.
func TestRoom2MissingDatabaseCreatedLaterSizesThePool(t *testing.T) {
	server := testAccTopology(t).Primary
	s, dbs := roleServer(t, server, "room2_late_db", 10, 5)
	ctx := context.Background()
	p0, p, late := measuredThenKept(t, s, server)

	c1, err := p.Acquire(ctx)
	if err != nil {
		t.Fatalf("the first connection to %s once created: %v", late, err)
	}
	// A second handler's connection while the first is held: it waits
	// for the database's one place.
	const held = time.Second
	got := selectOneAside(ctx, p, 10*time.Second)
	time.Sleep(held)
	// The role's other pool keeps its idle connection: the room has
	// places, only the pool's cap holds the second connection back.
	if n := p0.Stat().IdleConns(); n != 1 {
		t.Errorf("the pool of %s has %d idle connections while a connection to %s waited for its database's place, want 1: "+
			"the wait closed the idle connections of the role's other pools, where the role had places", dbs[0], n, late)
	}
	c1.Release()
	r := <-got
	err, took := r.err, r.acquired
	t.Logf("a second connection to %s (CONNECTION LIMIT 1, pool of max_connections 4) while the first was held %s: %s, %v",
		late, held, took.Round(time.Millisecond), err)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "53300" {
		t.Fatalf("the server refused a second connection to %s, of CONNECTION LIMIT 1: the pool kept for it while it was missing "+
			"was never sized by its limits: %v", late, err)
	}
	if err != nil {
		t.Fatalf("a second connection to %s, once the first was released: %v", late, err)
	}
	if took < held {
		t.Errorf("a second connection to %s was made after %s, while the first was held (%s): past its CONNECTION LIMIT 1", late, took, held)
	}
}
