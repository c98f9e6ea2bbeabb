package provider

import (
	"context"
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
	"github.com/jackc/pgx/v5"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// syncConfig renders a pgreplication_synchronous_replication on topo's
// primary; body holds its attributes. The configuration talks to the
// primary only.
func syncConfig(topo *routertest.Topology, body string) string {
	return providerConfig("primary", topo.Primary) + `
resource "pgreplication_synchronous_replication" "this" {
  provider = pgreplication.primary
` + body + `
}
`
}

// TestAccSynchronousReplication_basic makes replica-1 synchronous, switches
// to a quorum of both standbys, and shows that hand edits of
// synchronous_standby_names (in every form PostgreSQL accepts) plan exactly
// the field they changed. It refuses, at plan time, a standby that is not
// connected, and destroy leaves commits unblocked.
func TestAccSynchronousReplication_basic(t *testing.T) {
	testAccPreCheck(t)
	// Server-wide settings that can block commits: not the shared topology.
	topo := routertest.Start(t, routertest.WithStandbys(2))
	primary := topo.Primary
	const addr = "pgreplication_synchronous_replication.this"
	first := `
  standby_names = ["replica-1"]
`
	quorum := `
  method        = "any"
  num_sync      = 1
  standby_names = ["replica-1", "replica-2"]
`
	hostile := `
  method        = "any"
  standby_names = ["replica-1", "Stand \"by\" ü", "UPPER case.x/y"]
`
	missing := `
  standby_names = ["replica-2", "replica-9"]
  num_sync      = 2
`
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy: func(*terraform.State) error {
			// Destroy resets the setting, and a commit returns again.
			if got := queryValue[string](t, primary, "postgres", `SHOW synchronous_standby_names`); got != "" {
				return fmt.Errorf("synchronous_standby_names = %q after destroy, want empty", got)
			}
			return commitWithin(primary, 10*time.Second)
		},
		Steps: []resource.TestStep{
			{
				Config: syncConfig(topo, first),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("id"), knownvalue.StringExact("synchronous_replication")),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("method"), knownvalue.StringExact("first")),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("num_sync"), knownvalue.Int64Exact(1)),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("synchronous_commit"), knownvalue.StringExact("on")),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("sync_state"), knownvalue.MapExact(map[string]knownvalue.Check{
						"replica-1": knownvalue.StringExact("sync"),
						"replica-2": knownvalue.StringExact("async"),
					})),
				},
				Check: func(*terraform.State) error {
					if got := queryValue[string](t, primary, "postgres", `SHOW synchronous_standby_names`); got != `FIRST 1 ("replica-1")` {
						return fmt.Errorf("synchronous_standby_names = %s", got)
					}
					// replica-1 streams, so commits go through.
					return commitWithin(primary, 10*time.Second)
				},
			},
			{
				ResourceName:      addr,
				ImportState:       true,
				ImportStateId:     "synchronous_replication",
				ImportStateVerify: true,
			},
			{
				Config: syncConfig(topo, quorum),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate)},
				},
				// Apply waits until the WAL senders report the new states;
				// sync_state, a live attribute, shows them from the next refresh.
				Check: syncStates(t, primary, map[string]string{"replica-1": "quorum", "replica-2": "quorum"}),
			},
			{
				PreConfig: func() {
					alterSystemByHand(t, primary, "synchronous_standby_names", `ANY 2 ("replica-1", "replica-2")`)
				},
				Config: syncConfig(topo, quorum),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{expectDrift(addr, "num_sync")},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("sync_state"), knownvalue.MapExact(map[string]knownvalue.Check{
						"replica-1": knownvalue.StringExact("quorum"),
						"replica-2": knownvalue.StringExact("quorum"),
					})),
				},
			},
			{
				// The pre-PostgreSQL 10 form: a bare list is FIRST 1.
				PreConfig: func() {
					alterSystemByHand(t, primary, "synchronous_standby_names", `"replica-1", "replica-2"`)
				},
				Config: syncConfig(topo, quorum),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{expectDrift(addr, "method")},
				},
			},
			{
				PreConfig: func() {
					alterSystemByHand(t, primary, "synchronous_standby_names", `ANY 1 ("replica-2", "replica-1")`)
				},
				Config: syncConfig(topo, quorum),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{expectDrift(addr, "standby_names")},
				},
			},
			{
				PreConfig: func() { alterSystemByHand(t, primary, "synchronous_commit", "remote_apply") },
				Config:    syncConfig(topo, quorum),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{expectDrift(addr, "synchronous_commit")},
				},
			},
			{
				// Reset by hand: synchronous replication is off, which the
				// plan shows as the standby list it lost.
				PreConfig: func() { alterSystemByHand(t, primary, "synchronous_standby_names", "") },
				Config:    syncConfig(topo, quorum),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{expectDrift(addr, "standby_names")},
				},
			},
			{
				// Quotes, spaces, dots, a slash, upper case and non-ASCII
				// survive as quoted names; replica-1 alone makes the quorum.
				Config: syncConfig(topo, hostile),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("standby_names"), knownvalue.ListExact([]knownvalue.Check{
						knownvalue.StringExact("replica-1"), knownvalue.StringExact(`Stand "by" ü`), knownvalue.StringExact("UPPER case.x/y"),
					})),
				},
			},
			{
				ResourceName:      addr,
				ImportState:       true,
				ImportStateId:     "synchronous_replication",
				ImportStateVerify: true,
				// Live, as of the last refresh: the state has the states
				// from before the last update, the import reads current ones.
				ImportStateVerifyIgnore: []string{"sync_state"},
			},
			{
				Config:      syncConfig(topo, `standby_names = ["replica-1", "replica-2"]`+"\n  num_sync = 3"),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`num_sync Exceeds the Standby List`),
			},
			{
				// replica-9 does not exist: commits would block. Refused at plan.
				Config:      syncConfig(topo, missing),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)Too Few Synchronous Standbys Connected.*needs\s+2\s+of\s+the\s+listed\s+standbys\s+streaming,\s+but\s+1\s+are.*Not\s+connected:\s+"replica-9".*allow_unavailable`),
			},
			{
				// Accepted when asked for. Commits on the primary now wait for
				// replica-9, so nothing writes until destroy resets it.
				Config: syncConfig(topo, missing+"  allow_unavailable = true\n"),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("num_sync"), knownvalue.Int64Exact(2)),
				},
				Check: syncStates(t, primary, map[string]string{"replica-2": "sync"}),
			},
		},
	})
}

// syncStates checks pg_stat_replication's sync_state of the named standbys.
func syncStates(t *testing.T, primary *routertest.Node, want map[string]string) resource.TestCheckFunc {
	return func(*terraform.State) error {
		for name, state := range want {
			got := queryValue[string](t, primary, "postgres", `SELECT coalesce((SELECT sync_state FROM pg_stat_replication WHERE application_name = $1), 'not connected')`, name)
			if got != state {
				return fmt.Errorf("%s has sync_state %s, want %s", name, got, state)
			}
		}
		return nil
	}
}

// commitWithin commits a write on n, failing if the commit waits longer
// than timeout (as it does when synchronous standbys are missing).
func commitWithin(n *routertest.Node, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, n.DSN())
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS sync_commit_probe (at timestamptz); INSERT INTO sync_commit_probe VALUES (now())`); err != nil {
		return fmt.Errorf("%s: a commit did not return within %s: %w", n.Name, timeout, err)
	}
	return nil
}
