package provider

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// breakServerConf appends a line PostgreSQL cannot parse to n's
// postgresql.conf, as a hand edit gone wrong would: from then on the server
// ignores every reload ("configuration file contains errors; no changes
// were applied"), but ALTER SYSTEM still writes postgresql.auto.conf. The
// returned func mends the file and reloads, as the operator who finds the
// mistake does: whatever postgresql.auto.conf holds then takes effect.
func breakServerConf(t *testing.T, n *routertest.Node) (mend func()) {
	t.Helper()
	conf := filepath.Join(n.DataDir, "postgresql.conf")
	good, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(conf, append(append([]byte{}, good...), "\nthis line = = is not a setting\n"...), 0); err != nil {
		t.Fatal(err)
	}
	mended := false
	mend = func() {
		if mended {
			return
		}
		mended = true
		if err := os.WriteFile(conf, good, 0); err != nil {
			t.Fatal(err)
		}
		execSQL(t, n, "postgres", "SELECT pg_reload_conf()")
	}
	t.Cleanup(mend)
	return mend
}

// standbyStreamsFrom waits until standby streams from primary with the
// primary_conninfo it had (conninfo), or fails the test naming what it has.
func standbyStreamsFrom(t *testing.T, standby, primary *routertest.Node, conninfo string) {
	t.Helper()
	var status, got string
	var senderPort int
	ok := true
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := queryRow(standby, `SELECT current_setting('primary_conninfo'), coalesce((SELECT status FROM pg_stat_wal_receiver), ''), coalesce((SELECT sender_port FROM pg_stat_wal_receiver), 0)`,
			nil, &got, &status, &senderPort)
		if err == nil && got == conninfo && status == "streaming" && senderPort == primary.Port {
			return
		}
		if time.Now().After(deadline) {
			ok = false
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !ok {
		t.Fatalf("after the failed apply and a reload, the standby has primary_conninfo = %q (want %q, what it had) and its WAL receiver is %q from port %d (want streaming from %d): the failed apply's settings took effect later",
			got, conninfo, status, senderPort, primary.Port)
	}
}

// A standby apply that the server cannot take (its postgresql.conf has an
// error, so pg_reload_conf() changes nothing; a stopped postmaster alike)
// failed with "Standby Settings Not Applied", but left the new settings in
// postgresql.auto.conf: the next reload, by whoever mends the file, put
// them in effect with no apply, and here (a wrong primary port) cut the
// standby off its primary. The failed apply now writes the settings it
// had back. The old code: after the mend the standby had the new
// primary_conninfo and did not stream.
func TestAccStandby_ignoredReloadLeavesNothingWritten(t *testing.T) {
	t.Parallel()
	testAccPreCheck(t)
	topo := routertest.Start(t, routertest.WithStandbys(1))
	standby := topo.Standbys[0]
	port := freePort(t)
	var conninfoBefore string
	var mend func()
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			PreConfig: func() {
				conninfoBefore = queryValue[string](t, standby, "postgres", `SELECT current_setting('primary_conninfo')`)
				mend = breakServerConf(t, standby)
			},
			Config:      providerConfig("standby1", standby) + standbyBlock("standby1", "127.0.0.1", port, replicaWaiting("5s")),
			ExpectError: errorText("Standby Settings Not Applied", "written back"),
		}},
	})
	mend()
	standbyStreamsFrom(t, standby, topo.Primary, conninfoBefore)
}

// A role allowed to ALTER SYSTEM only some of the standby's settings got
// "Cannot Configure Standby" at the first one it may not write, but the
// ones written before stayed in postgresql.auto.conf, for the next reload
// to apply: a new primary_conninfo without the slot it goes with. The old
// code: after a superuser's pg_reload_conf() the standby had the refused
// apply's primary_conninfo.
func TestAccStandby_refusedSettingLeavesNothingWritten(t *testing.T) {
	t.Parallel()
	testAccPreCheck(t)
	topo := routertest.Start(t, routertest.WithStandbys(1))
	standby := topo.Standbys[0]
	const role = "red_partial_standby"
	// Its own topology: no cleanup; the role's grants would keep DROP ROLE from running.
	createLimitedRole(t, topo.Primary, role, "pg_read_all_settings, pg_read_all_stats", "primary_conninfo")
	waitReplayed(t, topo)
	conninfoBefore := queryValue[string](t, standby, "postgres", `SELECT current_setting('primary_conninfo')`)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config: providerConfigAs("standby1", standby, role) + fmt.Sprintf(`
resource "pgreplication_standby" "this" {
  provider          = pgreplication.standby1
  primary_host      = "127.0.0.1"
  primary_port      = %d
  primary_user      = "postgres"
  primary_sslmode   = "disable"
  application_name  = "replica-renamed"
  primary_slot_name = "red_partial_slot"
  wait_timeout      = "5s"
}
`, topo.Primary.Port),
			ExpectError: errorText("Cannot Configure Standby", `ALTER SYSTEM SET "primary_slot_name"`, "GRANT ALTER SYSTEM ON PARAMETER primary_slot_name",
				"primary_conninfo, written before, is written back"),
		}},
	})
	execSQL(t, standby, "postgres", "SELECT pg_reload_conf()")
	standbyStreamsFrom(t, standby, topo.Primary, conninfoBefore)
}

