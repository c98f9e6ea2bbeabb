package provider

import (
	"fmt"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
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

// One apply that gives a subscription an owner that is not a superuser,
// password_required = false and a connection without a password, which
// PostgreSQL 16 and later allow together: it checks a CONNECTION against
// password_required as the statements before it left it. On the old code
// the CONNECTION ran before SET (password_required = false) and was
// refused ("password is required"); the options are now set before it.
func TestAccSubscription_subreviewPasswordRequiredBeforeConnection(t *testing.T) {
	topo := testAccTopology(t)
	routertest.SkipBelow(t, 16, "password_required")
	f := newSubscriptionFixture(t, topo.Primary, "sub_pub_pwreq", `CREATE PUBLICATION pub_a FOR TABLE t1;`, nil)
	execSQL(t, f.sub, "postgres", `CREATE ROLE sub_owner LOGIN; GRANT CREATE ON DATABASE postgres TO sub_owner; GRANT pg_create_subscription TO sub_owner`)
	config := func(connection, owner string, passwordRequired bool) string {
		return subscriberProvider(f.sub) + fmt.Sprintf(`
resource "pgreplication_subscription" "this" {
  provider          = pgreplication.subscriber
  name              = "sub_pwreq"
  conninfo          = %q
  publications      = ["pub_a"]
  owner             = %q
  password_required = %t
}
`, connection, owner, passwordRequired)
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{Config: config(f.conninfo("password=pw"), "postgres", true)},
			{
				Config: config(f.conninfo("application_name=nopw"), "sub_owner", false),
				Check: func(*terraform.State) error {
					got := queryValue[string](t, f.sub, "postgres", `SELECT format('%s %s password_required=%s %s', s.subname, r.rolname, s.subpasswordrequired, s.subconninfo)
  FROM pg_subscription s JOIN pg_roles r ON r.oid = s.subowner`)
					if want := "sub_pwreq sub_owner password_required=f " + f.conninfo("application_name=nopw"); got != want {
						return fmt.Errorf("the subscriber has %q, want %q", got, want)
					}
					return nil
				},
			},
			// A superuser owns it again, so that it is dropped as the
			// other tests' are.
			{Config: config(f.conninfo("application_name=nopw"), "postgres", false)},
		},
	})
}
