package examples_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// Read reports failover as the publisher's slot has it (e8aa6f8), Update as
// pg_subscription has it (fromCatalog). A subscription made with failover =
// true whose slot's failover was turned off on the publisher reads back
// false; the configuration then says failover = false too (the user
// accepting the slot as it is) and changes something else in place
// (synchronous_commit): the plan keeps failover false, nothing sets it, and
// Update returns subfailover = true from the catalog. Terraform refuses that
// as a provider bug, "Provider produced inconsistent result after apply",
// after the ALTER ran.
func TestSubfixFailoverReadFromSlotUpdateFromCatalog(t *testing.T) {
	cli := providerCLI(t)
	pub, sub := twoPrimaries(t, "subfix_fo")
	for _, n := range []struct {
		what string
		v    string
	}{{"subscriber", currentSetting(t, sub, "server_version_num")}, {"publisher", currentSetting(t, pub, "server_version_num")}} {
		if n.v < "170000" {
			t.Skipf("the %s runs %s; failover needs 17", n.what, n.v)
		}
	}
	mainTF := func(failover bool, syncCommit string) string {
		return fmt.Sprintf(`
resource "pgreplication_publication" "pub" {
  provider = pgreplication.pub
  name     = "subfix_fo_pub"
  tables   = { "public.subfix_fo" = {} }
}

resource "pgreplication_subscription" "sub" {
  provider           = pgreplication.sub
  name               = "subfix_fo_sub"
  conninfo           = "host=%s port=%d user=postgres dbname=postgres sslmode=disable"
  publications       = [pgreplication_publication.pub.name]
  failover           = %t
  synchronous_commit = %q
}
`, pub.Host, pub.Port, failover, syncCommit)
	}
	dir := configDir(t, map[string]server{"pub": {pub, "postgres"}, "sub": {sub, "postgres"}}, mainTF(true, "off"))
	cli.run(t, dir, 0, tfArgs("apply")...)

	// The slot's failover turned off on the publisher, as in
	// TestRed5SubscriptionSlotFailoverDriftPlanSilent.
	execSQL(t, sub, "postgres", `ALTER SUBSCRIPTION subfix_fo_sub DISABLE`)
	waitFor(t, pub, 30*time.Second, func() bool {
		var active bool
		if err := pub.QueryRow(t.Context(), `SELECT active FROM pg_replication_slots WHERE slot_name = 'subfix_fo_sub'`).Scan(&active); err != nil {
			t.Fatal(err)
		}
		return !active
	}, "the slot to be released")
	cfg, err := pgconn.ParseConfig(pub.DSN())
	if err != nil {
		t.Fatal(err)
	}
	cfg.RuntimeParams["replication"] = "database"
	repl, err := pgconn.ConnectConfig(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := repl.Exec(t.Context(), `ALTER_REPLICATION_SLOT subfix_fo_sub (FAILOVER false)`).ReadAll(); err != nil {
		t.Fatal(err)
	}
	_ = repl.Close(t.Context())
	execSQL(t, sub, "postgres", `ALTER SUBSCRIPTION subfix_fo_sub ENABLE`)

	writeFile(t, filepath.Join(dir, "main.tf"), mainTF(false, "on"))
	if out := cli.run(t, dir, 2, tfArgs("plan", "-detailed-exitcode")...); strings.Contains(out, "~ failover") {
		t.Fatalf("the plan changes failover, read false from the slot and declared false:\n%s", lastLines(out, 30))
	}
	code, out := cli.exec(t, dir, tfArgs("apply")...)
	if code != 0 {
		var syncCommit string
		var failover bool
		if err := sub.QueryRow(t.Context(), `SELECT subsynccommit, subfailover FROM pg_subscription WHERE subname = 'subfix_fo_sub'`).Scan(&syncCommit, &failover); err != nil {
			t.Fatal(err)
		}
		t.Fatalf("apply (exit %d) of synchronous_commit off -> on, failover = false as read, fails (the subscriber has synchronous_commit = %s, "+
			"subfailover = %t):\n%s", code, syncCommit, failover, lastLines(out, 12))
	}
	cli.run(t, dir, 0, tfArgs("plan", "-detailed-exitcode")...)
}
