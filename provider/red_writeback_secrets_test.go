package provider

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"

	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/conninfo"
	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/pgsql"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// The settings a failed standby apply writes back hold a password
// (primary_conninfo's as current_setting shows it, or what
// postgresql.auto.conf has, here written by hand and not reloaded yet), and
// the refused or ignored ones the new password: none of them shows in the
// apply's error nor in the TRACE log, for an apply the server did not take
// (postgresql.conf with an error) and for one refused half-way (a role
// without ALTER SYSTEM on primary_slot_name, which may read
// pg_file_settings).
func TestAccStandby_writtenBackPasswordNeverShown(t *testing.T) {
	testAccPreCheck(t)
	topo := routertest.Start(t, routertest.WithStandbys(1))
	standby := topo.Standbys[0]
	const oldPW = "canary" + canaryMark + "-had 'q' \\b"
	const newPW = "canary" + canaryMark + "-new 'q' \\b"
	const pendingPW = "canary" + canaryMark + "-pending 'q' \\b"
	const role = "red_writeback_role"
	logPath := traceLog(t)
	// By hand: the standby's primary_conninfo has a password (trust
	// authentication ignores it, so it streams on).
	had := queryValue[string](t, standby, "postgres", `SELECT current_setting('primary_conninfo')`)
	alterSystemByHand(t, standby, "primary_conninfo", had+" password="+conninfo.Quote(oldPW))
	execSQL(t, topo.Primary, "postgres", "CREATE ROLE "+role+" LOGIN IN ROLE pg_read_all_settings, pg_read_all_stats")
	execSQL(t, topo.Primary, "postgres", "GRANT ALTER SYSTEM ON PARAMETER primary_conninfo TO "+role+"; GRANT EXECUTE ON FUNCTION pg_reload_conf() TO "+role+
		"; GRANT SELECT ON pg_file_settings TO "+role+"; GRANT EXECUTE ON FUNCTION pg_show_all_file_settings() TO "+role)
	waitReplayed(t, topo)
	standbyWith := func(port int, slot string) string {
		return fmt.Sprintf(`
resource "pgreplication_standby" "this" {
  provider          = pgreplication.standby1
  primary_host      = "127.0.0.1"
  primary_port      = %d
  primary_user      = "postgres"
  primary_password  = var.canary_password
  primary_sslmode   = "disable"
  application_name  = "replica-1"
  wait_timeout      = "5s"%s
}
`, port, slot)
	}
	variable := canaryVariable(t, newPW)
	var mend func()
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				PreConfig:   func() { mend = breakServerConf(t, standby) },
				Config:      variable + providerConfig("standby1", standby) + standbyWith(freePort(t), ""),
				ExpectError: errorWithout("Standby Settings Not Applied", "written back"),
			},
			{
				PreConfig: func() {
					mend()
					// A third password, written by hand and not reloaded
					// yet: what postgresql.auto.conf holds (pg_file_settings,
					// which the role may read) is what is written back.
					execSQL(t, standby, "postgres", "ALTER SYSTEM SET primary_conninfo = "+pgsql.Literal(had+" password="+conninfo.Quote(pendingPW)))
				},
				Config:      variable + providerConfigAs("standby1", standby, role) + standbyWith(topo.Primary.Port, "\n  primary_slot_name = \"red_writeback_slot\""),
				ExpectError: errorWithout("Cannot Configure Standby", "primary_slot_name", "primary_conninfo, written before, is written back"),
			},
		},
	})
	// What was written back is what the file held: the hand-written value.
	if got := queryValue[string](t, standby, "postgres", `SELECT setting FROM pg_file_settings
WHERE name = 'primary_conninfo' AND sourcefile LIKE '%/postgresql.auto.conf' ORDER BY seqno DESC LIMIT 1`); !strings.Contains(got, "-pending") {
		t.Error("after the refused apply postgresql.auto.conf's primary_conninfo is not the one written by hand before it (the -pending password)")
	}
	checkLogHasNo(t, logPath, slices.Concat(canaryParts(oldPW), canaryParts(newPW), canaryParts(pendingPW)), "ALTER SYSTEM SET", "Standby Settings Not Applied")
}