// A synchronous replication apply the primary cannot take (an error in
// postgresql.conf: reloads change nothing) failed with "Synchronous
// Replication Settings Not Applied", but its synchronous_standby_names
// stayed in postgresql.auto.conf: the operator who mends the file and
// reloads makes the standby synchronous with no apply and nothing in the
// state, and commits wait for it from then on. The old code: after the
// mend synchronous_standby_names = "replica-1".
func TestAccSynchronousReplication_ignoredReloadLeavesNothingWritten(t *testing.T) {
	t.Parallel()
	testAccPreCheck(t)
	topo := routertest.Start(t, routertest.WithStandbys(1))
	var mend func()
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: syncFactories(testSyncConfirmWait),
		Steps: []resource.TestStep{{
			PreConfig:   func() { mend = breakServerConf(t, topo.Primary) },
			Config:      syncConfig(topo, firstStandbyNames(topo)),
			ExpectError: errorText("Synchronous Replication Settings Not Applied", "written back"),
		}},
	})
	mend()
	if got := syncNamesAfterReload(t, topo.Primary); got != "" {
		t.Fatalf("after the failed apply and a reload synchronous_standby_names = %q, want it as it was (empty)", got)
	}
}

// A role allowed to ALTER SYSTEM synchronous_standby_names but not
// synchronous_commit got "Cannot Configure Synchronous Replication", with
// synchronous_standby_names already written for the next reload to apply.
// The old code: after a superuser's pg_reload_conf()
// synchronous_standby_names = "replica-1".
func TestAccSynchronousReplication_refusedSettingLeavesNothingWritten(t *testing.T) {
	t.Parallel()
	testAccPreCheck(t)
	topo := routertest.Start(t, routertest.WithStandbys(1))
	const role = "red_partial_sync"
	config := limitedSyncConfig(t, topo, role, "pg_read_all_settings, pg_read_all_stats", "synchronous_standby_names")
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: syncFactories(testSyncConfirmWait),
		Steps: []resource.TestStep{{
			Config: config,
			ExpectError: errorText("Cannot Configure Synchronous Replication", `ALTER SYSTEM SET "synchronous_commit"`,
				"synchronous_standby_names, written before, is written back"),
		}},
	})
	execSQL(t, topo.Primary, "postgres", "SELECT pg_reload_conf()")
	if got := syncNamesAfterReload(t, topo.Primary); got != "" {
		t.Fatalf("after the refused apply and a reload synchronous_standby_names = %q, want it as it was (empty)", got)
	}
}

// waitReplayed waits until the standbys have replayed the primary's WAL.
func waitReplayed(t *testing.T, topo *routertest.Topology) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := topo.WaitReplayed(ctx); err != nil {
		t.Fatalf("the standbys did not replay the primary's WAL: %v", err)
	}
}

