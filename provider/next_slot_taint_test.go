package provider

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"

	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/pgsql"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// terraform taint of a slot a standby streams through plans its
// replacement once, as a create (Terraform gives the provider neither the
// tainted state nor its private state), and that plan now warns what the
// drop that comes first meets: the consumer, and that the drop will fail
// with terminate_active_on_destroy = false. Before, the plan showed the
// replacement with no warning and the apply failed "Cannot Drop Active
// Replication Slot".
func TestAccReplicationSlot_taintedActiveSlotWarns(t *testing.T) {
	testAccPreCheck(t)
	topo := routertest.Start(t, routertest.WithStandbys(1))
	standby := topo.Standbys[0]
	const addr = "pgreplication_replication_slot.used"
	const name = "next_slot_tainted"
	config := providerConfig("primary", topo.Primary) + `
resource "pgreplication_replication_slot" "used" {
  provider            = pgreplication.primary
  name                = "` + name + `"
  type                = "physical"
  immediately_reserve = true
}
`
	active := func() bool {
		return queryValue[bool](t, topo.Primary, "postgres", `SELECT coalesce((SELECT active FROM pg_replication_slots WHERE slot_name = $1), false)`, name)
	}
	setSlot := func(slot string) {
		execSQL(t, standby, "postgres", `ALTER SYSTEM SET primary_slot_name = `+pgsql.Literal(slot))
		execSQL(t, standby, "postgres", `SELECT pg_reload_conf()`)
	}
	logPath := traceLog(t)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy:             checkSlotsDropped(t, topo.Primary, name),
		Steps: []resource.TestStep{
			{Config: config},
			{
				PreConfig: func() {
					setSlot(name)
					waitFor(t, 30*time.Second, "the standby to stream through the slot", active)
					if err := os.Truncate(logPath, 0); err != nil {
						t.Fatal(err)
					}
				},
				Taint:              []string{addr},
				Config:             config,
				PlanOnly:           true,
				ExpectNonEmptyPlan: true,
			},
			{
				PreConfig: func() {
					b, err := os.ReadFile(logPath)
					if err != nil {
						t.Fatal(err)
					}
					log := strings.Join(strings.Fields(string(b)), " ")
					for _, w := range []string{"Replication Slot Is Active", name, "already, and this plan creates it", "terraform taint",
						"replacing it), which is in use by process", "replica-1", "so the drop will fail"} {
						if !strings.Contains(log, w) {
							t.Errorf("the plan of the tainted slot did not warn %q", w)
						}
					}
					// The replacement goes ahead once the standby lets go.
					setSlot("")
					waitFor(t, 30*time.Second, "the standby to stop streaming through the slot", func() bool { return !active() })
				},
				Config: config,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(addr, plancheck.ResourceActionDestroyBeforeCreate),
				}},
			},
		},
	})
}
