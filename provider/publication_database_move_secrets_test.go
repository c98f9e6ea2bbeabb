package provider

import (
	"fmt"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
)

// A publication moved to another database, refused at plan for every cause
// the new database gives (a table there that cannot be published, a column
// it lacks, a database that does not exist or takes no connections), says
// which database and why, never shows the provider's password (in the
// diagnostics and in the TRACE log), and leaves the publication where it
// was.
func TestAccPublication_databaseMoveRefusalsNeverShowPassword(t *testing.T) {
	const role, pw = "tfacc_pubmove", "canary" + canaryMark + "-pubmove $$ \\b"
	n := passwordPrimary(t, role, "SUPERUSER", pw)
	logPath := traceLog(t)
	const from, seq, nocol, closed = "pubmv_from", "pubmv_seq", "pubmv_nocol", "pubmv_closed"
	for _, db := range []string{from, seq, nocol, closed} {
		createDatabase(t, n, db)
	}
	execSQL(t, n, from, `CREATE TABLE public.items (id int PRIMARY KEY, v int)`)
	execSQL(t, n, seq, `CREATE SEQUENCE public.items`)
	execSQL(t, n, nocol, `CREATE TABLE public.items (id int PRIMARY KEY)`)
	execSQL(t, n, "postgres", `ALTER DATABASE `+closed+` ALLOW_CONNECTIONS false`)
	config := func(db string) string {
		return canaryVariable(t, pw) + fmt.Sprintf(`
provider "pgreplication" {
  host     = %q
  port     = %d
  username = %q
  password = var.canary_password
  database = "postgres"
  sslmode  = "disable"
}

resource "pgreplication_publication" "this" {
  database = %q
  name     = "pubmove"
  tables   = { "public.items" = { where = "v > 0", columns = ["id", "v"] } }
}
`, n.Host, n.Port, role, db)
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{Config: config(from)},
			{Config: config(seq), ExpectError: errorWithout("Table Cannot Be Published", "public.items", seq, "is a sequence")},
			{Config: config(nocol), ExpectError: errorWithout("Unknown Column in Column List", `no column "v"`)},
			{Config: config("pubmv_missing"), ExpectError: errorWithout("Cannot Move to Database", `Moving publication "pubmove" from database "pubmv_from" to "pubmv_missing"`,
				`database "pubmv_missing" does not exist there`, "leave it in neither", `Create database "pubmv_missing" first`)},
			{Config: config(closed), ExpectError: errorWithout("Cannot Move to Database", `database "pubmv_closed" takes no connections there (ALLOW_CONNECTIONS false)`,
				`ALTER DATABASE "pubmv_closed" ALLOW_CONNECTIONS true`)},
			// Nothing was applied: the publication is still in from.
			{Config: config(from), PlanOnly: true},
		},
	})
	checkLogHasNo(t, logPath, canaryParts(pw), "Table Cannot Be Published", "Unknown Column in Column List", "pubmv_missing", closed)
}
