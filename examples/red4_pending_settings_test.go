package examples_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// terraform plan is the drift audit, "whatever changed on the servers by
// hand shows up in the plan". An ALTER SYSTEM made by hand and not reloaded
// yet does not: Read takes the values the servers run with (SHOW), so the
// plan says "No changes" while postgresql.auto.conf holds a
// primary_conninfo to another host and a synchronous_standby_names that
// lists no connected standby. The next reload, by anyone (pg_ctl reload, a
// configuration tool, a restart), puts them in effect: by hand (PostgreSQL
// 17, Terraform 1.11.4) the standby stopped streaming and a commit on the
// primary still waited after 5 s; only then did the plan show the drift.
// The values PostgreSQL will take are in pg_file_settings.
func TestRed4PendingSettingsPlanNoChanges(t *testing.T) {
	cli, topo, standby := oneStandby(t)
	dir := configDir(t, primaryAndStandby(topo), fmt.Sprintf(`
resource "pgreplication_standby" "standby" {
  provider         = pgreplication.standby
  primary_host     = %q
  primary_port     = %d
  primary_user     = "postgres"
  primary_sslmode  = "disable"
  application_name = %q
}

resource "pgreplication_synchronous_replication" "sync" {
  provider      = pgreplication.primary
  standby_names = [pgreplication_standby.standby.application_name]
}
`, topo.Primary.Host, topo.Primary.Port, standby.Name))
	cli.run(t, dir, 0, tfArgs("apply")...)
	t.Cleanup(func() {
		// Should anything reload the primary, let it commit, so that the
		// topology stops. (t.Context is done by now.)
		_ = topo.Primary.Exec(context.Background(), `ALTER SYSTEM RESET synchronous_standby_names`)
	})
	execSQL(t, standby, "postgres", fmt.Sprintf(`ALTER SYSTEM SET primary_conninfo = 'host=192.0.2.1 port=1 user=postgres application_name=%s'`, standby.Name))
	execSQL(t, topo.Primary, "postgres", `ALTER SYSTEM SET synchronous_standby_names = 'FIRST 1 (nobody)'`)
	code, out := cli.exec(t, dir, tfArgs("plan", "-detailed-exitcode")...)
	flat := strings.Join(strings.Fields(out), " ")
	if code != 2 && !strings.Contains(flat, "192.0.2.1") {
		t.Errorf("plan exited %d and does not name the pending primary_conninfo (host 192.0.2.1) or synchronous_standby_names (nobody) "+
			"that the next reload puts in effect:\n%s", code, lastLines(out, 60))
	}
	if code != 2 && !strings.Contains(flat, "nobody") {
		t.Errorf("plan exited %d and does not name the pending synchronous_standby_names FIRST 1 (nobody):\n%s", code, lastLines(out, 60))
	}
}
