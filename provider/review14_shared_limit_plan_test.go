package provider

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// One role of CONNECTION LIMIT 1, then 2, on one server, both the
// provider's and the one six subscriptions' conninfo names (their
// publisher is the provider's server): a plan (-parallelism 10, the CLI's
// default) runs the provider's statements and the probe's through the one
// room. Neither may wait for the other past the probe's bound, nor fail:
// no "Publisher Not Checked", no error, no 53300. On PostgreSQL 17 the
// test's plan took 8.4-10.6 s under either limit, 4.5 s with none: the
// probes and the provider's statements take the one place in turn, each
// connection closed and its backend's exit waited for (0.2-0.4 s apart in
// the TRACE log), no wait of the probe's 5 s bound.
func TestAccReview14SharedRoleLimitPlan(t *testing.T) {
	testAccPreCheck(t)
	for _, limit := range []int{1, 2} {
		t.Run(fmt.Sprintf("limit%d", limit), func(t *testing.T) {
			pub := routertest.Start(t, routertest.WithStandbys(0)).Primary
			const db = "review14_shared"
			execSQL(t, pub, "postgres", "CREATE DATABASE "+db)
			execSQL(t, pub, db, `CREATE TABLE t1 (id int PRIMARY KEY); CREATE PUBLICATION pub_a FOR TABLE t1;`)
			role := fmt.Sprintf("review14_shared%d", limit)
			execSQL(t, pub, "postgres", fmt.Sprintf(`CREATE ROLE %s LOGIN CONNECTION LIMIT %d`, role, limit))
			t.Cleanup(func() {
				execSQL(t, pub, "postgres", "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)")
				execSQL(t, pub, "postgres", `DROP ROLE IF EXISTS `+role)
			})
			config := providerConfigAs("", pub, role) + fmt.Sprintf(`
resource "pgreplication_subscription" "this" {
  count        = 6
  name         = "review14_shared_${count.index}"
  conninfo     = "host=%s port=%d user=%s dbname=%s"
  publications = ["pub_a"]
  copy_data    = false
}
`, pub.Host, pub.Port, role, db)
			logPath := traceLog(t)
			var began time.Time
			resource.Test(t, resource.TestCase{
				ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
				Steps: []resource.TestStep{{
					PreConfig:          func() { began = time.Now() },
					Config:             config,
					PlanOnly:           true,
					ExpectNonEmptyPlan: true,
				}},
			})
			took := time.Since(began)
			t.Logf("CONNECTION LIMIT %d: the plan of 6 subscriptions took %s", limit, took.Round(time.Millisecond))
			b, _ := os.ReadFile(logPath)
			for _, line := range strings.Split(string(b), "\n") {
				if strings.Contains(line, "Not Checked") || strings.Contains(line, "53300") {
					t.Errorf("CONNECTION LIMIT %d: %.600s", limit, line)
				}
			}
		})
	}
}
