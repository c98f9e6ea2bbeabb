package examples_test

import (
	"fmt"
	"strings"
	"testing"
)

// terraform destroy -parallelism=1 of a synchronous standby's topology whose
// resources name each other by literal (no reference orders them) fails
// whenever Terraform happens to start the slot's destroy before the
// pgreplication_synchronous_replication's: the slot's Delete looks again for
// syncRiskGrace (7fc4605) for the other resource to reset
// synchronous_standby_names, but it holds the one operation -parallelism=1
// allows, so that resource cannot run before the slot refuses ("Dropping
// Replication Slot Would Block Commits"). Whether the destroy passes is
// Terraform's choice of order: 5 of 5 rounds failed by hand on PostgreSQL 17
// with Terraform 1.11.4 (each after 10 s), with the synchronous resource
// destroyed right after the refusal, so that a second destroy passes.
// No grace can help here, so the refusal says so: it names the reference that
// orders the two for good and that running the command again works, and the
// test holds it to both (synchronous_standby_names reset by the same run, the
// second destroy passing).
func TestRed4DestroyParallelismOne(t *testing.T) {
	cli, topo, standby := oneStandby(t)
	dir := configDir(t, primaryAndStandby(topo), fmt.Sprintf(`
resource "pgreplication_replication_slot" "standby" {
  provider                    = pgreplication.primary
  name                        = "red4_parallel"
  type                        = "physical"
  immediately_reserve         = true
  terminate_active_on_destroy = true
}

resource "pgreplication_standby" "standby" {
  provider          = pgreplication.standby
  primary_host      = %[1]q
  primary_port      = %[2]d
  primary_user      = "postgres"
  primary_sslmode   = "disable"
  application_name  = %[3]q
  primary_slot_name = "red4_parallel"
}

resource "pgreplication_synchronous_replication" "sync" {
  provider      = pgreplication.primary
  standby_names = [%[3]q]
}
`, topo.Primary.Host, topo.Primary.Port, standby.Name))
	const rounds = 3
	refused := 0
	for i := range rounds {
		// The standby first: the synchronous resource refuses a standby
		// that does not stream yet.
		cli.run(t, dir, 0, tfArgs("apply", "-target=pgreplication_replication_slot.standby", "-target=pgreplication_standby.standby")...)
		cli.run(t, dir, 0, tfArgs("apply")...)
		code, out := cli.exec(t, dir, tfArgs("destroy", "-parallelism=1")...)
		if code == 0 {
			continue
		}
		// Refused: the slot went first. The refusal must say how to order
		// the two for good and that running again works, and both must hold.
		refused++
		t.Logf("round %d: destroy -parallelism=1 exited %d:\n%s", i+1, code, lastLines(out, 25))
		text := strings.Join(strings.Fields(strings.ReplaceAll(out, "│", " ")), " ")
		for _, advice := range []string{
			"Dropping Replication Slot Would Block Commits",
			"standby_names = [pgreplication_standby.x.application_name]",
			"primary_slot_name = pgreplication_replication_slot.x.name",
			"run the command again",
		} {
			if !strings.Contains(text, advice) {
				t.Errorf("round %d: the refusal does not say %q:\n%s", i+1, advice, lastLines(out, 25))
			}
		}
		// As the advice says, Terraform went on with the synchronous
		// resource in the same run: synchronous_standby_names is reset.
		if names := currentSetting(t, topo.Primary, "synchronous_standby_names"); names != "" {
			t.Errorf("round %d: after the refusal synchronous_standby_names is still %q: the same run did not reset it", i+1, names)
		}
		cli.run(t, dir, 0, tfArgs("destroy", "-parallelism=1")...)
	}
	t.Logf("the slot went first, and the destroy was refused with its advice, in %d of %d rounds", refused, rounds)
}
