package examples_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// TestSubtestsCanaryLostSlotDiagnostics makes the diagnostics of a
// subscription whose slot the publisher invalidated fire against real
// servers with the real CLI, with a canary in the provider's password (both
// servers) and in the subscription's publisher password (password_wo where
// the CLI takes it, else in conninfo), the passwords checked by the servers
// (scram-sha-256), and TF_LOG=TRACE: "Subscription Slot Lost After the
// Plan" (a saved update applied after the slot was lost), the replacement
// not planned (drop_slot_on_destroy = false, create_slot = false, tables
// not looked at or with rows), and "Subscription Not Replaced" (a saved
// replacement applied after rows came into the tables, or while a lock
// keeps the provider from looking). No canary may show in the CLI's
// output, the TRACE log, the state (its private data decoded), the router
// file or any file of the run (TestCanarySecretsInNewDiagnostics's
// checkNoLeak; the saved plan is a zip, which Terraform documents to hold
// the variables' values, and is looked at only as its bytes are). The
// publisher and the subscriber are two servers, so that the subscriber can
// be stopped while the publisher loses the slot (loseSubscriptionSlot).
func TestSubtestsCanaryLostSlotDiagnostics(t *testing.T) {
	cli := providerCLI(t)
	pubTopo := routertest.Start(t, routertest.WithStandbys(0))
	pub, sub := pubTopo.Primary, routertest.Start(t, routertest.WithStandbys(0)).Primary
	e := canaryEnv{cli: cli, topo: pubTopo, writeOnly: cli.acceptsWriteOnly(t), dir: t.TempDir(),
		provider: newCanary("canary_admin"), sub: newCanary("canary_sub"), stby: newCanary("canary_stby"), hand: newCanary("canary_hand"),
		typo: newCanary("pasword")}
	e.sub.inState = !e.writeOnly
	execSQL(t, pub, "postgres", `SET password_encryption = 'scram-sha-256';
CREATE ROLE canary_admin LOGIN SUPERUSER PASSWORD `+sqlLiteral(e.provider.value)+`;
CREATE ROLE canary_sub LOGIN REPLICATION PASSWORD `+sqlLiteral(e.sub.value)+`;
CREATE TABLE canary_t (id int PRIMARY KEY);
GRANT SELECT ON canary_t TO canary_sub`)
	execSQL(t, sub, "postgres", `SET password_encryption = 'scram-sha-256';
CREATE ROLE canary_admin LOGIN SUPERUSER PASSWORD `+sqlLiteral(e.provider.value)+`;
CREATE TABLE canary_t (id int PRIMARY KEY)`)
	requirePasswords(t, pub, "canary_admin", "canary_sub")
	requirePasswords(t, sub, "canary_admin")
	e.setVariables(t)
	log := traceLog(t)
	// config writes the configuration, the subscription with
	// synchronous_commit and extra, more of its arguments; held: the
	// subscriber's provider with a statement_timeout that a lock held there
	// outlasts (holdTable), for the steps that need it only: the others,
	// CREATE SUBSCRIPTION among them, keep the default.
	config := func(syncCommit, extra string, held bool) {
		e.config(t, map[string]server{"pub": {pub, "postgres"}, "sub": {sub, "postgres"}}, fmt.Sprintf(`
resource "pgreplication_publication" "pub" {
  provider = pgreplication.pub
  name     = "subtests_canary_pub"
  tables   = { "public.canary_t" = {} }
}

resource "pgreplication_subscription" "sub" {
  provider             = pgreplication.sub
  name                 = "subtests_canary_sub"
  %s
  publications         = [pgreplication_publication.pub.name]
  synchronous_commit   = %q
  %s
}

resource "pgreplication_router_config" "app" {
  path = "${path.module}/router.json"
  primary {
    name         = "primary"
    host         = %q
    port         = %d
    database     = "postgres"
    user         = "canary_admin"
    password_env = "CANARY_APP_PASSWORD"
  }
}
`, e.subscriptionConninfo(""), syncCommit, extra, pub.Host, pub.Port))
		if !held {
			return
		}
		main := filepath.Join(e.dir, "main.tf")
		b, err := os.ReadFile(main)
		if err != nil {
			t.Fatal(err)
		}
		const alias = "alias    = \"sub\"\n"
		if !strings.Contains(string(b), alias) {
			t.Fatalf("main.tf has no %q to set the subscriber provider's statement_timeout after:\n%s", alias, b)
		}
		writeFile(t, main, strings.Replace(string(b), alias, alias+"  statement_timeout = \"5s\"\n", 1))
	}
	rows := func(sql string) { execSQL(t, sub, "postgres", sql) }

	config("off", "", false)
	e.step(t, 0, nil, "apply", "-auto-approve")

	// An update planned and saved while the slot streams, applied after the
	// publisher lost it.
	config("on", "", false)
	e.step(t, 0, []string{"1 to change"}, "plan", "-out=tfplan")
	loseSubscriptionSlot(t, pub, sub, "subtests_canary_sub")
	applySaved(t, &e, []string{"Subscription Slot Lost After the Plan", `"subtests_canary_sub"`, "plan again"})

	// The replacement the next plan would make, not made: the old slot
	// would be left in the new one's way (drop_slot_on_destroy = false),
	// or reused (create_slot = false) ...
	config("on", "drop_slot_on_destroy = false", false)
	e.step(t, 2, []string{"Subscription Slot Invalidated", "drop_slot_on_destroy = false would leave this slot", "The plan does not replace it"},
		"plan", "-detailed-exitcode")
	config("on", "create_slot = false", false)
	e.step(t, 2, []string{"Subscription Slot Invalidated", "pg_drop_replication_slot('subtests_canary_sub')) and create it again"},
		"plan", "-detailed-exitcode")
	// ... or its copy could not be checked, or would meet rows on the
	// subscriber.
	config("on", "", true)
	release := holdTable(t, sub, "canary_t")
	e.step(t, 2, []string{"Subscription Slot Invalidated", "could not check whether they are empty on the subscriber", "statement timeout",
		"The plan does not replace it"}, "plan", "-detailed-exitcode")
	release()
	config("on", "", false)
	rows(`INSERT INTO canary_t VALUES (1)`)
	e.step(t, 1, []string{"Subscription Slot Invalidated", `the tables "canary_t" already have rows on the subscriber`}, "plan")

	// The replacement planned and saved with the tables empty, applied
	// after a row came into them.
	rows(`TRUNCATE canary_t`)
	e.step(t, 0, []string{"Subscription Slot Invalidated", "which are empty on the subscriber", "1 to add, 0 to change, 1 to destroy"},
		"plan", "-out=tfplan")
	rows(`INSERT INTO canary_t VALUES (1)`)
	applySaved(t, &e, []string{"Subscription Not Replaced", `"canary_t" have rows on the subscriber now`})
	var n int
	if err := sub.QueryRow(t.Context(), `SELECT count(*)::int FROM pg_subscription WHERE subname = 'subtests_canary_sub'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("the refused replacement left %d subscriptions subtests_canary_sub, want 1: it must change nothing", n)
	}

	// The same saved replacement, applied while a session holds the table
	// on the subscriber: the look again fails (statement_timeout).
	rows(`TRUNCATE canary_t`)
	config("on", "", true)
	e.step(t, 0, []string{"which are empty on the subscriber", "1 to add, 0 to change, 1 to destroy"}, "plan", "-out=tfplan")
	release = holdTable(t, sub, "canary_t")
	applySaved(t, &e, []string{"Subscription Not Replaced", "could not look again", "statement timeout"})
	release()

	// The way the refusals say: the tables empty, plan again.
	config("on", "", false)
	e.step(t, 0, nil, "apply", "-auto-approve")
	execSQL(t, pub, "postgres", `INSERT INTO canary_t VALUES (2)`)
	waitFor(t, sub, 60*time.Second, func() bool {
		var n int
		if err := sub.QueryRow(t.Context(), `SELECT count(*)::int FROM canary_t WHERE id = 2`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == 1
	}, "the replacement to replicate a row")
	e.step(t, 0, nil, "destroy", "-auto-approve")
	e.checkNoLeak(t, log)
}

// applySaved applies the saved plan tfplan of e's directory, which must
// fail saying every phrase of expect, and keeps the output for the leak
// check. (canaryEnv.step puts its flags after its arguments, where apply
// takes no flag after the plan file.)
func applySaved(t *testing.T, e *canaryEnv, expect []string) {
	t.Helper()
	code, out := e.cli.exec(t, e.dir, "apply", "-input=false", "-no-color", "tfplan")
	e.outputs = append(e.outputs, out)
	flat := strings.Join(strings.Fields(strings.ReplaceAll(out, "│", " ")), " ")
	for _, phrase := range expect {
		if code != 1 || !strings.Contains(flat, phrase) {
			t.Fatalf("apply of the saved plan exited %d, want 1 saying %q:\n%s", code, phrase, lastLines(out, 40))
		}
	}
	t.Logf("apply of the saved plan exited %d:\n%s", code, lastLines(out, 30))
}

// holdTable holds table on n (ACCESS EXCLUSIVE) until release is called,
// or the test ends.
func holdTable(t *testing.T, n *routertest.Node, table string) (release func()) {
	t.Helper()
	conn, err := n.Connect(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	if _, err := conn.Exec(t.Context(), `BEGIN; LOCK TABLE `+table+` IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	return func() {
		if _, err := conn.Exec(t.Context(), `ROLLBACK`); err != nil {
			t.Fatal(err)
		}
	}
}
