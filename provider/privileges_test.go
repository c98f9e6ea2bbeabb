package provider

import (
	"fmt"
	"regexp"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/pgsql"
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
	// The subscription's error gives the server's message, DETAIL and
	// SQLSTATE first, then the fix, with the publisher's password masked in
	// the statement it quotes.
	subscriptionGrant := `GRANT pg_create_subscription TO "tfacc_priv_sub";`
	subscriptionRefusal := `ERROR:\s+permission\s+denied\s+to\s+create\s+subscription\s+\(SQLSTATE\s+42501\)\s+` +
		`DETAIL:\s+Only\s+roles\s+with\s+privileges\s+of\s+the\s+"pg_create_subscription"\s+role\s+may\s+create\s+subscriptions\.\s+`
	if topo.Version < 16 {
		subscriptionGrant = `ALTER ROLE "tfacc_priv_sub" SUPERUSER;  -- PostgreSQL 15 has no narrower privilege for this`
		subscriptionRefusal = `ERROR:\s+must\s+be\s+superuser\s+to\s+create\s+subscriptions\s+\(SQLSTATE\s+42501\)\s+`
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
		quotes string // the failed statement the error quotes (statement.Error), if one did
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
		// PostgreSQL 16 on says "permission denied to use replication
		// slots", 15 "must be superuser or replication role to use ...".
		quotes: `SELECT\s+pg_create_physical_replication_slot\(\$1,\s+\$2\):\s+ERROR:\s+(permission\s+denied|must\s+be\s+superuser\s+or\s+replication\s+role)`,
	}, {
		name: "publication_database",
		role: "tfacc_priv_pub",
		node: topo.Primary,
		config: `
resource "pgreplication_publication" "p" {
  name   = "tfacc_priv_pub"
  tables = { "public.tfacc_priv_books" = {} }
}`,
		want:   `GRANT CREATE ON DATABASE "postgres" TO "tfacc_priv_pub";\s+ALTER TABLE "public"."tfacc_priv_books" OWNER TO "tfacc_priv_pub";`,
		quotes: `CREATE\s+PUBLICATION\s+"tfacc_priv_pub"\s+FOR\s+TABLE.*:\s+ERROR:\s+permission\s+denied`,
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
		want:   `GRANT ALTER SYSTEM ON PARAMETER synchronous_standby_names TO "tfacc_priv_sync2";`,
		quotes: `ALTER\s+SYSTEM\s+SET\s+"synchronous_standby_names"\s+=\s+'.*':\s+ERROR:\s+permission\s+denied.*\(SQLSTATE\s+42501\)`,
	}, {
		// pg_stat_replication shows a role without pg_read_all_stats (which
		// pg_monitor has) only the pids of the shared primary's two WAL
		// senders: no error from the server, but nothing to report.
		name: "replication_status_stats",
		role: "tfacc_priv_status",
		node: topo.Primary,
		config: `
data "pgreplication_replication_status" "s" {}`,
		want:   `GRANT pg_read_all_stats TO "tfacc_priv_status";`,
		quotes: `Reading\s+pg_stat_replication\s+on\s+127\.0\.0\.1:\d+\s+failed:\s+SELECT\s+pid.*FROM\s+pg_stat_replication.*:\s+pg_stat_replication\s+shows\s+the\s+provider's\s+role\s+NULL`,
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
		want:   `GRANT pg_read_all_settings TO "tfacc_priv_standby";\s+GRANT pg_read_all_stats TO "tfacc_priv_standby";`,
		quotes: `Reading\s+the\s+standby\s+settings\s+of\s+127\.0\.0\.1:\d+\s+failed:\s+SELECT\s+pg_is_in_recovery\(\).*:\s+ERROR:.*"primary_conninfo".*\(SQLSTATE\s+42501\)`,
	}, {
		name: "subscription",
		role: "tfacc_priv_sub",
		node: topo.Primary,
		config: `
resource "pgreplication_subscription" "s" {
  name         = "tfacc_priv_sub"
  conninfo     = "host=127.0.0.1 port=1 dbname=postgres user=x password=priv-canary"
  publications = ["none"]
}`,
		want: regexp.QuoteMeta(subscriptionGrant),
		quotes: `CREATE\s+SUBSCRIPTION\s+"tfacc_priv_sub"\s+CONNECTION\s+'host=127\.0\.0\.1\s+port=1\s+dbname=postgres\s+user=x\s+password=REDACTED'.*:\s+` +
			subscriptionRefusal + `The\s+provider's\s+role\s+"tfacc_priv_sub"\s+`,
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
					Config:      providerConfigAs("", c.node, c.role) + c.config,
					PlanOnly:    c.plan,
					ExpectError: regexp.MustCompile(`(?s)` + c.quotes + `.*lacks a privilege this needs.*` + c.want),
				}},
			})
		})
	}
}

