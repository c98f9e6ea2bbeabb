package examples_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A server has one standby configuration and one synchronous_standby_names,
// and the Delete of pgreplication_standby (reset_on_destroy = true) and of
// pgreplication_synchronous_replication resets them whatever the server holds
// now. A replacement made create_before_destroy creates the new object first
// (writing the settings), then deletes the deposed one, which resets what the
// new one has just written: the apply reports success, and the server has no
// synchronous replication (commits no longer wait for the standby), or the
// standby no primary_conninfo (it stops streaming; were it the synchronous
// standby, every commit on the primary would wait). The user need not write
// create_before_destroy on them: Terraform gives it to every resource a
// create_before_destroy resource depends on, here a terraform_data that
// stands for the application. -replace, taint and any replacement do it.
// By hand (PostgreSQL 17, Terraform 1.11.4): after `apply
// -replace=pgreplication_synchronous_replication.sync`
// synchronous_standby_names was empty and the standby async; after `apply
// -replace=pgreplication_standby.standby` primary_conninfo was empty and
// pg_stat_wal_receiver empty; both applies exited 0, and the next plan
// showed the standby as to be created. Fixed: Create writes an owner
// token beside the settings (provider/system_settings_owner.go), and the
// old object's Delete finds it is not its own.
func TestRed4CreateBeforeDestroySingletons(t *testing.T) {
	cli, topo, standby := oneStandby(t)
	standbyHCL := resetStandbyHCL(topo, standby.Name)
	const syncHCL = `
resource "pgreplication_synchronous_replication" "sync" {
  provider      = pgreplication.primary
  standby_names = [pgreplication_standby.standby.application_name]
}
`
	app := createBeforeDestroyApp

	// The synchronous replication, replaced.
	dir := configDir(t, primaryAndStandby(topo), standbyHCL+syncHCL+app("pgreplication_synchronous_replication.sync.id"))
	cli.run(t, dir, 0, tfArgs("apply")...)
	cli.run(t, dir, 0, tfArgs("apply", "-replace=pgreplication_synchronous_replication.sync")...)
	time.Sleep(time.Second) // the reload
	if got := currentSetting(t, topo.Primary, "synchronous_standby_names"); got == "" {
		t.Errorf("after apply -replace of pgreplication_synchronous_replication (create_before_destroy through terraform_data.app), exit 0: synchronous_standby_names is empty; commits no longer wait for %s", standby.Name)
	}

	// The standby, replaced (no synchronous standby now, so that a cut
	// standby does not hold the primary's commits).
	writeFile(t, filepath.Join(dir, "main.tf"), standbyHCL+app("pgreplication_standby.standby.application_name"))
	cli.run(t, dir, 0, tfArgs("apply")...)
	cli.run(t, dir, 0, tfArgs("apply", "-replace=pgreplication_standby.standby")...)
	waitStandbyStreams(t, standby, "the standby to stream after apply -replace of pgreplication_standby (create_before_destroy through terraform_data.app) exited 0; primary_conninfo is "+
		fmt.Sprintf("%q", currentSetting(t, standby, "primary_conninfo")))
}

// The part of TestRed4CreateBeforeDestroySingletons that Delete can tell:
// a create_before_destroy replacement whose new object writes another
// value. The old object's Delete finds the server's value is not its own
// and resets nothing.
func TestCreateBeforeDestroySingletonsNewValueKept(t *testing.T) {
	cli, topo, standby := oneStandby(t)
	standbyHCL := func(app string) string { return resetStandbyHCL(topo, app) }
	syncHCL := func(names string) string {
		return fmt.Sprintf(`
resource "pgreplication_synchronous_replication" "sync" {
  provider      = pgreplication.primary
  standby_names = %s
}
`, names)
	}
	app := createBeforeDestroyApp
	releaseCommitsAtEnd(t, topo.Primary)

	dir := configDir(t, primaryAndStandby(topo), standbyHCL(standby.Name)+syncHCL("[pgreplication_standby.standby.application_name]")+
		app("pgreplication_synchronous_replication.sync.id"))
	cli.run(t, dir, 0, tfArgs("apply")...)
	writeFile(t, filepath.Join(dir, "main.tf"), standbyHCL(standby.Name)+syncHCL(`[pgreplication_standby.standby.application_name, "other"]`)+
		app("pgreplication_synchronous_replication.sync.id"))
	cli.run(t, dir, 0, tfArgs("apply", "-replace=pgreplication_synchronous_replication.sync")...)
	time.Sleep(time.Second) // the reload
	if v := currentSetting(t, topo.Primary, "synchronous_standby_names"); !strings.Contains(v, "other") {
		t.Errorf("after apply -replace of pgreplication_synchronous_replication with a new standby list (create_before_destroy), synchronous_standby_names = %q", v)
	}

	writeFile(t, filepath.Join(dir, "main.tf"), standbyHCL(standby.Name)+app("pgreplication_standby.standby.application_name"))
	cli.run(t, dir, 0, tfArgs("apply")...)
	writeFile(t, filepath.Join(dir, "main.tf"), standbyHCL("renamed")+app("pgreplication_standby.standby.application_name"))
	cli.run(t, dir, 0, tfArgs("apply", "-replace=pgreplication_standby.standby")...)
	waitStandbyStreams(t, standby, "the standby to stream after apply -replace of pgreplication_standby with a new application_name (create_before_destroy)")
}
