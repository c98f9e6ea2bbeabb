package provider

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// reloadsLogged counts the pg_reload_conf() statements in n's server log
// from byte offset on (log_statement = all), and returns the log's end.
func reloadsLogged(t *testing.T, n *routertest.Node, offset int64) (reloads int, end int64) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(n.DataDir, "postgresql.log"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b[min(offset, int64(len(b))):]), "\n") {
		if strings.Contains(line, "LOG:") && strings.Contains(line, "pg_reload_conf()") {
			reloads++
		}
	}
	return reloads, int64(len(b))
}

// logStatements makes every new session of the provider's role on topo's
// servers log its statements, for reloadsLogged.
func logStatements(t *testing.T, topo *routertest.Topology) {
	t.Helper()
	execSQL(t, topo.Primary, "postgres", "ALTER ROLE postgres SET log_statement = 'all'")
	if err := topo.WaitReplayed(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// A destroy resets the settings and the owner token with one reload: once
// it returns, a new session sees both reset. Before, the token's reset had
// a reload of its own after the settings', two a destroy.
func TestAccSynchronousReplication_destroyResetsTokenWithOneReload(t *testing.T) {
	t.Parallel()
	testAccPreCheck(t)
	topo := routertest.Start(t, routertest.WithStandbys(1)) // its log is read: not the shared one
	logStatements(t, topo)
	var offset int64
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: syncFactories(testSyncConfirmWait),
		Steps: []resource.TestStep{{
			Config: syncConfig(topo, fmt.Sprintf("\n  standby_names = [%q]\n", topo.Standbys[0].Name)),
			Check: func(*terraform.State) error {
				if token := queryValue[string](t, topo.Primary, "postgres", `SELECT coalesce(current_setting('`+syncOwnerSetting+`', true), '')`); token == "" {
					return fmt.Errorf("no owner token in effect after the create")
				}
				_, offset = reloadsLogged(t, topo.Primary, 0)
				return nil
			},
		}},
		CheckDestroy: func(*terraform.State) error {
			return resetOnce(t, topo.Primary, offset, syncOwnerSetting, "synchronous_standby_names")
		},
	})
}

// The same for a standby's reset_on_destroy.
func TestAccStandby_destroyResetsTokenWithOneReload(t *testing.T) {
	t.Parallel()
	testAccPreCheck(t)
	topo := routertest.Start(t, routertest.WithStandbys(1))
	logStatements(t, topo)
	standby := topo.Standbys[0]
	var offset int64
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config: standbyConfig(topo, fmt.Sprintf("  application_name = %q\n  reset_on_destroy = true\n  wait_timeout     = \"30s\"", standby.Name)),
			Check: func(*terraform.State) error {
				if token := queryValue[string](t, standby, "postgres", `SELECT coalesce(current_setting('`+standbyOwnerSetting+`', true), '')`); token == "" {
					return fmt.Errorf("no owner token in effect after the create")
				}
				_, offset = reloadsLogged(t, standby, 0)
				return nil
			},
		}},
		CheckDestroy: func(*terraform.State) error {
			return resetOnce(t, standby, offset, standbyOwnerSetting, "primary_conninfo")
		},
	})
}

// resetOnce checks, from a new session as the destroy returns, that setting
// and the token owner are reset on n, and that the destroy reloaded once
// (the statements logged since offset).
func resetOnce(t *testing.T, n *routertest.Node, offset int64, owner, setting string) error {
	t.Helper()
	var errs []string
	if v := queryValue[string](t, n, "postgres", `SELECT setting FROM pg_settings WHERE name = $1`, setting); v != "" {
		errs = append(errs, fmt.Sprintf("%s = %q in pg_settings after the destroy", setting, v))
	}
	if v := queryValue[string](t, n, "postgres", `SELECT coalesce(current_setting($1, true), '')`, owner); v != "" {
		errs = append(errs, fmt.Sprintf("%s = %q after the destroy", owner, v))
	}
	if lines := queryValue[int64](t, n, "postgres", `SELECT count(*) FROM pg_file_settings WHERE name = $1`, owner); lines != 0 {
		errs = append(errs, fmt.Sprintf("postgresql.auto.conf still sets %s", owner))
	}
	if reloads, _ := reloadsLogged(t, n, offset); reloads != 1 {
		errs = append(errs, fmt.Sprintf("the destroy ran pg_reload_conf() %d times; want 1", reloads))
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}
