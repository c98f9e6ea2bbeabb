package examples_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// The owner tokens that tell a create_before_destroy replacement's old
// object from the new one (provider/system_settings_owner.go), around
// what does not change with them: a replacement that changes only
// synchronous_commit keeps both settings (the old object's Delete compared
// synchronous_standby_names only, found it its own, and reset both); a
// hand-made setting imports with no change planned and its destroy resets
// it; an object imported after `state rm` adopts the server's token, so
// its destroy resets too, token included; and a plain destroy resets.
func TestCreateBeforeDestroyOwnerToken(t *testing.T) {
	cli, topo, standby := oneStandby(t)
	syncHCL := func(commit string) string {
		return fmt.Sprintf(`
resource "pgreplication_synchronous_replication" "sync" {
  provider           = pgreplication.primary
  standby_names      = [%q]
  synchronous_commit = %q
}
`, standby.Name, commit)
	}
	dir := configDir(t, primaryAndStandby(topo), syncHCL("on"))
	releaseCommitsAtEnd(t, topo.Primary)
	app := createBeforeDestroyApp("pgreplication_synchronous_replication.sync.id")
	run := func(args ...string) string {
		t.Helper()
		if args[0] == "state" {
			return cli.run(t, dir, 0, args...)
		}
		return cli.run(t, dir, 0, tfArgs(args[0], args[1:]...)...)
	}
	settings := func(want string) {
		t.Helper()
		var got string
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			_ = topo.Primary.QueryRow(t.Context(), `SELECT current_setting('synchronous_standby_names') || ' / ' || current_setting('synchronous_commit') || ' / ' ||
  coalesce(current_setting('pgreplication.synchronous_replication_owner', true), '')`).Scan(&got)
			if got == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("synchronous_standby_names / synchronous_commit / owner token are %q, want %q", got, want)
			}
		}
	}
	var token string
	tokenNow := func() string {
		t.Helper()
		var v string
		if err := topo.Primary.QueryRow(t.Context(), `SELECT coalesce(current_setting('pgreplication.synchronous_replication_owner', true), '')`).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}

	// Hand-made: imported with no change planned, reset by destroy.
	setAndReload(t, topo.Primary, fmt.Sprintf(`ALTER SYSTEM SET synchronous_standby_names = '"%s"'`, standby.Name))
	settings(fmt.Sprintf(`"%s" / on / `, standby.Name))
	run("import", "pgreplication_synchronous_replication.sync", "synchronous_replication")
	run("plan", "-detailed-exitcode")
	run("destroy")
	settings(" / on / ")

	// Created with a token; replaced create_before_destroy with only
	// synchronous_commit changed: the new object's settings and token stay.
	writeFile(t, filepath.Join(dir, "main.tf"), syncHCL("on")+app)
	run("apply")
	if token = tokenNow(); token == "" {
		t.Fatal("after create, pgreplication.synchronous_replication_owner is empty")
	}
	writeFile(t, filepath.Join(dir, "main.tf"), syncHCL("remote_write")+app)
	out := run("apply", "-replace=pgreplication_synchronous_replication.sync")
	if now := tokenNow(); now == token || now == "" {
		t.Errorf("after the replacement the owner token is %q (the old object's was %q): want the new object's", now, token)
	}
	settings(fmt.Sprintf(`FIRST 1 ("%s") / remote_write / %s`, standby.Name, tokenNow()))
	if !strings.Contains(out, "Synchronous Replication Left As Is") {
		t.Errorf("the replacement's apply does not say that the old object's destroy left the settings:\n%s", out)
	}

	// Forgotten and imported again: the import adopts the token, so the
	// plain destroy resets the settings and the token.
	run("state", "rm", "terraform_data.app")
	writeFile(t, filepath.Join(dir, "main.tf"), syncHCL("remote_write"))
	run("state", "rm", "pgreplication_synchronous_replication.sync")
	run("import", "pgreplication_synchronous_replication.sync", "synchronous_replication")
	run("plan", "-detailed-exitcode")
	run("destroy")
	settings(" / on / ")

	// The standby: created, forgotten, imported, destroyed with
	// reset_on_destroy: reset, token included.
	writeFile(t, filepath.Join(dir, "main.tf"), resetStandbyHCL(topo, standby.Name))
	run("apply")
	var standbyToken string
	if err := standby.QueryRow(t.Context(), `SELECT coalesce(current_setting('pgreplication.standby_owner', true), '')`).Scan(&standbyToken); err != nil || standbyToken == "" {
		t.Fatalf("after create, pgreplication.standby_owner on the standby is %q (%v)", standbyToken, err)
	}
	run("state", "rm", "pgreplication_standby.standby")
	run("import", "pgreplication_standby.standby", "standby")
	run("apply") // reset_on_destroy, which import sets false
	run("destroy")
	waitFor(t, standby, 10*time.Second, func() bool {
		var conninfo, owner string
		_ = standby.QueryRow(t.Context(), `SELECT current_setting('primary_conninfo'), coalesce(current_setting('pgreplication.standby_owner', true), '')`).Scan(&conninfo, &owner)
		return conninfo == "" && owner == ""
	}, "the destroy of the imported standby (reset_on_destroy) to reset primary_conninfo and pgreplication.standby_owner")
}

// resetStandbyHCL is a pgreplication_standby of topo's first standby,
// streaming from its primary as application_name, with reset_on_destroy.
func resetStandbyHCL(topo *routertest.Topology, applicationName string) string {
	return resetStandbyHCLAs(topo, applicationName, "postgres", "")
}

// resetStandbyHCLAs is resetStandbyHCL with the standby logging in to its
// primary as user, with the lines auth (a password or a passfile).
func resetStandbyHCLAs(topo *routertest.Topology, applicationName, user, auth string) string {
	return fmt.Sprintf(`
resource "pgreplication_standby" "standby" {
  provider         = pgreplication.standby
  primary_host     = %q
  primary_port     = %d
  primary_user     = %q
%s  primary_sslmode  = "disable"
  application_name = %q
  reset_on_destroy = true
}
`, topo.Primary.Host, topo.Primary.Port, user, auth, applicationName)
}

// createBeforeDestroyApp stands for an application that depends on of and
// is create_before_destroy: Terraform then replaces of create before
// destroy too.
func createBeforeDestroyApp(of string) string {
	return fmt.Sprintf(`
resource "terraform_data" "app" {
  input = %s
  lifecycle {
    create_before_destroy = true
  }
}
`, of)
}
