package provider

import (
	"fmt"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// A standby whose primary_conninfo lists hosts with a port each
// (host=a,b port=1,2, libpq's multi-host form) could not be adopted: the
// refresh of the import failed with "primary_conninfo has port=..., which
// primary_port (one number) cannot hold". The port list now reads into
// primary_ports: the import plans nothing else, the next plan is empty, and
// an apply that reorders the ports writes them and streams. The old code:
// the import's plan failed with that error (with primary_port, as with
// primary_ports, which it did not have).
func TestAccStandby_multiHostConninfoRoundTrips(t *testing.T) {
	t.Parallel()
	testAccPreCheck(t)
	topo := routertest.Start(t, routertest.WithStandbys(1))
	standby := topo.Standbys[0]
	nowhere := freePort(t)
	// By hand: libpq tries the first host, where nothing listens, then the
	// second, the primary.
	alterSystemByHand(t, standby, "primary_conninfo",
		fmt.Sprintf("host=127.0.0.1,127.0.0.1 port=%d,%d user=postgres application_name=replica-1 sslmode=disable", nowhere, topo.Primary.Port))
	if err := waitStreamingFrom(standby, topo.Primary.Port); err != nil {
		t.Fatal(err)
	}
	config := func(ports ...int) string {
		list := make([]string, len(ports))
		for i, p := range ports {
			list[i] = itoa(p)
		}
		return providerConfig("standby1", standby) + fmt.Sprintf(`
resource "pgreplication_standby" "this" {
  provider         = pgreplication.standby1
  primary_host     = "127.0.0.1,127.0.0.1"
  primary_ports    = [%s]
  primary_user     = "postgres"
  primary_sslmode  = "disable"
  application_name = "replica-1"
}
`, strings.Join(list, ", "))
	}
	const importBlock = `
import {
  provider = pgreplication.standby1
  to       = pgreplication_standby.this
  id       = "standby"
}
`
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config:      config(nowhere, topo.Primary.Port, 5432) + importBlock,
				PlanOnly:    true,
				ExpectError: errorText("Ports Do Not Match Hosts", `primary_ports has 3 ports and primary_host = "127.0.0.1,127.0.0.1" has 2 hosts`),
			},
			{
				Config:           config(nowhere, topo.Primary.Port) + importBlock,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{expectImportsOnly(1)}},
			},
			{
				Config:             config(nowhere, topo.Primary.Port),
				PlanOnly:           true,
				ExpectNonEmptyPlan: false,
			},
			{
				Config: config(topo.Primary.Port, nowhere),
				Check: func(*terraform.State) error {
					got := queryValue[string](t, standby, "postgres", `SELECT current_setting('primary_conninfo')`)
					if want := fmt.Sprintf("port='%d,%d'", topo.Primary.Port, nowhere); !strings.Contains(got, want) {
						return fmt.Errorf("primary_conninfo = %q, want %s", got, want)
					}
					return waitStreamingFrom(standby, topo.Primary.Port)
				},
			},
		},
	})
}