// A role without pg_read_all_settings reads pg_settings.sourcefile as NULL.
// The write-back of a failed apply took a setting that a configuration file
// sets, with no file named, for postgresql.auto.conf's, and wrote
// postgresql.conf's value into postgresql.auto.conf: there it outlived every
// later edit of postgresql.conf. Such an apply is now refused before it
// writes anything, with the grant; with the grant, the file is named, and
// the write-back resets the setting, so postgresql.conf's value applies as
// it did. The old code: after the first step postgresql.auto.conf held
// synchronous_standby_names = 'ANY 1 ("replica-1")'.
func TestAccSynchronousReplication_writeBackKeepsPostgresqlConfValue(t *testing.T) {
	t.Parallel()
	testAccPreCheck(t)
	topo := routertest.Start(t, routertest.WithStandbys(1))
	const role = "red_writeback_conf"
	fromConf := fmt.Sprintf(`ANY 1 (%q)`, topo.Standbys[0].Name)
	// postgresql.conf sets it: a hand-written configuration.
	conf := filepath.Join(topo.Primary.DataDir, "postgresql.conf")
	f, err := os.OpenFile(conf, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fmt.Fprintf(f, "\nsynchronous_standby_names = '%s'\n", strings.ReplaceAll(fromConf, "'", "''")); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	execSQL(t, topo.Primary, "postgres", "SELECT pg_reload_conf()")
	waitFor(t, 10*time.Second, "postgresql.conf's synchronous_standby_names to apply", func() bool {
		return queryValue[string](t, topo.Primary, "postgres", `SHOW synchronous_standby_names`) == fromConf
	})
	// Not synchronous_commit: the apply fails after writing
	// synchronous_standby_names, and writes it back.
	config := limitedSyncConfig(t, topo, role, "pg_read_all_stats", "synchronous_standby_names")
	autoConfHasNone := func() {
		t.Helper()
		if n := queryValue[int64](t, topo.Primary, "postgres", `SELECT count(*) FROM pg_file_settings
WHERE name = 'synchronous_standby_names' AND sourcefile LIKE '%/postgresql.auto.conf'`); n != 0 {
			t.Errorf("postgresql.auto.conf holds synchronous_standby_names (%d lines): the failed apply wrote one back", n)
		}
		execSQL(t, topo.Primary, "postgres", "SELECT pg_reload_conf()")
		if got := syncNamesAfterReload(t, topo.Primary); got != fromConf {
			t.Errorf("after the failed apply and a reload synchronous_standby_names = %q, want postgresql.conf's %q", got, fromConf)
		}
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: syncFactories(testSyncConfirmWait),
		Steps: []resource.TestStep{
			{
				Config: config,
				ExpectError: errorText("Cannot Configure Synchronous Replication", "a configuration file sets synchronous_standby_names, but not which one",
					"nothing was changed", fmt.Sprintf(`GRANT pg_read_all_settings TO %q`, role)),
			},
			{
				PreConfig: func() {
					autoConfHasNone()
					execSQL(t, topo.Primary, "postgres", "GRANT pg_read_all_settings TO "+role)
				},
				Config: config,
				ExpectError: errorText("Cannot Configure Synchronous Replication", `ALTER SYSTEM SET "synchronous_commit"`,
					"synchronous_standby_names, written before, is written back"),
			},
		},
	})
	autoConfHasNone()
}

// The provider's first apply writes both settings with ALTER SYSTEM: from
// then on pg_settings says a configuration file sets them, and hides which
// one (sourcefile) from a role without pg_read_all_settings. Every later
// change was refused for the grant, to a role with exactly the documented
// privileges. A value that is the one the provider wrote (the prior state's)
// is postgresql.auto.conf's: the change goes through, and a failure after
// writing writes it back there.
func TestAccSynchronousReplication_secondApplyLimitedRole(t *testing.T) {
	t.Parallel()
	testAccPreCheck(t)
	topo := routertest.Start(t, routertest.WithStandbys(1))
	const role = "sync_second_apply"
	createLimitedRole(t, topo.Primary, role, "pg_read_all_stats", "synchronous_standby_names, synchronous_commit")
	config := func(commit string) string {
		return syncConfigAs(topo, role, firstStandbyNames(topo)+fmt.Sprintf("  synchronous_commit = %q\n", commit))
	}
	const addr = "pgreplication_synchronous_replication.this"
	var names string
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: syncFactories(testSyncConfirmWait),
		Steps: []resource.TestStep{
			{Config: config("on")},
			{
				Config: config("remote_write"),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("synchronous_commit"), knownvalue.StringExact("remote_write")),
				},
			},
			{
				// A failure after writing synchronous_standby_names writes
				// it back into postgresql.auto.conf, where it was.
				PreConfig: func() {
					names = queryValue[string](t, topo.Primary, "postgres", `SHOW synchronous_standby_names`)
					execSQL(t, topo.Primary, "postgres", "REVOKE ALTER SYSTEM ON PARAMETER synchronous_commit FROM "+role)
				},
				Config: config("local"),
				ExpectError: errorText("Cannot Configure Synchronous Replication", `ALTER SYSTEM SET "synchronous_commit"`,
					"synchronous_standby_names, written before, is written back"),
			},
			{
				PreConfig: func() {
					autoConf := queryValue[string](t, topo.Primary, "postgres", `SELECT coalesce(string_agg(setting, ','), '') FROM pg_file_settings
WHERE name = 'synchronous_standby_names' AND sourcefile LIKE '%/postgresql.auto.conf'`)
					if names == "" || autoConf != names {
						t.Errorf("postgresql.auto.conf holds synchronous_standby_names = %q after the failed apply, want the value before it, %q", autoConf, names)
					}
					// For the destroy, which resets both.
					execSQL(t, topo.Primary, "postgres", "GRANT ALTER SYSTEM ON PARAMETER synchronous_commit TO "+role)
				},
				Config: config("remote_write"),
			},
		},
	})
}
