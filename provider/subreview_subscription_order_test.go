package provider

import (
	"fmt"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
)

// One apply that disables a subscription and detaches it from its slot
// (enabled = false, slot_name = "NONE"), then one that gives it its slot
// back and enables it. PostgreSQL refuses SET (slot_name = NONE) on an
// enabled subscription ("cannot set slot_name = NONE for enabled
// subscription") and ENABLE on one without a slot ("cannot enable
// subscription that does not have a slot name"): the update's transaction
// runs DISABLE before the SET, and the SET before ENABLE. On the old code
// the SET ran before DISABLE and ENABLE before the SET: both applies
// failed, though each plan was one PostgreSQL allows.
func TestAccSubscription_subreviewSlotNoneOrder(t *testing.T) {
	topo := testAccTopology(t)
	f := newSubscriptionFixture(t, topo.Primary, "sub_pub_order", `CREATE PUBLICATION pub_a FOR TABLE t1;`, nil)
	config := func(enabled bool, slot string, createSlot bool) string {
		return subscriberProvider(f.sub) + fmt.Sprintf(`
resource "pgreplication_subscription" "this" {
  provider     = pgreplication.subscriber
  name         = "sub_order"
  conninfo     = %q
  publications = ["pub_a"]
  enabled      = %t
  slot_name    = %q
  create_slot  = %t
}
`, f.conninfo(""), enabled, slot, createSlot)
	}
	subscriber := func(want string) resource.TestCheckFunc {
		return func(*terraform.State) error {
			got := queryValue[string](t, f.sub, "postgres",
				`SELECT format('%s enabled=%s slot=%s', subname, subenabled, coalesce(subslotname::text, 'NONE')) FROM pg_subscription`)
			if got != want {
				return fmt.Errorf("the subscriber has %q, want %q", got, want)
			}
			return nil
		}
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{Config: config(true, "sub_order_slot", true)},
			{
				Config: config(false, "NONE", false),
				Check:  subscriber("sub_order enabled=f slot=NONE"),
			},
			{
				Config: config(true, "sub_order_slot", false),
				Check: resource.ComposeTestCheckFunc(
					subscriber("sub_order enabled=t slot=sub_order_slot"),
					func(*terraform.State) error {
						execSQL(t, f.pub, f.pubDB, `INSERT INTO t1 VALUES (1, 'after enable')`)
						return nil
					},
					waitRows(t, f.sub, "postgres", "t1", 1),
				),
			},
		},
	})
}
