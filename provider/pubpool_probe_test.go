package provider

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// pubpoolSubscriptions declares n enabled subscriptions to the publisher of
// f, each with a slot of its own, that copy nothing (they share t1), with
// the canary password in conninfo.
func pubpoolSubscriptions(f subscriptionFixture, n int, publications string) string {
	return subscriberProvider(f.sub) + fmt.Sprintf(`
resource "pgreplication_subscription" "this" {
  count        = %d
  provider     = pgreplication.subscriber
  name         = "sub_pubpool_${count.index}"
  conninfo     = "%s password=${var.canary_password}"
  publications = %s
  copy_data    = false
}
`, n, f.conninfo(""), publications)
}

// logLinesWith is how many lines of n's server log hold every one of texts.
func logLinesWith(t *testing.T, n *routertest.Node, texts ...string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(n.DataDir, "postgresql.log"))
	if err != nil {
		t.Fatal(err)
	}
	count := 0
lines:
	for _, line := range strings.Split(string(b), "\n") {
		for _, text := range texts {
			if !strings.Contains(line, text) {
				continue lines
			}
		}
		count++
	}
	return count
}

// probeSessions is how many sessions the provider's publisher probe
// (application_name terraform-provider-pgreplication, namedHostConfig) has
// opened on n so far, by its log (log_connections = on).
func probeSessions(t *testing.T, n *routertest.Node) int {
	t.Helper()
	return logLinesWith(t, n, "connection authorized", "application_name=terraform-provider-pgreplication")
}

// A refresh read the slot of each enabled subscription on the publisher
// through a connection of its own, opened and closed for that one query:
// every refresh, import and destroy of N subscriptions opened N sessions on
// the publisher. The probe now takes its connection from the process's
// pool of that publisher (publisherPools), so two plans of six
// subscriptions open a couple of sessions at most, none while the apply's
// are still idle.
func TestAccSubscription_pubpoolRefreshSharesPublisherSessions(t *testing.T) {
	testAccPreCheck(t)
	pub := routertest.Start(t, routertest.WithStandbys(0), routertest.WithSetting("log_connections", "on")).Primary
	f := newSubscriptionFixture(t, pub, "sub_pubpool_share", `CREATE PUBLICATION pub_a FOR TABLE t1;`, nil)
	const subs = 6
	pw := "canary" + canaryMark + "-pubpool-share"
	config := canaryVariable(t, pw) + pubpoolSubscriptions(f, subs, `["pub_a"]`)
	logPath := traceLog(t)
	before := -1
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{Config: config},
			{
				PreConfig: func() { before = probeSessions(t, pub) },
				Config:    config,
				PlanOnly:  true,
			},
			{Config: config, PlanOnly: true},
		},
	})
	opened := probeSessions(t, pub) - before
	t.Logf("the apply opened %d probe sessions on the publisher, then two plans (each refreshing %d enabled subscriptions) %d", before, subs, opened)
	if before <= 0 {
		t.Fatalf("no probe session in the publisher's log after the apply (%d): the count below proves nothing", before)
	}
	// Each refresh may find the pool's connections idled out
	// (publisherPoolIdle) and open up to publisherPoolConns again.
	if opened > 2*publisherPoolConns {
		t.Errorf("two plans of %d enabled subscriptions opened %d sessions on the publisher; want at most %d (the pool's, shared)",
			subs, opened, 2*publisherPoolConns)
	}
	checkLogHasNo(t, logPath, canaryParts(pw), "sub_pubpool_5")
}

