package provider

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// 5cb6ebf holds a role's next connection, while its room is not measured,
// until the outcome of the one admitted before it is told (firstOver,
// connected), or firstOutcomeGrace (1 s) after it failed. Only newPool's
// first Acquire tells a failure; every other connection of a pool does not.
// A pool of a database that does not exist is kept (PoolOrDiag returns it,
// "the handler decides"), and each of its connections fails (3D000)
// untold: ready's in PoolOrDiag, then the handler's query (a publication's
// Read). The room is measured only by a first connection that succeeds, so
// on a server whose resources here are all in a dropped database every
// connection of the role waits a second for the one before: a plan that
// refreshes n publications of a dropped database takes about 2n seconds
// longer, each Read serialized behind the last one's refusal, where the
// server refused each at once.
//
// The reads are made one after the other, so no connection of the role is
// ever being made when the next one asks for a place: admit has nothing
// to hold one back for, and holds none back (admitHeldBack counts the
// rounds of its wait). The test said so by a wall-clock bound (600 ms for
// the four reads) until the clean-clone CI's 2-core machine, loaded by the
// routerlib suite beside it, took longer to start the refused backends
// alone and failed it on code that did not wait at all.
func TestReview3MissingDatabaseConnectionsDoNotWaitEachOther(t *testing.T) {
	testAccPreCheck(t)
	topo := routertest.Start(t, routertest.WithStandbys(0))
	role := "review3_pool_gone"
	execSQL(t, topo.Primary, "postgres", fmt.Sprintf(`CREATE ROLE %s LOGIN CONNECTION LIMIT 10`, role))
	s := newServer(connSettings{Host: topo.Primary.Host, Port: int64(topo.Primary.Port), Database: "postgres", Username: role,
		SSLMode: "disable", MaxConnections: 4, ConnectTimeout: 5})
	ctx := context.Background()
	var heldMu sync.Mutex
	heldBack := map[string]int{} // rounds of admit's wait, by database, of role
	count := func(r, database string) {
		if r == role {
			heldMu.Lock()
			heldBack[database]++
			heldMu.Unlock()
		}
	}
	admitHeldBack.Store(&count)
	t.Cleanup(func() { admitHeldBack.Store(nil) })
	heldBackIn := func(database string) int {
		heldMu.Lock()
		defer heldMu.Unlock()
		return heldBack[database]
	}
	const reads = 4
	var pools []*pgxpool.Pool
	t.Cleanup(func() {
		for _, p := range pools {
			forgetPool(p)
		}
	})
	took := make([]time.Duration, reads)
	for i := range reads {
		began := time.Now()
		// A publication's Read in a database dropped by hand: PoolOrDiag
		// (the pool, ready), then its query, each refused with 3D000.
		p, err := s.Pool(ctx, "review3_gone")
		if err != nil {
			t.Fatalf("read %d: Pool: %v", i, err)
		}
		if i == 0 {
			pools = append(pools, p)
		}
		if err := ready(ctx, p, 5*time.Second); !isMissingDatabase(err) {
			t.Fatalf("read %d: ready: want the database missing (3D000), got %v", i, err)
		}
		if _, err := p.Exec(ctx, `SELECT 1`); !isMissingDatabase(err) {
			t.Fatalf("read %d: query: want the database missing (3D000), got %v", i, err)
		}
		took[i] = time.Since(began)
	}
	t.Logf("each read of the missing database took %v", took)
	if n := heldBackIn("review3_gone"); n > 0 {
		t.Errorf("%d reads, one after the other, in a database that does not exist (the server refuses each connection at once, 3D000): "+
			"the role's connections were held back %d rounds of admit's wait (reads took %v), want none: "+
			"each connection waited for the untold outcome of the refused one before it", reads, n, took)
	}
	// And a pool of a database that exists, made after them, is not held
	// back either.
	p, err := s.Pool(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	pools = append(pools, p)
	if n := heldBackIn("postgres"); n > 0 {
		t.Errorf("the pool of database postgres, made after the missing database's reads, was held back %d rounds of admit's wait, want none", n)
	}
}
