package provider

import (
	"fmt"
	"net"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// The provider's password never shows on any path by which
// pgreplication_synchronous_replication is refused (the resource takes no
// secret of its own): an unreachable server, a wrong password, a role that
// may not see pg_stat_replication, a standby that is not there, a role that
// may not ALTER SYSTEM; nor in the state when it is created (with the
// commit record apply writes and the standby confirms; a saved plan holds
// the variables themselves, by Terraform's design). Every
// refusal must match whole without canaryMark (errorWithout), and the
// TRACE log of all the steps must hold no part of either password.
func TestAccSynchronousReplication_passwordNeverShown(t *testing.T) {
	const role = "sync_canary"
	const pw = "canary" + canaryMark + "-sync-pw \\b"
	const wrong = "wrong" + canaryMark + "-sync-pw"
	testAccPreCheck(t)
	topo := routertest.Start(t, routertest.WithStandbys(1)) // its own: settings that can block commits
	primary, standby := topo.Primary, topo.Standbys[0].Name
	passwordRole(t, primary, role, "", pw)
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := closed.Addr().(*net.TCPAddr).Port
	closed.Close() // nothing listens there now
	dir := t.TempDir()
	logPath := traceLog(t)
	variable := canaryVariable(t, pw)
	t.Setenv("TF_VAR_wrong_password", wrong)
	config := func(port int, password, standbyName, body string) string {
		return variable + fmt.Sprintf(`
variable "wrong_password" {
  type      = string
  sensitive = true
}
provider "pgreplication" {
  host            = %q
  port            = %d
  username        = %q
  password        = %s
  database        = "postgres"
  sslmode         = "disable"
  connect_timeout = 2
}
resource "pgreplication_synchronous_replication" "this" {
  standby_names = [%q]
%s
}
`, primary.Host, port, role, password, standbyName, body)
	}
	server := fmt.Sprintf("127.0.0.1:%d", primary.Port)
	grant := func(sql string) func() { return func() { execSQL(t, primary, "postgres", sql) } }
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		WorkingDir:               dir,
		Steps: []resource.TestStep{
			{
				Config:      config(closedPort, "var.canary_password", "nosuch", ""),
				ExpectError: errorWithout("Cannot", fmt.Sprintf("127.0.0.1:%d", closedPort)),
			},
			{
				Config:      config(primary.Port, "var.wrong_password", "nosuch", ""),
				ExpectError: errorWithout("Cannot Connect to PostgreSQL", server, "password authentication failed", "28P01"),
			},
			{
				Config:      config(primary.Port, "var.canary_password", "nosuch", ""),
				ExpectError: errorWithout("Cannot Read Replication Status", "pg_read_all_stats"),
			},
			{
				PreConfig:   grant("GRANT pg_read_all_stats TO " + role),
				Config:      config(primary.Port, "var.canary_password", "nosuch", ""),
				ExpectError: errorWithout("Too Few Synchronous Standbys Connected", `"nosuch"`),
			},
			{
				Config:      config(primary.Port, "var.canary_password", "nosuch", "  allow_unavailable = true"),
				ExpectError: errorWithout("Cannot Configure Synchronous Replication", "ALTER SYSTEM", "42501"),
			},
			{
				PreConfig: grant("GRANT ALTER SYSTEM ON PARAMETER synchronous_standby_names, synchronous_commit TO " + role +
					"; GRANT EXECUTE ON FUNCTION pg_reload_conf() TO " + role),
				Config:            config(primary.Port, "var.canary_password", standby, ""),
				ConfigStateChecks: []statecheck.StateCheck{expectNoSecret(dir, pw), expectNoSecret(dir, canaryMark)},
			},
		},
	})
	checkLogHasNo(t, logPath, append(canaryParts(pw), canaryParts(wrong)...),
		"password authentication failed", "pg_read_all_stats", "Too Few Synchronous Standbys Connected", "pgreplication: running SQL", "ALTER SYSTEM")
}
