package provider

import (
	"fmt"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
)

// A publication moved to another database is replaced: dropped in the old
// one, created in the new. Every table is new to the new database, so the
// plan checks each there, as for a new publication: what the table is
// (refuseUnpublishable) and its row filter and column list
// (planRowFilters). On the old code both checks skipped the keys the state
// already had, read in the old database: the plan showed a replacement, and
// the apply dropped the publication in the old database, then failed to
// create it in the new one (a sequence, a column that is not there), leaving
// neither.
func TestAccPublication_databaseMoveChecksTablesThere(t *testing.T) {
	topo := testAccTopology(t)
	const from, seq, nocol = "pubmove_from", "pubmove_seq", "pubmove_nocol"
	for _, db := range []string{from, seq, nocol} {
		createDatabase(t, topo.Primary, db)
	}
	execSQL(t, topo.Primary, from, `CREATE TABLE public.items (id int PRIMARY KEY, v int)`)
	execSQL(t, topo.Primary, seq, `CREATE SEQUENCE public.items`)
	execSQL(t, topo.Primary, nocol, `CREATE TABLE public.items (id int PRIMARY KEY)`)
	config := func(db, table string) string {
		return providerConfig("primary", topo.Primary) + fmt.Sprintf(`
resource "pgreplication_publication" "this" {
  provider = pgreplication.primary
  database = %q
  name     = "pubmove"
  tables   = { "public.items" = %s }
}
`, db, table)
	}
	const filtered = `{ where = "v > 0", columns = ["id", "v"] }`
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{Config: config(from, `{}`)},
			{
				Config:      config(seq, `{}`),
				ExpectError: errorText("Table Cannot Be Published", "public.items", seq, "is a sequence"),
			},
			// Nothing was applied: the publication is still in from.
			{Config: config(from, `{}`), PlanOnly: true},
			{Config: config(from, filtered)},
			{
				Config:      config(nocol, filtered),
				ExpectError: errorText("Unknown Column in Column List", `no column "v"`, "Invalid Row Filter"),
			},
			{Config: config(from, filtered), PlanOnly: true},
		},
	})
}
