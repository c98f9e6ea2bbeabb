package provider

import (
	"fmt"
	"net/url"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"

	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/importid"
	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/pgsql"
)

// Subscriptions made by hand, with a name of quotes, spaces and non-ASCII
// and a password in the connection string, are imported with the TRACE log
// on, into a configuration that writes both connections in keyword/value
// form. Neither plans anything: the one whose CONNECTION is a URI is the same
// connection (TestAccAdoption_subscriptionConnectionForms has the other
// forms). No log line holds either password (the URI's percent-encoded one
// included).
// (copy_data is left out: PostgreSQL does not keep it, an import records
// the default, so declaring copy_data = false plans a state-only update, as
// its description says.)
func TestAccAdoption_handMadeSubscriptionsWithPasswords(t *testing.T) {
	topo := testAccTopology(t)
	f := newSubscriptionFixture(t, topo.Primary, "sub_pub_adopt", `CREATE PUBLICATION pub_adopt FOR TABLE t1;`, nil)
	const pw = "canary" + canaryMark + "-adopt"
	const kvName, uriName = `Sub "Q" ü`, `URI Sub`
	logPath := traceLog(t)
	encoded := url.QueryEscape(pw)
	uri := fmt.Sprintf("postgresql://postgres:%s@127.0.0.1:%d/sub_pub_adopt?sslmode=disable", encoded, f.pub.Port)
	for name, conn := range map[string]string{kvName: f.conninfo("sslmode=disable password=" + pw), uriName: uri} {
		slot := "adopt_kv"
		if name == uriName {
			slot = "adopt_uri"
		}
		execSQL(t, f.sub, "postgres", fmt.Sprintf(`CREATE SUBSCRIPTION %s CONNECTION %s PUBLICATION pub_adopt WITH (slot_name = %s, copy_data = false)`,
			pgsql.Ident(name), pgsql.Literal(conn), pgsql.Ident(slot)))
	}
	resourceFor := func(label, name, slot string) string {
		return fmt.Sprintf(`
import {
  to       = pgreplication_subscription.%[1]s
  id       = %[2]q
  provider = pgreplication.subscriber
}
resource "pgreplication_subscription" %[1]q {
  provider     = pgreplication.subscriber
  name         = %[3]q
  conninfo     = "%[4]s sslmode=disable password='${var.canary_password}'"
  publications = ["pub_adopt"]
  slot_name    = %[5]q
}
`, label, importid.Format("postgres", name), name, f.conninfo(""), slot)
	}
	config := canaryVariable(t, pw) + subscriberProvider(f.sub) + resourceFor("kv", kvName, "adopt_kv") + resourceFor("uri", uriName, "adopt_uri")
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: config,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("pgreplication_subscription.kv", plancheck.ResourceActionNoop),
					plancheck.ExpectResourceAction("pgreplication_subscription.uri", plancheck.ResourceActionNoop),
				}},
			},
			{Config: config, PlanOnly: true},
		},
	})
	checkLogHasNo(t, logPath, append(canaryParts(pw), encoded), "pgreplication: running SQL", "pg_subscription")
}
