package provider

import (
	"context"
	"fmt"
	"testing"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// One role on the publisher, with a CONNECTION LIMIT, for the provider
// that manages the publisher (its publications) and in a subscription's
// conninfo, one command: the subscription's probe of the publisher is
// done, and the provider then needs as many connections as the role's
// limit allows. The probe pool's idle sessions held places of that limit
// for publisherPoolIdle (15 s) after its checks, which the provider's
// pools (roleRoom) did not count, and the server refused a provider
// connection (53300). Before the pools, the probe's connection closed
// with its handler.
func TestReview5ProbeLeavesRoleLimitToProvider(t *testing.T) {
	testAccPreCheck(t)
	pub := routertest.Start(t, routertest.WithStandbys(0)).Primary
	const role = "review5_limited"
	execSQL(t, pub, "postgres", `CREATE ROLE `+role+` LOGIN CONNECTION LIMIT 2`)
	ctx := context.Background()
	provider := newServer(connSettings{Host: "127.0.0.1", Port: int64(pub.Port), Database: "postgres", Username: role, SSLMode: "disable"})
	pool, err := provider.Pool(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	connection := fmt.Sprintf("host=127.0.0.1 port=%d user=%s dbname=postgres", pub.Port, role)
	probe := &publisherProbe{connection: connection, by: provider}
	if _, _, err := missingPublications(ctx, probe, []string{"x"}); err != nil {
		t.Fatal(err)
	}
	// The provider, at the role's limit: two statements at once.
	errs := acquireAtOnce(ctx, pool, 2)
	for _, err := range errs {
		if err != nil {
			t.Errorf("a provider connection, within its role's CONNECTION LIMIT 2, failed after a probe of the publisher: %v", err)
		}
	}
}
