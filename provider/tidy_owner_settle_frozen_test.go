//go:build linux

package provider

import (
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// A create whose owner token does not take effect (settle) on a server
// that freezes meanwhile: the apply ends within the bound of the settle
// and of one connection, with an error that names the token, the server,
// why and what to do, never the password; the object is not in the state,
// and once the server answers again the next apply creates it and the
// destroy resets everything.
//
// The settle is reached as a replacement with unchanged values reaches
// it: synchronous_standby_names already has the planned value, so the
// create's own wait ends at once, and postgresql.conf has an error, so the
// server ignores the reload that would put the token in effect.
func TestAccSynchronousReplication_settleOnFrozenServer(t *testing.T) {
	t.Parallel()
	testAccPreCheck(t)
	topo := routertest.Start(t, routertest.WithStandbys(0)) // frozen: not the shared one
	n := topo.Primary
	addr := fmt.Sprintf("%s:%d", n.Host, n.Port)
	config := ghostSyncConfig(t, n)
	restore := breakConf(t, n)
	// Frozen once the settle has begun; thawed by the next step, or after
	// settleHang if the apply has not ended by then.
	logStatements(t, topo)
	var frozenAt func() time.Time
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: syncFactories(testSyncConfirmWait),
		Steps: []resource.TestStep{
			{
				PreConfig: func() { frozenAt = freezeInSettle(t, n, logSize(t, n)) },
				Config:    config,
				ExpectError: errorWithout("Owner Token Not in Effect", syncOwnerSetting, addr,
					"did not answer", "The settings this create wrote are in effect", "apply again",
					"ALTER SYSTEM RESET", "pg_reload_conf()"),
			},
			{
				PreConfig: func() {
					took := time.Since(frozenAt())
					t.Logf("the apply ended %s after the server froze", took.Round(time.Millisecond))
					// The settle's wait, a check cut pollGrace after it,
					// and the release's connection (connect_timeout 2).
					if bound := ownerSettleTimeout + pollGrace + 20*time.Second; took >= bound {
						t.Errorf("the apply ended %s after the server froze; want within %s (it hung if %s)", took.Round(time.Millisecond), bound, settleHang)
					}
					thaw(t, n)
					restore()
					execSQL(t, n, "postgres", `SELECT pg_reload_conf()`)
				},
				Config: config,
				Check: func(*terraform.State) error {
					if token := queryValue[string](t, n, "postgres", `SELECT coalesce(current_setting('`+syncOwnerSetting+`', true), '')`); token == "" {
						return fmt.Errorf("no owner token in effect after the create that followed")
					}
					return nil
				},
			},
		},
		CheckDestroy: func(*terraform.State) error {
			if v := queryValue[string](t, n, "postgres", `SHOW synchronous_standby_names`); v != "" {
				return fmt.Errorf("synchronous_standby_names = %q after the destroy", v)
			}
			if lines := queryValue[int64](t, n, "postgres", `SELECT count(*) FROM pg_file_settings WHERE name = $1`, syncOwnerSetting); lines != 0 {
				return fmt.Errorf("postgresql.auto.conf still sets %s after the destroy", syncOwnerSetting)
			}
			return nil
		},
	})
}
