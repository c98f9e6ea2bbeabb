package provider

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/jackc/pgx/v5"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// When the plan's read of pg_stat_replication fails for a reason other
// than a missing privilege (here it waits behind a lock on pg_settings,
// which it reads wal_sender_timeout from, until the provider's
// statement_timeout cancels it; a lock on pg_stat_replication itself
// would stop new sessions from starting), the plan goes on, since
// apply checks the standbys again, but tells the user through the real
// CLI: the provider answers the plan with the warning "Standbys Not Checked
// at Plan Time", which names the server and carries the server's error.
// Before 990bbb7 such a failure was swallowed, which once hid a query that
// could not scan (5df3af3); this is the same path, the WAL senders' read.
func TestAccSynchronousReplication_planReadFailureWarns(t *testing.T) {
	testAccPreCheck(t)
	topo := routertest.Start(t, routertest.WithStandbys(1)) // pg_settings is locked: not the shared one
	ctx := context.Background()
	locker, err := pgx.Connect(ctx, topo.Primary.DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer locker.Close(ctx)
	if _, err := locker.Exec(ctx, "BEGIN; LOCK TABLE pg_catalog.pg_settings IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	logPath := traceLog(t)
	config := fmt.Sprintf(`
provider "pgreplication" {
  host              = %q
  port              = %d
  username          = "postgres"
  database          = "postgres"
  sslmode           = "disable"
  statement_timeout = "1s"
}
resource "pgreplication_synchronous_replication" "this" {
  standby_names = [%q]
}
`, topo.Primary.Host, topo.Primary.Port, topo.Standbys[0].Name)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config:   config,
			PlanOnly: true, ExpectNonEmptyPlan: true, // the create, with the warning
		}},
	})
	if _, err := locker.Exec(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	checkLogHasNo(t, logPath, nil, "Response contains warning diagnostic", "Standbys Not Checked at Plan Time",
		fmt.Sprintf("Reading pg_stat_replication on 127.0.0.1:%d failed", topo.Primary.Port), "statement timeout",
		"Apply checks them again")
	// statement_timeout's cancel (57014) ends the check at once: it is not
	// the server away, which the check waits out. Retried, the plan would
	// warn only after the whole confirmation wait, with the wait's words.
	if b, err := os.ReadFile(logPath); err != nil {
		t.Fatal(err)
	} else if i := strings.Index(string(b), "no answer within"); i >= 0 {
		t.Errorf("the plan waited out its confirmation wait on a statement_timeout: …%s…", b[max(0, i-200):min(len(b), i+200)])
	}
}
