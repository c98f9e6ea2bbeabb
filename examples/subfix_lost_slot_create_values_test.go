package examples_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// loseSubscriptionSlot has the publisher pub invalidate slot, the slot of
// an enabled subscription on sub: the subscriber down, the publisher past
// max_slot_wal_keep_size (loseSlot), the subscriber up again.
func loseSubscriptionSlot(t *testing.T, pub, sub *routertest.Node, slot string) {
	t.Helper()
	if err := sub.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, pub, 30*time.Second, func() bool {
		var active bool
		if err := pub.QueryRow(t.Context(), `SELECT active FROM pg_replication_slots WHERE slot_name = $1`, slot).Scan(&active); err != nil {
			t.Fatal(err)
		}
		return !active
	}, "the slot to be released")
	loseSlot(t, pub, slot)
	if err := sub.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
}

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
	mainTF := func(copyData string) string {
		return fmt.Sprintf(`
resource "pgreplication_publication" "pub" {
  provider = pgreplication.pub
  name     = "subfix_cv_pub"
  tables   = { "public.subfix_cv" = {} }
}

resource "pgreplication_subscription" "sub" {
  provider     = pgreplication.sub
  name         = "subfix_cv_sub"
  conninfo     = "host=%s port=%d user=postgres dbname=postgres sslmode=disable"
  publications = [pgreplication_publication.pub.name]
  %s
}
`, pub.Host, pub.Port, copyData)
	}
	dir := configDir(t, map[string]server{"pub": {pub, "postgres"}, "sub": {sub, "postgres"}}, mainTF("copy_data = false"))
	cli.run(t, dir, 0, tfArgs("apply")...)
	execSQL(t, pub, "postgres", `INSERT INTO subfix_cv VALUES (1)`)
	waitFor(t, sub, 60*time.Second, func() bool {
		var n int
		if err := sub.QueryRow(t.Context(), `SELECT count(*) FROM subfix_cv`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == 1
	}, "the row to be replicated")
	writeFile(t, filepath.Join(dir, "main.tf"), mainTF(""))
	cli.run(t, dir, 0, tfArgs("plan", "-detailed-exitcode")...)
	loseSubscriptionSlot(t, pub, sub, "subfix_cv_sub")

	code, out := cli.exec(t, dir, tfArgs("plan", "-detailed-exitcode")...)
	if code != 1 || !strings.Contains(strings.Join(strings.Fields(out), " "), `"subfix_cv" already have rows`) {
		t.Fatalf("plan (exit %d) of the replacement of a subscription whose slot is lost, copy_data left out (the new one copies: "+
			"the default) and a table with rows on the subscriber, want a refusal naming the table:\n%s", code, lastLines(out, 30))
	}
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
	dir := configDir(t, map[string]server{"pub": {pub, "postgres"}, "sub": {sub, "postgres"}}, fmt.Sprintf(`
resource "pgreplication_publication" "pub" {
  provider = pgreplication.pub
  name     = "subfix_keep_pub"
  tables   = { "public.subfix_keep" = {} }
}

resource "pgreplication_subscription" "sub" {
  provider             = pgreplication.sub
  name                 = "subfix_keep_sub"
  conninfo             = "host=%s port=%d user=postgres dbname=postgres sslmode=disable"
  publications         = [pgreplication_publication.pub.name]
  copy_data            = false
  drop_slot_on_destroy = false
}
`, pub.Host, pub.Port))
	cli.run(t, dir, 0, tfArgs("apply")...)
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
	waitFor(t, sub, 60*time.Second, func() bool {
		var n int
		if err := sub.QueryRow(t.Context(), `SELECT count(*) FROM subfix_keep`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == 1
	}, "the row to be replicated by the new subscription")
}
