package provider

import (
	"fmt"
	"strings"
	"testing"

	tfresource "github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// A role with CONNECTION LIMIT 2 applies publications in three databases
// at once. Each database has its own pool, sized alone from what the limit
// left when it was made, so together they opened more than the role may:
// the server refused a connection (53300, too many connections for role)
// and the apply stopped halfway, some publications made and some not (the
// test of 68f3b37, reverted with it by 7e3092f). A connection is now made
// only when the role's pools hold fewer than the limit leaves, counted from
// admission until the session has ended on the server (roleRoom); one
// waiting closes the role's idle connections. With sslmode=prefer too,
// where pgconn dials twice for one connection against a server without
// TLS, and over a Unix socket, where sessions have no client address (each
// broke the reverted budget).
func TestAccProvider_roleConnectionLimitAcrossDatabases(t *testing.T) {
	shared := testAccTopology(t).Primary
	sockets := serverDir(t)
	local := routertest.Start(t, routertest.WithStandbys(0), routertest.WithSetting("unix_socket_directories", sockets)).Primary
	trustHBA(t, local, "local all all trust")
	for _, tc := range []struct {
		name, host, sslmode string
		server              *routertest.Node
	}{
		{"disable", shared.Host, "disable", shared},
		{"prefer", shared.Host, "prefer", shared},
		{"socket", sockets, "disable", local},
	} {
		t.Run(tc.name, func(t *testing.T) {
			server := tc.server
			role, perDB := "tfacc_budget_"+tc.name, 6
			dbs := roleOfLimit2In3Databases(t, server, role)
			var cfg strings.Builder
			cfg.WriteString(providerBlockAt("", tc.host, server.Port, role, dbs[0], tc.sslmode))
			for d, db := range dbs {
				for i := range perDB {
					fmt.Fprintf(&cfg, `
resource "pgreplication_publication" "p%d_%d" {
  database = %q
  name     = "tfacc_budget_%d"
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
							if n := queryValue[int64](t, server, db, `SELECT count(*) FROM pg_publication`); n != int64(perDB) {
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
		})
	}
}

// roleOfLimit2In3Databases creates role, LOGIN CONNECTION LIMIT 2, and
// three databases it owns, role_a, role_b and role_c, dropped after the
// test; it returns their names.
func roleOfLimit2In3Databases(t *testing.T, server *routertest.Node, role string) []string {
	t.Helper()
	dbs := []string{role + "_a", role + "_b", role + "_c"}
	execSQL(t, server, "postgres", `CREATE ROLE `+role+` LOGIN CONNECTION LIMIT 2`)
	for _, db := range dbs {
		execSQL(t, server, "postgres", `CREATE DATABASE `+db+` OWNER `+role)
	}
	t.Cleanup(func() {
		for _, db := range dbs {
			execSQL(t, server, "postgres", `DROP DATABASE IF EXISTS `+db+` WITH (FORCE)`)
		}
		execSQL(t, server, "postgres", `DROP ROLE IF EXISTS `+role)
	})
	return dbs
}
