package examples_test

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// terraform apply -replace of a replication slot that a standby streams
// through said nothing at plan: Terraform plans a replacement asked for
// this way a second time without the prior state and drops that plan's
// warnings, and the first plan is an ordinary one, so the plan showed a
// replacement and the apply failed (terminate_active_on_destroy = false)
// or ended the standby's session unannounced. The plan now refuses what
// apply would fail, naming the consumer; with terminate_active_on_destroy
// = true the replacement goes through and the apply names the session it
// ended, and the standby streams through the new slot. It needs the real
// CLI: terraform-plugin-testing has no -replace. The old code: the plan
// exited 0 without the consumer, the apply said nothing of it.
func TestReplaceActiveSlot(t *testing.T) {
	cli := findCLI(t)
	cli.configFile = buildProvider(t)
	topo := routertest.Start(t, routertest.WithStandbys(1))
	standby := topo.Standbys[0]
	dir := t.TempDir()
	writeProviders(t, dir, map[string]server{"primary": {topo.Primary, "postgres"}})
	config := func(terminate string) {
		writeFile(t, filepath.Join(dir, "main.tf"), `
resource "pgreplication_replication_slot" "standby" {
  provider                    = pgreplication.primary
  name                        = "replace_me"
  type                        = "physical"
  immediately_reserve         = true
  terminate_active_on_destroy = `+terminate+`
}
`)
	}
	const addr = "pgreplication_replication_slot.standby"
	config("false")
	cli.run(t, dir, 0, "apply", "-auto-approve", "-input=false", "-no-color")
	execSQL(t, standby, "postgres", `ALTER SYSTEM SET primary_slot_name = 'replace_me'`)
	execSQL(t, standby, "postgres", `SELECT pg_reload_conf()`)
	waitActive := func() {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !slotActive(t, topo.Primary) {
			if time.Now().After(deadline) {
				t.Fatal("the standby does not stream through slot replace_me")
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	waitActive()
	flat := func(s string) string { return strings.Join(strings.Fields(s), " ") }

	out := flat(cli.run(t, dir, 1, "plan", "-input=false", "-no-color", "-replace="+addr))
	for _, want := range []string{"Error: Cannot Replace Active Replication Slot", `"replace_me"`, "as terraform apply -replace asked",
		`application_name "replica-1"`, "terminate_active_on_destroy = true"} {
		if !strings.Contains(out, want) {
			t.Errorf("the plan of -replace does not say %q:\n%s", want, out)
		}
	}
	if !slotActive(t, topo.Primary) {
		t.Fatal("the refused plan let the standby's session go")
	}

	config("true")
	cli.run(t, dir, 0, "apply", "-auto-approve", "-input=false", "-no-color")
	out = flat(cli.run(t, dir, 0, "apply", "-auto-approve", "-input=false", "-no-color", "-replace="+addr))
	if !regexp.MustCompile(`Warning: Replication Slot Consumer Terminated .*"replace_me".* terminated process \d+ \(walsender, application_name "replica-1"`).MatchString(out) {
		t.Errorf("the apply of -replace does not name the standby's session it terminated:\n%s", out)
	}
	waitActive()
	cli.run(t, dir, 0, "destroy", "-auto-approve", "-input=false", "-no-color")
}

func slotActive(t *testing.T, n *routertest.Node) bool {
	t.Helper()
	conn, err := n.Connect(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	var active bool
	if err := conn.QueryRow(t.Context(), `SELECT coalesce((SELECT active FROM pg_replication_slots WHERE slot_name = 'replace_me'), false)`).Scan(&active); err != nil {
		t.Fatal(err)
	}
	return active
}
