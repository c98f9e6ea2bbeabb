package provider

import (
	"fmt"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
)

// PostgreSQL reads slot_name = 'none' (any case, quoted or not) as NONE: no
// slot. The provider validated slot_name = "none" as a slot name (lower-case
// letters), wrote it as the literal 'none', and the subscriber created a
// subscription without a slot; Read gave back "NONE", and the apply failed
// with "Provider produced inconsistent result after apply: .slot_name: was
// "none", but now "NONE"", leaving the subscription on the server and
// tainted in the state: the next plan failed ("Subscription Already
// Exists"). A subscription named "none" without slot_name hit the same
// default (the slot is named after the subscription): CREATE SUBSCRIPTION
// failed at apply with "slot_name = NONE and create_slot = true are mutually
// exclusive options". Both are plan-time errors now, and nothing is made.
func TestAccRed5Subscription_slotNameNone(t *testing.T) {
	topo := testAccTopology(t)
	f := newSubscriptionFixture(t, topo.Primary, "red5_slot_none", `CREATE PUBLICATION red5_none_pub FOR TABLE t1;`, nil)
	config := func(name, attrs string) string {
		return subscriberProvider(f.sub) + fmt.Sprintf(`
resource "pgreplication_subscription" "this" {
  provider     = pgreplication.subscriber
  name         = %q
  conninfo     = %q
  publications = ["red5_none_pub"]
%s
}
`, name, f.conninfo(""), attrs)
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: config("red5_none_sub", `
  slot_name   = "none"
  enabled     = false
  create_slot = false`),
				ExpectError: errorText("Invalid Replication Slot Name", `PostgreSQL reads slot_name "none" as NONE`),
			},
			{
				Config:      config("none", ""),
				ExpectError: errorText("Subscription Name Is Not a Slot Name", `PostgreSQL reads slot_name "none" as NONE`),
			},
		},
	})
	if n := queryValue[int64](t, f.sub, "postgres", `SELECT count(*) FROM pg_subscription`); n != 0 {
		t.Errorf("the subscriber has %d subscription(s) after two configurations refused at plan: want none", n)
	}
}
