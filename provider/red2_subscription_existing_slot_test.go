package provider

import (
	"fmt"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
)

// A subscription created with create_slot = false on a slot another
// subscription streams from (a copied configuration, a second
// configuration managing the same publisher) shared it: CREATE SUBSCRIPTION
// checks nothing, and the apply succeeded: the second apply worker failed
// while the first held the slot and would take it whenever the first let go
// (a restart), confirming changes the first then never gets. One on a slot
// the publisher lacks never streamed. On the old code step 2 created the
// subscription on the slot in use (expected an error, got none). Now both
// are refused at apply, with nothing created, and warned at plan; a slot of
// its own is taken.
func TestAccSubscription_existingSlotCheckedAtCreate(t *testing.T) {
	topo := testAccTopology(t)
	f := newSubscriptionFixture(t, topo.Primary, "sub_cs", `CREATE PUBLICATION pub_cs_a FOR TABLE t1; CREATE PUBLICATION pub_cs_b FOR TABLE t2;`, nil)
	first := subscriberProvider(f.sub) + fmt.Sprintf(`
resource "pgreplication_subscription" "a" {
  provider     = pgreplication.subscriber
  name         = "sub_cs_a"
  conninfo     = %q
  publications = ["pub_cs_a"]
}
`, f.conninfo(""))
	second := func(slot string) string {
		return first + fmt.Sprintf(`
resource "pgreplication_subscription" "b" {
  provider     = pgreplication.subscriber
  name         = "sub_cs_b"
  conninfo     = %q
  publications = ["pub_cs_b"]
  create_slot  = false
  slot_name    = %q
}
`, f.conninfo(""), slot)
	}
	notCreated := func(*terraform.State) error {
		if n := queryValue[int64](t, f.sub, "postgres", `SELECT count(*) FROM pg_subscription WHERE subname = 'sub_cs_b'`); n != 0 {
			return fmt.Errorf("the subscription sub_cs_b was created")
		}
		return nil
	}
	insert := func(table string, id int) func() {
		return func() { execSQL(t, f.pub, f.pubDB, `INSERT INTO `+table+` VALUES ($1, 'x')`, id) }
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				PreConfig: insert("t1", 1),
				Config:    first,
				Check:     waitRows(t, f.sub, "postgres", "t1", 1),
			},
			{
				Config: second("sub_cs_a"),
				ExpectError: errorText("Subscription Would Not Replicate", `streaming from the replication slot "sub_cs_a"`,
					`is in use by another session`, "Nothing was created."),
			},
			{
				Config:      second("sub_cs_missing"),
				ExpectError: errorText("Subscription Would Not Replicate", `has no replication slot "sub_cs_missing"`, "Nothing was created."),
			},
			{
				// The first subscription still has every change.
				PreConfig: insert("t1", 2),
				Config:    first,
				Check:     resource.ComposeTestCheckFunc(notCreated, waitRows(t, f.sub, "postgres", "t1", 2)),
			},
			{
				PreConfig: func() {
					execSQL(t, f.pub, f.pubDB, `SELECT pg_create_logical_replication_slot('sub_cs_own', 'pgoutput')`)
				},
				Config: second("sub_cs_own"),
			},
			{
				PreConfig: insert("t2", 1),
				Config:    second("sub_cs_own"),
				Check:     waitRows(t, f.sub, "postgres", "t2", 1),
			},
		},
	})
}
