package provider

import (
	"fmt"
	"regexp"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
)

// The shared primary lists both standbys streaming under their
// application_name, and a slot this test creates with the WAL it retains.
func TestAccReplicationStatusDataSource_primary(t *testing.T) {
	topo := testAccTopology(t)
	const addr = "data.pgreplication_replication_status.primary"
	standby := func(name string) knownvalue.Check {
		return knownvalue.ObjectPartial(map[string]knownvalue.Check{
			"application_name": knownvalue.StringExact(name),
			"client_addr":      knownvalue.StringExact("127.0.0.1"),
			"state":            knownvalue.StringExact("streaming"),
			"sync_state":       knownvalue.StringExact("async"),
			"sync_priority":    knownvalue.Int64Exact(0),
			"sent_lsn":         lsnValue,
			"replay_lsn":       lsnValue,
			"replay_lag_bytes": knownvalue.Int64Func(atLeastZero),
		})
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccMultiServerFactories,
		Steps: []resource.TestStep{{
			Config: topologyProviders(topo) + `
resource "pgreplication_replication_slot" "status" {
  provider            = pgrprimary
  name                = "tfacc_status_slot"
  type                = "physical"
  immediately_reserve = true
}

data "pgreplication_replication_status" "primary" {
  provider   = pgrprimary
  depends_on = [pgreplication_replication_slot.status]
}
`,
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue(addr, tfjsonpath.New("standbys"), knownvalue.ListExact([]knownvalue.Check{
					standby("replica-1"), standby("replica-2"),
				})),
				statecheck.ExpectKnownValue(addr, tfjsonpath.New("slots"), listContains(knownvalue.ObjectExact(map[string]knownvalue.Check{
					"name":               knownvalue.StringExact("tfacc_status_slot"),
					"type":               knownvalue.StringExact("physical"),
					"database":           knownvalue.Null(),
					"active":             knownvalue.Bool(false),
					"active_pid":         knownvalue.Null(),
					"wal_status":         knownvalue.StringExact("reserved"),
					"restart_lsn":        lsnValue,
					"retained_wal_bytes": knownvalue.Int64Func(atLeastZero),
				}))),
			},
		}},
	})
}

// On a standby the data source refuses, and says to use the primary.
func TestAccReplicationStatusDataSource_standby(t *testing.T) {
	topo := testAccTopology(t)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccMultiServerFactories,
		Steps: []resource.TestStep{{
			Config: topologyProviders(topo) + `
data "pgreplication_replication_status" "standby" {
  provider = pgrstandby1
}
`,
			ExpectError: regexp.MustCompile(`(?s)Replication\s+Status\s+Needs\s+a\s+Primary.*is\s+a\s+standby`),
		}},
	})
}

// listContains passes when at least one element of a list passes check:
// the primary may hold slots of other tests too.
func listContains(check knownvalue.Check) knownvalue.Check { return containsCheck{check} }

type containsCheck struct{ check knownvalue.Check }

func (c containsCheck) CheckValue(v any) error {
	list, ok := v.([]any)
	if !ok {
		return fmt.Errorf("expected a list, got %T", v)
	}
	var errs []error
	for _, e := range list {
		err := c.check.CheckValue(e)
		if err == nil {
			return nil
		}
		errs = append(errs, err)
	}
	return fmt.Errorf("no element of the list of %d matches %s: %v", len(list), c.check, errs)
}

func (c containsCheck) String() string { return "a list containing " + c.check.String() }
