package examples_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// A subscription disabled for a while, whose slot on the publisher the
// server invalidated meanwhile (max_slot_wal_keep_size here; on PostgreSQL
// 18 idle_replication_slot_timeout does the same to any slot left idle, seen
// by hand: invalidation_reason = idle_timeout), is enabled by the plan and
// the apply without a word: the apply succeeds, the next plan is empty, and
// the apply worker fails on every start ("can no longer access replication
// slot … This replication slot has been invalidated"). The provider checks
// the slot a subscription is enabled on (missing, of another kind or
// database, in use) and now whether it is still usable (wal_status): the
// plan warns and the apply refuses, changing nothing, as for a missing slot.
func TestRed5EnableSubscriptionOnLostSlotRefused(t *testing.T) {
	cli := providerCLI(t)
	pub, sub := twoPrimaries(t, "red5_lost")
	mainTF := func(enabled bool) string {
		return fmt.Sprintf(`
resource "pgreplication_publication" "pub" {
  provider = pgreplication.pub
  name     = "red5_lost_pub"
  tables   = { "public.red5_lost" = {} }
}

resource "pgreplication_subscription" "sub" {
  provider     = pgreplication.sub
  name         = "red5_lost_sub"
  conninfo     = "host=%s port=%d user=postgres dbname=postgres sslmode=disable"
  publications = [pgreplication_publication.pub.name]
  enabled      = %t
}
`, pub.Host, pub.Port, enabled)
	}
	dir := configDir(t, map[string]server{"pub": {pub, "postgres"}, "sub": {sub, "postgres"}}, mainTF(true))
	cli.run(t, dir, 0, tfArgs("apply")...)
	writeFile(t, filepath.Join(dir, "main.tf"), mainTF(false))
	cli.run(t, dir, 0, tfArgs("apply")...)
	loseSlot(t, pub, "red5_lost_sub")

	writeFile(t, filepath.Join(dir, "main.tf"), mainTF(true))
	code, out := cli.exec(t, dir, tfArgs("plan", "-detailed-exitcode")...)
	if !strings.Contains(out, "red5_lost_sub") || !strings.Contains(out, "invalidated") {
		t.Errorf("plan (exit %d) enabling a subscription whose slot is invalidated says nothing of it:\n%s", code, lastLines(out, 20))
	}
	code, out = cli.exec(t, dir, tfArgs("apply")...)
	var enabled bool
	if err := sub.QueryRow(t.Context(), `SELECT subenabled FROM pg_subscription WHERE subname = 'red5_lost_sub'`).Scan(&enabled); err != nil {
		t.Fatal(err)
	}
	if code == 0 || enabled {
		t.Errorf("apply exited %d and left the subscription enabled = %t on an invalidated slot, from which it can never stream:\n%s",
			code, enabled, lastLines(out, 20))
	}
}

// loseSlot makes n invalidate its inactive slot: max_slot_wal_keep_size as
// small as it goes, WAL written past it, a checkpoint.
func loseSlot(t *testing.T, n *routertest.Node, slot string) {
	t.Helper()
	execSQL(t, n, "postgres", `ALTER SYSTEM SET max_slot_wal_keep_size = '1MB'`)
	execSQL(t, n, "postgres", `ALTER SYSTEM SET wal_keep_size = 0`)
	execSQL(t, n, "postgres", `SELECT pg_reload_conf()`)
	execSQL(t, n, "postgres", `CREATE TABLE red5_filler (v text)`)
	waitFor(t, n, 60*time.Second, func() bool {
		execSQL(t, n, "postgres", `INSERT INTO red5_filler SELECT repeat('x', 1000) FROM generate_series(1, 2000)`)
		execSQL(t, n, "postgres", `SELECT pg_switch_wal()`)
		execSQL(t, n, "postgres", `CHECKPOINT`)
		var status string
		if err := n.QueryRow(t.Context(), `SELECT coalesce(wal_status, '') FROM pg_replication_slots WHERE slot_name = $1`, slot).Scan(&status); err != nil {
			t.Fatal(err)
		}
		return status == "lost"
	}, "slot "+slot+" to be invalidated (wal_status = lost)")
}

