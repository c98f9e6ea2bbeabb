package examples_test

import (
	"strings"
	"testing"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// A replication slot replaced create_before_destroy (which Terraform gives
// it when a create_before_destroy resource depends on it: here a
// terraform_data standing for the application) can never be replaced: its
// new object is created first under the same name. The apply fails with
// "Replication Slot Already Exists ... Import it (terraform import <address>
// red4_cbd) or choose another name": the slot is the resource's own old
// object, already in the state, so the import is refused too. Neither the
// plan nor the error names create_before_destroy, the cause, nor the fix
// (drop create_before_destroy from what depends on the slot, or give the
// new slot another name). pgreplication_router_config handles the same case.
func TestRed4SlotCreateBeforeDestroyAdvice(t *testing.T) {
	cli := providerCLI(t)
	topo := routertest.Start(t, routertest.WithStandbys(0))
	dir := configDir(t, map[string]server{"primary": {topo.Primary, "postgres"}}, `
resource "pgreplication_replication_slot" "slot" {
  provider = pgreplication.primary
  name     = "red4_cbd"
  type     = "logical"
}

resource "terraform_data" "app" {
  input = pgreplication_replication_slot.slot.name
  lifecycle {
    create_before_destroy = true
  }
}
`)
	cli.run(t, dir, 0, tfArgs("apply")...)
	out := strings.Join(strings.Fields(cli.run(t, dir, 1, tfArgs("apply", "-replace=pgreplication_replication_slot.slot")...)), " ")
	if !strings.Contains(out, "create_before_destroy") {
		t.Errorf("the failed create_before_destroy replacement of a slot does not name create_before_destroy:\n%s", out)
	}
}
