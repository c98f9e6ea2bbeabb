package provider

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/jackc/pgx/v5"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// The owner token (system_settings_owner.go) for a role that is not a
// superuser. Without GRANT ALTER SYSTEM ON PARAMETER on it, create goes on
// without a token (it warns) and destroy resets as before. With it (the
// documented grants), a create writes the token, on PostgreSQL 15 and 16
// too, which refuse ALTER SYSTEM of a custom setting the session does not
// have; a create that fails after writing writes it back; and destroy
// resets it.
func TestAccSynchronousReplication_ownerTokenLimitedRole(t *testing.T) {
	t.Parallel()
	testAccPreCheck(t)
	topo := routertest.Start(t, routertest.WithStandbys(1))
	const role = "sync_owner_token"
	config := limitedSyncConfig(t, topo, role, "pg_read_all_stats", "synchronous_standby_names, synchronous_commit")
	// The token and synchronous_standby_names in effect, and the lines of
	// postgresql.auto.conf that set the token.
	server := func() (token, names string, lines int) {
		token = queryValue[string](t, topo.Primary, "postgres", `SELECT coalesce(current_setting('`+syncOwnerSetting+`', true), '')`)
		names = queryValue[string](t, topo.Primary, "postgres", `SHOW synchronous_standby_names`)
		lines = int(queryValue[int64](t, topo.Primary, "postgres", `SELECT count(*) FROM pg_file_settings WHERE name = '`+syncOwnerSetting+`'`))
		return
	}
	expect := func(step string, wantToken bool, wantNames bool) {
		t.Helper()
		// The reload that puts a change in effect is asynchronous.
		token, names, lines := server()
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) &&
			((token != "") != wantToken || (lines > 0) != wantToken || (names != "") != wantNames); time.Sleep(50 * time.Millisecond) {
			token, names, lines = server()
		}
		if (token != "") != wantToken || (lines > 0) != wantToken || (names != "") != wantNames {
			t.Errorf("%s: %s = %q (%d lines in postgresql.auto.conf), synchronous_standby_names = %q; want a token: %t, synchronous replication: %t",
				step, syncOwnerSetting, token, lines, names, wantToken, wantNames)
		}
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: syncFactories(testSyncConfirmWait),
		Steps: []resource.TestStep{
			{
				Config: config,
				Check: func(*terraform.State) error {
					expect("create without the grant on the token", false, true)
					return nil
				},
			},
			{Config: config, Destroy: true},
			{
				PreConfig: func() {
					expect("destroy of an object without a token", false, false)
					execSQL(t, topo.Primary, "postgres", "GRANT ALTER SYSTEM ON PARAMETER "+syncOwnerSetting+" TO "+role+
						"; REVOKE ALTER SYSTEM ON PARAMETER synchronous_commit FROM "+role)
				},
				Config:      config,
				ExpectError: errorText("Cannot Configure Synchronous Replication", `ALTER SYSTEM SET "synchronous_commit"`),
			},
			{
				PreConfig: func() {
					expect("a create that failed after writing the token", false, false)
					execSQL(t, topo.Primary, "postgres", "GRANT ALTER SYSTEM ON PARAMETER synchronous_commit TO "+role)
				},
				Config: config,
				Check: func(*terraform.State) error {
					expect("create with the grant on the token", true, true)
					return nil
				},
			},
		},
		CheckDestroy: func(*terraform.State) error {
			expect("destroy", false, false)
			return nil
		},
	})
}

// The owner token of a standby for a role granted what the documentation
// lists for the settings, but not ALTER SYSTEM on the token, on a server
// that holds a token no object of the state has (an object removed with
// terraform state rm, a copied postgresql.auto.conf). The create takes that
// token as its own, so its destroy (reset_on_destroy) resets the settings
// instead of taking it for another object's; the token, which the role may
// not reset, stays, with a warning, and does not fail the destroy.
func TestAccStandby_ownerTokenStaleLimitedRole(t *testing.T) {
	t.Parallel()
	testAccPreCheck(t)
	topo := routertest.Start(t, routertest.WithStandbys(1))
	standby := topo.Standbys[0]
	const role = "standby_owner_stale"
	createLimitedRole(t, topo.Primary, role, "pg_read_all_settings, pg_read_all_stats", strings.Join(standbySettings, ", "))
	if err := topo.WaitReplayed(t.Context()); err != nil {
		t.Fatal(err)
	}
	const stale = "forgotten0123456789abcdef0123456"
	conn, err := pgx.Connect(t.Context(), standby.DSNFor("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	// PostgreSQL 15 and 16 take ALTER SYSTEM of a custom setting the
	// session has (alterOnSession).
	for _, sql := range []string{`SELECT set_config('` + standbyOwnerSetting + `', '', false)`,
		`ALTER SYSTEM SET "` + standbyOwnerSetting + `" = '` + stale + `'`, `SELECT pg_reload_conf()`} {
		if _, err := conn.Exec(t.Context(), sql); err != nil {
			t.Fatal(err)
		}
	}
	_ = conn.Close(t.Context())
	waitFor(t, 10*time.Second, "the stale token in effect", func() bool {
		return queryValue[string](t, standby, "postgres", `SELECT coalesce(current_setting('`+standbyOwnerSetting+`', true), '')`) == stale
	})
	config := providerConfigAs("", standby, role) + standbyBlock("", topo.Primary.Host, topo.Primary.Port,
		fmt.Sprintf("  application_name = %q\n  reset_on_destroy = true\n  wait_timeout     = \"30s\"", standby.Name))
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps:                    []resource.TestStep{{Config: config}},
		CheckDestroy: func(*terraform.State) error {
			waitFor(t, 10*time.Second, "the destroy (reset_on_destroy) to reset primary_conninfo, the server's stale token being the object's own", func() bool {
				return queryValue[string](t, standby, "postgres", `SELECT current_setting('primary_conninfo')`) == ""
			})
			if token := queryValue[string](t, standby, "postgres", `SELECT coalesce(current_setting('`+standbyOwnerSetting+`', true), '')`); token != stale {
				return fmt.Errorf("%s = %q after the destroy; want the stale token, which the role may not reset, left as it was", standbyOwnerSetting, token)
			}
			return nil
		},
	})
}
