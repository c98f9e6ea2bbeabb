package provider

import (
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
)

// A logical slot whose output plugin is not installed, or whose database
// does not exist, fails at apply (neither can be known at plan: a plugin is
// a file the server loads, a database may be created in the same apply)
// with an error on that attribute that says what to do. Before, both were
// "Cannot Create Replication Slot ... failed. Server error: …" and no fix.
func TestAccReplicationSlot_review9CreateErrorsNameTheFix(t *testing.T) {
	topo := testAccTopology(t)
	config := func(body string) string {
		return providerConfig("primary", topo.Primary) + `
resource "pgreplication_replication_slot" "this" {
  provider = pgreplication.primary
  name     = "r9_create_errors"
  type     = "logical"
` + body + `
}
`
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config:      config(`  plugin = "r9_no_such_plugin"`),
				ExpectError: errorText("Output Plugin Not Installed", `"r9_no_such_plugin"`, "Install it on the server", "or correct plugin"),
			},
			{
				Config:      config(`  database = "r9 no such db"`),
				ExpectError: errorText("Database Does Not Exist", `"r9 no such db"`, "Create the database first", "or correct database"),
			},
		},
	})
}
