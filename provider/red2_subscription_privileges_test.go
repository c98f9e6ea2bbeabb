package provider

import (
	"fmt"
	"regexp"
	"testing"

	tfresource "github.com/hashicorp/terraform-plugin-testing/helper/resource"
)

// The subscription page's "Privileges to apply", followed as written: its
// GRANT SELECT (subconninfo) ON pg_catalog.pg_subscription, run where psql
// connects by default (database postgres), does not let the role read
// subconninfo in the subscription's database, because privileges on that
// shared catalog are kept per database. On the old code the plan passed and
// the apply failed after CREATE SUBSCRIPTION ("Cannot Read Subscription",
// the subscription and its new slot dropped again); the plan now refuses,
// naming the database to run the GRANT in, and passes once it ran there.
func TestAccSubscription_subconninfoGrantedInAnotherDatabase(t *testing.T) {
	topo := testAccTopology(t)
	if topo.Version < 16 {
		t.Skipf("PostgreSQL %d: only a superuser creates subscriptions, and it reads subconninfo everywhere", topo.Version)
	}
	const db, role = "tfacc_subpriv", "tfacc_subpriv"
	execSQL(t, topo.Primary, "postgres", `DROP DATABASE IF EXISTS `+db)
	execSQL(t, topo.Primary, "postgres", `DROP ROLE IF EXISTS `+role)
	execSQL(t, topo.Primary, "postgres", `CREATE ROLE `+role+` LOGIN`)
	execSQL(t, topo.Primary, "postgres", `CREATE DATABASE `+db)
	execSQL(t, topo.Primary, "postgres", `GRANT pg_create_subscription TO `+role)
	execSQL(t, topo.Primary, "postgres", `GRANT CREATE ON DATABASE `+db+` TO `+role)
	// As the page says, in psql's default database.
	execSQL(t, topo.Primary, "postgres", `GRANT SELECT (subconninfo) ON pg_catalog.pg_subscription TO `+role)
	t.Cleanup(func() {
		execSQL(t, topo.Primary, "postgres", `REVOKE SELECT (subconninfo) ON pg_catalog.pg_subscription FROM `+role)
		execSQL(t, topo.Primary, "postgres", `DROP DATABASE IF EXISTS `+db+` WITH (FORCE)`)
		execSQL(t, topo.Primary, "postgres", `DROP ROLE IF EXISTS `+role)
	})

	config := providerBlock("", topo.Primary, role, "postgres") + fmt.Sprintf(`
resource "pgreplication_subscription" "this" {
  name         = "tfacc_subpriv"
  database     = %q
  conninfo     = "host=%s port=%d user=postgres dbname=postgres sslmode=disable"
  publications = ["tfacc_subpriv"]
}
`, db, topo.Primary.Host, topo.Primary.Port)
	tfresource.Test(t, tfresource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []tfresource.TestStep{{
			Config:   config,
			PlanOnly: true,
			ExpectError: regexp.MustCompile(wrappedText("Cannot Read Subscriptions in This Database") + `[\s\S]*` +
				wrappedText(`GRANT SELECT (subconninfo) ON pg_catalog.pg_subscription TO "tfacc_subpriv";`) + `[\s\S]*` +
				wrappedText(`Run the GRANT connected to database "tfacc_subpriv" (psql -d tfacc_subpriv)`)),
		}, {
			PreConfig: func() {
				execSQL(t, topo.Primary, db, `GRANT SELECT (subconninfo) ON pg_catalog.pg_subscription TO `+role)
			},
			Config:             config,
			PlanOnly:           true,
			ExpectNonEmptyPlan: true,
		}},
	})
}
