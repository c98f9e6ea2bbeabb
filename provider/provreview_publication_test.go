package provider

import (
	"context"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/jackc/pgx/v5"
)

// A key of tables in a temporary schema names a table PostgreSQL never
// publishes: pg_temp is the temporary schema of the session that reads the
// name (at apply, the provider's, which has no tables), and pg_temp_N holds
// another session's temporary tables, which no other session can publish.
// The plan refuses each on its key, with why and what to do, whether the
// catalogs have the table or not. On the old code only a temporary table the
// catalogs had was refused: pg_temp.tt and pg_temp_99.tt were planned, and
// the apply failed (schema "pg_temp" does not exist; relation
// "pg_temp_99.tt" does not exist).
func TestAccPublication_provreviewTemporaryTableRefusedAtPlan(t *testing.T) {
	topo := testAccTopology(t)
	const db = "provreview_temp"
	createDatabase(t, topo.Primary, db)
	execSQL(t, topo.Primary, db, `CREATE TABLE public.ok (id int PRIMARY KEY)`)
	// A session holding a temporary table while the plans run.
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, topo.Primary.DSNFor(db))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var tempSchema string
	if _, err := conn.Exec(ctx, `CREATE TEMP TABLE tt (id int PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(ctx, `SELECT pg_my_temp_schema()::regnamespace::text`).Scan(&tempSchema); err != nil {
		t.Fatal(err)
	}
	config := func(key string) string {
		return providerConfig("primary", topo.Primary) + `
resource "pgreplication_publication" "this" {
  provider = pgreplication.primary
  database = "` + db + `"
  name     = "provreview_temp"
  tables   = { "public.ok" = {}, ` + hcl(key) + ` = {} }
}
`
	}
	step := func(key string) resource.TestStep {
		return resource.TestStep{
			Config: config(key), PlanOnly: true,
			ExpectError: errorText("Table Cannot Be Published", key, db, "is a temporary table", "Remove it from tables", "only the session that created it sees it"),
		}
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps:                    []resource.TestStep{step("pg_temp.tt"), step("pg_temp_99.tt"), step(tempSchema + ".tt")},
	})
}
