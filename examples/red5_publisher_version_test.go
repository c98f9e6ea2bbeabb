package examples_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// failover = true on a PostgreSQL 17 subscriber whose publisher runs 16:
// the plan passes (the version check looks at the subscriber only), and
// CREATE SUBSCRIPTION fails at apply ("could not create replication slot
// …: unrecognized option: failover"), under advice that sends the reader to
// check reachability, pg_hba.conf, the publications and wal_level. Nothing
// is made, but the plan, which already connects to the publisher, now says
// that the publisher is too old for a failover slot.
func TestRed5FailoverOnOldPublisherRefusedAtPlan(t *testing.T) {
	cli := providerCLI(t)
	sub := routertest.Start(t, routertest.WithStandbys(0)).Primary
	if v := currentSetting(t, sub, "server_version_num"); v < "170000" {
		t.Skipf("the subscriber runs %s; failover needs 17 there", v)
	}
	pub := routertest.Start(t, routertest.WithStandbys(0), routertest.WithVersion(16)).Primary
	for _, n := range []*routertest.Node{pub, sub} {
		execSQL(t, n, "postgres", `CREATE TABLE red5_v (id int PRIMARY KEY)`)
	}
	execSQL(t, pub, "postgres", `CREATE PUBLICATION red5_v_pub FOR TABLE red5_v`)
	dir := configDir(t, map[string]server{"sub": {sub, "postgres"}}, fmt.Sprintf(`
resource "pgreplication_subscription" "sub" {
  provider     = pgreplication.sub
  name         = "red5_v_sub"
  conninfo     = "host=%s port=%d user=postgres dbname=postgres sslmode=disable"
  publications = ["red5_v_pub"]
  failover     = true
}
`, pub.Host, pub.Port))
	code, out := cli.exec(t, dir, tfArgs("plan", "-detailed-exitcode")...)
	if code != 1 || !strings.Contains(out, "failover") || !strings.Contains(out, "16") {
		t.Errorf("plan of failover = true against a PostgreSQL 16 publisher exited %d, want 1 with an error naming failover and the "+
			"publisher's version:\n%s", code, lastLines(out, 14))
	}
}

// origin = "none" on a subscriber of 16 or later whose publisher runs 15:
// PostgreSQL sends the origin option only to a publisher of 16 or later
// (libpqrcv_startstreaming), so the subscription is created and streams,
// and changes the publisher itself replicated from elsewhere reach the
// subscriber all the same: seen by hand, a row inserted on a third server,
// replicated to the 15 publisher, arrived through a subscription with
// origin = none. That is the loop origin = none is there to break (two-way
// replication), and nothing said so, not PostgreSQL, not the plan. The plan
// refuses it now, as it refuses failover on a publisher older than 17.
func TestRed5OriginNoneOnOldPublisherRefusedAtPlan(t *testing.T) {
	cli := providerCLI(t)
	sub := routertest.Start(t, routertest.WithStandbys(0)).Primary
	if v := currentSetting(t, sub, "server_version_num"); v < "160000" {
		t.Skipf("the subscriber runs %s; origin needs 16 there", v)
	}
	pub := routertest.Start(t, routertest.WithStandbys(0), routertest.WithVersion(15)).Primary
	for _, n := range []*routertest.Node{pub, sub} {
		execSQL(t, n, "postgres", `CREATE TABLE red5_o (id int PRIMARY KEY)`)
	}
	execSQL(t, pub, "postgres", `CREATE PUBLICATION red5_o_pub FOR TABLE red5_o`)
	dir := configDir(t, map[string]server{"sub": {sub, "postgres"}}, fmt.Sprintf(`
resource "pgreplication_subscription" "sub" {
  provider     = pgreplication.sub
  name         = "red5_o_sub"
  conninfo     = "host=%s port=%d user=postgres dbname=postgres sslmode=disable"
  publications = ["red5_o_pub"]
  origin       = "none"
}
`, pub.Host, pub.Port))
	code, out := cli.exec(t, dir, tfArgs("plan", "-detailed-exitcode")...)
	if code != 1 || !strings.Contains(out, "origin") || !strings.Contains(out, "15") {
		t.Errorf("plan of origin = \"none\" against a PostgreSQL 15 publisher exited %d, want 1 with an error naming origin and the "+
			"publisher's version:\n%s", code, lastLines(out, 14))
	}
}
