package provider

import (
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
)

// A system schema in tables_in_schema (pg_catalog, pg_toast, a temporary
// schema) is refused at plan time, on tables_in_schema, with why and what
// to do. Before, the plan passed and CREATE PUBLICATION failed at apply
// ("cannot add schema "pg_catalog" to publication"). information_schema,
// which PostgreSQL accepts, still applies; so does an ordinary schema.
func TestAccPublication_systemSchemaRefusedAtPlan(t *testing.T) {
	topo := testAccTopology(t)
	const db = "pub_sysschema"
	createDatabase(t, topo.Primary, db)
	execSQL(t, topo.Primary, db, `CREATE SCHEMA "Sales"; CREATE TABLE "Sales".orders (id int PRIMARY KEY)`)
	config := func(schemas string) string {
		return providerConfig("primary", topo.Primary) + `
resource "pgreplication_publication" "this" {
  provider         = pgreplication.primary
  database         = "` + db + `"
  name             = "pub_sysschema"
  tables_in_schema = ` + schemas + `
}
`
	}
	refused := func(schemas, schema string) resource.TestStep {
		return resource.TestStep{Config: config(schemas), PlanOnly: true,
			ExpectError: errorText("System Schema Cannot Be Published", `schema "`+schema+`"`, "Remove it from tables_in_schema")}
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			refused(`["Sales", "pg_catalog"]`, "pg_catalog"),
			refused(`["pg_toast"]`, "pg_toast"),
			refused(`["pg_temp_3"]`, "pg_temp_3"),
			{Config: config(`["Sales", "information_schema"]`)},
		},
	})
}
