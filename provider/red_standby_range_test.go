package provider

import (
	"fmt"
	"regexp"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
)

// A standby time setting below PostgreSQL's minimum (recovery_min_apply_delay
// and wal_receiver_timeout take no negative value; max_standby_streaming_delay
// takes -1, "wait forever", and nothing lower) planned, and the apply failed
// at ALTER SYSTEM after it had written primary_conninfo and two other
// settings. The plan now refuses it on the attribute, before any server is
// asked (the provider points at a listener that counts connections). The
// old code: the plan succeeded (the steps expecting an error got none).
func TestAccStandby_timeBelowMinimumRefusedAtPlan(t *testing.T) {
	t.Parallel()
	testAccPreCheck(t)
	listener := startFakeServer(t, true)
	for _, c := range []struct{ attr, value, minimum string }{
		{"recovery_min_apply_delay", "-1", "0"},
		{"wal_receiver_timeout", "-5s", "0"},
		{"max_standby_streaming_delay", "-2", "-1"},
	} {
		config := providerConfig("", listener.node()) + fmt.Sprintf(`
resource "pgreplication_standby" "this" {
  primary_host = "127.0.0.1"
  primary_user = "postgres"
  %s = %q
}
`, c.attr, c.value)
		resource.Test(t, resource.TestCase{
			ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
			Steps: []resource.TestStep{{
				Config:      config,
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)Invalid PostgreSQL Time.*` + c.attr + `.*` + wrappedText(fmt.Sprintf("%q is below PostgreSQL's minimum for this setting, %s", c.value, c.minimum))),
			}},
		})
	}
	if n := listener.Connections(); n != 0 {
		t.Errorf("the refused plans connected to the server %d times; want none", n)
	}
}
