package provider

import (
	"fmt"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// synchronous_standby_names written by hand the way a person would (lower
// case keywords, quoted names with a doubled quote,
// parentheses, a dot, a slash, upper case) is imported with an import block:
// the first plan imports and changes nothing.
func TestAccSynchronousReplication_handWrittenImportPlansNothing(t *testing.T) {
	testAccPreCheck(t)
	// Server-wide settings that can block commits: not the shared topology.
	topo := routertest.Start(t, routertest.WithStandbys(2))
	const handWritten = `any 1 ("replica-1", "Stand ""by"" (x)", "UPPER case.x/y")`
	alterSystemByHand(t, topo.Primary, "synchronous_standby_names", handWritten)
	config := `
import {
  to       = pgreplication_synchronous_replication.this
  id       = "synchronous_replication"
  provider = pgreplication.primary
}
` + syncConfig(topo, `
  method        = "any"
  standby_names = ["replica-1", "Stand \"by\" (x)", "UPPER case.x/y"]
`)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config:           config,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{expectImportsOnly(1)}},
				Check: func(*terraform.State) error {
					if got := queryValue[string](t, topo.Primary, "postgres", "SHOW synchronous_standby_names"); got != handWritten {
						return fmt.Errorf("synchronous_standby_names = %s after an import that changed nothing, want it as written by hand", got)
					}
					return nil
				},
			},
			{Config: config, PlanOnly: true},
		},
	})
}
