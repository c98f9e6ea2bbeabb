package provider

import (
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
)

// A primary_conninfo_params value that libpq would refuse when the WAL
// receiver connects (target_session_attrs = "primay", connect_timeout =
// "10s") is refused at plan time, on the map key, like a refused
// keyword. Before, the plan passed and the apply waited wait_timeout for a
// standby that could never stream, then wrote the old settings back.
// ValidateConfig runs before the plan touches the shared standby.
func TestAccStandby_review9ParamValuesRefusedAtPlan(t *testing.T) {
	topo := testAccTopology(t)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config:      standbyConfig(topo, "  primary_conninfo_params = { target_session_attrs = \"primay\" }\n"),
				PlanOnly:    true,
				ExpectError: errorText("Invalid Connection Parameter", `target_session_attrs "primay" is not one of libpq's values`),
			},
			{
				Config:      standbyConfig(topo, "  primary_conninfo_params = { connect_timeout = \"10s\" }\n"),
				PlanOnly:    true,
				ExpectError: errorText("Invalid Connection Parameter", `connect_timeout "10s" is not a whole number`),
			},
		},
	})
}
