package provider

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// The red team's tests of roles that may write only some settings share
// their setup here.

// createLimitedRole creates role on n as a login member of inRoles
// ("pg_read_all_stats", …), allowed to ALTER SYSTEM only params (a
// comma-separated list) and to reload the configuration.
func createLimitedRole(t *testing.T, n *routertest.Node, role, inRoles, params string) {
	t.Helper()
	execSQL(t, n, "postgres", "CREATE ROLE "+role+" LOGIN IN ROLE "+inRoles)
	execSQL(t, n, "postgres", "GRANT ALTER SYSTEM ON PARAMETER "+params+" TO "+role+"; GRANT EXECUTE ON FUNCTION pg_reload_conf() TO "+role)
}

// syncConfigAs is syncConfig with the provider logged in as role.
func syncConfigAs(topo *routertest.Topology, role, body string) string {
	return strings.Replace(syncConfig(topo, body), `username = "postgres"`, fmt.Sprintf("username = %q", role), 1)
}

// limitedSyncConfig creates role on topo's primary (createLimitedRole) and
// returns the configuration of a synchronous replication of its first
// standby, applied as role.
func limitedSyncConfig(t *testing.T, topo *routertest.Topology, role, inRoles, params string) string {
	t.Helper()
	createLimitedRole(t, topo.Primary, role, inRoles, params)
	return syncConfigAs(topo, role, firstStandbyNames(topo))
}

// firstStandbyNames is a synchronous replication's body that lists topo's
// first standby.
func firstStandbyNames(topo *routertest.Topology) string {
	return fmt.Sprintf("\n  standby_names = [%q]\n", topo.Standbys[0].Name)
}

// syncNamesAfterReload returns primary's synchronous_standby_names a second
// after a reload: the reload reaches new sessions asynchronously.
func syncNamesAfterReload(t *testing.T, primary *routertest.Node) string {
	t.Helper()
	time.Sleep(time.Second)
	return queryValue[string](t, primary, "postgres", `SHOW synchronous_standby_names`)
}
