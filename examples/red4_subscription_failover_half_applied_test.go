package examples_test

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// Turning failover on for an enabled subscription is three statements
// (DISABLE, SET (failover = true), ENABLE), since PostgreSQL changes it only
// on a disabled subscription. When the SET fails (it alters the slot on the
// publisher, which is down here between the plan and the apply; a frozen
// publisher past publisher_timeout, a slot still in use, do the same) the
// apply stops after the DISABLE: the subscription is left disabled, and
// when the publisher is back it does not replicate again until someone
// applies once more. The error says "the changes before it in this apply
// were made", not that replication is now off. Nothing should be half
// applied: the subscription should be enabled again when the SET fails.
func TestRed4SubscriptionFailoverHalfApplied(t *testing.T) {
	cli := providerCLI(t)
	pub, sub := twoPrimaries(t, "red4_fo")
	mainTF := func(failover bool) string {
		return pubSubHCL(pub, "red4_fo", "connect_timeout=3", fmt.Sprintf("failover = %t", failover), `publisher_timeout = "10s"`)
	}
	dir := applyPubSub(t, cli, pub, sub, mainTF(false))
	writeFile(t, filepath.Join(dir, "main.tf"), mainTF(true))
	cli.run(t, dir, 2, tfArgs("plan", "-detailed-exitcode", "-out=failover.tfplan")...)
	if err := pub.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	code, out := cli.exec(t, dir, "apply", "-input=false", "-no-color", "failover.tfplan") // a saved plan: no -auto-approve
	t.Logf("apply with the publisher down exited %d:\n%s", code, lastLines(out, 14))
	if err := pub.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	var enabled bool
	if err := sub.QueryRow(t.Context(), `SELECT subenabled FROM pg_subscription WHERE subname = 'red4_fo_sub'`).Scan(&enabled); err != nil {
		t.Fatal(err)
	}
	if !enabled {
		t.Errorf("the failed apply (exit %d) left subscription red4_fo_sub disabled: it does not replicate now that the publisher is back", code)
	}
	execSQL(t, pub, "postgres", `INSERT INTO red4_fo VALUES (1)`)
	waitRows(t, sub, "red4_fo", 1, 20*time.Second, "a row inserted on the publisher after it came back")
}
