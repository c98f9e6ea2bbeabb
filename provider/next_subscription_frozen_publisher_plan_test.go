package provider

import (
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// The plan of a subscription checks its publisher (wal_level, publications,
// and with create_slot = false the slot) through one connection: a
// publisher that accepts connections and never answers (SIGSTOP) costs one
// publisherProbeTimeout (5s) per plan, and the plan warns once, naming the
// publisher's host:port and the cause, never the password. Before, each
// check opened its own connection and waited 5s: 15s per plan, 30s for
// the step's two plans here, with nothing said.
func TestAccSubscription_frozenPublisherPlanCostsOneTimeout(t *testing.T) {
	testAccPreCheck(t)
	pub := routertest.Start(t, routertest.WithStandbys(0)).Primary // frozen: not the shared one
	f := newSubscriptionFixture(t, pub, "sub_plan_frozen", `CREATE PUBLICATION pub_a FOR TABLE t1;`, nil)
	// Registered last, so it runs first: the fixture's cleanup needs the
	// publisher answering.
	t.Cleanup(func() {
		if err := pub.Thaw(); err != nil {
			t.Error(err)
		}
	})
	const pw = "canary" + canaryMark + "-planfrozen"
	config := canaryVariable(t, pw) + fmt.Sprintf(`
provider "pgreplication" {
  alias    = "subscriber"
  host     = %q
  port     = %d
  username = "postgres"
  database = "postgres"
  sslmode  = "disable"
}

resource "pgreplication_subscription" "this" {
  provider     = pgreplication.subscriber
  name         = "sub_plan_frozen"
  conninfo     = "%s password=${var.canary_password}"
  publications = ["pub_a"]
  create_slot  = false
}
`, f.sub.Host, f.sub.Port, f.conninfo(""))
	logPath := traceLog(t)
	var began time.Time
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			PreConfig: func() {
				if err := pub.Freeze(); err != nil {
					t.Fatal(err)
				}
				began = time.Now()
			},
			Config:             config,
			PlanOnly:           true,
			ExpectNonEmptyPlan: true,
		}},
	})
	elapsed := time.Since(began)
	t.Logf("the step's plans took %s with the publisher frozen", elapsed.Round(time.Millisecond))
	// Two plans of one timeout each, and the CLI's own work on a busy
	// machine; three timeouts a plan would be 30s.
	if elapsed > 22*time.Second {
		t.Errorf("the step's plans took %s with the publisher frozen; want about one publisherProbeTimeout (5s) a plan", elapsed)
	}
	publisher := fmt.Sprintf("127.0.0.1:%d", pub.Port)
	if !logHasEntry(t, logPath, "Publisher Not Checked", publisher, "within 5s", "Nothing of it was checked") {
		t.Errorf("the plan did not warn that publisher %s was not checked", publisher)
	}
	checkLogHasNo(t, logPath, []string{pw}, "Publisher Not Checked")
}
