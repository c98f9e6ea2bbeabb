package provider

import (
	"fmt"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
)

// A publication that another configuration (or someone by hand) made under
// the name this configuration creates was found only by CREATE
// PUBLICATION, at apply, after the rest of the apply was made: on the old
// code step 1 created the slot and then failed with "Cannot Create
// Publication … already exists". Now the plan refuses, naming the import
// that takes it over, and nothing is applied.
func TestAccPublication_existingNameRefusedAtPlan(t *testing.T) {
	topo := testAccTopology(t)
	const pub, slot = "tfacc_exists_pub", "tfacc_exists_slot"
	execSQL(t, topo.Primary, "postgres", `CREATE PUBLICATION `+pub)
	t.Cleanup(func() {
		execSQL(t, topo.Primary, "postgres", `DROP PUBLICATION IF EXISTS `+pub)
		execSQL(t, topo.Primary, "postgres", `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1`, slot)
	})
	config := providerConfig("", topo.Primary) + fmt.Sprintf(`
resource "pgreplication_replication_slot" "s" {
  name = %q
  type = "physical"
}

resource "pgreplication_publication" "p" {
  name = %q
}
`, slot, pub)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: config,
				ExpectError: errorText("Publication Already Exists", `Database "postgres" on`, `already has a publication "`+pub+`"`,
					`import it (an import block with id = "postgres/`+pub+`"`),
			},
			{
				PreConfig: func() {
					if n := queryValue[int64](t, topo.Primary, "postgres", `SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1`, slot); n != 0 {
						t.Fatalf("the refused apply created the slot %s", slot)
					}
				},
				Config: config + fmt.Sprintf(`
import {
  to = pgreplication_publication.p
  id = "postgres/%s"
}
`, pub),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("pgreplication_publication.p", plancheck.ResourceActionNoop),
				}},
			},
		},
	})
}

// The same for a subscription: on the old code the apply failed at CREATE
// SUBSCRIPTION ("Cannot Create Subscription … already exists"); now the plan
// refuses, naming the import.
func TestAccSubscription_existingNameRefusedAtPlan(t *testing.T) {
	topo := testAccTopology(t)
	f := newSubscriptionFixture(t, topo.Primary, "sub_exists", `CREATE PUBLICATION pub_exists FOR TABLE t1;`, nil)
	// Made by hand without connecting: no slot, disabled.
	execSQL(t, f.sub, "postgres", fmt.Sprintf(`CREATE SUBSCRIPTION tfacc_exists_sub CONNECTION %s PUBLICATION pub_exists WITH (connect = false)`,
		"'"+f.conninfo("")+"'"))
	config := subscriberProvider(f.sub) + fmt.Sprintf(`
resource "pgreplication_subscription" "this" {
  provider     = pgreplication.subscriber
  name         = "tfacc_exists_sub"
  conninfo     = %q
  publications = ["pub_exists"]
}
`, f.conninfo(""))
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config:      config,
			PlanOnly:    true,
			ExpectError: errorText("Subscription Already Exists", `already has a subscription "tfacc_exists_sub"`, `id = "postgres/tfacc_exists_sub"`),
		}},
	})
}
