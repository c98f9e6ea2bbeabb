package provider

import (
	"fmt"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"

	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/importid"
	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/pgsql"
)

// A row filter that names its columns through the table's schema
// (public.orders.region, "Sales ü"."Or.ders".id), as PostgreSQL accepts
// and stores bare ((region = 'x'::text)), made by hand and imported with the
// same text in the configuration, plans nothing. Before, the plan compared
// the two through EXPLAIN over a CTE named after the table, which has no
// schema: the configured text failed there (missing FROM-clause entry), was
// planned as written, and every plan after the import showed the filter
// changing.
func TestAccPublication_review9SchemaQualifiedColumnsImportPlansNothing(t *testing.T) {
	topo := testAccTopology(t)
	const db, schema, table = "r9_qualified", `Sales ü`, `Or.ders`
	createDatabase(t, topo.Primary, db)
	qualified := pgsql.QualifiedIdent(schema, table)
	where := fmt.Sprintf(`%s.region = 'x' AND %s.id > 0`, qualified, pgsql.Ident(table))
	plainWhere := `public.plain.id > 0 OR plain.id < -1 OR "public"."plain"."id" = 5`
	execSQL(t, topo.Primary, db, fmt.Sprintf(`
CREATE SCHEMA %[1]s;
CREATE TABLE %[2]s (id int PRIMARY KEY, region text);
CREATE TABLE public.plain (id int PRIMARY KEY);
CREATE PUBLICATION r9_qualified FOR TABLE %[2]s WHERE (%[3]s), public.plain WHERE (%[4]s);`,
		pgsql.Ident(schema), qualified, where, plainWhere))
	config := providerConfig("primary", topo.Primary) + fmt.Sprintf(`
import {
  to       = pgreplication_publication.this
  id       = %[1]s
  provider = pgreplication.primary
}
resource "pgreplication_publication" "this" {
  provider = pgreplication.primary
  database = %[2]s
  name     = "r9_qualified"
  tables = {
    %[3]s = { where = %[4]s }
    "public.plain" = { where = %[5]s }
  }
}
`, hcl(importid.Format(db, "r9_qualified")), hcl(db), hcl(pgsql.QuoteQualifiedName(schema, table)), hcl(where), hcl(plainWhere))
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config: config,
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
				plancheck.ExpectResourceAction("pgreplication_publication.this", plancheck.ResourceActionNoop),
			}},
		}},
	})
}

// unqualifySchema drops only a schema that qualifies the filter's own table
// in a column reference: not inside a string constant, not a reference with
// the database too, not another table's, with SQL's case folding.
func TestUnqualifySchema(t *testing.T) {
	table := tableColumns{Schema: "Sales ü", Name: "orders"}
	for in, want := range map[string]string{
		`"Sales ü".orders.id > 0`:       `orders.id > 0`,
		`"Sales ü" . ORDERS . "id" > 0`: `ORDERS . "id" > 0`,
		`"Sales ü".orders.id > 0 AND "Sales ü".orders.v = '"Sales ü".orders.v'`: `orders.id > 0 AND orders.v = '"Sales ü".orders.v'`,
		`db."Sales ü".orders.id > 0`: `db."Sales ü".orders.id > 0`,
		`"sales ü".orders.id > 0`:    `"sales ü".orders.id > 0`,
		`"Sales ü".other.id > 0`:     `"Sales ü".other.id > 0`,
		`orders.id > 0`:              `orders.id > 0`,
	} {
		if got := unqualifySchema(in, table); got != want {
			t.Errorf("unqualifySchema(%q) = %q, want %q", in, got, want)
		}
	}
}
