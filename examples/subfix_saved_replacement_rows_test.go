package examples_test

import (
	"strings"
	"testing"
)

// A saved plan that replaces a subscription whose slot was lost, with
// copy_data = true, made while its tables were empty on the subscriber,
// applied after rows came into them: the plan's check (replaceLostSlot) is
// not made again at apply, and the new subscription copies into those
// rows, its table sync failing on their keys at every retry. The apply
// must look again before it drops anything, and refuse.
func TestSubfixSavedReplacementTablesGotRows(t *testing.T) {
	cli := providerCLI(t)
	pub, sub := twoPrimaries(t, "subfix_rows")
	execSQL(t, pub, "postgres", `INSERT INTO subfix_rows VALUES (1)`)
	dir := applyPubSub(t, cli, pub, sub, pubSubHCL(pub, "subfix_rows", ""))
	loseSubscriptionSlot(t, pub, sub, "subfix_rows_sub")
	execSQL(t, sub, "postgres", `TRUNCATE subfix_rows`) // the way the plan's refusal says
	out := cli.run(t, dir, 0, tfArgs("plan", "-out=tfplan")...)
	if !strings.Contains(out, "must be replaced") {
		t.Fatalf("the plan of a subscription whose slot is lost, its tables empty, does not replace it:\n%s", lastLines(out, 30))
	}
	execSQL(t, sub, "postgres", `INSERT INTO subfix_rows VALUES (1)`) // the row comes back, by hand

	code, out := cli.exec(t, dir, "apply", "-input=false", "-no-color", "tfplan")
	flat := strings.Join(strings.Fields(out), " ")
	if code != 1 || !strings.Contains(flat, `"subfix_rows" have rows`) {
		t.Fatalf("apply (exit %d) of the saved replacement, a table with rows since the plan, want a refusal naming it:\n%s", code, lastLines(out, 30))
	}
	var n int
	if err := sub.QueryRow(t.Context(), `SELECT count(*) FROM pg_subscription WHERE subname = 'subfix_rows_sub'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("the refused apply dropped the subscription (pg_subscription has %d of it): it must change nothing", n)
	}
}
