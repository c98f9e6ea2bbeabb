package examples_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A subscription whose slot the publisher invalidated is replaced at plan
// (TestRed5EnabledSubscriptionLostSlotPlanSilent), and a replacement copies
// the tables again (copy_data = true): into tables that already have rows it
// would fail on their keys at every retry, or duplicate them. The plan
// refuses that, naming the tables and the two ways out, and with
// copy_data = false replaces the subscription without copying; no message
// carries the write-only password.
func TestSubdriftLostSlotReplacementCopyData(t *testing.T) {
	cli := providerCLI(t)
	pub, sub := twoPrimaries(t, "subdrift_lost")
	const secret = "subdrift-canary-pw-4711"
	// The password in conninfo where the CLI takes no write-only
	// arguments (OpenTofu before 1.11): it must not show either.
	password := []string{fmt.Sprintf("password_wo = %q", secret), "password_wo_version = 1"}
	conninfoPassword := ""
	if !cli.acceptsWriteOnly(t) {
		password, conninfoPassword = nil, "password="+secret
	}
	mainTF := func(copyData bool) string {
		return pubSubHCL(pub, "subdrift_lost", conninfoPassword, append(password, fmt.Sprintf("copy_data = %t", copyData))...)
	}
	execSQL(t, pub, "postgres", `INSERT INTO subdrift_lost VALUES (1)`)
	dir := applyPubSub(t, cli, pub, sub, mainTF(true))
	waitRows(t, sub, "subdrift_lost", 1, 60*time.Second, "1 row on the subscriber")
	loseSubscriptionSlot(t, pub, sub, "subdrift_lost_sub")
	noSecret := func(out string) {
		t.Helper()
		if strings.Contains(out, secret) {
			t.Fatalf("the output carries the write-only password:\n%s", out)
		}
	}

	code, out := cli.exec(t, dir, tfArgs("plan", "-detailed-exitcode")...)
	noSecret(out)
	// PostgreSQL 17 names why a slot was invalidated; 16 only that it is lost.
	reason := "invalidation_reason = wal_removed"
	if currentSetting(t, pub, "server_version_num") < "170000" {
		reason = "wal_status = lost"
	}
	for _, want := range []string{"Subscription Slot Invalidated", "subdrift_lost_sub", reason, "already have rows", "copy_data = false"} {
		if code != 1 || !strings.Contains(strings.Join(strings.Fields(out), " "), want) {
			t.Fatalf("plan (exit %d) of a replacement that would copy into a table with rows, want a refusal with %q:\n%s", code, want, lastLines(out, 40))
		}
	}

	t.Logf("the refusal:\n%s", lastLines(out, 25))
	writeFile(t, filepath.Join(dir, "main.tf"), mainTF(false))
	code, out = cli.exec(t, dir, tfArgs("plan", "-detailed-exitcode")...)
	noSecret(out)
	for _, want := range []string{"must be replaced", "Subscription Slot Invalidated", "does not copy the tables again"} {
		if code != 2 || !strings.Contains(strings.Join(strings.Fields(out), " "), want) {
			t.Fatalf("plan (exit %d) with copy_data = false, want the replacement with %q:\n%s", code, want, lastLines(out, 40))
		}
	}
	t.Logf("the replacement:\n%s", lastLines(out, 25))
	noSecret(cli.run(t, dir, 0, tfArgs("apply")...))
	execSQL(t, pub, "postgres", `INSERT INTO subdrift_lost VALUES (2)`)
	waitRows(t, sub, "subdrift_lost", 2, 60*time.Second, "2 rows on the subscriber")
	noSecret(cli.run(t, dir, 0, tfArgs("plan", "-detailed-exitcode")...))
}
