package provider

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/pgsql"
)

// The provider's host list and a subscription's name the same servers in
// another order (host=127.0.0.1,localhost and host=localhost,127.0.0.1),
// both reaching the one server that listens there, as the same role: the
// room was keyed by the list in its order, so the provider's connections
// and the probe's were counted in two rooms, together opened more than
// the role's CONNECTION LIMIT, and the server refused the probe (53300,
// "too many connections for role"), as before the probe joined the
// provider's room. The key is now the set of servers: the probe waits for
// a place and its error names the limit.
func TestReview14RoomKeyHostOrder(t *testing.T) {
	n := testAccTopology(t).Primary
	if n.Host != "127.0.0.1" && n.Host != "localhost" {
		t.Skipf("the primary listens on %s, not on 127.0.0.1 and localhost", n.Host)
	}
	const role = "review14_order"
	s, dbs := roleServer(t, n, role, 2, 5)
	s.settings.Host = "127.0.0.1,localhost"
	pool := testPool(t, s, dbs[0])
	ctx := context.Background()
	for range 2 {
		c, err := pool.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Release)
	}
	connection := fmt.Sprintf("host=localhost,127.0.0.1 port=%d user=%s dbname=%s", n.Port, role, dbs[1])
	_, _, err := publisherPools.reach(ctx, &server{}, connection)
	if err == nil || err == errPublisherSilent || !strings.Contains(err.Error(), "the CONNECTION LIMIT of the provider's role "+pgsql.Ident(role)) {
		t.Errorf("the probe, its hosts in the other order, the provider holding both places of its role's CONNECTION LIMIT 2: "+
			"got %v; want it to wait for a place and name the role's limit", err)
	}
}