// TestAccSubscription_leastPrivilege creates, changes and destroys a
// subscription as a role that holds exactly what the subscription's docs
// list (subscriptionRequirements, which writes them), authenticating to a
// publisher that checks the password, as a subscription owned by a role
// that is not a superuser must.
func TestAccSubscription_leastPrivilege(t *testing.T) {
	t.Parallel()
	testAccPreCheck(t)
	routertest.SkipBelow(t, 16, "a subscription created by a role that is not a superuser (TestAccPrivileges_missing/subscription checks the error says so before)")
	pub := routertest.Start(t, routertest.WithStandbys(0)).Primary
	const replicator, password, role = "sub_lp_repl", "lp-Secret", "tfacc_sub_lp"
	execSQL(t, pub, "postgres", "SET password_encryption = 'scram-sha-256'; CREATE ROLE "+replicator+" LOGIN REPLICATION PASSWORD '"+password+"'")
	if err := pub.RequirePassword(t.Context(), replicator); err != nil {
		t.Fatal(err)
	}
	f := newSubscriptionFixture(t, pub, "sub_pub_lp", `
CREATE PUBLICATION pub_lp FOR TABLE t1;
GRANT SELECT ON t1 TO `+replicator+`;
INSERT INTO t1 SELECT g, 'row ' || g FROM generate_series(1, 5) g;`, nil)
	major := queryValue[int](t, f.sub, "postgres", `SELECT current_setting('server_version_num')::int`) / 10000
	execSQL(t, f.sub, "postgres", "CREATE ROLE "+role+" LOGIN")
	for _, r := range subscriptionRequirements(pgsql.Ident("postgres"), "public.t1") {
		execSQL(t, f.sub, "postgres", r.statement(pgsql.Ident(role), major))
	}
	config := func(syncCommit string) string {
		return fmt.Sprintf(`
provider "pgreplication" {
  host     = %q
  port     = %d
  username = %q
  database = "postgres"
  sslmode  = "disable"
}

resource "pgreplication_subscription" "this" {
  name               = "sub_lp"
  conninfo           = %q
  publications       = ["pub_lp"]
  synchronous_commit = %q
}
`, f.sub.Host, f.sub.Port, role, fmt.Sprintf("host=127.0.0.1 port=%d user=%s dbname=%s password=%s", pub.Port, replicator, f.pubDB, password), syncCommit)
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy: func(*terraform.State) error {
			subs := queryValue[int](t, f.sub, "postgres", `SELECT count(*) FROM pg_subscription`)
			slots := queryValue[int](t, pub, "postgres", `SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'sub_lp'`)
			if subs != 0 || slots != 0 {
				return fmt.Errorf("after destroy: %d subscriptions on the subscriber, %d slots sub_lp on the publisher; want 0 and 0", subs, slots)
			}
			return nil
		},
		Steps: []resource.TestStep{
			{
				Config: config("off"),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(subscriptionAddr, tfjsonpath.New("owner"), knownvalue.StringExact(role)),
				},
				Check: waitRows(t, f.sub, "postgres", "t1", 5),
			},
			{
				Config: config("remote_write"),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(subscriptionAddr, tfjsonpath.New("synchronous_commit"), knownvalue.StringExact("remote_write")),
				},
			},
		},
	})
}
