package examples_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// A new pgreplication_synchronous_replication (or pgreplication_standby) on
// a server that already has the setting, made by hand or by another
// configuration, writes over it: the plan shows a plain create, with no word
// of the value the server has, and the destroy later resets the setting to
// nothing, so what was there before is gone too. Here ANY 1 ("x", "y")
// became FIRST 1 ("y"), and after destroy no synchronous replication at
// all. A new router file "never writes over
// a file it did not write" (pgreplication_router_config's path); a
// publication, slot or subscription of an existing name fails to create.
// The singletons should at least warn at plan, naming the value they
// replace and `terraform import`.
func TestRed4SingletonCreateOverwrites(t *testing.T) {
	cli := providerCLI(t)
	topo := routertest.Start(t, routertest.WithStandbys(1))
	p := topo.Primary
	execSQL(t, p, "postgres", `ALTER SYSTEM SET synchronous_standby_names = 'ANY 1 ("x", "y")'`)
	execSQL(t, p, "postgres", `SELECT pg_reload_conf()`)
	dir := configDir(t, map[string]server{"primary": {p, "postgres"}}, `
resource "pgreplication_synchronous_replication" "sync" {
  provider          = pgreplication.primary
  standby_names     = ["y"]
  allow_unavailable = true
}
`)
	out := strings.Join(strings.Fields(cli.run(t, dir, 2, tfArgs("plan", "-detailed-exitcode")...)), " ")
	if !strings.Contains(out, `ANY 1`) || !strings.Contains(out, "import") {
		t.Errorf("the plan of a new pgreplication_synchronous_replication on a primary whose synchronous_standby_names is ANY 1 (\"x\", \"y\") does not name that value and terraform import:\n%s", out)
	}
	cli.run(t, dir, 0, tfArgs("apply")...)
	t.Logf("after the apply: synchronous_standby_names = %q", currentSetting(t, p, "synchronous_standby_names"))
	cli.run(t, dir, 0, tfArgs("destroy")...)
	t.Logf("after the destroy: synchronous_standby_names = %q (was ANY 1 (\"x\", \"y\") before Terraform)", currentSetting(t, p, "synchronous_standby_names"))

	// The standby has the primary_conninfo its base backup wrote.
	sdir := configDir(t, map[string]server{"standby": {topo.Standbys[0], "postgres"}}, fmt.Sprintf(`
resource "pgreplication_standby" "standby" {
  provider        = pgreplication.standby
  primary_host    = %q
  primary_port    = %d
  primary_user    = "postgres"
  primary_sslmode = "disable"
}
`, p.Host, p.Port))
	out = strings.Join(strings.Fields(cli.run(t, sdir, 2, tfArgs("plan", "-detailed-exitcode")...)), " ")
	if !strings.Contains(out, "primary_conninfo = '") || !strings.Contains(out, "terraform import") {
		t.Errorf("the plan of a new pgreplication_standby on a standby that has a primary_conninfo does not name it and terraform import:\n%s", out)
	}
}
