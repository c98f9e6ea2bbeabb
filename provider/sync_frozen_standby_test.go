package provider

import (
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// TestAccSynchronousReplication_frozenStandbyRefused: a standby that stopped
// answering (SIGSTOP) keeps its WAL sender on the primary, which
// pg_stat_replication shows "streaming" until wal_sender_timeout (a
// minute) ends it. Made synchronous, it blocks every commit of the
// application. The old code took it for connected and applied the list in
// about a second, and the next commit on the primary waited for as long as
// the standby stayed stopped. Apply now refuses a standby that does not
// confirm a commit record it writes first, leaves the setting as it was,
// and commits go on; thawed, the same configuration applies.
func TestAccSynchronousReplication_frozenStandbyRefused(t *testing.T) {
	testAccPreCheck(t)
	// Server-wide settings that can block commits: not the shared topology.
	topo := routertest.Start(t, routertest.WithStandbys(2))
	frozen := topo.Standbys[0]
	config := syncConfig(topo, fmt.Sprintf(`
  standby_names = [%q]
`, frozen.Name))
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy: func(*terraform.State) error {
			return commitWithin(topo.Primary, 10*time.Second)
		},
		Steps: []resource.TestStep{
			{
				PreConfig: func() {
					if err := frozen.Freeze(); err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { _ = frozen.Thaw() })
					if state := queryValue[string](t, topo.Primary, "postgres", `SELECT state FROM pg_stat_replication WHERE application_name = $1`, frozen.Name); state != "streaming" {
						t.Fatalf("the frozen standby's WAL sender is %q, want streaming (what the test is about)", state)
					}
				},
				Config:      config,
				ExpectError: regexp.MustCompile(`(?s)Too Few Synchronous Standbys Connected.*Not\s+connected:\s+none.*connected,\s+but\s+not\s+confirming\s+the\s+WAL\s+the\s+primary\s+wrote`),
			},
			{
				PreConfig: func() {
					// Nothing was applied: commits return while the standby is stopped.
					if got := queryValue[string](t, topo.Primary, "postgres", `SHOW synchronous_standby_names`); got != "" {
						t.Fatalf("synchronous_standby_names = %q after the refused apply, want it unchanged (empty)", got)
					}
					if err := commitWithin(topo.Primary, 5*time.Second); err != nil {
						t.Fatal(err)
					}
					if err := frozen.Thaw(); err != nil {
						t.Fatal(err)
					}
				},
				Config: config,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("pgreplication_synchronous_replication.this", tfjsonpath.New("sync_state").AtMapKey(frozen.Name), knownvalue.StringExact("sync")),
				},
				Check: func(*terraform.State) error {
					return commitWithin(topo.Primary, 10*time.Second)
				},
			},
		},
	})
}
