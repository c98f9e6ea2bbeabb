package provider

import (
	"fmt"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
)

// Names with quotes, dots, upper case, non-ASCII letters and a reserved
// word, a row filter and column list over such columns, a partitioned
// table and one of its partitions, with publish_via_partition_root on and
// off: each plan after an apply is empty, and so is an import of the
// publication (an import block: the plan is a no-op import). A view added
// later fails the apply, which changes nothing.
func TestAccPublication_provreviewHostileNamesRoundTrip(t *testing.T) {
	topo := testAccTopology(t)
	const db = "provreview_names"
	createDatabase(t, topo.Primary, db)
	execSQL(t, topo.Primary, db, `
CREATE SCHEMA "Sch.""ema";
CREATE TABLE "Sch.""ema"."Täble ""Q""" (id int PRIMARY KEY, "Ünï" int, "Up" text);
CREATE TABLE public."UPPER" (id int PRIMARY KEY);
CREATE TABLE public."select" (id int PRIMARY KEY);
CREATE TABLE public.root (id int, k int, PRIMARY KEY (id, k)) PARTITION BY RANGE (k);
CREATE TABLE public.part1 PARTITION OF public.root FOR VALUES FROM (0) TO (10);
CREATE TABLE public.part2 PARTITION OF public.root FOR VALUES FROM (10) TO (20);
CREATE VIEW public."Vïew" AS SELECT 1 AS id;
`)
	k1 := `"Sch.""ema"."Täble ""Q"""`
	config := func(extra, via string) string {
		return providerConfig("primary", topo.Primary) + fmt.Sprintf(`
resource "pgreplication_publication" "this" {
  provider = pgreplication.primary
  database = %q
  name     = "Pub \"Ünï\" name"
  publish_via_partition_root = %s
  tables   = {
    %s = { columns = ["id", "Ünï"], where = "\"Ünï\" > 0 AND \"Up\" IS NOT NULL" }
    "public.\"UPPER\"" = {}
    "public.\"select\"" = { where = "id > 1" }
    "public.root" = {}
    "public.part1" = {}
    %s
  }
}
`, db, via, hcl(k1), extra)
	}
	addr := "pgreplication_publication.this"
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{Config: config("", "true")},
			{Config: config("", "true"), PlanOnly: true},
			{Config: config("", "true"), ResourceName: addr, ImportState: true, ImportStateKind: resource.ImportBlockWithID, ImportStateId: db + "/Pub \"Ünï\" name"},
			{Config: config("", "false")},
			{Config: config("", "false"), PlanOnly: true},
			{Config: config("", "false"), ResourceName: addr, ImportState: true, ImportStateKind: resource.ImportBlockWithID, ImportStateId: db + "/Pub \"Ünï\" name"},
			{Config: config(`"public.\"Vïew\"" = {}`, "false"), ExpectError: errorText("Cannot Alter Publication", "nothing was changed", "not a table PostgreSQL publishes")},
			{Config: config("", "false"), PlanOnly: true},
		},
	})
}

// A table dropped, or replaced by a view, after the plan that adds it and
// before the apply: the apply fails naming it, and the publication keeps
// the tables it had.
func TestAccPublication_provreviewTableGoneBeforeApply(t *testing.T) {
	topo := testAccTopology(t)
	const db = "provreview_dropped"
	createDatabase(t, topo.Primary, db)
	execSQL(t, topo.Primary, db, `CREATE TABLE public.a (id int PRIMARY KEY); CREATE TABLE public.b (id int PRIMARY KEY, v int); CREATE TABLE public.c (id int PRIMARY KEY, v int);`)
	config := func(tables string) string {
		return providerConfig("primary", topo.Primary) + fmt.Sprintf(`
resource "pgreplication_publication" "this" {
  provider = pgreplication.primary
  database = %q
  name     = "provreview_dropped"
  tables   = { %s }
}
`, db, tables)
	}
	published := func() string {
		return queryValue[string](t, topo.Primary, db, `SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_publication_tables WHERE pubname = 'provreview_dropped'`)
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{Config: config(`"public.a" = {}`)},
			{
				Config: config(`"public.a" = {}, "public.b" = { where = "v > 0" }, "public.c" = { columns = ["id"] }`),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					betweenPlanAndApply(func() { execSQL(t, topo.Primary, db, `DROP TABLE public.b`) }),
				}},
				ExpectError: errorText("Cannot Alter Publication", "nothing was changed", `"public.b" does not exist`),
			},
			{
				PreConfig: func() {
					if got := published(); got != "a" {
						t.Errorf("after the failed apply the publication has %q, want a as before", got)
					}
				},
				Config:   config(`"public.a" = {}`),
				PlanOnly: true,
			},
			{
				// the table turned into a view between plan and apply
				PreConfig: func() { execSQL(t, topo.Primary, db, `CREATE TABLE public.b (id int PRIMARY KEY, v int)`) },
				Config:    config(`"public.a" = {}, "public.b" = { where = "v > 0" }`),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					betweenPlanAndApply(func() {
						execSQL(t, topo.Primary, db, `DROP TABLE public.b; CREATE VIEW public.b AS SELECT 1 AS id, 2 AS v`)
					}),
				}},
				ExpectError: errorText("Cannot Alter Publication", "nothing was changed", `cannot add relation "b"`),
			},
			{
				PreConfig: func() {
					if got := published(); got != "a" {
						t.Errorf("after the failed apply the publication has %q, want a as before", got)
					}
				},
				Config:   config(`"public.a" = {}`),
				PlanOnly: true,
			},
		},
	})
}

// A view in tables with a column list and a row filter, replaced by a table
// by a migration the publication depends on: planned (with a warning),
// applied with its filter, and the next plan is empty (the filter planned as
// written reads back in PostgreSQL's form, which means the same).
func TestAccPublication_provreviewViewWithFilterBecomesTable(t *testing.T) {
	topo := testAccTopology(t)
	psql := psqlPath(t)
	const db = "provreview_viewfilter"
	createDatabase(t, topo.Primary, db)
	execSQL(t, topo.Primary, db, `CREATE TABLE public.base (id int PRIMARY KEY); CREATE VIEW public.v AS SELECT id, 1 AS amount FROM public.base;`)
	migration := `DROP VIEW public.v; CREATE TABLE public.v (id int PRIMARY KEY, amount int);`
	config := providerConfig("primary", topo.Primary) + fmt.Sprintf(`
resource "terraform_data" "migrate" {
  provisioner "local-exec" {
    command = %s
  }
}

resource "pgreplication_publication" "this" {
  provider   = pgreplication.primary
  database   = %q
  name       = "provreview_viewfilter"
  tables     = { "public.v" = { columns = ["id", "amount"], where = "amount > 100" } }
  depends_on = [terraform_data.migrate]
}
`, hcl(fmt.Sprintf("%q %q -v ON_ERROR_STOP=1 -c %q", psql, topo.Primary.DSNFor(db), migration)), db)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{Config: config},
			{Config: config, PlanOnly: true},
		},
	})
}
