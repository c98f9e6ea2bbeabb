package provider

import (
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// On PostgreSQL 18 a column list that names a virtual generated column is
// refused at plan time, on columns, with what to do. Before, the plan
// passed and ALTER PUBLICATION failed at apply ("cannot use virtual
// generated column "v" in publication column list"). A stored generated
// column stays allowed.
func TestAccPublication_review9VirtualGeneratedColumnRefusedAtPlan(t *testing.T) {
	testAccPreCheck(t)
	// Virtual generated columns are new in 18: this test starts its own.
	topo := routertest.Start(t, routertest.WithVersion(18), routertest.WithStandbys(0))
	const db = "r9_virtual"
	createDatabase(t, topo.Primary, db)
	execSQL(t, topo.Primary, db, `CREATE TABLE public.g (id int PRIMARY KEY, a int,
  s int GENERATED ALWAYS AS (a * 2) STORED, "V irt" int GENERATED ALWAYS AS (a + 1) VIRTUAL)`)
	config := func(columns string) string {
		return providerConfig("primary", topo.Primary) + `
resource "pgreplication_publication" "this" {
  provider                  = pgreplication.primary
  database                  = "` + db + `"
  name                      = "r9_virtual"
  publish_generated_columns = "stored"
  tables                    = { "public.g" = { columns = ` + columns + ` } }
}
`
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{Config: config(`["id", "a", "s"]`)},
			{
				Config:      config(`["id", "a", "s", "V irt"]`),
				PlanOnly:    true,
				ExpectError: errorText("Virtual Generated Column in Column List", `"V irt"`, "Remove it from columns"),
			},
		},
	})
}
