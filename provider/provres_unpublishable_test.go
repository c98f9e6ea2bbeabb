package provider

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	fwresource "github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
	"github.com/hashicorp/terraform-plugin-log/tflogtest"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/importid"
)

// psqlPath is the psql of the servers under test, which a local-exec in a
// test configuration runs as a migration would.
func psqlPath(t *testing.T) string {
	t.Helper()
	if dir := os.Getenv("ROUTERTEST_PGBIN"); dir != "" {
		if p := filepath.Join(dir, "psql"); fileExists(p) {
			return p
		}
	}
	p, err := exec.LookPath("psql")
	if err != nil {
		t.Skip("no psql: set ROUTERTEST_PGBIN")
	}
	return p
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// A view and an unlogged table in tables, which a migration that the
// publication depends on makes a logged table in the same apply (DROP VIEW
// then CREATE TABLE; ALTER TABLE … SET LOGGED), are published: the plan,
// which runs before the migration, warns instead of refusing them, as it
// says nothing of a table that does not exist yet. On the old code the plan
// failed ("Table Cannot Be Published", public.u is an unlogged table), and
// nothing short of two applies (-target the migration first) got past it.
// A relation that is still a view when the publication is applied fails
// the apply, with the server's reason and the fix, and changes nothing:
// neither an update that adds a table beside it nor a create.
func TestAccPublication_provresMadePublishableInSameApply(t *testing.T) {
	topo := testAccTopology(t)
	psql := psqlPath(t)
	const db = "provres_same_apply"
	createDatabase(t, topo.Primary, db)
	execSQL(t, topo.Primary, db, `
CREATE TABLE public.ok (id int PRIMARY KEY);
CREATE TABLE public.ok2 (id int PRIMARY KEY);
CREATE UNLOGGED TABLE public.u (id int PRIMARY KEY);
CREATE TABLE public.base (id int PRIMARY KEY);
CREATE VIEW public.v AS SELECT id FROM public.base;
CREATE VIEW public.v2 AS SELECT id FROM public.base;`)
	migration := `ALTER TABLE public.u SET LOGGED; DROP VIEW public.v; CREATE TABLE public.v (id int PRIMARY KEY);`
	config := func(tables, extra string) string {
		return providerConfig("primary", topo.Primary) + fmt.Sprintf(`
resource "terraform_data" "migrate" {
  provisioner "local-exec" {
    command = %s
  }
}

resource "pgreplication_publication" "this" {
  provider   = pgreplication.primary
  database   = %q
  name       = "provres_same_apply"
  tables     = { %s }
  depends_on = [terraform_data.migrate]
}
%s`, hcl(fmt.Sprintf("%q %q -v ON_ERROR_STOP=1 -c %q", psql, topo.Primary.DSNFor(db), migration)), db, tables, extra)
	}
	published := func() string {
		return queryValue[string](t, topo.Primary, db,
			`SELECT coalesce(string_agg(schemaname || '.' || tablename, ',' ORDER BY tablename), '') FROM pg_publication_tables WHERE pubname = 'provres_same_apply'`)
	}
	const first = `"public.ok" = {}, "public.u" = {}, "public.v" = {}`
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: config(first, ""),
				Check: func(*terraform.State) error {
					if got := published(); got != "public.ok,public.u,public.v" {
						return fmt.Errorf("published %q, want public.ok,public.u,public.v", got)
					}
					return nil
				},
			},
			{
				// public.v2 is still a view: the update that adds it and
				// public.ok2 fails at apply and changes nothing.
				Config: config(first+`, "public.ok2" = {}, "public.v2" = {}`, ""),
				ExpectError: errorText("Cannot Alter Publication", "nothing was changed", "not a table PostgreSQL publishes", "remove it from tables",
					`cannot add relation "v2"`, "not supported for views"),
			},
			{
				PreConfig: func() {
					if got := published(); got != "public.ok,public.u,public.v" {
						t.Errorf("after the failed update, published %q, want public.ok,public.u,public.v as before", got)
					}
				},
				Config:   config(first, ""),
				PlanOnly: true,
			},
			{
				Config: config(first, `
resource "pgreplication_publication" "view" {
  provider = pgreplication.primary
  database = "`+db+`"
  name     = "provres_view"
  tables   = { "public.v2" = {} }
}
`),
				ExpectError: errorText("Cannot Create Publication", "not a table PostgreSQL publishes", `cannot add relation "v2"`, "not supported for views"),
			},
			{
				PreConfig: func() {
					if n := queryValue[int](t, topo.Primary, db, `SELECT count(*)::int FROM pg_publication WHERE pubname = 'provres_view'`); n != 0 {
						t.Errorf("the failed create left publication provres_view behind")
					}
				},
				Config:   config(first, ""),
				PlanOnly: true,
			},
		},
	})
}

