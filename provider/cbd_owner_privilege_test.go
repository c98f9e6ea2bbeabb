package provider

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

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
	execSQL(t, topo.Primary, "postgres", "CREATE ROLE "+role+" LOGIN IN ROLE pg_read_all_stats")
	execSQL(t, topo.Primary, "postgres", "GRANT ALTER SYSTEM ON PARAMETER synchronous_standby_names, synchronous_commit TO "+role+
		"; GRANT EXECUTE ON FUNCTION pg_reload_conf() TO "+role)
	config := strings.Replace(syncConfig(topo, fmt.Sprintf("\n  standby_names = [%q]\n", topo.Standbys[0].Name)),
		`username = "postgres"`, fmt.Sprintf("username = %q", role), 1)
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
