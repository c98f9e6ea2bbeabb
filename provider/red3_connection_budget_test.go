package provider

import (
	"fmt"
	"strings"
	"testing"

	tfresource "github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
)

// A role with CONNECTION LIMIT 2 applies publications in three databases
// at once. Each database has its own pool, and each pool was sized alone
// from what the limit left when it was made (2, since the other pools had
// no connection yet), so together they opened more than the role may: the
// server refused the third connection (53300, too many connections for
// role) and the apply stopped halfway, some publications made and some not.
// One budget per server and role, shared by all its pools, keeps the total
// within the limit: a pool that needs a connection while the others hold
// them all closes their idle ones, or waits for one to be returned.
func TestAccProvider_roleConnectionLimitAcrossDatabases(t *testing.T) {
	topo := testAccTopology(t)
	const role, perDB = "tfacc_red3_budget", 6
	dbs := []string{"tfacc_red3_budget_a", "tfacc_red3_budget_b", "tfacc_red3_budget_c"}
	for _, db := range dbs {
		execSQL(t, topo.Primary, "postgres", `DROP DATABASE IF EXISTS `+db+` WITH (FORCE)`)
	}
	execSQL(t, topo.Primary, "postgres", `DROP ROLE IF EXISTS `+role)
	execSQL(t, topo.Primary, "postgres", `CREATE ROLE `+role+` LOGIN CONNECTION LIMIT 2`)
	for _, db := range dbs {
		execSQL(t, topo.Primary, "postgres", `CREATE DATABASE `+db+` OWNER `+role)
	}
	t.Cleanup(func() {
		for _, db := range dbs {
			execSQL(t, topo.Primary, "postgres", `DROP DATABASE IF EXISTS `+db+` WITH (FORCE)`)
		}
		execSQL(t, topo.Primary, "postgres", `DROP ROLE IF EXISTS `+role)
	})

	var cfg strings.Builder
	cfg.WriteString(providerBlock("", topo.Primary, role, dbs[0]))
	for d, db := range dbs {
		for i := range perDB {
			fmt.Fprintf(&cfg, `
resource "pgreplication_publication" "p%d_%d" {
  database = %q
  name     = "tfacc_red3_budget_%d"
}
`, d, i, db, i)
		}
	}
	tfresource.Test(t, tfresource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []tfresource.TestStep{{
			Config: cfg.String(),
			Check: func(*terraform.State) error {
				for _, db := range dbs {
					if n := queryValue[int64](t, topo.Primary, db, `SELECT count(*) FROM pg_publication`); n != perDB {
						return fmt.Errorf("%d publications exist in %s, want %d", n, db, perDB)
					}
				}
				return nil
			},
		}, {
			Config:   cfg.String(),
			PlanOnly: true,
		}},
	})
}
