package examples_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// A saved plan of an in-place change (synchronous_commit) to an enabled
// subscription, made while its slot on the publisher is fine, applied after
// the publisher invalidated the slot: at apply Terraform plans the change
// again, and the plan used to look at the slot itself, see it invalidated
// and turn the update into a replacement (id known -> unknown,
// RequiresReplace), which Terraform stops as a provider bug, "Provider
// produced inconsistent final plan". The plan now decides on what the
// refresh saw, so the saved plan stays an update, which Update refuses,
// changing nothing, saying to plan again; the next plan replaces the
// subscription, and its apply streams again.
func TestSubfixSavedPlanUpdateOnLostSlot(t *testing.T) {
	cli := providerCLI(t)
	pub, sub := twoPrimaries(t, "subfix_saved")
	mainTF := func(syncCommit string) string {
		return pubSubHCL(pub, "subfix_saved", "", fmt.Sprintf("synchronous_commit = %q", syncCommit))
	}
	dir := applyPubSub(t, cli, pub, sub, mainTF("off"))
	planInPlace(t, cli, dir, mainTF("on"), "synchronous_commit off -> on")

	// The slot is lost after the plan: the subscriber down, the publisher
	// past max_slot_wal_keep_size.
	loseSubscriptionSlot(t, pub, sub, "subfix_saved_sub")

	savedPlanRefusedThenReplaced(t, cli, dir, sub, pub, "subfix_saved")
}

// savedPlanRefusedThenReplaced applies dir's saved plan tfplan, an update
// of synchronous_commit off -> on of the subscription prefix_sub on sub,
// whose slot on pub was lost after the plan: the apply must refuse it as
// a lost slot, not a provider bug, and change nothing; the next plan
// replaces the subscription, and it replicates again.
func savedPlanRefusedThenReplaced(t *testing.T, cli *terraformCLI, dir string, sub, pub *routertest.Node, prefix string) {
	t.Helper()
	code, out := cli.exec(t, dir, "apply", "-input=false", "-no-color", "tfplan") // a saved plan: no -auto-approve
	flat := strings.Join(strings.Fields(out), " ")
	if code != 1 || strings.Contains(out, "inconsistent") || !strings.Contains(flat, "Subscription Slot Lost After the Plan") ||
		!strings.Contains(flat, "plan again") {
		t.Fatalf("apply of the saved plan (exit %d), want the refusal \"Subscription Slot Lost After the Plan\":\n%s", code, lastLines(out, 30))
	}
	var syncCommit string
	if err := sub.QueryRow(t.Context(), `SELECT subsynccommit FROM pg_subscription WHERE subname = $1`, prefix+"_sub").Scan(&syncCommit); err != nil {
		t.Fatal(err)
	}
	if syncCommit != "off" {
		t.Errorf("the refused apply left synchronous_commit = %s, want off (nothing changed)", syncCommit)
	}
	out = cli.run(t, dir, 2, tfArgs("plan", "-detailed-exitcode")...)
	if !strings.Contains(out, "must be replaced") {
		t.Fatalf("the plan after the refusal does not replace the subscription:\n%s", lastLines(out, 30))
	}
	cli.run(t, dir, 0, tfArgs("apply")...)
	execSQL(t, pub, "postgres", `INSERT INTO `+prefix+` VALUES (1)`)
	waitRows(t, sub, prefix, 1, 60*time.Second, "the row to be replicated by the new subscription")
	cli.run(t, dir, 0, tfArgs("plan", "-detailed-exitcode")...)
}

// The same saved plan made while the publisher does not answer (the
// refresh cannot look at the slot), the slot lost before it: at apply,
// with the publisher back, the plan looked at the slot and replaced the
// subscription, "inconsistent final plan" again.
func TestSubfixSavedPlanUpdatePublisherDownAtPlan(t *testing.T) {
	cli := providerCLI(t)
	pub, sub := twoPrimaries(t, "subfix_down")
	mainTF := func(syncCommit string) string {
		// The publication made by hand: its refresh would need the
		// publisher.
		return fmt.Sprintf(`
resource "pgreplication_subscription" "sub" {
  provider           = pgreplication.sub
  name               = "subfix_down_sub"
  conninfo           = "host=%s port=%d user=postgres dbname=postgres sslmode=disable connect_timeout=2"
  publications       = ["subfix_down_pub"]
  synchronous_commit = %q
}
`, pub.Host, pub.Port, syncCommit)
	}
	execSQL(t, pub, "postgres", `CREATE PUBLICATION subfix_down_pub FOR TABLE subfix_down`)
	dir := configDir(t, map[string]server{"sub": {sub, "postgres"}}, mainTF("off"))
	cli.run(t, dir, 0, tfArgs("apply")...)
	loseSubscriptionSlot(t, pub, sub, "subfix_down_sub")
	if err := pub.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	planInPlace(t, cli, dir, mainTF("on"), "synchronous_commit off -> on, the publisher down,")
	if err := pub.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	savedPlanRefusedThenReplaced(t, cli, dir, sub, pub, "subfix_down")
}

// planInPlace writes mainTF into dir and saves its plan as tfplan, which
// must update in place; what says what it plans.
func planInPlace(t *testing.T, cli *terraformCLI, dir, mainTF, what string) {
	t.Helper()
	writeFile(t, filepath.Join(dir, "main.tf"), mainTF)
	if out := cli.run(t, dir, 0, tfArgs("plan", "-out=tfplan")...); !strings.Contains(out, "updated in-place") {
		t.Fatalf("the plan of %s is not an in-place update:\n%s", what, lastLines(out, 30))
	}
}
