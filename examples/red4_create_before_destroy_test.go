package examples_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
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
	cli := findCLI(t)
	cli.configFile = buildProvider(t)
	topo := routertest.Start(t, routertest.WithStandbys(1))
	standby := topo.Standbys[0]
	dir := t.TempDir()
	writeProviders(t, dir, map[string]server{"primary": {topo.Primary, "postgres"}, "standby": {standby, "postgres"}})
	standbyHCL := resetStandbyHCL(topo, standby.Name)
	const syncHCL = `
resource "pgreplication_synchronous_replication" "sync" {
  provider      = pgreplication.primary
  standby_names = [pgreplication_standby.standby.application_name]
}
`
	app := createBeforeDestroyApp
	apply := func(args ...string) {
		t.Helper()
		cli.run(t, dir, 0, append([]string{"apply", "-auto-approve", "-input=false", "-no-color"}, args...)...)
	}
	setting := func(n *routertest.Node, name string) string {
		t.Helper()
		var v string
		if err := n.QueryRow(t.Context(), `SELECT current_setting($1)`, name).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}

	// The synchronous replication, replaced.
	writeFile(t, filepath.Join(dir, "main.tf"), standbyHCL+syncHCL+app("pgreplication_synchronous_replication.sync.id"))
	apply()
	apply("-replace=pgreplication_synchronous_replication.sync")
	time.Sleep(time.Second) // the reload
	if got := setting(topo.Primary, "synchronous_standby_names"); got == "" {
		t.Errorf("after apply -replace of pgreplication_synchronous_replication (create_before_destroy through terraform_data.app), exit 0: synchronous_standby_names is empty; commits no longer wait for %s", standby.Name)
	}

	// The standby, replaced (no synchronous standby now, so that a cut
	// standby does not hold the primary's commits).
	writeFile(t, filepath.Join(dir, "main.tf"), standbyHCL+app("pgreplication_standby.standby.application_name"))
	apply()
	apply("-replace=pgreplication_standby.standby")
	waitFor(t, standby, 30*time.Second, func() bool {
		var status string
		_ = standby.QueryRow(t.Context(), `SELECT coalesce((SELECT status FROM pg_stat_wal_receiver), 'none')`).Scan(&status)
		return status == "streaming"
	}, "the standby to stream after apply -replace of pgreplication_standby (create_before_destroy through terraform_data.app) exited 0; primary_conninfo is "+
		fmt.Sprintf("%q", setting(standby, "primary_conninfo")))
}

// The part of TestRed4CreateBeforeDestroySingletons that Delete can tell:
// a create_before_destroy replacement whose new object writes another
// value. The old object's Delete finds the server's value is not its own
// and resets nothing.
func TestCreateBeforeDestroySingletonsNewValueKept(t *testing.T) {
	cli := findCLI(t)
	cli.configFile = buildProvider(t)
	topo := routertest.Start(t, routertest.WithStandbys(1))
	standby := topo.Standbys[0]
	dir := t.TempDir()
	writeProviders(t, dir, map[string]server{"primary": {topo.Primary, "postgres"}, "standby": {standby, "postgres"}})
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
	apply := func(args ...string) {
		t.Helper()
		cli.run(t, dir, 0, append([]string{"apply", "-auto-approve", "-input=false", "-no-color"}, args...)...)
	}
	t.Cleanup(func() {
		_ = topo.Primary.Exec(context.Background(), `ALTER SYSTEM RESET synchronous_standby_names`)
		_ = topo.Primary.Exec(context.Background(), `SELECT pg_reload_conf()`)
	})

	writeFile(t, filepath.Join(dir, "main.tf"), standbyHCL(standby.Name)+syncHCL("[pgreplication_standby.standby.application_name]")+
		app("pgreplication_synchronous_replication.sync.id"))
	apply()
	writeFile(t, filepath.Join(dir, "main.tf"), standbyHCL(standby.Name)+syncHCL(`[pgreplication_standby.standby.application_name, "other"]`)+
		app("pgreplication_synchronous_replication.sync.id"))
	apply("-replace=pgreplication_synchronous_replication.sync")
	time.Sleep(time.Second) // the reload
	var v string
	if err := topo.Primary.QueryRow(t.Context(), `SELECT current_setting('synchronous_standby_names')`).Scan(&v); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(v, "other") {
		t.Errorf("after apply -replace of pgreplication_synchronous_replication with a new standby list (create_before_destroy), synchronous_standby_names = %q", v)
	}

	writeFile(t, filepath.Join(dir, "main.tf"), standbyHCL(standby.Name)+app("pgreplication_standby.standby.application_name"))
	apply()
	writeFile(t, filepath.Join(dir, "main.tf"), standbyHCL("renamed")+app("pgreplication_standby.standby.application_name"))
	apply("-replace=pgreplication_standby.standby")
	waitFor(t, standby, 30*time.Second, func() bool {
		var status string
		_ = standby.QueryRow(t.Context(), `SELECT coalesce((SELECT status FROM pg_stat_wal_receiver), 'none')`).Scan(&status)
		return status == "streaming"
	}, "the standby to stream after apply -replace of pgreplication_standby with a new application_name (create_before_destroy)")
}
