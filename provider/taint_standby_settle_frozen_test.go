//go:build linux

package provider

import (
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
)

// TestAccSynchronousReplication_taintedAfterFrozenSettle for a standby: a
// create whose standby freezes in the settle keeps its object, tainted;
// once the standby answers again the next apply replaces it, and the
// destroy (reset_on_destroy) resets primary_conninfo and the token.
//
// The settle is reached as a replacement with unchanged values reaches
// it: a first object writes the settings and is forgotten (removed from
// the configuration, reset_on_destroy unset), so that the create that
// follows finds them in effect; postgresql.conf has an error, so the
// standby ignores the reload that would put its token in effect.
func TestAccStandby_taintedAfterFrozenSettle(t *testing.T) {
	t.Parallel()
	testAccPreCheck(t)
	topo, n, forget, config := forgottenStandby(t)
	const address = "pgreplication_standby.this"

	logStatements(t, topo)
	var restore func()
	token := func() string {
		return queryValue[string](t, n, "postgres", `SELECT coalesce(current_setting('`+standbyOwnerSetting+`', true), '')`)
	}
	var before string
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: append(forget,
			resource.TestStep{
				PreConfig: func() {
					restore = breakConf(t, n)
					freezeInSettle(t, n, logSize(t, n))
				},
				Config: config,
				ExpectError: errorWithout("Owner Token Not in Effect", standbyOwnerSetting, "did not answer",
					"The settings this create wrote are in effect", "apply again", "kept in the state, tainted", "ALTER SYSTEM RESET"),
			},
			resource.TestStep{
				PreConfig: func() {
					thaw(t, n)
					restore()
					execSQL(t, n, "postgres", `SELECT pg_reload_conf()`)
					waitFor(t, 10*time.Second, "the failed create's token in effect", func() bool {
						before = token()
						return before != ""
					})
				},
				Config: config,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					// The configuration is the failed create's: only a
					// taint replaces the object.
					plancheck.ExpectResourceAction(address, plancheck.ResourceActionDestroyBeforeCreate),
				}},
				Check: func(*terraform.State) error {
					if now := token(); now == "" || now == before {
						return fmt.Errorf("owner token %q after the replacement, %q before: want a new one", now, before)
					}
					return nil
				},
			},
		),
		CheckDestroy: func(*terraform.State) error {
			if v := queryValue[string](t, n, "postgres", `SHOW primary_conninfo`); v != "" {
				return fmt.Errorf("primary_conninfo = %q after the destroy", v)
			}
			if lines := queryValue[int64](t, n, "postgres", `SELECT count(*) FROM pg_file_settings WHERE name = $1`, standbyOwnerSetting); lines != 0 {
				return fmt.Errorf("postgresql.auto.conf still sets %s after the destroy", standbyOwnerSetting)
			}
			return nil
		},
	})
}
