package provider

import (
	"fmt"
	"strings"
	"testing"

	tfresource "github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
)

// A role with a CONNECTION LIMIT below the provider's max_connections (here
// 2, against the default 4) applies a configuration of many objects whole.
// Terraform runs the creates concurrently; the provider's pool opened a
// third connection, the server refused it (53300, too many connections for
// role), and the apply stopped halfway, some publications made and some not:
// on the old code 6 of the 16 creates failed with "Cannot Connect to
// PostgreSQL".
func TestAccProvider_roleConnectionLimitBelowPool(t *testing.T) {
	topo := testAccTopology(t)
	const db, role, resources = "tfacc_conn_limit", "tfacc_conn_limit", 16
	execSQL(t, topo.Primary, "postgres", `DROP DATABASE IF EXISTS `+db)
	execSQL(t, topo.Primary, "postgres", `DROP ROLE IF EXISTS `+role)
	execSQL(t, topo.Primary, "postgres", `CREATE ROLE `+role+` LOGIN CONNECTION LIMIT 2`)
	execSQL(t, topo.Primary, "postgres", `CREATE DATABASE `+db+` OWNER `+role)
	t.Cleanup(func() {
		execSQL(t, topo.Primary, "postgres", `DROP DATABASE IF EXISTS `+db+` WITH (FORCE)`)
		execSQL(t, topo.Primary, "postgres", `DROP ROLE IF EXISTS `+role)
	})

	var cfg strings.Builder
	cfg.WriteString(providerBlock("", topo.Primary, role, db))
	for i := range resources {
		fmt.Fprintf(&cfg, `
resource "pgreplication_publication" "p%d" {
  name = "tfacc_conn_limit_%d"
}
`, i, i)
	}
	tfresource.Test(t, tfresource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []tfresource.TestStep{{
			Config: cfg.String(),
			Check: func(*terraform.State) error {
				if n := queryValue[int64](t, topo.Primary, db, `SELECT count(*) FROM pg_publication`); n != resources {
					return fmt.Errorf("%d publications exist, want %d", n, resources)
				}
				return nil
			},
		}, {
			Config:   cfg.String(),
			PlanOnly: true,
		}},
	})
}
