package examples_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
		return pubSubHCL(pub, "red5_lost", "", fmt.Sprintf("enabled = %t", enabled))
	}
	dir := applyPubSub(t, cli, pub, sub, mainTF(true))
	writeFile(t, filepath.Join(dir, "main.tf"), mainTF(false))
	cli.run(t, dir, 0, tfArgs("apply")...)
	loseSlot(t, pub, "red5_lost_sub")

	writeFile(t, filepath.Join(dir, "main.tf"), mainTF(true))
	code, out := cli.exec(t, dir, tfArgs("plan", "-detailed-exitcode")...)
	if !strings.Contains(out, "red5_lost_sub") || !strings.Contains(out, "invalidated") {
		t.Errorf("plan (exit %d) enabling a subscription whose slot is invalidated says nothing of it:\n%s", code, lastLines(out, 20))
	}
	code, out = cli.exec(t, dir, tfArgs("apply")...)
	if enabled := subscriptionEnabled(t, sub, "red5_lost_sub"); code == 0 || enabled {
		t.Errorf("apply exited %d and left the subscription enabled = %t on an invalidated slot, from which it can never stream:\n%s",
			code, enabled, lastLines(out, 20))
	}
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
	dir := applyPubSub(t, cli, pub, sub, pubSubHCL(pub, "red5_lost2", ""))
	loseSubscriptionSlot(t, pub, sub, "red5_lost2_sub")
	code, out := cli.exec(t, dir, tfArgs("plan", "-detailed-exitcode")...)
	if code != 2 || !strings.Contains(out, "invalidated") || !strings.Contains(out, "must be replaced") {
		t.Fatalf("plan (exit %d) of a subscription whose slot the publisher invalidated does not plan its replacement:\n%s", code, lastLines(out, 40))
	}
	// The repair: the replacement streams again, and the next plan is empty.
	cli.run(t, dir, 0, tfArgs("apply")...)
	execSQL(t, pub, "postgres", `INSERT INTO red5_lost2 VALUES (1)`)
	waitRows(t, sub, "red5_lost2", 1, 60*time.Second, "the replaced subscription to stream the new row")
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
	skipWithoutFailover(t, pub, sub)
	dir := applyPubSub(t, cli, pub, sub, pubSubHCL(pub, "red5_fod", "", "failover = true"))
	turnOffSlotFailover(t, pub, sub, "red5_fod_sub")

	code, out := cli.exec(t, dir, tfArgs("plan", "-detailed-exitcode")...)
	if code != 2 || !strings.Contains(out, "failover") {
		t.Fatalf("plan (exit %d) of a failover = true subscription whose slot is no longer a failover slot says nothing of it:\n%s",
			code, lastLines(out, 8))
	}
	// The repair: DISABLE, SET (failover = true), which alters the slot on
	// the publisher, ENABLE; then the plan is empty.
	cli.run(t, dir, 0, tfArgs("apply")...)
	var failover bool
	if err := pub.QueryRow(t.Context(), `SELECT failover FROM pg_replication_slots WHERE slot_name = 'red5_fod_sub'`).Scan(&failover); err != nil {
		t.Fatal(err)
	}
	if enabled := subscriptionEnabled(t, sub, "red5_fod_sub"); !failover || !enabled {
		t.Errorf("after the apply the slot has failover = %t and the subscription enabled = %t, want both true", failover, enabled)
	}
	cli.run(t, dir, 0, tfArgs("plan", "-detailed-exitcode")...)
}
