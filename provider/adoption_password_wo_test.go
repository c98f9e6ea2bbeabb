package provider

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/pgsql"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// woFirstPlan checks the first plan of a resource whose password becomes
// write-only while the state holds it: it updates only changes, the version
// (Terraform plans a non-computed attribute as configured) and the
// attribute that held the password, which leaves the state; it imports the
// one resource when imported. It logs whether the plan's prior state holds
// the password: after an import it does (Read had no configuration to say
// the password is write-only), and no provider can help it.
type woFirstPlan struct {
	t        *testing.T
	changes  []string
	canary   string
	imported bool
}

func (c woFirstPlan) CheckPlan(_ context.Context, req plancheck.CheckPlanRequest, resp *plancheck.CheckPlanResponse) {
	var problems []string
	for _, rc := range req.Plan.ResourceChanges {
		changed := changedAttributes(rc.Change.Before, rc.Change.After)
		c.t.Logf("first plan: %s %v, changes %v", rc.Address, rc.Change.Actions, changed)
		if (rc.Change.Importing != nil) != c.imported {
			problems = append(problems, fmt.Sprintf("%s: imported %t, want %t", rc.Address, rc.Change.Importing != nil, c.imported))
		}
		if !slices.Equal(changed, c.changes) {
			problems = append(problems, fmt.Sprintf("%s changes %v, want %v", rc.Address, changed, c.changes))
		}
	}
	if b, err := json.Marshal(req.Plan.PriorState); err == nil {
		c.t.Logf("first plan: the prior state (before apply) holds the password: %t", strings.Contains(string(b), c.canary))
	}
	if len(problems) > 0 {
		resp.Error = fmt.Errorf("%s", strings.Join(problems, "; "))
	}
}

// woFirstSteps are the first two steps of such a resource, with config: the
// first plan (woFirstPlan), whose apply changes nothing on the server
// (unchanged) and leaves no part of canary in the state, then an empty
// plan.
func woFirstSteps(t *testing.T, config string, first woFirstPlan, unchanged resource.TestCheckFunc) []resource.TestStep {
	first.t = t
	return []resource.TestStep{
		{
			Config:           config,
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{first}},
			Check:            resource.ComposeTestCheckFunc(unchanged, stateHasNo(canaryParts(first.canary))),
		},
		{
			Config:           config,
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
			Check:            resource.ComposeTestCheckFunc(unchanged, stateHasNo(canaryParts(first.canary))),
		},
	}
}

// leavesStateWarned requires the warning "Password Leaves the State" of
// wo in the TRACE log, saying where the password in the state came from.
func leavesStateWarned(t *testing.T, logPath, wo, attr string) {
	t.Helper()
	if !logHasEntry(t, logPath, "Password Leaves the State", "(read at import, or set in "+attr+" before). "+wo+" is the same password") {
		t.Errorf("no warning \"Password Leaves the State\" for %s (the password read at import or set in %s) in the TRACE log", wo, attr)
	}
}

// skipWithoutWriteOnly skips a test that gives a password write-only (an
// import into one, a create whose answer is lost) with a CLI that refuses
// write-only arguments (OpenTofu 1.10): TestAccStandby_writeOnlyPassword
// and TestAccSubscription_writeOnlyPassword check that refusal.
func skipWithoutWriteOnly(t *testing.T) {
	t.Helper()
	if !cliSupportsWriteOnly(t) {
		t.Skip("this CLI refuses write-only arguments (Terraform 1.11 and OpenTofu 1.11 accept them)")
	}
}

