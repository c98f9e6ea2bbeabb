package provider

import (
	"fmt"
	"strings"
	"testing"
	"time"

	tfresource "github.com/hashicorp/terraform-plugin-testing/helper/resource"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// An apply of many publications in several databases, Terraform's
// parallelism of 10 at a time, as a role with CONNECTION LIMIT 3: the
// role's pools in the three databases share its three places (roleRoom),
// and their sessions now end 2 s after their last use (poolIdle), so that
// the handlers of the later waves connect again. No connection may be
// refused (53300: the server's log counts them), and the apply's wall time
// is logged.
func TestReview10ApplyUnderRoleLimit(t *testing.T) {
	testAccPreCheck(t)
	n := routertest.Start(t, routertest.WithStandbys(0)).Primary
	const role = "review10_app"
	dbs := []string{"review10_a", "review10_b", "review10_c"}
	execSQL(t, n, "postgres", `CREATE ROLE `+role+` LOGIN CONNECTION LIMIT 3`)
	for _, db := range dbs {
		execSQL(t, n, "postgres", `CREATE DATABASE `+db+` OWNER `+role)
	}
	config := func(publish string) string {
		var cfg strings.Builder
		cfg.WriteString(providerBlock("", n, role, dbs[0]))
		for i := range 45 {
			fmt.Fprintf(&cfg, `
resource "pgreplication_publication" "p%d" {
  name     = "review10_%d"
  database = %q
  publish  = [%s]
}
`, i, i, dbs[i%len(dbs)], publish)
		}
		return cfg.String()
	}
	// Between the steps the pools' sessions idle out (poolIdle), and the
	// next step's handlers connect again, ten at a time.
	idle := func() { time.Sleep(3 * time.Second) }
	refused := func() int { return logLinesWith(t, n, "too many connections") }
	before := refused()
	start := time.Now()
	tfresource.Test(t, tfresource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []tfresource.TestStep{
			{Config: config(`"insert", "update", "delete", "truncate"`)},
			{PreConfig: idle, Config: config(`"insert"`)},
			{PreConfig: idle, Config: config(`"insert", "update"`)},
		},
	})
	t.Logf("apply, plan and destroy of 45 publications in 3 databases under CONNECTION LIMIT 3: %s, %d connections refused (53300)",
		time.Since(start).Round(100*time.Millisecond), refused()-before)
	if got := refused() - before; got != 0 {
		t.Errorf("the server refused %d of the provider's connections (53300)", got)
	}
}