// The same slot lost while the subscription is enabled (the subscriber
// down longer than max_slot_wal_keep_size allows, or on PostgreSQL 18 past
// idle_replication_slot_timeout): the subscription never streams again, and
// terraform plan, the drift audit, is empty. The provider reaches the
// publisher at plan already (the wal_level check); it should warn that the
// subscription's slot is lost, with the fix.
func TestRed5EnabledSubscriptionLostSlotPlanSilent(t *testing.T) {
	cli := providerCLI(t)
	pub, sub := twoPrimaries(t, "red5_lost2")
	dir := configDir(t, map[string]server{"pub": {pub, "postgres"}, "sub": {sub, "postgres"}}, fmt.Sprintf(`
resource "pgreplication_publication" "pub" {
  provider = pgreplication.pub
  name     = "red5_lost2_pub"
  tables   = { "public.red5_lost2" = {} }
}

resource "pgreplication_subscription" "sub" {
  provider     = pgreplication.sub
  name         = "red5_lost2_sub"
  conninfo     = "host=%s port=%d user=postgres dbname=postgres sslmode=disable"
  publications = [pgreplication_publication.pub.name]
}
`, pub.Host, pub.Port))
	cli.run(t, dir, 0, tfArgs("apply")...)
	if err := sub.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, pub, 30*time.Second, func() bool {
		var active bool
		if err := pub.QueryRow(t.Context(), `SELECT active FROM pg_replication_slots WHERE slot_name = 'red5_lost2_sub'`).Scan(&active); err != nil {
			t.Fatal(err)
		}
		return !active
	}, "the slot to be released")
	loseSlot(t, pub, "red5_lost2_sub")
	if err := sub.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	code, out := cli.exec(t, dir, tfArgs("plan", "-detailed-exitcode")...)
	if code != 2 || !strings.Contains(out, "invalidated") || !strings.Contains(out, "must be replaced") {
		t.Fatalf("plan (exit %d) of a subscription whose slot the publisher invalidated does not plan its replacement:\n%s", code, lastLines(out, 40))
	}
	// The repair: the replacement streams again, and the next plan is empty.
	cli.run(t, dir, 0, tfArgs("apply")...)
	execSQL(t, pub, "postgres", `INSERT INTO red5_lost2 VALUES (1)`)
	waitFor(t, sub, 60*time.Second, func() bool {
		var n int
		if err := sub.QueryRow(t.Context(), `SELECT count(*) FROM red5_lost2`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == 1
	}, "the replaced subscription to stream the new row")
	cli.run(t, dir, 0, tfArgs("plan", "-detailed-exitcode")...)
}

// The same silence for failover: a subscription declared and read back with
// failover = true whose slot on the publisher is no longer a failover slot
// (ALTER_REPLICATION_SLOT … (FAILOVER false) by hand, or a slot recreated
// by hand) plans no change, and the publisher's standbys no longer keep the
// slot: after a failover the subscription cannot continue. pg_subscription
// still says subfailover = true; only the publisher knows.
func TestRed5SubscriptionSlotFailoverDriftPlanSilent(t *testing.T) {
	cli := providerCLI(t)
	pub, sub := twoPrimaries(t, "red5_fod")
	if v := currentSetting(t, sub, "server_version_num"); v < "170000" {
		t.Skipf("the subscriber runs %s; failover needs 17", v)
	}
	dir := configDir(t, map[string]server{"pub": {pub, "postgres"}, "sub": {sub, "postgres"}}, fmt.Sprintf(`
resource "pgreplication_publication" "pub" {
  provider = pgreplication.pub
  name     = "red5_fod_pub"
  tables   = { "public.red5_fod" = {} }
}

resource "pgreplication_subscription" "sub" {
  provider     = pgreplication.sub
  name         = "red5_fod_sub"
  conninfo     = "host=%s port=%d user=postgres dbname=postgres sslmode=disable"
  publications = [pgreplication_publication.pub.name]
  failover     = true
}
`, pub.Host, pub.Port))
	cli.run(t, dir, 0, tfArgs("apply")...)
	execSQL(t, sub, "postgres", `ALTER SUBSCRIPTION red5_fod_sub DISABLE`)
	waitFor(t, pub, 30*time.Second, func() bool {
		var active bool
		if err := pub.QueryRow(t.Context(), `SELECT active FROM pg_replication_slots WHERE slot_name = 'red5_fod_sub'`).Scan(&active); err != nil {
			t.Fatal(err)
		}
		return !active
	}, "the slot to be released")
	cfg, err := pgconn.ParseConfig(pub.DSN())
	if err != nil {
		t.Fatal(err)
	}
	cfg.RuntimeParams["replication"] = "database"
	repl, err := pgconn.ConnectConfig(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := repl.Exec(t.Context(), `ALTER_REPLICATION_SLOT red5_fod_sub (FAILOVER false)`).ReadAll(); err != nil {
		t.Fatal(err)
	}
	_ = repl.Close(t.Context())
	execSQL(t, sub, "postgres", `ALTER SUBSCRIPTION red5_fod_sub ENABLE`)

	code, out := cli.exec(t, dir, tfArgs("plan", "-detailed-exitcode")...)
	if code != 2 || !strings.Contains(out, "failover") {
		t.Fatalf("plan (exit %d) of a failover = true subscription whose slot is no longer a failover slot says nothing of it:\n%s",
			code, lastLines(out, 8))
	}
	// The repair: DISABLE, SET (failover = true), which alters the slot on
	// the publisher, ENABLE; then the plan is empty.
	cli.run(t, dir, 0, tfArgs("apply")...)
	var failover, enabled bool
	if err := pub.QueryRow(t.Context(), `SELECT failover FROM pg_replication_slots WHERE slot_name = 'red5_fod_sub'`).Scan(&failover); err != nil {
		t.Fatal(err)
	}
	if err := sub.QueryRow(t.Context(), `SELECT subenabled FROM pg_subscription WHERE subname = 'red5_fod_sub'`).Scan(&enabled); err != nil {
		t.Fatal(err)
	}
	if !failover || !enabled {
		t.Errorf("after the apply the slot has failover = %t and the subscription enabled = %t, want both true", failover, enabled)
	}
	cli.run(t, dir, 0, tfArgs("plan", "-detailed-exitcode")...)
}
