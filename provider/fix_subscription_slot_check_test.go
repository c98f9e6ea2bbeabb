package provider

import (
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
)

// subscriptionSlotConfig is a subscription of f streaming from
// pub_slot_check through slot, enabled or not.
func subscriptionSlotConfig(f subscriptionFixture, name, slot string, enabled bool) string {
	return subscriberProvider(f.sub) + fmt.Sprintf(`
resource "pgreplication_subscription" "this" {
  provider     = pgreplication.subscriber
  name         = %q
  conninfo     = %q
  publications = ["pub_slot_check"]
  slot_name    = %q
  enabled      = %t
}
`, name, f.conninfo(""), slot, enabled)
}

// subscriptionSlotIs checks the slot the subscription name has.
func subscriptionSlotIs(t *testing.T, f subscriptionFixture, name, want string) resource.TestCheckFunc {
	return func(*terraform.State) error {
		if got := queryValue[string](t, f.sub, "postgres", `SELECT subslotname::text FROM pg_subscription WHERE subname = $1`, name); got != want {
			return fmt.Errorf("the subscription uses the slot %q, want %q", got, want)
		}
		return nil
	}
}

// A disabled subscription streams nothing, so the slot it is moved to need
// not be there yet: on the old code step 2 was refused ("Subscription
// Would Stop Replicating", has no replication slot) though the
// subscription stays disabled. Its slot is checked when it is enabled
// instead (step 3, which the old code did not check at all: the
// subscription would have been enabled on a missing slot), and a slot made
// by then is taken (step 4).
func TestAccSubscription_disabledSubscriptionSlotCheckedWhenEnabled(t *testing.T) {
	topo := testAccTopology(t)
	const name = "sub_slot_disabled"
	f := newSubscriptionFixture(t, topo.Primary, name, `CREATE PUBLICATION pub_slot_check FOR TABLE t1;`, nil)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{Config: subscriptionSlotConfig(f, name, name, false)},
			{
				Config: subscriptionSlotConfig(f, name, "sub_slot_later", false),
				Check:  subscriptionSlotIs(t, f, name, "sub_slot_later"),
			},
			{
				Config: subscriptionSlotConfig(f, name, "sub_slot_later", true),
				ExpectError: errorText("Subscription Would Stop Replicating", `was to be enabled, streaming from the replication slot "sub_slot_later"`,
					`has no replication slot "sub_slot_later"`, "This apply changed nothing", "keep enabled = false"),
			},
			{
				PreConfig: func() {
					execSQL(t, f.pub, f.pubDB, `SELECT pg_create_logical_replication_slot('sub_slot_later', 'pgoutput')`)
					execSQL(t, f.pub, f.pubDB, `INSERT INTO t1 VALUES (1, 'x')`)
				},
				Config: subscriptionSlotConfig(f, name, "sub_slot_later", true),
				Check:  resource.ComposeTestCheckFunc(subscriptionSlotIs(t, f, name, "sub_slot_later"), waitRows(t, f.sub, "postgres", "t1", 1)),
			},
		},
	})
}

// A slot whose consumer lets it go a moment into the apply is taken: the
// apply looks at it again for up to slotReleaseWait before it refuses. On
// the old code step 2 was refused at once ("is in use by another session")
// though the slot was free 2 s later.
func TestAccSubscription_slotReleasedDuringApplyTaken(t *testing.T) {
	topo := testAccTopology(t)
	const name = "sub_slot_released"
	f := newSubscriptionFixture(t, topo.Primary, name, `CREATE PUBLICATION pub_slot_check FOR TABLE t1;`, nil)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{Config: subscriptionSlotConfig(f, name, name, true)},
			{
				PreConfig: func() {
					execSQL(t, f.pub, f.pubDB, `SELECT pg_create_logical_replication_slot('sub_slot_busy', 'pgoutput')`)
					release := holdSlotIn(t, f.pub, f.pubDB, "sub_slot_busy")
					// Terraform plans (warning that the slot is in use)
					// before it applies: released 2 s into the apply at most.
					time.AfterFunc(3*time.Second, release)
				},
				Config: subscriptionSlotConfig(f, name, "sub_slot_busy", true),
				Check:  subscriptionSlotIs(t, f, name, "sub_slot_busy"),
			},
			{
				PreConfig: func() { execSQL(t, f.pub, f.pubDB, `INSERT INTO t1 VALUES (1, 'x')`) },
				Config:    subscriptionSlotConfig(f, name, "sub_slot_busy", true),
				Check:     waitRows(t, f.sub, "postgres", "t1", 1),
			},
		},
	})
}