// A subscription built by hand with a password in its CONNECTION, imported
// into a configuration that gives the same password write-only
// (password_wo, password_wo_version = 1): the first plan shows
// password_wo_version and conninfo (sensitive: the password leaves the
// state) with the warning "Password Leaves the State", and its apply changes nothing on the server (the
// same subscription, the same connection text, the same apply worker) and
// leaves the password out of the state; the next plan is empty. A new
// password (version 2) is then written. The old code ran ALTER SUBSCRIPTION
// … CONNECTION with the connection rewritten, which restarts the apply
// worker.
func TestAccAdoption_subscriptionWriteOnlyPassword(t *testing.T) {
	testAccPreCheck(t)
	skipWithoutWriteOnly(t)
	pub := routertest.Start(t, routertest.WithStandbys(0)).Primary
	sub := routertest.Start(t, routertest.WithStandbys(0)).Primary
	execSQL(t, pub, "postgres", `CREATE TABLE t1 (id int PRIMARY KEY); CREATE PUBLICATION pub_wo FOR TABLE t1`)
	execSQL(t, sub, "postgres", `CREATE TABLE t1 (id int PRIMARY KEY)`)
	const canary = "canary" + canaryMark + "-wo-import"
	const canary2 = "canary" + canaryMark + "-wo-second"
	hand := fmt.Sprintf(`host=127.0.0.1 port=%d dbname=postgres user=postgres sslmode=disable password=%s`, pub.Port, pgsql.Literal(canary))
	execSQL(t, sub, "postgres", `CREATE SUBSCRIPTION sub_wo CONNECTION `+pgsql.Literal(hand)+` PUBLICATION pub_wo WITH (copy_data = false)`)
	oid := queryValue[int64](t, sub, "postgres", `SELECT oid::int8 FROM pg_subscription WHERE subname = 'sub_wo'`)
	conn := func() string {
		return queryValue[string](t, sub, "postgres", `SELECT subconninfo FROM pg_subscription WHERE subname = 'sub_wo'`)
	}
	worker := func() int64 {
		return queryValue[int64](t, sub, "postgres", `SELECT coalesce((SELECT pid FROM pg_stat_subscription WHERE subname = 'sub_wo' AND relid IS NULL), 0)::int8`)
	}
	waitFor(t, 60*time.Second, "the apply worker of sub_wo", func() bool { return worker() != 0 })
	pid := worker()

	config := func(version int) string {
		return canaryVariable(t, canary) + subscriberProvider(sub) + fmt.Sprintf(`
variable "second" {
  type      = string
  sensitive = true
  default   = null
}

import {
  provider = pgreplication.subscriber
  to       = pgreplication_subscription.this
  id       = "postgres/sub_wo"
}

resource "pgreplication_subscription" "this" {
  provider            = pgreplication.subscriber
  name                = "sub_wo"
  conninfo            = "host=127.0.0.1 port=%d dbname=postgres user=postgres sslmode=disable"
  password_wo         = %d == 1 ? var.canary_password : var.second
  password_wo_version = %d
  publications        = ["pub_wo"]
}
`, pub.Port, version, version)
	}
	unchanged := resource.ComposeTestCheckFunc(func(*terraform.State) error {
		if got := queryValue[int64](t, sub, "postgres", `SELECT oid::int8 FROM pg_subscription WHERE subname = 'sub_wo'`); got != oid {
			return fmt.Errorf("sub_wo is another subscription (oid %d, was %d)", got, oid)
		}
		return nil
	}, unchangedByApply("the connection of sub_wo", conn, hand, "the apply worker of sub_wo", worker, pid))
	logPath := traceLog(t)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: append(woFirstSteps(t, config(1), woFirstPlan{changes: []string{"conninfo", "password_wo_version"}, canary: canary, imported: true}, unchanged),
			resource.TestStep{
				// Another password: written, though the plan shows only the version.
				PreConfig: func() { t.Setenv("TF_VAR_second", canary2) },
				Config:    config(2),
				Check: resource.ComposeTestCheckFunc(stateHasNo(append(canaryParts(canary), canary2)), func(*terraform.State) error {
					if !strings.Contains(conn(), canary2) {
						return fmt.Errorf("password_wo_version 2 did not write the new password")
					}
					return nil
				}),
			},
		),
	})
	checkLogHasNo(t, logPath, append(canaryParts(canary), canary2), "sub_wo", "Password Leaves the State")
	leavesStateWarned(t, logPath, "password_wo", "conninfo")
}

