package provider

import (
	"fmt"
	"regexp"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// TestAccPrivileges_missing applies each resource as a role that lacks one
// privilege the resource's docs list, and requires the error to name the
// statement that grants it (the server's 42501, or a statistics view that
// hides what the provider must read). Each refusal comes before anything
// changes, so the shared topology serves; the complete list is proved
// sufficient by examples/examples_test.go (quickstart_least_privilege).
func TestAccPrivileges_missing(t *testing.T) {
	topo := testAccTopology(t)
	if topo.Version < 15 {
		t.Skipf("PostgreSQL %d: ALTER SYSTEM can only be granted from 15 on", topo.Version)
	}
	subscriptionGrant := `GRANT pg_create_subscription TO "tfacc_priv_sub";`
	if topo.Version < 16 {
		subscriptionGrant = `ALTER ROLE "tfacc_priv_sub" SUPERUSER;  -- PostgreSQL 15 has no narrower privilege for this`
	}
	execSQL(t, topo.Primary, "postgres", `CREATE TABLE tfacc_priv_books (id int PRIMARY KEY)`)
	t.Cleanup(func() { execSQL(t, topo.Primary, "postgres", `DROP TABLE tfacc_priv_books`) })
	names := fmt.Sprintf("[%q]", topo.Standbys[0].Name)
	for _, c := range []struct {
		name   string
		role   string // created LOGIN, with grants, on the primary
		grants string
		node   *routertest.Node
		config string // resources; the provider is pgreplication.as_role
		plan   bool   // refused by the plan already
		want   string // the statement the error must show
	}{{
		name: "slot",
		role: "tfacc_priv_slot",
		node: topo.Primary,
		config: `
resource "pgreplication_replication_slot" "s" {
  name = "tfacc_priv_slot"
  type = "physical"
}`,
		want: `ALTER ROLE "tfacc_priv_slot" REPLICATION;`,
	}, {
		name: "publication_database",
		role: "tfacc_priv_pub",
		node: topo.Primary,
		config: `
resource "pgreplication_publication" "p" {
  name = "tfacc_priv_pub"
  table {
    name = "tfacc_priv_books"
  }
}`,
		want: `GRANT CREATE ON DATABASE "postgres" TO "tfacc_priv_pub";\s+ALTER TABLE "public"."tfacc_priv_books" OWNER TO "tfacc_priv_pub";`,
	}, {
		name: "synchronous_replication_stats",
		role: "tfacc_priv_sync1",
		node: topo.Primary,
		config: `
resource "pgreplication_synchronous_replication" "s" {
  standby_names = ` + names + `
}`,
		plan: true,
		want: `GRANT pg_read_all_stats TO "tfacc_priv_sync1";`,
	}, {
		name:   "synchronous_replication_alter_system",
		role:   "tfacc_priv_sync2",
		grants: `GRANT pg_read_all_stats TO tfacc_priv_sync2`,
		node:   topo.Primary,
		config: `
resource "pgreplication_synchronous_replication" "s" {
  standby_names = ` + names + `
}`,
		want: `GRANT ALTER SYSTEM ON PARAMETER synchronous_standby_names TO "tfacc_priv_sync2";`,
	}, {
		name: "standby_settings",
		role: "tfacc_priv_standby",
		node: topo.Standbys[0],
		config: fmt.Sprintf(`
resource "pgreplication_standby" "s" {
  primary_host = %q
  primary_port = %d
  primary_user = "postgres"
}`, topo.Primary.Host, topo.Primary.Port),
		want: `GRANT pg_read_all_settings TO "tfacc_priv_standby";\s+GRANT pg_read_all_stats TO "tfacc_priv_standby";`,
	}, {
		name: "subscription",
		role: "tfacc_priv_sub",
		node: topo.Primary,
		config: `
resource "pgreplication_subscription" "s" {
  name         = "tfacc_priv_sub"
  conninfo     = "host=127.0.0.1 port=1 dbname=postgres user=x password=y"
  publications = ["none"]
}`,
		want: regexp.QuoteMeta(subscriptionGrant),
	}} {
		t.Run(c.name, func(t *testing.T) {
			execSQL(t, topo.Primary, "postgres", "CREATE ROLE "+c.role+" LOGIN")
			t.Cleanup(func() { execSQL(t, topo.Primary, "postgres", "DROP OWNED BY "+c.role+"; DROP ROLE "+c.role) })
			if c.grants != "" {
				execSQL(t, topo.Primary, "postgres", c.grants)
			}
			// Roles and grants reach the standbys by replication.
			if c.node != topo.Primary {
				if err := topo.WaitReplayed(t.Context()); err != nil {
					t.Fatal(err)
				}
			}
			resource.Test(t, resource.TestCase{
				ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
				Steps: []resource.TestStep{{
					Config: fmt.Sprintf(`
provider "pgreplication" {
  host     = %q
  port     = %d
  username = %q
  database = "postgres"
  sslmode  = "disable"
}
`, c.node.Host, c.node.Port, c.role) + c.config,
					PlanOnly:    c.plan,
					ExpectError: regexp.MustCompile(`(?s)lacks a privilege this needs.*` + c.want),
				}},
			})
		})
	}
}
