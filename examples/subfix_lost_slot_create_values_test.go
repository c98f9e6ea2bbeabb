package examples_test

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The replacement of a subscription whose slot was lost is decided on the
// create-only arguments (copy_data, create_slot), which the plan of the
// update takes from the state when the configuration leaves them out
// (createonly), while the new subscription's create takes the
// configuration's, or the default. A subscription made with
// copy_data = false, the argument then removed from the configuration
// (which plans nothing), was replaced "without copying" while the create
// copies (copy_data defaults to true) into the rows the subscriber has.
func TestSubfixLostSlotReplacementUsesCreateValues(t *testing.T) {
	cli := providerCLI(t)
	pub, sub := twoPrimaries(t, "subfix_cv")
	mainTF := func(args ...string) string {
		return pubSubHCL(pub, "subfix_cv", "", args...)
	}
	dir := applyPubSub(t, cli, pub, sub, mainTF("copy_data = false"))
	execSQL(t, pub, "postgres", `INSERT INTO subfix_cv VALUES (1)`)
	waitRows(t, sub, "subfix_cv", 1, 60*time.Second, "the row to be replicated")
	writeFile(t, filepath.Join(dir, "main.tf"), mainTF())
	cli.run(t, dir, 0, tfArgs("plan", "-detailed-exitcode")...)
	loseSubscriptionSlot(t, pub, sub, "subfix_cv_sub")

	planRefusesCopyIntoRows(t, cli, dir, "subfix_cv",
		"the replacement of a subscription whose slot is lost, copy_data left out (the new one copies: the default) and a table with rows on the subscriber")
}

// With drop_slot_on_destroy = false the replacement drops the subscription
// and leaves its lost slot on the publisher, and the create (create_slot =
// true) then fails on it, "replication slot ... already exists": the
// subscription is gone, the apply failed half-way. The plan does not
// replace it; it warns, saying how to (drop the slot there, then replace),
// and that way out works.
func TestSubfixLostSlotKeptSlotNotReplaced(t *testing.T) {
	cli := providerCLI(t)
	pub, sub := twoPrimaries(t, "subfix_keep")
	dir := applyPubSub(t, cli, pub, sub, pubSubHCL(pub, "subfix_keep", "", "copy_data = false", "drop_slot_on_destroy = false"))
	loseSubscriptionSlot(t, pub, sub, "subfix_keep_sub")

	code, out := cli.exec(t, dir, tfArgs("plan", "-detailed-exitcode")...)
	flat := strings.Join(strings.Fields(out), " ")
	if code != 0 || !strings.Contains(flat, "Subscription Slot Invalidated") || !strings.Contains(flat, "pg_drop_replication_slot('subfix_keep_sub')") {
		t.Fatalf("plan (exit %d) of a subscription whose slot is lost, with drop_slot_on_destroy = false, want no change and a warning "+
			"naming the way out:\n%s", code, lastLines(out, 30))
	}
	execSQL(t, pub, "postgres", `SELECT pg_drop_replication_slot('subfix_keep_sub')`)
	cli.run(t, dir, 0, tfArgs("apply", "-replace=pgreplication_subscription.sub")...)
	execSQL(t, pub, "postgres", `INSERT INTO subfix_keep VALUES (1)`)
	waitRows(t, sub, "subfix_keep", 1, 60*time.Second, "the row to be replicated by the new subscription")
}
