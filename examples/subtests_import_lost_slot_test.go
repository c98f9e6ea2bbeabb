package examples_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// A subscription made by hand, whose slot the publisher invalidated
// (max_slot_wal_keep_size, the subscriber down), imported: the import's
// read sees the slot lost as any refresh does, so the first plan imports
// the subscription and replaces it, with the warning that says why (the
// object imported no longer replicates, and only a new slot streams
// again), and nothing else: no error, no other change. The apply of that
// saved plan makes a subscription that replicates, and the next plan is
// empty.
func TestSubtestsImportSubscriptionWithLostSlot(t *testing.T) {
	cli := providerCLI(t)
	pub, sub := twoPrimaries(t, "subtests_imp")
	conninfo := fmt.Sprintf("host=%s port=%d user=postgres dbname=postgres sslmode=disable", pub.Host, pub.Port)
	execSQL(t, pub, "postgres", `CREATE PUBLICATION subtests_imp_pub FOR TABLE subtests_imp`)
	execSQL(t, sub, "postgres", `CREATE SUBSCRIPTION subtests_imp_sub CONNECTION `+sqlLiteral(conninfo)+` PUBLICATION subtests_imp_pub`)
	waitFor(t, pub, 30*time.Second, func() bool {
		var n int
		if err := pub.QueryRow(t.Context(), `SELECT count(*)::int FROM pg_replication_slots WHERE slot_name = 'subtests_imp_sub' AND active`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == 1
	}, "the hand-made subscription to stream")
	loseSubscriptionSlot(t, pub, sub, "subtests_imp_sub")

	dir := configDir(t, map[string]server{"sub": {sub, "postgres"}}, fmt.Sprintf(`
import {
  provider = pgreplication.sub
  to       = pgreplication_subscription.sub
  id       = "postgres/subtests_imp_sub"
}

resource "pgreplication_subscription" "sub" {
  provider     = pgreplication.sub
  name         = "subtests_imp_sub"
  conninfo     = %q
  publications = ["subtests_imp_pub"]
}
`, conninfo))
	out := cli.run(t, dir, 2, tfArgs("plan", "-detailed-exitcode", "-out=tfplan")...)
	flat := strings.Join(strings.Fields(strings.ReplaceAll(out, "│", " ")), " ")
	for _, want := range []string{
		"Plan: 1 to import, 1 to add, 0 to change, 1 to destroy.",
		"Warning: Subscription Slot Invalidated",
		`replication slot "subtests_imp_sub"`,
		"the plan replaces the subscription (id)",
		"copy_data = true: the new subscription copies the tables again, which are empty on the subscriber.",
	} {
		if !strings.Contains(flat, want) {
			t.Fatalf("the first plan of the import of a subscription whose slot is lost does not say %q:\n%s", want, lastLines(out, 60))
		}
	}
	if w := providerWarnings(out); !slices.Equal(w, []string{"Subscription Slot Invalidated"}) {
		t.Errorf("the first plan warns %q, want the lost slot's only:\n%s", w, lastLines(out, 60))
	}
	changes := plannedChanges(t, cli.run(t, dir, 0, "show", "-json", "tfplan"))
	want := map[string][]string{"pgreplication_subscription.sub": {"delete", "create"}}
	if len(changes) != 1 || !slices.Equal(changes["pgreplication_subscription.sub"], want["pgreplication_subscription.sub"]) {
		t.Fatalf("the first plan's changes are %v, want %v (the imported subscription replaced, destroyed first)", changes, want)
	}

	cli.run(t, dir, 0, "apply", "-input=false", "-no-color", "tfplan")
	execSQL(t, pub, "postgres", `INSERT INTO subtests_imp VALUES (1)`)
	waitFor(t, sub, 60*time.Second, func() bool {
		var n int
		if err := sub.QueryRow(t.Context(), `SELECT count(*) FROM subtests_imp`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == 1
	}, "the row to be replicated by the new subscription")
	cli.run(t, dir, 0, tfArgs("plan", "-detailed-exitcode")...)
}

// providerWarnings are the summaries of the warnings in a CLI's output,
// but the CLI's own that the development overrides are in effect.
func providerWarnings(out string) []string {
	var w []string
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(strings.TrimLeft(line, "│╷╵ "))
		summary, ok := strings.CutPrefix(line, "Warning: ")
		if ok && summary != "Provider development overrides are in effect" {
			w = append(w, summary)
		}
	}
	return w
}
