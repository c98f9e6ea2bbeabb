package provider

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"

	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/pgsql"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// A plan of three subscriptions (-parallelism 10) whose conninfo names a
// role of CONNECTION LIMIT 2 on the publisher, both places held by the
// provider's own pool of that role there (in-process, the same room): the
// probe waits its 5 s for a place and the plan warns naming the role's
// limit, never the canary password, in the diagnostics or the TRACE log
// of the CLI and the provider.
func TestAccReview14ProbeWaitingForTheRoleLimitNeverShowsThePassword(t *testing.T) {
	testAccPreCheck(t)
	pub := routertest.Start(t, routertest.WithStandbys(0)).Primary
	f := newSubscriptionFixture(t, pub, "review14_secret_pub", `CREATE PUBLICATION pub_a FOR TABLE t1;`, nil)
	const role = "review14_secret"
	execSQL(t, pub, "postgres", `CREATE ROLE `+role+` LOGIN CONNECTION LIMIT 2`)
	t.Cleanup(func() { execSQL(t, pub, "postgres", `DROP ROLE IF EXISTS `+role) })
	s := newServer(connSettings{Host: pub.Host, Port: int64(pub.Port), Database: f.pubDB, Username: role,
		SSLMode: "disable", MaxConnections: 4, ConnectTimeout: 5})
	held := testPool(t, s, f.pubDB)
	pw := "canary" + canaryMark + "-review14-limit"
	conninfo := fmt.Sprintf("host=127.0.0.1 port=%d user=%s dbname=%s", pub.Port, role, f.pubDB)
	config := canaryVariable(t, pw) + subscriberProvider(f.sub) + fmt.Sprintf(`
resource "pgreplication_subscription" "this" {
  count        = 3
  provider     = pgreplication.subscriber
  name         = "review14_secret_${count.index}"
  conninfo     = "%s password=${var.canary_password}"
  publications = ["pub_a"]
  copy_data    = false
}
`, conninfo)
	logPath := traceLog(t)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			PreConfig: func() {
				for range 2 {
					c, err := held.Acquire(context.Background())
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(c.Release)
				}
			},
			Config:             config,
			PlanOnly:           true,
			ExpectNonEmptyPlan: true,
		}},
	})
	// The log is JSON: the role's quotes are escaped there.
	limit := "the CONNECTION LIMIT of the provider's role " + strings.ReplaceAll(pgsql.Ident(role), `"`, `\"`)
	if !logHasEntry(t, logPath, "Publisher Not Checked", limit) {
		b, _ := os.ReadFile(logPath)
		for _, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, "Not Checked") {
				t.Log(line)
			}
		}
		t.Errorf("the plan did not warn that the publisher was not checked for %s", limit)
	}
	checkLogHasNo(t, logPath, canaryParts(pw), "Publisher Not Checked")
}