// What the plan says of each relation it cannot publish now: a warning on
// the table's key for the ones a migration earlier in the same apply may
// make a published table (a view, a materialized view, a foreign table, an
// unlogged table), an error for the ones that can never be (a system table,
// a sequence, an index). On the old code every one was an error.
func TestAccPublication_provresUnpublishableWarnsOrRefuses(t *testing.T) {
	topo := testAccTopology(t)
	const db = "provres_unpublishable"
	createDatabase(t, topo.Primary, db)
	execSQL(t, topo.Primary, db, `
CREATE TABLE public.ok (id int PRIMARY KEY);
CREATE VIEW public.v AS SELECT 1 AS id;
CREATE MATERIALIZED VIEW public.mv AS SELECT 1 AS id;
CREATE UNLOGGED TABLE public."Un Logged" (id int PRIMARY KEY);
CREATE SEQUENCE public.seq;`)
	r := &publicationResource{server: newServer(connSettings{
		Host: topo.Primary.Host, Port: int64(topo.Primary.Port), Database: db, Username: "postgres", SSLMode: "disable",
	})}
	for _, c := range []struct {
		key   string
		error bool
		says  []string
	}{
		{"public.v", false, []string{"is a view now", "migration", "changes nothing", "If it is to stay a view, remove it from tables"}},
		{"public.mv", false, []string{"is a materialized view now"}},
		{`public."Un Logged"`, false, []string{"is an unlogged table now", `ALTER TABLE public."Un Logged" SET LOGGED`}},
		{"public.seq", true, []string{"is a sequence", "Remove it from tables"}},
		{"public.ok_pkey", true, []string{"is an index"}},
		{"pg_catalog.pg_class", true, []string{"a system table"}},
		{"information_schema.sql_features", true, []string{"a system table"}},
	} {
		t.Run(c.key, func(t *testing.T) {
			plan := publicationPlan(t, db, "provres_unpublishable", "public.ok", c.key)
			diags := r.refuseUnpublishable(context.Background(), plan, nil, r.planTables(context.Background(), plan, nil))
			if len(diags) != 1 || diags.HasError() != c.error {
				t.Fatalf("diagnostics %v, want one (error: %v)", diags, c.error)
			}
			d := diags[0]
			want := map[bool]string{true: "Table Cannot Be Published", false: "Table Cannot Be Published Yet"}[c.error]
			if d.Summary() != want {
				t.Errorf("summary %q, want %q", d.Summary(), want)
			}
			if p, ok := d.(diag.DiagnosticWithPath); !ok || !p.Path().Equal(path.Root("tables").AtMapKey(c.key)) {
				t.Errorf("the diagnostic is not on tables[%q]: %v", c.key, d)
			}
			if !errorText(append([]string{c.key, "provres_unpublishable"}, c.says...)...).MatchString(d.Detail()) {
				t.Errorf("the diagnostic does not say %q: %s", c.says, d.Detail())
			}
		})
	}
	// Moved from another database, where the state had the view: checked
	// as new, and the warning says the replacement's drop comes first.
	t.Run("moved", func(t *testing.T) {
		plan := publicationPlan(t, db, "provres_unpublishable", "public.ok", "public.v")
		state := publicationPlan(t, "provres_elsewhere", "provres_unpublishable", "public.ok", "public.v")
		diags := r.refuseUnpublishable(context.Background(), plan, &state, r.planTables(context.Background(), plan, &state))
		if len(diags) != 1 || diags.HasError() || !errorText("public.v", "is a view now", `fails after the replacement dropped it from database "provres_elsewhere"`).MatchString(diags[0].Detail()) {
			t.Errorf("diagnostics %v, want one warning of public.v saying the replacement's drop comes first", diags)
		}
	})
}