// A standby whose primary_conninfo has a password, set by hand, imported
// into a configuration that gives the same password write-only
// (primary_password_wo, primary_password_wo_version = 1): the first plan
// shows the version and primary_password (sensitive: the password leaves
// the state) with the warning "Password Leaves the State", and its apply changes nothing on the server (the
// same primary_conninfo, the same WAL receiver) and leaves the password out
// of the state; the next plan is empty. The old code did the same, but
// without the warning that says why primary_password changes.
func TestAccAdoption_standbyWriteOnlyPassword(t *testing.T) {
	testAccPreCheck(t)
	skipWithoutWriteOnly(t)
	topo := routertest.Start(t, routertest.WithStandbys(1)) // reconfigured: not the shared one
	standby := topo.Standbys[0]
	const canary = "canary" + canaryMark + "-wo-standby"
	hand := fmt.Sprintf("host=%s port=%d user=postgres password=%s sslmode=disable application_name=replica-1",
		topo.Primary.Host, topo.Primary.Port, pgsql.Literal(canary))
	alterSystemByHand(t, standby, "primary_conninfo", hand)
	if err := waitStreamingFrom(standby, topo.Primary.Port); err != nil {
		t.Fatal(err)
	}
	receiver := func() int64 {
		return queryValue[int64](t, standby, "postgres", `SELECT coalesce((SELECT pid FROM pg_stat_wal_receiver), 0)`)
	}
	waitFor(t, 60*time.Second, "a WAL receiver with the hand-written primary_conninfo", func() bool {
		return receiver() != 0 && strings.Contains(queryValue[string](t, standby, "postgres", `SELECT coalesce((SELECT conninfo FROM pg_stat_wal_receiver), '')`), "replica-1")
	})
	pid := receiver()
	config := canaryVariable(t, canary) + standbyConfig(topo, `  primary_password_wo         = var.canary_password
  primary_password_wo_version = 1
  application_name            = "replica-1"`) + `
import {
  provider = pgreplication.standby1
  to       = pgreplication_standby.this
  id       = "standby"
}
`
	conninfo := func() string { return queryValue[string](t, standby, "postgres", "SHOW primary_conninfo") }
	unchanged := unchangedByApply("primary_conninfo", conninfo, hand, "the WAL receiver", receiver, pid)
	logPath := traceLog(t)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps:                    woFirstSteps(t, config, woFirstPlan{changes: []string{"primary_password", "primary_password_wo_version"}, canary: canary, imported: true}, unchanged),
	})
	checkLogHasNo(t, logPath, canaryParts(canary), "primary_conninfo", "Password Leaves the State")
	leavesStateWarned(t, logPath, "primary_password_wo", "primary_password")
}

// A subscription whose password was in conninfo, moved to password_wo (the
// same password, version 1): as after an import, the first plan shows
// password_wo_version and conninfo (the password leaves the state) with the
// warning "Password Leaves the State", which says the password in the state
// was set in conninfo (it said "read at import"), and its apply changes
// nothing on the server; the next plan is empty.
func TestAccSubscription_passwordBecomesWriteOnly(t *testing.T) {
	testAccPreCheck(t)
	skipWithoutWriteOnly(t)
	topo := testAccTopology(t)
	f := newSubscriptionFixture(t, topo.Primary, "sub_pub_moved", `CREATE PUBLICATION pub_moved FOR TABLE t1;`, nil)
	const canary = "canary" + canaryMark + "-wo-moved"
	config := func(conninfoExtra, extra string) string {
		return canaryVariable(t, canary) + subscriberProvider(f.sub) + fmt.Sprintf(`
resource "pgreplication_subscription" "this" {
  provider     = pgreplication.subscriber
  name         = "sub_moved"
  conninfo     = "%s"
  publications = ["pub_moved"]
  %s
}
`, f.conninfo(conninfoExtra), extra)
	}
	conn := func() string {
		return queryValue[string](t, f.sub, "postgres", `SELECT subconninfo FROM pg_subscription WHERE subname = 'sub_moved'`)
	}
	var was string
	unchanged := func(*terraform.State) error {
		if got := conn(); got != was {
			return fmt.Errorf("the apply changed the connection of sub_moved")
		}
		return nil
	}
	logPath := traceLog(t)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: append([]resource.TestStep{{
			// The publisher trusts local connections: the password is not checked.
			Config: config("password='${var.canary_password}'", ""),
			Check:  func(*terraform.State) error { was = conn(); return nil },
		}}, woFirstSteps(t, config("", "password_wo = var.canary_password\n  password_wo_version = 1"),
			woFirstPlan{changes: []string{"conninfo", "password_wo_version"}, canary: canary}, unchanged)...),
	})
	checkLogHasNo(t, logPath, canaryParts(canary), "sub_moved", "Password Leaves the State")
	leavesStateWarned(t, logPath, "password_wo", "conninfo")
}

// unchangedByApply checks that an apply changed nothing on the server: the
// connection (read) is still the one made by hand, and the process that
// streams with it (pidOf) still has pid, not restarted.
func unchangedByApply(connection string, read func() string, hand, process string, pidOf func() int64, pid int64) resource.TestCheckFunc {
	return func(*terraform.State) error {
		if read() != hand {
			return fmt.Errorf("the first apply changed %s", connection)
		}
		if got := pidOf(); got != pid {
			return fmt.Errorf("%s was restarted (pid %d, then %d)", process, pid, got)
		}
		return nil
	}
}
