package examples_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// Read reports failover as the publisher's slot has it (e8aa6f8), Update as
// pg_subscription has it (fromCatalog). A subscription made with failover =
// true whose slot's failover was turned off on the publisher reads back
// false; the configuration then says failover = false too (the user
// accepting the slot as it is) and changes something else in place
// (synchronous_commit): the plan keeps failover false, nothing sets it, and
// Update returns subfailover = true from the catalog. Terraform refuses that
// as a provider bug, "Provider produced inconsistent result after apply",
// after the ALTER ran.
func TestSubfixFailoverReadFromSlotUpdateFromCatalog(t *testing.T) {
	cli := providerCLI(t)
	pub, sub := twoPrimaries(t, "subfix_fo")
	skipWithoutFailover(t, pub, sub)
	mainTF := func(failover bool, syncCommit string) string {
		return pubSubHCL(pub, "subfix_fo", "", fmt.Sprintf("failover = %t", failover), fmt.Sprintf("synchronous_commit = %q", syncCommit))
	}
	dir := applyPubSub(t, cli, pub, sub, mainTF(true, "off"))

	// The slot's failover turned off on the publisher, as in
	// TestRed5SubscriptionSlotFailoverDriftPlanSilent.
	turnOffSlotFailover(t, pub, sub, "subfix_fo_sub")

	writeFile(t, filepath.Join(dir, "main.tf"), mainTF(false, "on"))
	if out := cli.run(t, dir, 2, tfArgs("plan", "-detailed-exitcode")...); strings.Contains(out, "~ failover") {
		t.Fatalf("the plan changes failover, read false from the slot and declared false:\n%s", lastLines(out, 30))
	}
	code, out := cli.exec(t, dir, tfArgs("apply")...)
	if code != 0 {
		var syncCommit string
		var failover bool
		if err := sub.QueryRow(t.Context(), `SELECT subsynccommit, subfailover FROM pg_subscription WHERE subname = 'subfix_fo_sub'`).Scan(&syncCommit, &failover); err != nil {
			t.Fatal(err)
		}
		t.Fatalf("apply (exit %d) of synchronous_commit off -> on, failover = false as read, fails (the subscriber has synchronous_commit = %s, "+
			"subfailover = %t):\n%s", code, syncCommit, failover, lastLines(out, 12))
	}
	cli.run(t, dir, 0, tfArgs("plan", "-detailed-exitcode")...)
}