// publicationPlan is a plan for a publication in database db of the tables
// keys, each with a column list (id), so that both the row-filter checks
// and the unpublishable check read it.
func publicationPlan(t *testing.T, db, name string, keys ...string) publicationModel {
	t.Helper()
	tables := map[string]attr.Value{}
	for _, k := range keys {
		tables[k] = types.ObjectValueMust(publicationTableAttrTypes, map[string]attr.Value{
			"columns": types.SetValueMust(types.StringType, []attr.Value{types.StringValue("id")}), "where": types.StringNull(),
		})
	}
	return publicationModel{
		ID: types.StringValue(importid.Format(db, name)), Name: types.StringValue(name), Database: types.StringValue(db), Owner: types.StringNull(),
		AllTables: types.BoolValue(false), Tables: types.MapValueMust(types.ObjectType{AttrTypes: publicationTableAttrTypes}, tables),
		TablesInSchema: types.SetNull(types.StringType), Publish: types.SetNull(types.StringType),
		PublishViaPartitionRoot: types.BoolValue(false), PublishGeneratedColumns: types.StringNull(),
	}
}

// A plan that adds three tables, each with a column list and one with a row
// filter, reads them from the catalogs in one query: the old code read them
// once for the unpublishable check and once more per table for the
// row-filter and column-list checks (4 queries here).
func TestAccPublication_provresOneCatalogReadPerPlan(t *testing.T) {
	topo := testAccTopology(t)
	const db = "provres_one_read"
	createDatabase(t, topo.Primary, db)
	execSQL(t, topo.Primary, db, `CREATE TABLE public.a (id int PRIMARY KEY); CREATE TABLE public.b (id int PRIMARY KEY); CREATE TABLE public."C c" (id int PRIMARY KEY);`)
	r := &publicationResource{server: newServer(connSettings{
		Host: topo.Primary.Host, Port: int64(topo.Primary.Port), Database: db, Username: "postgres", SSLMode: "disable",
	})}
	ctx := context.Background()
	var out bytes.Buffer
	ctx = tflogtest.RootLogger(ctx, &out)
	sch := publicationSchema()
	model := publicationPlan(t, db, "provres_one_read", "public.a", "public.b", `public."C c"`)
	plan := tfsdk.Plan{Schema: sch}
	if d := plan.Set(ctx, model); d.HasError() {
		t.Fatal(d)
	}
	state := tfsdk.State{Schema: sch, Raw: tftypes.NewValue(sch.Type().TerraformType(ctx), nil)}
	req := fwresource.ModifyPlanRequest{Config: tfsdk.Config{Schema: sch, Raw: plan.Raw}, Plan: plan, State: state}
	resp := fwresource.ModifyPlanResponse{Plan: plan}
	r.ModifyPlan(ctx, req, &resp)
	if resp.Diagnostics.HasError() {
		t.Fatalf("ModifyPlan: %v", resp.Diagnostics)
	}
	reads := 0
	for _, line := range strings.Split(out.String(), "\n") {
		if strings.Contains(line, "running SQL") && (strings.Contains(line, "relpersistence") || strings.Contains(line, "format_type(")) {
			reads++
		}
	}
	if reads != 1 {
		t.Errorf("the plan read its tables from the catalogs in %d queries, want 1", reads)
	}
}
