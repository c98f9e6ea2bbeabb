package provider

import (
	"context"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// closeTestPool forgets p, then closes it: the end of a pool that a test
// took from processPools (server.Pool) for itself. A pool closed and left
// there is handed, closed, to whatever asks later for its key: host, port,
// database, user and the provider's settings, all the defaults of
// providerConfig's. routertest picks its ports among the free ones, so a
// later test's server can listen where a finished test's did, and its
// provider then fails its first statement with "closed pool"
// (TestAccReplicationSlot_lost, once in CI:
// TestAccProvider_closedPoolNotHandedToLaterServerOnItsPort).
func closeTestPool(p *pgxpool.Pool) {
	forgetPool(p)
	p.Close()
}

// A finished test's pool, closed at its end, is not what a later test's
// provider gets for a server on the same port. The stby_* and review2 tests
// made the provider's pool to their standby with providerConfig's settings
// and closed it in their cleanup (t.Cleanup(pool.Close)), leaving it in
// processPools; when routertest later gave that port to
// TestAccReplicationSlot_lost's primary, its apply failed 2.5 s in with
// "cannot read the server version … closed pool". Here the earlier test's
// pool is made to this test's own server, which stands for the port's next
// server: the key holds the port, not which server listens there.
func TestAccProvider_closedPoolNotHandedToLaterServerOnItsPort(t *testing.T) {
	testAccPreCheck(t)
	topo := routertest.Start(t, routertest.WithStandbys(0))
	// The earlier test, as TestStandbyResetNotStreamingAsksPrimaryConninfo
	// makes its pool and ends it.
	earlier := newServer(connSettings{Host: topo.Primary.Host, Port: int64(topo.Primary.Port), Database: "postgres", Username: "postgres", SSLMode: "disable"})
	p, err := earlier.Pool(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	closeTestPool(p)
	// The later test: TestAccReplicationSlot_lost's first step.
	const name = "tfacc_closedpool_slot"
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy:             checkSlotsDropped(t, topo.Primary, name),
		Steps: []resource.TestStep{{
			Config: providerConfig("primary", topo.Primary) + `
resource "pgreplication_replication_slot" "later" {
  provider            = pgreplication.primary
  name                = "` + name + `"
  type                = "physical"
  immediately_reserve = true
}
`,
		}},
	})
}
