//go:build linux

package provider

import (
	"fmt"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// A create whose server freezes while it waits for its owner token to take
// effect (settle) has written its settings and its token, which stay in
// effect: the object is kept in the state, tainted, as Terraform keeps any
// half-created object, so that once the server answers again the next
// apply replaces it and terraform destroy destroys it, each resetting what
// the create wrote. Before, the object was not kept, and nothing undid the
// settings but a superuser by hand. The settle is reached and frozen as in
// TestAccSynchronousReplication_settleOnFrozenServer.
func TestAccSynchronousReplication_taintedAfterFrozenSettle(t *testing.T) {
	t.Parallel()
	testAccPreCheck(t)
	for _, then := range []string{"replace", "destroy"} {
		t.Run(then, func(t *testing.T) {
			t.Parallel()
			frozenSettleThen(t, then)
		})
	}
}

// frozenSettleThen fails a create in its settle on a frozen server, thaws
// it, then replaces the object ("replace") or destroys it ("destroy").
func frozenSettleThen(t *testing.T, then string) {
	topo := routertest.Start(t, routertest.WithStandbys(0)) // frozen: not the shared one
	n := topo.Primary
	config := ghostSyncConfig(t, n)
	const address = "pgreplication_synchronous_replication.this"

	logStatements(t, topo)
	var restore func()
	thawed := func() {
		thaw(t, n)
		restore()
		execSQL(t, n, "postgres", `SELECT pg_reload_conf()`)
	}
	token := func() string {
		return queryValue[string](t, n, "postgres", `SELECT coalesce(current_setting('`+syncOwnerSetting+`', true), '')`)
	}
	reset := func(*terraform.State) error {
		if v := queryValue[string](t, n, "postgres", `SHOW synchronous_standby_names`); v != "" {
			return fmt.Errorf("synchronous_standby_names = %q after the destroy", v)
		}
		if v := queryValue[string](t, n, "postgres", `SHOW synchronous_commit`); v != "on" {
			return fmt.Errorf("synchronous_commit = %q after the destroy", v)
		}
		if lines := queryValue[int64](t, n, "postgres", `SELECT count(*) FROM pg_file_settings WHERE name = $1`, syncOwnerSetting); lines != 0 {
			return fmt.Errorf("postgresql.auto.conf still sets %s after the destroy", syncOwnerSetting)
		}
		return nil
	}

	steps := []resource.TestStep{{
		PreConfig: func() {
			restore = breakConf(t, n)
			freezeInSettle(t, n, logSize(t, n))
		},
		Config: config,
		ExpectError: errorWithout("Owner Token Not in Effect", syncOwnerSetting, "did not answer",
			"The settings this create wrote are in effect", "apply again", "kept in the state, tainted", "ALTER SYSTEM RESET"),
	}}
	var before string
	switch then {
	case "replace":
		steps = append(steps, resource.TestStep{
			PreConfig: func() {
				thawed()
				before = token()
				if before == "" {
					t.Error("no owner token in effect after the thaw: the failed create's was not written")
				}
			},
			Config: config,
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
				// The configuration is the failed create's: only a taint
				// replaces the object.
				plancheck.ExpectResourceAction(address, plancheck.ResourceActionDestroyBeforeCreate),
			}},
			Check: func(*terraform.State) error {
				if now := token(); now == "" || now == before {
					return fmt.Errorf("owner token %q after the replacement, %q before: want a new one", now, before)
				}
				if v := queryValue[string](t, n, "postgres", `SHOW synchronous_standby_names`); v != `FIRST 1 ("ghost")` {
					return fmt.Errorf("synchronous_standby_names = %q after the replacement", v)
				}
				return nil
			},
		})
	case "destroy":
		steps = append(steps, resource.TestStep{
			PreConfig: thawed,
			Config:    config,
			Destroy:   true,
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
				plancheck.ExpectResourceAction(address, plancheck.ResourceActionDestroy),
			}},
			Check: reset,
		})
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: syncFactories(testSyncConfirmWait),
		Steps:                    steps,
		CheckDestroy:             reset,
	})
}
