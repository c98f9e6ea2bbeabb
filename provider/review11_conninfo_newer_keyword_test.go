package provider

import (
	"fmt"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// A subscriber on PostgreSQL 18 takes sslkeylogfile, a libpq keyword new
// in 18 (PQconndefaults of .cache/postgres/18's libpq lists 50 keywords,
// conninfo.Keywords held 49). The plan-time check of the connection
// refused it ("is not a libpq connection keyword") though CREATE
// SUBSCRIPTION on 18 stores it and the apply worker connects with it.
func TestAccSubscription_review11NewerKeywordAccepted(t *testing.T) {
	topo := testAccTopology(t)
	f := newSubscriptionFixture(t, topo.Primary, "sub_pub_r11_kw", `CREATE PUBLICATION pub_r11 FOR TABLE t1;`,
		[]routertest.Option{routertest.WithVersion(18)})
	connection := f.conninfo("sslmode=disable sslkeylogfile=/tmp/review11_keys")
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config: subscriberProvider(f.sub) + fmt.Sprintf(`
resource "pgreplication_subscription" "this" {
  provider     = pgreplication.subscriber
  name         = "sub_r11_kw"
  conninfo     = %q
  publications = ["pub_r11"]
}
`, connection),
			Check: func(*terraform.State) error {
				got := queryValue[string](t, f.sub, "postgres", `SELECT subconninfo FROM pg_subscription WHERE subname = 'sub_r11_kw'`)
				if !strings.Contains(got, "sslkeylogfile") {
					return fmt.Errorf("the subscriber's connection is %q, want it with sslkeylogfile", got)
				}
				return nil
			},
		}},
	})
}
