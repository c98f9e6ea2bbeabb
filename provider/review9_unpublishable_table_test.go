package provider

import (
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
)

// A table key that names a relation PostgreSQL can never publish — a
// system table — is refused at plan time on that key, with why and what to
// do; a view, a materialized view or an unlogged table, which the same
// apply may make a table, is planned with a warning. Before, the plan passed
// and CREATE or ALTER PUBLICATION failed at apply ("cannot add relation
// "v" to publication ... not supported for views"): atomically, but late,
// after a plan that a reviewer approved.
func TestAccPublication_review9UnpublishableRelationsRefusedAtPlan(t *testing.T) {
	topo := testAccTopology(t)
	const db = "r9_unpublishable"
	createDatabase(t, topo.Primary, db)
	execSQL(t, topo.Primary, db, `
CREATE TABLE public.ok (id int PRIMARY KEY);
CREATE VIEW public.v AS SELECT 1 AS id;
CREATE MATERIALIZED VIEW public.mv AS SELECT 1 AS id;
CREATE UNLOGGED TABLE public."Un Logged" (id int PRIMARY KEY);`)
	config := func(key string) string {
		return providerConfig("primary", topo.Primary) + `
resource "pgreplication_publication" "this" {
  provider = pgreplication.primary
  database = "` + db + `"
  name     = "r9_unpublishable"
  tables   = { "public.ok" = {}, ` + hcl(key) + ` = {} }
}
`
	}
	step := func(key string, phrases ...string) resource.TestStep {
		return resource.TestStep{Config: config(key), PlanOnly: true, ExpectError: errorText(append([]string{"Table Cannot Be Published", key}, phrases...)...)}
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			step("pg_catalog.pg_class", "a system table"),
			step("information_schema.sql_features", "a system table"),
			// A table that does not exist yet may be created in the same
			// apply: planned, as before. So are a view, a materialized view
			// and an unlogged table, which a migration earlier in the same
			// apply may make a logged table: planned with a warning
			// (TestAccPublication_provresUnpublishableWarnsOrRefuses).
			{Config: config("public.later"), PlanOnly: true, ExpectNonEmptyPlan: true},
			{Config: config("public.v"), PlanOnly: true, ExpectNonEmptyPlan: true},
			{Config: config("public.mv"), PlanOnly: true, ExpectNonEmptyPlan: true},
			{Config: config(`public."Un Logged"`), PlanOnly: true, ExpectNonEmptyPlan: true},
		},
	})
}
