//go:build linux

package provider

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// A create kept tainted whose token never took effect (the server ignored
// its reload: postgresql.conf has an error, which nobody has fixed yet) is
// destroyed: the destroy resets what the create wrote to
// postgresql.auto.conf, although the token in effect is an earlier
// object's and the values in effect may be too. Before, the Delete read
// only the token in effect, took the settings for that object's, reset
// nothing, and the settings and the token stayed in postgresql.auto.conf,
// for the reload that follows the fix of postgresql.conf to put in effect
// with no object left to undo them. The settle is reached and frozen as in
// TestAccSynchronousReplication_taintedAfterFrozenSettle; the server is
// thawed with postgresql.conf still broken.
func TestAccSynchronousReplication_taintedUnreloadedDestroy(t *testing.T) {
	t.Parallel()
	testAccPreCheck(t)
	topo := routertest.Start(t, routertest.WithStandbys(0)) // frozen: not the shared one
	n := topo.Primary
	// An earlier object's settings and token (its state is gone): the
	// create finds its values in effect and reaches the settle.
	setOwnerByHand(t, n, syncOwnerSetting, "0123456789abcdef0123456789abcdef")
	config := ghostSyncConfig(t, n)
	taintedUnreloadedDestroy(t, topo, n, config, "pgreplication_synchronous_replication.this", syncOwnerSetting,
		[]string{"synchronous_standby_names", "synchronous_commit"}, syncFactories(testSyncConfirmWait), nil)
}

// TestAccSynchronousReplication_taintedUnreloadedDestroy for a standby
// (reset_on_destroy), set up as TestAccStandby_taintedAfterFrozenSettle: a
// first object's settings and token, forgotten, are in effect.
func TestAccStandby_taintedUnreloadedDestroy(t *testing.T) {
	t.Parallel()
	testAccPreCheck(t)
	topo, n, forget, config := forgottenStandby(t)
	taintedUnreloadedDestroy(t, topo, n, config, "pgreplication_standby.this", standbyOwnerSetting, []string{"primary_conninfo"},
		testAccProtoV6ProviderFactories, forget)
}

// taintedUnreloadedDestroy runs before (steps that put an earlier object's
// settings and token in effect, if the caller did not), then a create of
// config on n that is frozen in its settle, with postgresql.conf broken so
// that n ignores its reload; then thaws n, postgresql.conf still broken,
// and destroys the tainted object: postgresql.auto.conf must hold neither
// the settings nor the owner token after it. Once postgresql.conf is
// fixed and reloaded, none of them is in effect.
func taintedUnreloadedDestroy(t *testing.T, topo *routertest.Topology, n *routertest.Node, config, address, owner string,
	settings []string, factories map[string]func() (tfprotov6.ProviderServer, error), before []resource.TestStep) {
	logStatements(t, topo)
	var restore func()
	autoConf := func() string {
		return queryValue[string](t, n, "postgres", `SELECT pg_read_file('postgresql.auto.conf')`)
	}
	var token string
	steps := append(before, resource.TestStep{
		PreConfig: func() {
			token = queryValue[string](t, n, "postgres", `SELECT coalesce(current_setting('`+owner+`', true), '')`)
			if token == "" {
				t.Error("no earlier owner token in effect before the create")
			}
			restore = breakConf(t, n)
			freezeInSettle(t, n, logSize(t, n))
		},
		Config: config,
		ExpectError: errorWithout("Owner Token Not in Effect", owner, "did not answer",
			"kept in the state, tainted"),
	}, resource.TestStep{
		PreConfig: func() {
			thaw(t, n) // postgresql.conf still has its error: the create's token never takes effect
			if now := queryValue[string](t, n, "postgres", `SELECT coalesce(current_setting('`+owner+`', true), '')`); now != token {
				t.Errorf("owner token %q in effect after the thaw, want the earlier %q (the reload ignored)", now, token)
			}
			if !strings.Contains(autoConf(), owner) {
				t.Error("postgresql.auto.conf holds no owner token after the failed create")
			}
		},
		Config:  config,
		Destroy: true,
		ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
			plancheck.ExpectResourceAction(address, plancheck.ResourceActionDestroy),
		}},
		Check: func(*terraform.State) error {
			conf := autoConf()
			for _, name := range append([]string{owner}, settings...) {
				if strings.Contains(conf, name) {
					return fmt.Errorf("postgresql.auto.conf still sets %s after the destroy of the tainted object:\n%s", name, redactedConf(conf))
				}
			}
			return nil
		},
	})
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: factories,
		Steps:                    steps,
		CheckDestroy: func(*terraform.State) error {
			restore()
			execSQL(t, n, "postgres", `SELECT pg_reload_conf()`)
			var left []string
			waitFor(t, 10*time.Second, "the fixed postgresql.conf reloaded", func() bool {
				left = left[:0]
				for _, name := range append([]string{owner}, settings...) {
					if v := queryValue[string](t, n, "postgres", `SELECT coalesce(current_setting($1, true), '')`, name); v != "" && v != "on" {
						left = append(left, name)
					}
				}
				return len(left) == 0
			})
			if len(left) > 0 {
				return fmt.Errorf("after postgresql.conf was fixed and reloaded, %s in effect, which the destroy should have reset", strings.Join(left, ", "))
			}
			return nil
		},
	})
}

// setOwnerByHand puts token in effect as name on n, as an earlier object
// whose state is gone left it (ALTER SYSTEM of a custom setting needs it
// in the session first on PostgreSQL 15 and 16).
func setOwnerByHand(t *testing.T, n *routertest.Node, name, token string) {
	t.Helper()
	ctx := context.Background()
	conn, err := n.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, sql := range []string{`SELECT set_config('` + name + `', '` + token + `', false)`,
		`ALTER SYSTEM SET "` + name + `" = '` + token + `'`, `SELECT pg_reload_conf()`} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 10*time.Second, "the hand-set owner token in effect", func() bool {
		return queryValue[string](t, n, "postgres", `SELECT coalesce(current_setting($1, true), '')`, name) == token
	})
}

// redactedConf is a postgresql.auto.conf for an error, primary_conninfo's
// line left out (it may hold a password).
func redactedConf(conf string) string {
	var lines []string
	for _, l := range strings.Split(conf, "\n") {
		if !strings.HasPrefix(l, "primary_conninfo") {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "\n")
}

// autoConfValue reads a token as ALTER SYSTEM writes it; the last line of
// a name wins, and a longer name with the same prefix is another's.
func TestAutoConfValue(t *testing.T) {
	conf := "# Do not edit this file manually!\n" + syncOwnerSetting + " = 'aa'\n" + syncOwnerSetting + "_x = 'bb'\n" +
		standbyOwnerSetting + " = 'cc'\n" + syncOwnerSetting + " = 'dd'\n"
	for name, want := range map[string]string{syncOwnerSetting: "dd", standbyOwnerSetting: "cc", "pgreplication.none": ""} {
		if got := autoConfValue(conf, name); got != want {
			t.Errorf("autoConfValue(%s) = %q, want %q", name, got, want)
		}
	}
}
