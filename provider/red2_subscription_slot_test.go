package provider

import (
	"fmt"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
)

// Changing a subscription's slot_name to a slot the publisher does not have
// cut the subscription silently: ALTER SUBSCRIPTION … SET (slot_name = …)
// checks nothing, the apply succeeded, the next plan was empty, and the
// apply worker failed on every start ("replication slot … does not exist")
// while the old slot retained WAL on the publisher. On the old code step 2
// applied without an error (seen by hand on PostgreSQL 18: a row written
// after it had not arrived 5 s later). Now the plan warns and the apply
// refuses, changing nothing; a slot that exists is taken.
func TestAccSubscription_slotNameToMissingSlotRefused(t *testing.T) {
	topo := testAccTopology(t)
	f := newSubscriptionFixture(t, topo.Primary, "sub_slot_change", `CREATE PUBLICATION pub_slot_change FOR TABLE t1;`, nil)
	config := func(slot string) string {
		return subscriberProvider(f.sub) + fmt.Sprintf(`
resource "pgreplication_subscription" "this" {
  provider     = pgreplication.subscriber
  name         = "sub_slot_change"
  conninfo     = %q
  publications = ["pub_slot_change"]
  slot_name    = %q
}
`, f.conninfo(""), slot)
	}
	insert := func(id int) func() {
		return func() { execSQL(t, f.pub, f.pubDB, `INSERT INTO t1 VALUES ($1, 'x')`, id) }
	}
	slotIs := func(want string) resource.TestCheckFunc {
		return func(*terraform.State) error {
			if got := queryValue[string](t, f.sub, "postgres", `SELECT subslotname::text FROM pg_subscription WHERE subname = 'sub_slot_change'`); got != want {
				return fmt.Errorf("the subscription uses the slot %q, want %q", got, want)
			}
			return nil
		}
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				PreConfig: insert(1),
				Config:    config("sub_slot_change"),
				Check:     waitRows(t, f.sub, "postgres", "t1", 1),
			},
			{
				Config: config("sub_slot_missing"),
				ExpectError: errorText("Subscription Would Stop Replicating", `was to use the replication slot "sub_slot_missing"`,
					`has no replication slot "sub_slot_missing"`, "This apply changed nothing",
					`the old slot "sub_slot_change" is not dropped by the change`),
			},
			{
				// Nothing changed: the subscription streams from its slot.
				PreConfig: insert(2),
				Config:    config("sub_slot_change"),
				Check:     resource.ComposeTestCheckFunc(slotIs("sub_slot_change"), waitRows(t, f.sub, "postgres", "t1", 2)),
			},
			{
				PreConfig: func() {
					execSQL(t, f.pub, f.pubDB, `SELECT pg_create_logical_replication_slot('sub_slot_other', 'pgoutput')`)
				},
				Config: config("sub_slot_other"),
				Check:  slotIs("sub_slot_other"),
			},
			{
				PreConfig: insert(3),
				Config:    config("sub_slot_other"),
				Check:     waitRows(t, f.sub, "postgres", "t1", 3),
			},
		},
	})
}
