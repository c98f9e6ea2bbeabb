package examples_test

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// A server holds an owner token that no object of the state has: an object
// created by a privileged role and then forgotten (terraform state rm, a
// workspace moved), a copy of postgresql.auto.conf that pg_basebackup made,
// a release that failed. The provider now runs as a least-privilege role,
// granted what the resource's documentation lists for its settings but not
// ALTER SYSTEM on the token: create warns ("Replacement Not Told Apart")
// and goes on without a token. That object's plain destroy then finds the
// stale token, takes it for another object's, and resets nothing: the
// primary keeps synchronous_standby_names, and once its standbys go every
// commit waits. The documentation promises "Destroy resets both settings,
// so that commits never stay blocked", and the warning at create says "a
// plain destroy resets them either way". Fix (cbd, system_settings_owner.go
// claimOwner): when the token cannot be written and the server holds one,
// keep that one as the object's own (as adoptOwner does for an import), or
// refuse the create naming the grant; never leave an object whose Delete
// defers to a token nobody owns.
func TestReviewSyncStaleOwnerTokenKeepsCommitsWaiting(t *testing.T) {
	cli := findCLI(t)
	cli.configFile = buildProvider(t)
	topo := routertest.Start(t, routertest.WithStandbys(1))
	standby := topo.Standbys[0]
	const role = "review_sync_lp"
	createSyncRole(t, topo.Primary, role)
	// A token left by an object no state has any more (PostgreSQL 15 and
	// 16 take ALTER SYSTEM of a custom setting the session has).
	conn, err := pgx.Connect(t.Context(), topo.Primary.DSNFor("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	for _, sql := range []string{`SELECT set_config('pgreplication.synchronous_replication_owner', '', false)`,
		`ALTER SYSTEM SET pgreplication.synchronous_replication_owner = 'forgotten0123456789abcdef0123456'`} {
		if _, err := conn.Exec(t.Context(), sql); err != nil {
			t.Fatal(err)
		}
	}
	_ = conn.Close(t.Context())
	execSQL(t, topo.Primary, "postgres", `SELECT pg_reload_conf()`)
	t.Cleanup(func() {
		_ = topo.Primary.Exec(t.Context(), `ALTER SYSTEM RESET synchronous_standby_names`)
		_ = topo.Primary.Exec(t.Context(), `SELECT pg_reload_conf()`)
	})
	dir := t.TempDir()
	writeRoleProvider(t, dir, topo.Primary, role)
	writeFile(t, filepath.Join(dir, "main.tf"), fmt.Sprintf(`
resource "pgreplication_synchronous_replication" "sync" {
  standby_names     = [%q]
  allow_unavailable = true
}
`, standby.Name))
	out := cli.run(t, dir, 0, "apply", "-auto-approve", "-input=false", "-no-color")
	t.Logf("apply:\n%s", lastLines(out, 12))
	code, destroy := cli.exec(t, dir, "destroy", "-auto-approve", "-input=false", "-no-color")
	t.Logf("destroy exited %d:\n%s", code, lastLines(destroy, 16))
	time.Sleep(2 * time.Second) // the reload
	var names string
	if err := topo.Primary.QueryRow(t.Context(), `SELECT current_setting('synchronous_standby_names')`).Scan(&names); err != nil {
		t.Fatal(err)
	}
	if names != "" {
		t.Errorf("after the destroy of the only pgreplication_synchronous_replication (exit %d), synchronous_standby_names is still %q: "+
			"a token no object owns made the destroy reset nothing, and commits wait for %s once it goes", code, names, standby.Name)
	}
}

// createSyncRole creates role with what the documentation of
// pgreplication_synchronous_replication lists for its settings (as before
// the owner token), and not ALTER SYSTEM on the token.
func createSyncRole(t *testing.T, primary *routertest.Node, role string) {
	t.Helper()
	execSQL(t, primary, "postgres", `CREATE ROLE `+role+` LOGIN IN ROLE pg_read_all_stats, pg_read_all_settings;
GRANT ALTER SYSTEM ON PARAMETER synchronous_standby_names, synchronous_commit TO `+role+`;
GRANT EXECUTE ON FUNCTION pg_reload_conf() TO `+role)
}

// The object was created while the provider ran as a superuser (so with a
// token), and the configuration then moves to a least-privilege role that
// has every grant it needed before the owner token. Its destroy resets the
// settings, then fails on the token (42501), and keeps the object in the
// state: every later destroy does the same, until a superuser grants
// ALTER SYSTEM on the token or the object is removed from the state by
// hand. A destroy that worked with this role before cbd can no longer
// finish. Fix (cbd, Delete): the token's reset is cleanup; a refusal of it
// after the settings were reset is a warning naming the grant (or the
// RESET a superuser runs), not an error.
func TestReviewSyncTokenResetRefusedFailsEveryDestroy(t *testing.T) {
	cli := findCLI(t)
	cli.configFile = buildProvider(t)
	topo := routertest.Start(t, routertest.WithStandbys(1))
	standby := topo.Standbys[0]
	const role = "review_sync_lp2"
	createSyncRole(t, topo.Primary, role)
	t.Cleanup(func() {
		_ = topo.Primary.Exec(t.Context(), `ALTER SYSTEM RESET synchronous_standby_names`)
		_ = topo.Primary.Exec(t.Context(), `SELECT pg_reload_conf()`)
	})
	dir := t.TempDir()
	writeProviders(t, dir, map[string]server{"primary": {topo.Primary, "postgres"}})
	writeFile(t, filepath.Join(dir, "main.tf"), fmt.Sprintf(`
resource "pgreplication_synchronous_replication" "sync" {
  provider          = pgreplication.primary
  standby_names     = [%q]
  allow_unavailable = true
}
`, standby.Name))
	cli.run(t, dir, 0, "apply", "-auto-approve", "-input=false", "-no-color")
	writeRoleProvider(t, dir, topo.Primary, role)
	writeFile(t, filepath.Join(dir, "main.tf"), fmt.Sprintf(`
resource "pgreplication_synchronous_replication" "sync" {
  standby_names     = [%q]
  allow_unavailable = true
}
`, standby.Name))
	for i := 1; i <= 2; i++ {
		code, out := cli.exec(t, dir, "destroy", "-auto-approve", "-input=false", "-no-color")
		if code != 0 {
			t.Errorf("destroy %d as %s, which holds every grant the settings need, exits %d:\n%s", i, role, code, lastLines(out, 14))
		}
	}
}

func writeRoleProvider(t *testing.T, dir string, n *routertest.Node, role string) {
	t.Helper()
	writeFile(t, filepath.Join(dir, "providers.tf"), fmt.Sprintf(`terraform {
  required_providers {
    pgreplication = {
      source = "pgreplication/pgreplication"
    }
  }
}

provider "pgreplication" {
  host     = %q
  port     = %d
  username = %q
  database = "postgres"
  sslmode  = "disable"
}
`, n.Host, n.Port, role))
}
