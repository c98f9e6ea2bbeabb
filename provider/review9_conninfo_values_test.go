package provider

import (
	"fmt"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
)

// A typo in a value of the subscription's connection (sslmode = "requier",
// target_session_attrs = "primay") or a keyword libpq does not have is
// refused at plan time. Before, ALTER SUBSCRIPTION … CONNECTION took the
// typo (PostgreSQL checks only the keywords when it stores a connection,
// libpq the values when it connects): the apply succeeded, the plan only
// warned "Publisher Not Checked", and the apply worker failed on every
// retry from then on ("invalid sslmode value") — replication cut by an
// apply that reported success. An unknown keyword failed only at apply.
func TestAccSubscription_review9ConninfoValuesRefusedAtPlan(t *testing.T) {
	topo := testAccTopology(t)
	f := newSubscriptionFixture(t, topo.Primary, "sub_pub_r9_values", `CREATE PUBLICATION pub_r9 FOR TABLE t1;`, nil)
	config := func(connection string) string {
		return subscriberProvider(f.sub) + fmt.Sprintf(`
resource "pgreplication_subscription" "this" {
  provider     = pgreplication.subscriber
  name         = "sub_r9_values"
  conninfo     = %q
  publications = ["pub_r9"]
}
`, connection)
	}
	good := f.conninfo("sslmode=disable")
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{Config: config(good)},
			{
				Config:      config(f.conninfo("sslmode=bogus")),
				ExpectError: errorText(`Invalid Connection String`, `sslmode "bogus"`, `"verify-full"`),
			},
			{
				Config:      config(fmt.Sprintf("postgresql://postgres@127.0.0.1:%d/%s?target_session_attrs=primay", f.pub.Port, f.pubDB)),
				ExpectError: errorText(`Invalid Connection String`, `target_session_attrs "primay"`),
			},
			{
				Config:      config(f.conninfo("sslmode=disable bogus_keyword=1")),
				ExpectError: errorText(`Invalid Connection String`, `"bogus_keyword" is not a libpq connection keyword`),
			},
			{
				// Nothing of the refused steps reached the subscriber.
				Config: config(good),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(subscriptionAddr, plancheck.ResourceActionNoop),
				}},
				Check: func(*terraform.State) error {
					if got := queryValue[string](t, f.sub, "postgres", `SELECT subconninfo FROM pg_subscription WHERE subname = 'sub_r9_values'`); got != good {
						return fmt.Errorf("the subscriber's connection is %q, want %q", got, good)
					}
					return nil
				},
			},
		},
	})
}