// A frozen publisher (SIGSTOP: it accepts connections and never answers)
// under twelve enabled subscriptions: each refresh's Read and each plan's
// check waited publisherProbeTimeout (5s) on a connection of its own,
// ten at a time (Terraform's parallelism): the step's two plans took 31s
// (PostgreSQL 17), against 11s now. The probes of one
// publisher now share one attempt, and its failure answers for the rest
// of the command: one timeout a plan, said in a warning that names the
// publisher and never the password. Once thawed, the next command sees
// the publisher (here: the publication it lacks).
func TestAccSubscription_pubpoolFrozenPublisherOneTimeout(t *testing.T) {
	testAccPreCheck(t)
	pub := routertest.Start(t, routertest.WithStandbys(0)).Primary // frozen: not the shared one
	f := newSubscriptionFixture(t, pub, "sub_pubpool_frozen", `CREATE PUBLICATION pub_a FOR TABLE t1;`, nil)
	// Registered last, so it runs first: the fixture's cleanup needs the
	// publisher answering.
	t.Cleanup(func() {
		if err := pub.Thaw(); err != nil {
			t.Error(err)
		}
	})
	const subs = 12
	pw := "canary" + canaryMark + "-pubpool-frozen"
	variable := canaryVariable(t, pw)
	logPath := traceLog(t)
	var began time.Time
	var frozen time.Duration
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{Config: variable + pubpoolSubscriptions(f, subs, `["pub_a"]`)},
			{
				PreConfig: func() {
					if err := pub.Freeze(); err != nil {
						t.Fatal(err)
					}
					began = time.Now()
				},
				Config:             variable + pubpoolSubscriptions(f, subs, `["pub_a", "pub_never"]`),
				PlanOnly:           true,
				ExpectNonEmptyPlan: true,
			},
			{
				PreConfig: func() {
					frozen = time.Since(began)
					if err := pub.Thaw(); err != nil {
						t.Fatal(err)
					}
				},
				Config:             variable + pubpoolSubscriptions(f, subs, `["pub_a", "pub_never"]`),
				PlanOnly:           true,
				ExpectNonEmptyPlan: true,
			},
		},
	})
	t.Logf("the frozen step's plans of %d subscriptions took %s", subs, frozen.Round(time.Millisecond))
	// Two plans of one timeout each and the CLI's own work on a busy
	// machine; a timeout per Read and per plan took 31s.
	if frozen > 28*time.Second {
		t.Errorf("the step's plans took %s with the publisher frozen; want about one publisherProbeTimeout (5s) a plan", frozen)
	}
	publisher := fmt.Sprintf("127.0.0.1:%d", pub.Port)
	if !logHasEntry(t, logPath, "Publisher Not Checked", publisher, "within 5s", "did not answer") {
		t.Errorf("the plan did not warn that publisher %s was not checked", publisher)
	}
	if !logHasEntry(t, logPath, "Publication Not on the Publisher", "pub_never", publisher) {
		t.Errorf("the plan after the publisher was thawed did not see it (no warning of the publication pub_never it lacks)")
	}
	checkLogHasNo(t, logPath, canaryParts(pw), "Publisher Not Checked")
}

// slotLooks is how many times the provider's publisher probe has read
// pg_replication_slots on n so far, by its log (log_statement = all).
func slotLooks(t *testing.T, n *routertest.Node) int {
	t.Helper()
	return logLinesWith(t, n, "terraform-provider-pgreplication", "SELECT slot_type, plugin::text")
}

// The refresh of a disabled failover subscription reads only its slot's
// failover from the publisher, which must not be taken from a server that
// may not be the subscriber's publisher (publisherMayDiffer: conninfo
// names 127.0.0.1, and the provider reaches the subscriber at a non-local
// address). Read threw that answer away, but asked anyway: a session and a
// query on a server that may be no publisher of this subscription, and a
// publisherProbeTimeout when it does not answer. It no longer asks.
func TestAccSubscription_pubpoolElsewhereFailoverNotAsked(t *testing.T) {
	testAccPreCheck(t)
	pubTopo := routertest.Start(t, routertest.WithStandbys(0), routertest.WithSetting("log_statement", "all"))
	if pubTopo.Version < 17 {
		t.Skipf("PostgreSQL %d has no failover slots", pubTopo.Version)
	}
	pub := pubTopo.Primary
	ip := outboundAddress(t)
	f := newSubscriptionFixture(t, pub, "sub_pubpool_elsewhere", `CREATE PUBLICATION pub_a FOR TABLE t1;`,
		[]routertest.Option{routertest.WithSetting("listen_addresses", "127.0.0.1,"+ip)})
	trustHBA(t, f.sub, "host all all "+ip+"/32 trust")
	config := providerBlockAt("", ip, f.sub.Port, "postgres", "postgres", "disable") + fmt.Sprintf(`
resource "pgreplication_subscription" "this" {
  name         = "sub_pubpool_elsewhere"
  conninfo     = %q
  publications = ["pub_a"]
  enabled      = false
  failover     = true
}
`, f.conninfo(""))
	before := -1
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{Config: config},
			{
				PreConfig: func() { before = slotLooks(t, pub) },
				Config:    config,
				PlanOnly:  true,
			},
		},
	})
	if looks := slotLooks(t, pub) - before; before < 0 || looks > 0 {
		t.Errorf("the plan's refresh read the slot on a publisher that may not be the subscriber's %d times, only to throw the answer away; want 0", looks)
	}
}
