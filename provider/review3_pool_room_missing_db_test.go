package provider

import (
	"context"
	"fmt"
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
func TestReview3MissingDatabaseConnectionsDoNotWaitEachOther(t *testing.T) {
	testAccPreCheck(t)
	topo := routertest.Start(t, routertest.WithStandbys(0))
	role := "review3_pool_gone"
	execSQL(t, topo.Primary, "postgres", fmt.Sprintf(`CREATE ROLE %s LOGIN CONNECTION LIMIT 10`, role))
	s := newServer(connSettings{Host: topo.Primary.Host, Port: int64(topo.Primary.Port), Database: "postgres", Username: role,
		SSLMode: "disable", MaxConnections: 4, ConnectTimeout: 5})
	ctx := context.Background()
	const reads = 4
	var pools []*pgxpool.Pool
	t.Cleanup(func() {
		for _, p := range pools {
			forgetPool(p)
		}
	})
	start := time.Now()
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
	elapsed := time.Since(start)
	t.Logf("each read of the missing database took %v", took)
	if most := 600 * time.Millisecond; elapsed > most {
		t.Errorf("%d reads in a database that does not exist (the server refuses each connection at once, 3D000) took %s, want at most %s: "+
			"each connection waited for the untold outcome of the refused one before it (firstOutcomeGrace)",
			reads, elapsed.Round(time.Millisecond), most)
	}
	// And a pool of a database that exists, made after them, is not held
	// back either.
	began := time.Now()
	p, err := s.Pool(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	pools = append(pools, p)
	if d := time.Since(began); d > 500*time.Millisecond {
		t.Errorf("the pool of database postgres, after the missing database's reads, took %s to make, want at most 500ms", d.Round(time.Millisecond))
	}
}
