package provider

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	fwresource "github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
	"github.com/jackc/pgx/v5"

	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/conninfo"
	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/importid"
	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/normalized"
	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/pgsql"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// subscriptionFixture is what a subscription test needs: a database with
// tables and publications on a publisher, and a subscriber server of the
// test's own with the same tables, so subscriptions never touch the shared
// topology's primary beyond the slots they hold on it.
type subscriptionFixture struct {
	pub   *routertest.Node // publisher
	pubDB string
	sub   *routertest.Node // subscriber, a lone primary of this test
}

// newSubscriptionFixture creates pubDB on pub with tables t1 and t2 (id
// primary key) and runs publisherSQL there; the subscriber gets the same
// tables in subscriberDBs ("postgres" when none). Cleanup drops the
// publisher database and any slot left in it, after the subscriber stops.
func newSubscriptionFixture(t *testing.T, pub *routertest.Node, pubDB, publisherSQL string, subOpts []routertest.Option, subscriberDBs ...string) subscriptionFixture {
	t.Helper()
	execSQL(t, pub, "postgres", "CREATE DATABASE "+pgsql.Ident(pubDB))
	// Registered before the subscriber starts, so it runs after the
	// subscriber stopped: its slots are inactive then and can be dropped.
	t.Cleanup(func() {
		execSQL(t, pub, "postgres", `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1 AND NOT active`, pubDB)
		execSQL(t, pub, "postgres", "DROP DATABASE "+pgsql.Ident(pubDB)+" WITH (FORCE)")
	})
	const tables = `CREATE TABLE t1 (id int PRIMARY KEY, v text); CREATE TABLE t2 (id int PRIMARY KEY, v text);`
	execSQL(t, pub, pubDB, tables+publisherSQL)
	sub := routertest.Start(t, append([]routertest.Option{routertest.WithStandbys(0)}, subOpts...)...).Primary
	if len(subscriberDBs) == 0 {
		subscriberDBs = []string{"postgres"}
	}
	for _, db := range subscriberDBs {
		if db != "postgres" {
			execSQL(t, sub, "postgres", "CREATE DATABASE "+pgsql.Ident(db))
		}
		execSQL(t, sub, db, tables)
	}
	return subscriptionFixture{pub: pub, pubDB: pubDB, sub: sub}
}

// conninfo is the connection to the publisher database, with extra
// keyword/value pairs appended.
func (f subscriptionFixture) conninfo(extra string) string {
	s := fmt.Sprintf("host=127.0.0.1 port=%d user=postgres dbname=%s", f.pub.Port, f.pubDB)
	if extra != "" {
		s += " " + extra
	}
	return s
}

// waitRows polls until table on the subscriber has want rows: replication
// is asynchronous.
func waitRows(t *testing.T, n *routertest.Node, db, table string, want int64) resource.TestCheckFunc {
	return func(*terraform.State) error {
		var got int64
		done, err := pollUntil(context.Background(), 60*time.Second, func(context.Context) (bool, error) {
			got = queryValue[int64](t, n, db, "SELECT count(*) FROM "+pgsql.Ident(table))
			return got == want, nil
		})
		if done || err != nil {
			return err
		}
		state := queryValue[string](t, n, db, `SELECT coalesce(string_agg(format('%s enabled=%s', subname, subenabled), '; '), 'none') FROM pg_subscription`)
		log, _ := os.ReadFile(filepath.Join(n.DataDir, "postgresql.log"))
		if len(log) > 4000 {
			log = log[len(log)-4000:]
		}
		return fmt.Errorf("%s on %s has %d rows after 60s, want %d; subscriptions: %s; server log:\n%s", table, n.Name, got, want, state, log)
	}
}

// stillRows checks that table still has want rows: nothing was copied
// again. A copy shows before it starts: CREATE SUBSCRIPTION and REFRESH
// PUBLICATION enter each table to copy in pg_subscription_rel in a state
// other than ready ('r') before they return (with copy_data = false, ready
// at once), and it stays so until the copy is over. So stillRows waits
// until every table of the subscriptions in db is ready, then counts; a
// table not ready on a disabled subscription is a copy that started and
// stopped (disable_on_error) or waits, and fails at once. (It waited a
// fixed 3 s, which a slow copy could outlast, and a copy that failed on
// the rows already there passed it.)
func stillRows(t *testing.T, n *routertest.Node, db, table string, want int64) resource.TestCheckFunc {
	return func(*terraform.State) error {
		const notReady = `SELECT coalesce(string_agg(format('%s of %s (%s, state %s)', r.srrelid::regclass, s.subname,
  CASE WHEN s.subenabled THEN 'enabled' ELSE 'disabled' END, r.srsubstate), ', '), '')
FROM pg_subscription_rel r JOIN pg_subscription s ON s.oid = r.srsubid WHERE r.srsubstate <> 'r'`
		var copying string
		done, err := pollUntil(context.Background(), 60*time.Second, func(context.Context) (bool, error) {
			copying = queryValue[string](t, n, db, notReady)
			if strings.Contains(copying, "(disabled,") {
				return false, fmt.Errorf("tables not ready on %s, a copy started or pending: %s", n.Name, copying)
			}
			return copying == "", nil
		})
		if err != nil {
			return err
		}
		if !done {
			return fmt.Errorf("tables still being copied on %s after 60s: %s", n.Name, copying)
		}
		if got := queryValue[int64](t, n, db, "SELECT count(*) FROM "+pgsql.Ident(table)); got != want {
			return fmt.Errorf("%s on %s has %d rows, want %d: data was copied again", table, n.Name, got, want)
		}
		return nil
	}
}

// errorText matches a diagnostic that contains phrases in order, however the
// CLI wrapped its lines.
func errorText(phrases ...string) *regexp.Regexp {
	quoted := make([]string, len(phrases))
	for i, p := range phrases {
		quoted[i] = wrappedText(p)
	}
	return regexp.MustCompile(`(?s)` + strings.Join(quoted, ".*"))
}

// logHasEntry reports whether an entry of the TRACE log at logPath holds
// every phrase. An entry starts with its time stamp; a diagnostic's detail
// of several lines continues it on lines of its own.
func logHasEntry(t *testing.T, logPath string, phrases ...string) bool {
	t.Helper()
	b, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	entry := regexp.MustCompile(`(?m)^\d{4}-\d{2}-\d{2}T`)
	starts := entry.FindAllStringIndex(string(b), -1)
	for i, s := range starts {
		end := len(b)
		if i+1 < len(starts) {
			end = starts[i+1][0]
		}
		e := string(b[s[0]:end])
		if !slices.ContainsFunc(phrases, func(p string) bool { return !strings.Contains(e, p) }) {
			return true
		}
	}
	return false
}

func subscriberProvider(n *routertest.Node) string {
	return providerConfig("subscriber", n)
}

const subscriptionAddr = "pgreplication_subscription.this"

// The life of a subscription: create and replicate, import, every in-place
// change (publications, password, options, owner, enabled, name) without a
// new subscription and without copying data again, drift of each kind, and
// create-time options changed later without a replace.
func TestAccSubscription_basic(t *testing.T) {
	topo := testAccTopology(t)
	f := newSubscriptionFixture(t, topo.Primary, "sub_pub_basic", `
CREATE PUBLICATION pub_a FOR TABLE t1;
CREATE PUBLICATION pub_b FOR TABLE t2;
INSERT INTO t1 SELECT g, 'row ' || g FROM generate_series(1, 10) g;
INSERT INTO t2 SELECT g, 'row ' || g FROM generate_series(1, 5) g;`, nil)
	execSQL(t, f.sub, "postgres", `CREATE ROLE sub_owner SUPERUSER LOGIN`)

	config := func(name, connection, body string) string {
		return subscriberProvider(f.sub) + fmt.Sprintf(`
resource "pgreplication_subscription" "this" {
  provider   = pgreplication.subscriber
  name       = %q
  conninfo   = %q
%s
}
`, name, connection, body)
	}
	first := f.conninfo("password='first secret'")
	rotated := f.conninfo("password='rotated secret'")
	// The suite may run on any supported major (make test PG_VERSION=…);
	// parallel streaming and origin are 16+, and tested there.
	major := queryValue[int](t, f.sub, "postgres", `SELECT current_setting('server_version_num')::int`) / 10000
	streaming, origin := "parallel", "none"
	if major < 16 {
		streaming, origin = "on", "any"
	}
	updated := fmt.Sprintf(`
  publications       = ["pub_a", "pub_b"]
  synchronous_commit = "remote_apply"
  binary             = true
  streaming          = %q
  disable_on_error   = true
  origin             = %q
  owner              = "sub_owner"`, streaming, origin)
	if major < 16 {
		updated = strings.Replace(updated, `origin             = "any"`, "", 1)
	}

	// The subscription's oid proves that in-place changes kept the same
	// subscription (and so its slot and its copied tables).
	var oid uint32
	sameSubscription := func(name string) resource.TestCheckFunc {
		return func(*terraform.State) error {
			got := queryValue[uint32](t, f.sub, "postgres", `SELECT oid FROM pg_subscription WHERE subname = $1`, name)
			if oid == 0 {
				oid = got
			} else if got != oid {
				return fmt.Errorf("subscription %s has oid %d, was %d: it was recreated", name, got, oid)
			}
			return nil
		}
	}
	publish := func(table string, id int) func() {
		return func() {
			execSQL(t, f.pub, f.pubDB, fmt.Sprintf(`INSERT INTO %s VALUES (%d, 'later')`, pgsql.Ident(table), id))
		}
	}

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				// Create: the existing rows are copied, a new one replicates.
				Config: config("sub_basic", first, `  publications = ["pub_a"]`),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(subscriptionAddr, tfjsonpath.New("id"), knownvalue.StringExact("postgres/sub_basic")),
					statecheck.ExpectKnownValue(subscriptionAddr, tfjsonpath.New("database"), knownvalue.StringExact("postgres")),
					statecheck.ExpectKnownValue(subscriptionAddr, tfjsonpath.New("slot_name"), knownvalue.StringExact("sub_basic")),
					statecheck.ExpectKnownValue(subscriptionAddr, tfjsonpath.New("enabled"), knownvalue.Bool(true)),
					statecheck.ExpectKnownValue(subscriptionAddr, tfjsonpath.New("streaming"), knownvalue.StringExact(defaultSubscriptionStreaming(major))),
					statecheck.ExpectKnownValue(subscriptionAddr, tfjsonpath.New("synchronous_commit"), knownvalue.StringExact("off")),
					statecheck.ExpectKnownValue(subscriptionAddr, tfjsonpath.New("origin"), knownvalue.StringExact("any")),
					statecheck.ExpectKnownValue(subscriptionAddr, tfjsonpath.New("owner"), knownvalue.StringExact("postgres")),
					statecheck.ExpectKnownValue(subscriptionAddr, tfjsonpath.New("conninfo"), knownvalue.StringExact(first)),
					statecheck.ExpectSensitiveValue(subscriptionAddr, tfjsonpath.New("conninfo")),
				},
				Check: resource.ComposeTestCheckFunc(
					sameSubscription("sub_basic"),
					waitRows(t, f.sub, "postgres", "t1", 10),
					func(s *terraform.State) error { publish("t1", 11)(); return nil },
					waitRows(t, f.sub, "postgres", "t1", 11),
				),
			},
			{
				ResourceName:      subscriptionAddr,
				ImportState:       true,
				ImportStateVerify: true,
				// create_slot and copy_data shape CREATE SUBSCRIPTION only;
				// PostgreSQL does not keep them, so an import cannot read them.
				ImportStateVerifyIgnore: []string{"create_slot", "copy_data"},
			},
			{
				// Rotate the password, add a publication, change every
				// option and the owner: all in place. Rows deleted by hand on
				// the subscriber stay deleted (nothing is copied again), and
				// pub_b's existing rows are not copied (copy_data = false on
				// SET PUBLICATION): only rows published later arrive.
				PreConfig: func() { execSQL(t, f.sub, "postgres", `DELETE FROM t1 WHERE id <= 3`) },
				Config:    config("sub_basic", rotated, updated),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(subscriptionAddr, plancheck.ResourceActionUpdate),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(subscriptionAddr, tfjsonpath.New("conninfo"), knownvalue.StringExact(rotated)),
					statecheck.ExpectKnownValue(subscriptionAddr, tfjsonpath.New("publications"),
						knownvalue.SetExact([]knownvalue.Check{knownvalue.StringExact("pub_a"), knownvalue.StringExact("pub_b")})),
					statecheck.ExpectKnownValue(subscriptionAddr, tfjsonpath.New("synchronous_commit"), knownvalue.StringExact("remote_apply")),
					statecheck.ExpectKnownValue(subscriptionAddr, tfjsonpath.New("binary"), knownvalue.Bool(true)),
					statecheck.ExpectKnownValue(subscriptionAddr, tfjsonpath.New("streaming"), knownvalue.StringExact(streaming)),
					statecheck.ExpectKnownValue(subscriptionAddr, tfjsonpath.New("disable_on_error"), knownvalue.Bool(true)),
					statecheck.ExpectKnownValue(subscriptionAddr, tfjsonpath.New("origin"), knownvalue.StringExact(origin)),
					statecheck.ExpectKnownValue(subscriptionAddr, tfjsonpath.New("owner"), knownvalue.StringExact("sub_owner")),
				},
				Check: resource.ComposeTestCheckFunc(
					sameSubscription("sub_basic"),
					stillRows(t, f.sub, "postgres", "t1", 8),
					stillRows(t, f.sub, "postgres", "t2", 0),
					func(s *terraform.State) error { publish("t1", 12)(); publish("t2", 6)(); return nil },
					waitRows(t, f.sub, "postgres", "t1", 9),
					waitRows(t, f.sub, "postgres", "t2", 1),
				),
			},
			{
				Config: config("sub_basic", rotated, updated+"\n  enabled = false"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(subscriptionAddr, plancheck.ResourceActionUpdate),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(subscriptionAddr, tfjsonpath.New("enabled"), knownvalue.Bool(false)),
				},
				Check: sameSubscription("sub_basic"),
			},
			{
				// Enabled again; then drift: disabled by hand.
				Config: config("sub_basic", rotated, updated),
				Check: resource.ComposeTestCheckFunc(
					sameSubscription("sub_basic"),
					func(s *terraform.State) error { publish("t1", 13)(); return nil },
					waitRows(t, f.sub, "postgres", "t1", 10),
				),
			},
			{
				PreConfig: func() { execSQL(t, f.sub, "postgres", `ALTER SUBSCRIPTION sub_basic DISABLE`) },
				Config:    config("sub_basic", rotated, updated),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					expectDrift(subscriptionAddr, "enabled"),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(subscriptionAddr, tfjsonpath.New("enabled"), knownvalue.Bool(true)),
				},
			},
			{
				// Drift: the connection edited by hand.
				PreConfig: func() {
					execSQL(t, f.sub, "postgres", `ALTER SUBSCRIPTION sub_basic CONNECTION `+pgsql.Literal(rotated+" application_name=by_hand"))
				},
				Config: config("sub_basic", rotated, updated),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					expectDrift(subscriptionAddr, "conninfo"),
				}},
				Check: func(*terraform.State) error {
					if got := queryValue[string](t, f.sub, "postgres", `SELECT subconninfo FROM pg_subscription WHERE subname = 'sub_basic'`); got != rotated {
						return fmt.Errorf("apply left the connection edited by hand")
					}
					return nil
				},
			},
			{
				// Drift: the publications changed by hand.
				PreConfig: func() {
					execSQL(t, f.sub, "postgres", `ALTER SUBSCRIPTION sub_basic SET PUBLICATION pub_a WITH (refresh = false)`)
				},
				Config: config("sub_basic", rotated, updated),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					expectDrift(subscriptionAddr, "publications"),
				}},
				Check: resource.ComposeTestCheckFunc(
					sameSubscription("sub_basic"),
					stillRows(t, f.sub, "postgres", "t2", 1),
				),
			},
			{
				// The same parameters written differently are no drift, and
				// the text of the configuration is kept.
				PreConfig: func() {
					execSQL(t, f.sub, "postgres", `ALTER SUBSCRIPTION sub_basic CONNECTION `+
						pgsql.Literal(fmt.Sprintf("password='rotated secret'   dbname='%s' user=postgres port='%d' host=127.0.0.1", f.pubDB, f.pub.Port)))
				},
				Config:   config("sub_basic", rotated, updated),
				PlanOnly: true,
			},
			{
				// Renamed in place; the slot keeps its name.
				Config: config("sub_basic_renamed", rotated, updated),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(subscriptionAddr, plancheck.ResourceActionUpdate),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(subscriptionAddr, tfjsonpath.New("id"), knownvalue.StringExact("postgres/sub_basic_renamed")),
					statecheck.ExpectKnownValue(subscriptionAddr, tfjsonpath.New("slot_name"), knownvalue.StringExact("sub_basic")),
				},
				Check: sameSubscription("sub_basic_renamed"),
			},
			{
				// Dropped by hand: planned as a create. copy_data = false, so
				// the new subscription does not copy rows the table has.
				PreConfig: func() { execSQL(t, f.sub, "postgres", `DROP SUBSCRIPTION sub_basic_renamed`) },
				Config:    config("sub_basic_renamed", rotated, updated+"\n  slot_name = \"sub_basic\"\n  copy_data = false"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					expectRecreate(subscriptionAddr),
				}},
				Check: resource.ComposeTestCheckFunc(
					func(*terraform.State) error { oid = 0; return nil },
					sameSubscription("sub_basic_renamed"),
					stillRows(t, f.sub, "postgres", "t1", 10),
				),
			},
			{
				// create_slot and copy_data changed later: an update of the
				// state only, never a replace (which would copy data again).
				Config: config("sub_basic_renamed", rotated, updated+"\n  slot_name = \"sub_basic\"\n  copy_data = true\n  create_slot = false"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(subscriptionAddr, plancheck.ResourceActionUpdate),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(subscriptionAddr, tfjsonpath.New("copy_data"), knownvalue.Bool(true)),
					statecheck.ExpectKnownValue(subscriptionAddr, tfjsonpath.New("create_slot"), knownvalue.Bool(false)),
				},
				Check: resource.ComposeTestCheckFunc(
					sameSubscription("sub_basic_renamed"),
					stillRows(t, f.sub, "postgres", "t1", 10),
				),
			},
		},
	})
	// Destroy dropped the slot on the publisher too.
	if n := queryValue[int64](t, f.pub, "postgres", `SELECT count(*) FROM pg_replication_slots WHERE database = $1`, f.pubDB); n != 0 {
		t.Errorf("%d replication slot(s) left on the publisher after destroy", n)
	}
}

// Names with dots, slashes, quotes, spaces, upper case and non-ASCII, and
// SQL's own punctuation (a backslash, $$, comments, a line break), for the
// subscription, its database and its publications, and a conninfo value
// with all of them: they apply, read back with no diff, and import. A name
// that cannot be a slot name is refused at plan unless slot_name is set,
// and a slot_name with any of them is refused at plan, as is a publication
// name with a backslash, which PostgreSQL's apply worker cannot stream from.
func TestAccSubscription_hostileNames(t *testing.T) {
	topo := testAccTopology(t)
	const (
		subName = "Sub \"Ünï\".code/ v1 $$ -- /*\\\n2"
		subDB   = `Sub DB/ü "q".x`
		pub1    = "Pub \"x\".y/z Ü $$ -- \n/*"
		pub2    = `pub two/ä`
		appName = "it's \\ $$ -- /* ü\n"
	)
	f := newSubscriptionFixture(t, topo.Primary, "sub_pub_hostile", fmt.Sprintf(`
CREATE PUBLICATION %s FOR TABLE t1;
CREATE PUBLICATION %s FOR TABLE t2;
INSERT INTO t1 VALUES (1, 'one');`, pgsql.Ident(pub1), pgsql.Ident(pub2)), nil, subDB)
	config := func(slot string, publications ...string) string {
		if publications == nil {
			publications = []string{pub1, pub2}
		}
		return subscriberProvider(f.sub) + fmt.Sprintf(`
resource "pgreplication_subscription" "this" {
  provider     = pgreplication.subscriber
  name         = %s
  database     = %s
  conninfo     = %s
  publications = [%s, %s]
  %s
}
`, hcl(subName), hcl(subDB), hcl(f.conninfo("application_name="+conninfo.Quote(appName))), hcl(publications[0]), hcl(publications[1]), slot)
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				// PostgreSQL would truncate the role's name and then not
				// find it (or find another role): refused at plan.
				Config:      config(`slot_name = "sub_hostile"` + "\n  owner = \"" + strings.Repeat("ö", 32) + "\""),
				PlanOnly:    true,
				ExpectError: errorText("Invalid Owner Name", "64 bytes long; PostgreSQL truncates identifiers to 63 bytes"),
			},
			{
				Config:      config(""),
				PlanOnly:    true,
				ExpectError: errorText("Subscription Name Is Not a Slot Name", "Set slot_name"),
			},
			{
				// PostgreSQL's apply worker cannot stream from it (15, 17): seen as
				// a subscription created that never replicates (every
				// apply worker: "could not start WAL streaming: ERROR:
				// syntax error").
				Config:      config(`slot_name = "sub_hostile"`, pub1, `pub\two`),
				PlanOnly:    true,
				ExpectError: errorText("Publication Name Cannot Be Subscribed To", `"pub\\two" has a backslash`, "never replicate", "RENAME TO"),
			},
			{
				Config:      config("slot_name = " + hcl("Slot'x $$ -- /*\\\n")),
				PlanOnly:    true,
				ExpectError: errorText("Invalid Replication Slot Name", "is not a replication slot name", "lower-case letters, digits and underscores"),
			},
			{
				Config: config(`slot_name = "sub_hostile"`),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(subscriptionAddr, tfjsonpath.New("id"), knownvalue.StringExact(importid.Format(subDB, subName))),
					statecheck.ExpectKnownValue(subscriptionAddr, tfjsonpath.New("publications"),
						knownvalue.SetExact([]knownvalue.Check{knownvalue.StringExact(pub1), knownvalue.StringExact(pub2)})),
				},
				Check: waitRows(t, f.sub, subDB, "t1", 1),
			},
			{
				ResourceName:      subscriptionAddr,
				ImportState:       true,
				ImportStateVerify: true,
				// Create-time only: PostgreSQL does not keep them.
				ImportStateVerifyIgnore: []string{"create_slot", "copy_data"},
			},
		},
	})
}

// On PostgreSQL 15 the subscription works with what 15 has (substream is a
// boolean there), and what it lacks (streaming = "parallel", origin) is
// refused by terraform plan, naming the feature and the version.
func TestAccSubscription_postgres15(t *testing.T) {
	topo := testAccTopology(t)
	f := newSubscriptionFixture(t, topo.Primary, "sub_pub_pg15", `
CREATE PUBLICATION pub_a FOR TABLE t1;
INSERT INTO t1 VALUES (1, 'one');`, []routertest.Option{routertest.WithVersion(15)})
	config := func(extra string) string {
		return subscriberProvider(f.sub) + fmt.Sprintf(`
resource "pgreplication_subscription" "this" {
  provider         = pgreplication.subscriber
  name             = "sub_pg15"
  conninfo         = %q
  publications     = ["pub_a"]
  streaming        = "on"
  disable_on_error = true
  binary           = true
  %s
}
`, f.conninfo(""), extra)
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: config(""),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(subscriptionAddr, tfjsonpath.New("streaming"), knownvalue.StringExact("on")),
					statecheck.ExpectKnownValue(subscriptionAddr, tfjsonpath.New("disable_on_error"), knownvalue.Bool(true)),
					statecheck.ExpectKnownValue(subscriptionAddr, tfjsonpath.New("origin"), knownvalue.StringExact("any")),
				},
				Check: waitRows(t, f.sub, "postgres", "t1", 1),
			},
			{
				ResourceName:            subscriptionAddr,
				ImportState:             true,
				ImportStateVerify:       true,
				ImportStateVerifyIgnore: []string{"create_slot", "copy_data"}, // create-time only
			},
			{
				// Drift of the boolean substream of 15.
				PreConfig: func() { execSQL(t, f.sub, "postgres", `ALTER SUBSCRIPTION sub_pg15 SET (streaming = off)`) },
				Config:    config(""),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					expectDrift(subscriptionAddr, "streaming"),
				}},
			},
			{
				Config:      strings.Replace(config(""), `streaming        = "on"`, `streaming        = "parallel"`, 1),
				PlanOnly:    true,
				ExpectError: errorText(`streaming = "parallel" needs PostgreSQL 16 or later`, "PostgreSQL 15"),
			},
			{
				Config:      config(`origin = "none"`),
				PlanOnly:    true,
				ExpectError: errorText("origin needs PostgreSQL 16 or later", "PostgreSQL 15"),
			},
			{
				Config:      config("password_required = false"),
				PlanOnly:    true,
				ExpectError: errorText("password_required needs PostgreSQL 16 or later", "PostgreSQL 15"),
			},
			{
				Config:      config("run_as_owner = true"),
				PlanOnly:    true,
				ExpectError: errorText("run_as_owner needs PostgreSQL 16 or later", "PostgreSQL 15"),
			},
			{
				Config:      config("failover = true"),
				PlanOnly:    true,
				ExpectError: errorText("failover needs PostgreSQL 17 or later", "PostgreSQL 15"),
			},
			{
				// Disabled, as PostgreSQL 18 would need: 15 cannot change it at all.
				Config:      config("two_phase = true\n  enabled = false"),
				PlanOnly:    true,
				ExpectError: errorText("Cannot Change two_phase of a Subscription", "sub_pg15", "PostgreSQL 15", "-replace"),
			},
		},
	})
}

// A publisher without wal_level = logical is refused by terraform plan, on the
// conninfo attribute, with the fix.
func TestAccSubscription_publisherWalLevel(t *testing.T) {
	topo := testAccTopology(t)
	pub := routertest.Start(t, routertest.WithStandbys(0), routertest.WithSetting("wal_level", "replica")).Primary
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			// The subscriber is never written to: the plan fails.
			Config: subscriberProvider(topo.Primary) + fmt.Sprintf(`
resource "pgreplication_subscription" "this" {
  provider     = pgreplication.subscriber
  name         = "sub_wal_level"
  conninfo     = "host=127.0.0.1 port=%d user=postgres dbname=postgres password=never-shown"
  publications = ["pub_a"]
}
`, pub.Port),
			PlanOnly:    true,
			ExpectError: errorText("Publisher Needs wal_level = logical", "wal_level = replica", "ALTER SYSTEM SET wal_level = logical"),
		}},
	})
}

// With the publisher gone, destroy fails and says what to do; with
// drop_slot_on_destroy = false it detaches the slot and drops the
// subscription.
func TestAccSubscription_unreachablePublisher(t *testing.T) {
	t.Parallel()
	testAccPreCheck(t)
	pub := routertest.Start(t, routertest.WithStandbys(0)).Primary
	f := newSubscriptionFixture(t, pub, "sub_pub_gone", `CREATE PUBLICATION pub_a FOR TABLE t1;`, nil)
	// The test stops the publisher; start it again before the fixture's
	// cleanup drops its database (cleanups run last registered first).
	t.Cleanup(func() { _ = pub.Start(context.Background()) })
	config := func(extra string) string {
		return subscriberProvider(f.sub) + fmt.Sprintf(`
resource "pgreplication_subscription" "this" {
  provider     = pgreplication.subscriber
  name         = "sub_gone"
  conninfo     = %q
  publications = ["pub_a"]
  %s
}
`, f.conninfo("password=never-shown"), extra)
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{Config: config("")},
			{
				PreConfig: func() {
					if err := pub.Stop(context.Background()); err != nil {
						t.Fatal(err)
					}
				},
				Config:      config(""),
				Destroy:     true,
				ExpectError: errorText("Cannot Drop Subscription", "set drop_slot_on_destroy = false"),
			},
			{
				Config: config("drop_slot_on_destroy = false"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(subscriptionAddr, plancheck.ResourceActionUpdate),
				}},
			},
		},
		CheckDestroy: func(*terraform.State) error {
			if n := queryValue[int64](t, f.sub, "postgres", `SELECT count(*) FROM pg_subscription`); n != 0 {
				return fmt.Errorf("%d subscription(s) left after destroy", n)
			}
			return nil
		},
	})
}

// A publisher that does not answer while apply runs a statement that
// reaches it fails the statement when publisher_timeout (5s) ends, not when
// the provider's statement_timeout (40s here, 5min by default) would, naming
// the statement, the publisher's host:port (never the password), what the
// subscriber was waiting for and the fix; the statement is rolled back.
// First a slow publisher: a write transaction that stays open holds the
// creation of the slot, and the cancelled CREATE leaves nothing on either
// side. Then a stopped one (SIGSTOP: it accepts connections, never answers):
// CREATE SUBSCRIPTION, SET PUBLICATION (what came before it in the apply, a
// connection change, stays) and DROP SUBSCRIPTION. With drop_slot_on_destroy
// = false, applied while the publisher is still stopped, destroy then drops
// the subscription and leaves its slot there.
func TestAccSubscription_publisherNotAnswering(t *testing.T) {
	testAccPreCheck(t)
	pub := routertest.Start(t, routertest.WithStandbys(0)).Primary // frozen: not the shared one
	f := newSubscriptionFixture(t, pub, "sub_pub_frozen", `
CREATE PUBLICATION pub_a FOR TABLE t1;
CREATE PUBLICATION pub_b FOR TABLE t2;
INSERT INTO t1 SELECT g, 'row ' || g FROM generate_series(1, 10) g;`, nil)
	// Registered last, so it runs first: the fixture's cleanup needs the
	// publisher answering.
	t.Cleanup(func() {
		if err := pub.Thaw(); err != nil {
			t.Error(err)
		}
	})
	const pw = "canary" + canaryMark + "-frozen" // the publisher trusts; the password is there to be hidden
	variable := canaryVariable(t, pw)
	publisher := fmt.Sprintf("127.0.0.1:%d", pub.Port)
	config := func(conninfoExtra, publications, extra string) string {
		return variable + fmt.Sprintf(`
provider "pgreplication" {
  alias             = "subscriber"
  host              = %q
  port              = %d
  username          = "postgres"
  database          = "postgres"
  sslmode           = "disable"
  statement_timeout = "40s"
}

resource "pgreplication_subscription" "this" {
  provider          = pgreplication.subscriber
  name              = "sub_frozen"
  conninfo          = "%s password=${var.canary_password}"
  publications      = [%s]
  publisher_timeout = "5s"
  %s
}
`, f.sub.Host, f.sub.Port, f.conninfo(conninfoExtra), publications, extra)
	}
	var frozenAt time.Time
	freeze := func() {
		if err := pub.Freeze(); err != nil {
			t.Fatal(err)
		}
		frozenAt = time.Now()
	}
	// Each failing step plans (a create also probes the publisher for 5s),
	// then waits publisher_timeout and at most 5s more to cancel; the rest
	// is the CLI's own work on a busy machine. Before, each ended at
	// statement_timeout (40s), with its message.
	failedInTime := func(what string) {
		t.Helper()
		elapsed := time.Since(frozenAt)
		t.Logf("%s failed %s after the publisher froze", what, elapsed.Round(time.Millisecond))
		if elapsed > 35*time.Second {
			t.Errorf("%s failed %s after the publisher froze; want within publisher_timeout (5s) and a margin", what, elapsed)
		}
	}
	subscriptions := func() int64 {
		return queryValue[int64](t, f.sub, "postgres", `SELECT count(*) FROM pg_subscription WHERE subname = 'sub_frozen'`)
	}
	thaw := func() {
		if err := pub.Thaw(); err != nil {
			t.Fatal(err)
		}
	}
	nothingLeft := func(what string) {
		t.Helper()
		if n := subscriptions(); n != 0 {
			t.Fatalf("the cancelled %s left %d subscription(s)", what, n)
		}
		if slotExists(t, pub, "sub_frozen") {
			t.Fatalf("the cancelled %s left its slot on the publisher", what)
		}
	}
	var writer *pgx.Conn // a write transaction left open on the publisher
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				PreConfig: func() {
					var err error
					if writer, err = pgx.Connect(context.Background(), pub.DSNFor(f.pubDB)); err != nil {
						t.Fatal(err)
					}
					if _, err := writer.Exec(context.Background(), `BEGIN; INSERT INTO t2 VALUES (1, 'open')`); err != nil {
						t.Fatal(err)
					}
				},
				Config: config("", `"pub_a"`, ""),
				ExpectError: errorWithout("Cannot Create Subscription", `CREATE SUBSCRIPTION "sub_frozen" in database "postgres"`,
					"did not finish within publisher_timeout (5s)", "connected to the publisher at "+publisher+" and still waiting for its answer",
					"creating a replication slot waits for the publisher's running write transactions to end",
					`was creating the replication slot "sub_frozen"`, "raise publisher_timeout"),
			},
			{
				PreConfig: func() {
					if err := writer.Close(context.Background()); err != nil { // rolls back
						t.Fatal(err)
					}
					// The publisher's walsender was waiting for that
					// transaction: give it the time to see it end.
					time.Sleep(2 * time.Second)
					nothingLeft("CREATE SUBSCRIPTION on a slow publisher")
					freeze()
				},
				Config: config("", `"pub_a"`, ""),
				ExpectError: errorWithout("Cannot Create Subscription", `CREATE SUBSCRIPTION "sub_frozen" in database "postgres"`,
					"did not finish within publisher_timeout (5s)", "still connecting to the publisher at "+publisher,
					"no subscription was created", "Bring the publisher back", "raise publisher_timeout"),
			},
			{
				PreConfig: func() {
					failedInTime("CREATE SUBSCRIPTION")
					thaw()
					nothingLeft("CREATE SUBSCRIPTION on a stopped publisher")
				},
				Config: config("", `"pub_a"`, ""),
				Check: resource.ComposeTestCheckFunc(waitRows(t, f.sub, "postgres", "t1", 10), func(*terraform.State) error {
					// DROP SUBSCRIPTION without a slot still connects for a
					// table waiting for its copy: wait until none does.
					ok, err := pollUntil(context.Background(), 60*time.Second, func(context.Context) (bool, error) {
						return queryValue[int64](t, f.sub, "postgres", `SELECT count(*) FROM pg_subscription_rel WHERE srsubstate <> 'r'`) == 0, nil
					})
					if !ok {
						return fmt.Errorf("the tables did not reach the ready state: %v", err)
					}
					return nil
				}),
			},
			{
				PreConfig: freeze,
				Config:    config("application_name=rotated", `"pub_a", "pub_b"`, ""),
				ExpectError: errorWithout("Cannot Alter Subscription", `ALTER SUBSCRIPTION "sub_frozen" SET PUBLICATION`,
					"did not finish within publisher_timeout (5s)", "still connecting to the publisher at "+publisher,
					"this statement changed nothing", "This apply had made CONNECTION", "application_name=''rotated''"),
			},
			{
				PreConfig: func() {
					failedInTime("SET PUBLICATION")
					got := queryValue[string](t, f.sub, "postgres", `SELECT array_to_string(subpublications, ',') || ' ' || subconninfo FROM pg_subscription WHERE subname = 'sub_frozen'`)
					if !strings.HasPrefix(got, "pub_a ") || !strings.Contains(got, "application_name=rotated") {
						t.Fatalf("after the cancelled SET PUBLICATION the subscriber has %q; want publications pub_a and the new connection", got)
					}
					frozenAt = time.Now() // still frozen
				},
				Config:  config("application_name=rotated", `"pub_a"`, ""),
				Destroy: true,
				ExpectError: errorWithout("Cannot Drop Subscription", `DROP SUBSCRIPTION "sub_frozen" in database "postgres"`,
					"did not finish within publisher_timeout (5s)", "still connecting to the publisher at "+publisher, "nothing was dropped",
					"set drop_slot_on_destroy = false", "ALTER SUBSCRIPTION … DISABLE; ALTER SUBSCRIPTION … SET (slot_name = NONE); DROP SUBSCRIPTION",
					`slot "sub_frozen" is left on the publisher`, "SELECT pg_drop_replication_slot('sub_frozen')"),
			},
			{
				PreConfig: func() {
					failedInTime("DROP SUBSCRIPTION")
					if n := subscriptions(); n != 1 {
						t.Fatalf("after the cancelled DROP SUBSCRIPTION the subscriber has %d subscription(s), want it still there", n)
					}
				},
				// Still frozen: only the state changes.
				Config: config("application_name=rotated", `"pub_a"`, "drop_slot_on_destroy = false"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(subscriptionAddr, plancheck.ResourceActionUpdate),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(subscriptionAddr, tfjsonpath.New("publications"), knownvalue.SetExact([]knownvalue.Check{knownvalue.StringExact("pub_a")})),
				},
			},
		},
		// Destroy runs with the publisher frozen still.
		CheckDestroy: func(*terraform.State) error {
			if n := subscriptions(); n != 0 {
				return fmt.Errorf("%d subscription(s) left after destroy", n)
			}
			thaw()
			if !slotExists(t, pub, "sub_frozen") {
				return fmt.Errorf("the slot sub_frozen is not on the publisher: drop_slot_on_destroy = false must leave it")
			}
			return nil
		},
	})
}

// A publisher that Terraform cannot reach does not fail the plan (the
// subscriber may reach what Terraform cannot); the apply reports it, with
// the password redacted.
func TestAccSubscription_publisherUnreachableAtPlan(t *testing.T) {
	topo := testAccTopology(t)
	config := subscriberProvider(topo.Primary) + `
resource "pgreplication_subscription" "this" {
  provider     = pgreplication.subscriber
  name         = "sub_nowhere"
  conninfo     = "host=127.0.0.1 port=1 user=postgres dbname=postgres password=never-shown"
  publications = ["pub_a"]
}
`
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{Config: config, PlanOnly: true, ExpectNonEmptyPlan: true},
			{Config: config, ExpectError: errorText("Cannot Create Subscription", "port='1'", "password='REDACTED'", "could not connect")},
		},
	})
}

// TestAccSubscription_writeOnlyPassword subscribes as a role whose password
// the publisher checks (scram-sha-256), given write-only: the data arrives,
// neither `terraform show -json` nor the state file holds the password, a
// new version writes the new one (the apply worker, made to reconnect,
// streams again with it), and a change of conninfo alone keeps it. A
// password in conninfo as well is refused at plan time. With a CLI older
// than 1.11 the framework refuses the argument, naming it.
func TestAccSubscription_writeOnlyPassword(t *testing.T) {
	testAccPreCheck(t)
	if !cliSupportsWriteOnly(t) {
		topo := testAccTopology(t) // refused at validation: nothing changes
		resource.Test(t, resource.TestCase{
			ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
			Steps: []resource.TestStep{{
				Config: subscriberProvider(topo.Primary) + `
resource "pgreplication_subscription" "this" {
  provider            = pgreplication.subscriber
  name                = "sub_wo"
  conninfo            = "host=127.0.0.1 dbname=postgres"
  publications        = ["pub_wo"]
  password_wo         = "x"
  password_wo_version = 1
}
`,
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)WriteOnly Attribute Not Allowed.*password_wo`),
			}},
		})
		return
	}
	pub := routertest.Start(t, routertest.WithStandbys(0)).Primary
	const role, first, second = "sub_wo", "first-wo-Secret", "second-wo-Secret"
	execSQL(t, pub, "postgres", "SET password_encryption = 'scram-sha-256'; CREATE ROLE "+role+" LOGIN REPLICATION PASSWORD '"+first+"'")
	if err := pub.RequirePassword(context.Background(), role); err != nil {
		t.Fatal(err)
	}
	f := newSubscriptionFixture(t, pub, "sub_pub_wo", `
CREATE PUBLICATION pub_wo FOR TABLE t1;
GRANT SELECT ON t1 TO `+role+`;
INSERT INTO t1 SELECT g, 'row ' || g FROM generate_series(1, 5) g;`, nil)
	connection := fmt.Sprintf("host=127.0.0.1 port=%d user=%s dbname=%s", pub.Port, role, f.pubDB)
	config := func(connection, password string, version int) string {
		return subscriberProvider(f.sub) + fmt.Sprintf(`
resource "pgreplication_subscription" "this" {
  provider            = pgreplication.subscriber
  name                = "sub_wo"
  conninfo            = %q
  publications        = ["pub_wo"]
  password_wo         = %q
  password_wo_version = %d
}
`, connection, password, version)
	}
	// The subscriber's catalog holds the password of the last version.
	subconninfoHas := func(want, notWant string) resource.TestCheckFunc {
		return func(*terraform.State) error {
			ci := queryValue[string](t, f.sub, "postgres", `SELECT subconninfo FROM pg_subscription WHERE subname = 'sub_wo'`)
			if !strings.Contains(ci, want) || strings.Contains(ci, notWant) {
				return fmt.Errorf("the subscription's connection does not hold the password of the last version (%q, not %q)", want, notWant)
			}
			return nil
		}
	}
	// The publisher drops the subscription's connections, so the apply
	// worker must log in again with what the subscriber has; a row
	// published afterwards arrives only if that works.
	reconnectAndPublish := func(id int) resource.TestCheckFunc {
		return func(*terraform.State) error {
			execSQL(t, pub, "postgres", `SELECT pg_terminate_backend(pid) FROM pg_stat_replication WHERE usename = $1`, role)
			execSQL(t, pub, f.pubDB, fmt.Sprintf(`INSERT INTO t1 VALUES (%d, 'later')`, id))
			return nil
		}
	}
	dir := t.TempDir()
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		WorkingDir:               dir,
		Steps: []resource.TestStep{
			{
				Config:      config(connection+" password=x", first, 1),
				PlanOnly:    true,
				ExpectError: errorText("Password Given Twice", "conninfo has a password too"),
			},
			{
				Config: config(connection, first, 1),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(subscriptionAddr, tfjsonpath.New("conninfo"), knownvalue.StringExact(connection)),
					statecheck.ExpectKnownValue(subscriptionAddr, tfjsonpath.New("password_wo"), knownvalue.Null()),
					statecheck.ExpectKnownValue(subscriptionAddr, tfjsonpath.New("password_wo_version"), knownvalue.Int64Exact(1)),
					expectNoSecret(dir, first),
				},
				Check: resource.ComposeTestCheckFunc(
					subconninfoHas(first, second),
					waitRows(t, f.sub, "postgres", "t1", 5),
				),
			},
			{
				PreConfig: func() {
					execSQL(t, pub, "postgres", "SET password_encryption = 'scram-sha-256'; ALTER ROLE "+role+" PASSWORD '"+second+"'")
				},
				Config: config(connection, second, 2),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(subscriptionAddr, plancheck.ResourceActionUpdate),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					expectNoSecret(dir, first),
					expectNoSecret(dir, second),
				},
				Check: resource.ComposeTestCheckFunc(
					subconninfoHas(second, first),
					reconnectAndPublish(6),
					waitRows(t, f.sub, "postgres", "t1", 6),
				),
			},
			{
				// conninfo changes, the version does not: the subscriber
				// keeps the password it has.
				Config: config(connection+" application_name=sub_wo_2", "ignored-without-a-new-version", 2),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(subscriptionAddr, tfjsonpath.New("conninfo"), knownvalue.StringExact(connection+" application_name=sub_wo_2")),
					expectNoSecret(dir, second),
				},
				Check: resource.ComposeTestCheckFunc(
					subconninfoHas("sub_wo_2", "ignored"),
					subconninfoHas(second, first),
					reconnectAndPublish(7),
					waitRows(t, f.sub, "postgres", "t1", 7),
				),
			},
		},
	})
}

// A create that fails half-way leaves nothing behind. An owner that does not
// exist is refused by the plan. When ALTER SUBSCRIPTION … OWNER TO fails at
// apply after CREATE SUBSCRIPTION succeeded (here an event trigger refuses
// it, as a site's policy might), apply drops the subscription it had just
// created, and the slot it created on the publisher, so that the next apply
// creates it rather than failing with "already exists".
func TestAccSubscription_createUndone(t *testing.T) {
	topo := testAccTopology(t)
	f := newSubscriptionFixture(t, topo.Primary, "sub_pub_undone", `CREATE PUBLICATION pub_a FOR TABLE t1;`, nil)
	config := func(owner string) string {
		return subscriberProvider(f.sub) + fmt.Sprintf(`
resource "pgreplication_subscription" "this" {
  provider     = pgreplication.subscriber
  name         = "sub_undone"
  conninfo     = %q
  publications = ["pub_a"]
  owner        = %q
}
`, f.conninfo(""), owner)
	}
	nothingLeft := func() error {
		if n := queryValue[int64](t, f.sub, "postgres", `SELECT count(*) FROM pg_subscription WHERE subname = 'sub_undone'`); n != 0 {
			return fmt.Errorf("the subscription is still on the subscriber")
		}
		if slotExists(t, f.pub, "sub_undone") {
			return fmt.Errorf("the slot sub_undone is still on the publisher")
		}
		return nil
	}
	execSQL(t, f.sub, "postgres", `CREATE ROLE sub_owner SUPERUSER`)
	execSQL(t, f.sub, "postgres", `CREATE FUNCTION refuse_alter() RETURNS event_trigger LANGUAGE plpgsql AS
$$BEGIN RAISE EXCEPTION 'site policy: no ALTER SUBSCRIPTION'; END$$`)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy:             func(*terraform.State) error { return nothingLeft() },
		Steps: []resource.TestStep{
			{
				Config:      config("no_such_role"),
				PlanOnly:    true,
				ExpectError: errorText("Subscription Owner Does Not Exist", `"no_such_role" does not exist`),
			},
			{
				PreConfig: func() {
					execSQL(t, f.sub, "postgres", `CREATE EVENT TRIGGER refuse_alter ON ddl_command_end WHEN TAG IN ('ALTER SUBSCRIPTION') EXECUTE FUNCTION refuse_alter()`)
				},
				Config: config("sub_owner"),
				ExpectError: errorText("Cannot Change Subscription Owner", "site policy: no ALTER SUBSCRIPTION",
					`dropped again, with the replication slot "sub_undone"`),
			},
			{
				PreConfig: func() {
					if err := nothingLeft(); err != nil {
						t.Fatalf("after the failed create: %v", err)
					}
					execSQL(t, f.sub, "postgres", `DROP EVENT TRIGGER refuse_alter`)
				},
				Config: config("sub_owner"),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(subscriptionAddr, tfjsonpath.New("owner"), knownvalue.StringExact("sub_owner")),
				},
				Check: func(*terraform.State) error {
					if !slotExists(t, f.pub, "sub_undone") {
						return fmt.Errorf("the subscription's slot is not on the publisher")
					}
					return nil
				},
			},
		},
	})
}

// The options of PostgreSQL 15 to 17: two_phase (15), password_required and
// run_as_owner (16), failover (17), set at create and read back from
// pg_subscription; failover and run_as_owner changed in place (failover on
// an enabled subscription through DISABLE … ENABLE); a two_phase change on
// an enabled subscription refused at plan time.
func TestAccSubscription_newerOptions(t *testing.T) {
	topo := testAccTopology(t)
	routertest.SkipBelow(t, 17, "failover (TestAccSubscription_postgres15 covers the refusals)")
	f := newSubscriptionFixture(t, topo.Primary, "sub_pub_newer", `
CREATE PUBLICATION pub_a FOR TABLE t1;
INSERT INTO t1 VALUES (1, 'one');`, nil)
	major := queryValue[int](t, f.sub, "postgres", `SELECT current_setting('server_version_num')::int`) / 10000
	config := func(twoPhase, failover, runAsOwner bool) string {
		return subscriberProvider(f.sub) + fmt.Sprintf(`
resource "pgreplication_subscription" "this" {
  provider          = pgreplication.subscriber
  name              = "sub_newer"
  conninfo          = %q
  publications      = ["pub_a"]
  two_phase         = %t
  password_required = false
  run_as_owner      = %t
  failover          = %t
}
`, f.conninfo(""), twoPhase, runAsOwner, failover)
	}
	catalog := func(want string) resource.TestCheckFunc {
		return func(*terraform.State) error {
			got := queryValue[string](t, f.sub, "postgres", `SELECT format('two_phase=%s password_required=%s run_as_owner=%s failover=%s enabled=%s',
  subtwophasestate <> 'd', subpasswordrequired, subrunasowner, subfailover, subenabled) FROM pg_subscription WHERE subname = 'sub_newer'`)
			if got != want {
				return fmt.Errorf("pg_subscription has %s, want %s", got, want)
			}
			return nil
		}
	}
	slotFailover := func(want bool) resource.TestCheckFunc {
		return func(*terraform.State) error {
			if got := queryValue[bool](t, f.pub, "postgres", `SELECT failover FROM pg_replication_slots WHERE slot_name = 'sub_newer'`); got != want {
				return fmt.Errorf("the slot on the publisher has failover = %t, want %t", got, want)
			}
			return nil
		}
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: config(true, true, true),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(subscriptionAddr, tfjsonpath.New("two_phase"), knownvalue.Bool(true)),
					statecheck.ExpectKnownValue(subscriptionAddr, tfjsonpath.New("password_required"), knownvalue.Bool(false)),
					statecheck.ExpectKnownValue(subscriptionAddr, tfjsonpath.New("run_as_owner"), knownvalue.Bool(true)),
					statecheck.ExpectKnownValue(subscriptionAddr, tfjsonpath.New("failover"), knownvalue.Bool(true)),
				},
				Check: resource.ComposeTestCheckFunc(
					catalog("two_phase=t password_required=f run_as_owner=t failover=t enabled=t"),
					slotFailover(true),
					waitRows(t, f.sub, "postgres", "t1", 1),
				),
			},
			{
				ResourceName:            subscriptionAddr,
				ImportState:             true,
				ImportStateVerify:       true,
				ImportStateVerifyIgnore: []string{"create_slot", "copy_data"},
			},
			{
				Config: config(true, false, false),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					expectDrift(subscriptionAddr, "failover", "run_as_owner"),
				}},
				Check: resource.ComposeTestCheckFunc(
					catalog("two_phase=t password_required=f run_as_owner=f failover=f enabled=t"),
					slotFailover(false),
				),
			},
			{
				PreConfig: func() {
					execSQL(t, f.sub, "postgres", `ALTER SUBSCRIPTION sub_newer SET (run_as_owner = true)`)
				},
				Config: config(true, false, false),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					expectDrift(subscriptionAddr, "run_as_owner"),
				}},
			},
			{
				Config:      config(false, false, false),
				PlanOnly:    true,
				ExpectError: twoPhaseRefusal(major),
			},
		},
	})
}

// twoPhaseRefusal is the plan-time refusal of a two_phase change on an
// enabled subscription: PostgreSQL 18 wants it disabled, older ones cannot
// change it at all.
func twoPhaseRefusal(major int) *regexp.Regexp {
	if major >= 18 {
		return errorText("Disable the Subscription to Change two_phase", "enabled = false", "-replace")
	}
	return errorText("Cannot Change two_phase of a Subscription", "-replace")
}

// PostgreSQL 18 changes two_phase on a disabled subscription: a change
// planned with enabled = false disables it first and sets two_phase in place
// (no new subscription, the slot on the publisher follows), reads back, and
// plans nothing afterwards; on a subscription that stays enabled the change
// is refused at plan time. PostgreSQL 15 refuses it even disabled
// (TestAccSubscription_postgres15).
func TestAccSubscription_twoPhaseChange(t *testing.T) {
	t.Parallel()
	testAccPreCheck(t)
	pub := routertest.Start(t, routertest.WithVersion(18), routertest.WithStandbys(0)).Primary
	f := newSubscriptionFixture(t, pub, "sub_pub_2pc", `
CREATE PUBLICATION pub_a FOR TABLE t1;
INSERT INTO t1 VALUES (1, 'one');`, []routertest.Option{routertest.WithVersion(18)})
	config := func(twoPhase, enabled bool) string {
		return subscriberProvider(f.sub) + fmt.Sprintf(`
resource "pgreplication_subscription" "this" {
  provider     = pgreplication.subscriber
  name         = "sub_2pc"
  conninfo     = %q
  publications = ["pub_a"]
  two_phase    = %t
  enabled      = %t
}
`, f.conninfo(""), twoPhase, enabled)
	}
	// catalog checks pg_subscription (subtwophasestate: d disabled, p
	// pending until the worker starts, e enabled) and, once the worker ran,
	// the slot on the publisher.
	catalog := func(want string, slotTwoPhase bool) resource.TestCheckFunc {
		return func(*terraform.State) error {
			got := queryValue[string](t, f.sub, "postgres", `SELECT format('two_phase=%s enabled=%s', subtwophasestate, subenabled) FROM pg_subscription WHERE subname = 'sub_2pc'`)
			if got != want {
				return fmt.Errorf("pg_subscription has %s, want %s", got, want)
			}
			if s := queryValue[bool](t, f.pub, f.pubDB, `SELECT two_phase FROM pg_replication_slots WHERE slot_name = 'sub_2pc'`); s != slotTwoPhase {
				return fmt.Errorf("the slot on the publisher has two_phase = %t, want %t", s, slotTwoPhase)
			}
			return nil
		}
	}
	oid := func(want *uint32) resource.TestCheckFunc {
		return func(*terraform.State) error {
			got := queryValue[uint32](t, f.sub, "postgres", `SELECT oid FROM pg_subscription WHERE subname = 'sub_2pc'`)
			if *want == 0 {
				*want = got
			} else if got != *want {
				return fmt.Errorf("pg_subscription.oid is %d, was %d: the subscription was recreated", got, *want)
			}
			return nil
		}
	}
	var subOID uint32
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: config(false, true),
				Check:  resource.ComposeTestCheckFunc(waitRows(t, f.sub, "postgres", "t1", 1), catalog("two_phase=d enabled=t", false), oid(&subOID)),
			},
			{
				Config:      config(true, true),
				PlanOnly:    true,
				ExpectError: errorText("Disable the Subscription to Change two_phase", `"sub_2pc"`, "enabled = false", "-replace"),
			},
			{
				// Enabled until now: apply disables it, then sets two_phase.
				Config: config(true, false),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					expectDrift(subscriptionAddr, "enabled", "two_phase"),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(subscriptionAddr, tfjsonpath.New("two_phase"), knownvalue.Bool(true)),
				},
				Check: resource.ComposeTestCheckFunc(catalog("two_phase=p enabled=f", false), oid(&subOID)),
			},
			{
				Config: config(true, false),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectEmptyPlan(),
				}},
			},
			{
				ResourceName:            subscriptionAddr,
				ImportState:             true,
				ImportStateVerify:       true,
				ImportStateVerifyIgnore: []string{"create_slot", "copy_data"},
			},
			{
				// Enabled, the worker turns two_phase on in the slot too, and
				// prepared transactions replicate at PREPARE.
				Config: config(true, true),
				Check: resource.ComposeTestCheckFunc(
					func(*terraform.State) error {
						execSQL(t, f.pub, f.pubDB, `INSERT INTO t1 VALUES (2, 'two')`)
						return nil
					},
					waitRows(t, f.sub, "postgres", "t1", 2),
					catalog("two_phase=e enabled=t", true),
					oid(&subOID),
				),
			},
			{
				// Back off, on a subscription that was disabled beforehand
				// (by hand: the plan shows that drift with the change).
				PreConfig: func() { execSQL(t, f.sub, "postgres", `ALTER SUBSCRIPTION sub_2pc DISABLE`) },
				Config:    config(false, false),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					expectDrift(subscriptionAddr, "two_phase"),
				}},
				Check: resource.ComposeTestCheckFunc(catalog("two_phase=d enabled=f", false), oid(&subOID)),
			},
		},
	})
}

// A subscription created disabled, given another publication while
// disabled (SET PUBLICATION cannot refresh then), is refreshed when it is
// enabled: the new publication's table replicates without anyone running
// REFRESH PUBLICATION by hand. And slot_name = "NONE" makes a subscription
// with no slot, which PostgreSQL allows only disabled and without create_slot.
func TestAccSubscription_disabledThenEnabled(t *testing.T) {
	topo := testAccTopology(t)
	f := newSubscriptionFixture(t, topo.Primary, "sub_pub_disabled", `
CREATE PUBLICATION pub_a FOR TABLE t1;
CREATE PUBLICATION pub_b FOR TABLE t2;`, nil)
	config := func(enabled bool, publications string) string {
		return subscriberProvider(f.sub) + fmt.Sprintf(`
resource "pgreplication_subscription" "this" {
  provider     = pgreplication.subscriber
  name         = "sub_disabled"
  conninfo     = %q
  publications = %s
  enabled      = %t
}
`, f.conninfo(""), publications, enabled)
	}
	none := func(enabled string) string {
		return subscriberProvider(f.sub) + fmt.Sprintf(`
resource "pgreplication_subscription" "none" {
  provider     = pgreplication.subscriber
  name         = "sub_none"
  conninfo     = %q
  publications = ["pub_a"]
  slot_name    = "NONE"
  create_slot  = false
  %s
}
`, f.conninfo(""), enabled)
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{Config: config(false, `["pub_a"]`)},
			{Config: config(false, `["pub_a", "pub_b"]`)},
			{
				PreConfig: func() {
					if n := queryValue[int64](t, f.sub, "postgres", `SELECT count(*) FROM pg_subscription_rel WHERE srrelid = 't2'::regclass`); n != 0 {
						t.Fatalf("t2 was subscribed while the subscription was disabled")
					}
				},
				Config: config(true, `["pub_a", "pub_b"]`),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					expectDrift(subscriptionAddr, "enabled"),
				}},
				Check: resource.ComposeTestCheckFunc(
					func(*terraform.State) error {
						execSQL(t, f.pub, f.pubDB, `INSERT INTO t2 VALUES (1, 'after enable')`)
						return nil
					},
					waitRows(t, f.sub, "postgres", "t2", 1),
				),
			},
			{
				Config:      none(""),
				PlanOnly:    true,
				ExpectError: errorText("slot_name = NONE Needs enabled = false"),
			},
			{
				Config: none("enabled = false"),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("pgreplication_subscription.none", tfjsonpath.New("slot_name"), knownvalue.StringExact("NONE")),
				},
				Check: func(*terraform.State) error {
					if !queryValue[bool](t, f.sub, "postgres", `SELECT subslotname IS NULL FROM pg_subscription WHERE subname = 'sub_none'`) {
						return fmt.Errorf("sub_none has a slot name")
					}
					return nil
				},
			},
			{
				ResourceName:            "pgreplication_subscription.none",
				ImportState:             true,
				ImportStateVerify:       true,
				ImportStateVerifyIgnore: []string{"create_slot", "copy_data"},
			},
		},
	})
}

// A subscription owned by a role that is not a superuser, with
// password_required = true and no password, cannot connect to its publisher
// on PostgreSQL 16 and later: it does not replicate, and DROP SUBSCRIPTION
// fails with "password is required" (2F003) while it has a slot, enabled or
// not. The plan warns (terraform-plugin-testing cannot see warnings, so
// ModifyPlan is called directly), with nothing of the connection in the
// warning; the destroy error names the subscription, the cause and the fix,
// and never the password; the fix it names (password_required = false) lets
// the destroy through, dropping the slot on the publisher.
func TestAccSubscription_ownerWithoutPassword(t *testing.T) {
	topo := testAccTopology(t)
	routertest.SkipBelow(t, 16, "password_required (15 refuses an owner that is not a superuser: TestAccSubscription_basic)")
	f := newSubscriptionFixture(t, topo.Primary, "sub_pub_nopw", `CREATE PUBLICATION pub_a FOR TABLE t1;`, nil)
	execSQL(t, f.sub, "postgres", `CREATE ROLE sub_owner LOGIN; GRANT CREATE ON DATABASE postgres TO sub_owner; GRANT pg_create_subscription TO sub_owner`)

	t.Run("plan warns", func(t *testing.T) {
		ctx := context.Background()
		r := &subscriptionResource{server: newServer(connSettings{
			Host: f.sub.Host, Port: int64(f.sub.Port), Database: "postgres", Username: "postgres", SSLMode: "disable",
		})}
		const secret = "canary" + canaryMark + "ssl"
		warnings := func(owner, extra string, passwordRequired bool, writeOnly bool) diag.Diagnostics {
			t.Helper()
			sch := subscriptionSchema()
			m := subscriptionResourceModel{
				ID: types.StringUnknown(), Name: types.StringValue("sub_nopw"), Database: types.StringValue("postgres"),
				Conninfo:     normalized.NewConninfo(f.conninfo("sslpassword=" + secret + extra)),
				Publications: types.SetValueMust(types.StringType, []attr.Value{types.StringValue("pub_a")}),
				Enabled:      types.BoolValue(true), SlotName: types.StringUnknown(), CreateSlot: types.BoolValue(true), CopyData: types.BoolValue(true),
				SynchronousCommit: types.StringValue("off"), Binary: types.BoolValue(false), Streaming: types.StringUnknown(),
				DisableOnError: types.BoolValue(false), TwoPhase: types.BoolValue(false), PasswordRequired: types.BoolValue(passwordRequired),
				RunAsOwner: types.BoolValue(false), Failover: types.BoolValue(false), Origin: types.StringValue("any"),
				Owner: types.StringUnknown(), DropSlotOnDestroy: types.BoolValue(true), PasswordWO: types.StringNull(), PasswordWOVersion: types.Int64Null(),
			}
			if owner != "" {
				m.Owner = types.StringValue(owner)
			}
			if writeOnly {
				m.PasswordWO, m.PasswordWOVersion = types.StringValue("wo-pw"), types.Int64Value(1)
			}
			plan := tfsdk.Plan{Schema: sch}
			if d := plan.Set(ctx, &m); d.HasError() {
				t.Fatal(d)
			}
			req := fwresource.ModifyPlanRequest{
				Config: tfsdk.Config{Schema: sch, Raw: plan.Raw},
				Plan:   plan,
				State:  tfsdk.State{Schema: sch, Raw: tftypes.NewValue(sch.Type().TerraformType(ctx), nil)},
			}
			resp := fwresource.ModifyPlanResponse{Plan: plan}
			r.ModifyPlan(ctx, req, &resp)
			if resp.Diagnostics.HasError() {
				t.Fatalf("ModifyPlan failed: %v", resp.Diagnostics)
			}
			return resp.Diagnostics.Warnings()
		}
		got := warnings("sub_owner", "", true, false)
		if len(got) != 1 || got[0].Summary() != "Subscription Owner Has No Password for the Publisher" {
			t.Fatalf("owner sub_owner without a password: warnings %v, want one", got)
		}
		for _, want := range []string{`"sub_nopw"`, `"sub_owner"`, "password_required = false", "password_wo", "superuser", "terraform destroy"} {
			if !strings.Contains(got[0].Detail(), want) {
				t.Errorf("the warning does not say %q: %s", want, got[0].Detail())
			}
		}
		for _, s := range canaryParts(secret) {
			if strings.Contains(got[0].Summary()+got[0].Detail(), s) {
				t.Errorf("the warning shows %q: %s", s, got[0].Detail())
			}
		}
		for _, c := range []struct {
			why                         string
			owner, extra                string
			passwordRequired, writeOnly bool
		}{
			{"a password in conninfo", "sub_owner", " password=pw", true, false},
			{"password_wo", "sub_owner", "", true, true},
			{"password_required = false", "sub_owner", "", false, false},
			{"a superuser owner", "postgres", "", true, false},
			{"the provider's user (a superuser) as owner", "", "", true, false},
		} {
			if got := warnings(c.owner, c.extra, c.passwordRequired, c.writeOnly); len(got) != 0 {
				t.Errorf("%s: want no warning, got %v", c.why, got)
			}
		}
	})

	// Without a password DROP fails with "Non-superusers must provide a
	// password in the connection string"; with one that the publisher
	// (trust) never asks for, with "Non-superuser cannot connect if the
	// server does not request a password".
	const pw = "canary" + canaryMark + "-nopw"
	variable := canaryVariable(t, pw)
	for _, c := range []struct{ name, password, cause string }{
		{"no password", "", "conninfo has none"},
		{"password not asked for", " password=${var.canary_password}", "did not ask"},
	} {
		t.Run(c.name, func(t *testing.T) {
			config := func(extra string) string {
				return variable + subscriberProvider(f.sub) + fmt.Sprintf(`
resource "pgreplication_subscription" "this" {
  provider     = pgreplication.subscriber
  name         = "sub_nopw"
  conninfo     = "%s%s"
  publications = ["pub_a"]
  owner        = "sub_owner"
  copy_data    = false
  %s
}
`, f.conninfo(""), c.password, extra)
			}
			slots := func(want int64) resource.TestCheckFunc {
				return func(*terraform.State) error {
					if n := queryValue[int64](t, f.pub, "postgres", `SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'sub_nopw'`); n != want {
						return fmt.Errorf("the publisher has %d slot(s) sub_nopw, want %d", n, want)
					}
					return nil
				}
			}
			resource.Test(t, resource.TestCase{
				ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
				Steps: []resource.TestStep{
					{
						Config: config(""),
						ConfigStateChecks: []statecheck.StateCheck{
							statecheck.ExpectKnownValue(subscriptionAddr, tfjsonpath.New("owner"), knownvalue.StringExact("sub_owner")),
						},
						Check: slots(1),
					},
					{
						Config:  config(""),
						Destroy: true,
						ExpectError: errorWithout("Cannot Drop Subscription Without a Password", `DROP SUBSCRIPTION "sub_nopw"`, `owner "sub_owner"`,
							"password_required = true", c.cause, "password_required = false", "destroy again", "password is required"),
					},
					{
						Config: config("password_required = false"),
						ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
							expectDrift(subscriptionAddr, "password_required"),
						}},
					},
				},
				CheckDestroy: func(s *terraform.State) error {
					if n := queryValue[int64](t, f.sub, "postgres", `SELECT count(*) FROM pg_subscription`); n != 0 {
						return fmt.Errorf("%d subscription(s) left after destroy", n)
					}
					return slots(0)(s)
				},
			})
		})
	}
}

// Adopting a subscription with terraform plan -generate-config-out: the CLI
// writes conninfo = null # sensitive (the plan then stops, on conninfo, with
// Missing Configuration for Required Attribute), and the block it writes,
// with conninfo filled in, imports with no change on every major version,
// though it spells out options older servers lack at the value they have
// anyway (failover = false on 15 and 16, password_required = true on 15).
func TestAccSubscription_generatedConfig(t *testing.T) {
	topo := testAccTopology(t)
	for _, v := range []int{15, 16, 0} {
		name := fmt.Sprint(v)
		var opts []routertest.Option
		if v == 0 {
			name = "shared version"
		} else {
			opts = []routertest.Option{routertest.WithVersion(v)}
		}
		t.Run(name, func(t *testing.T) {
			f := newSubscriptionFixture(t, topo.Primary, fmt.Sprintf("sub_pub_gen%d", v), `CREATE PUBLICATION pub_a FOR TABLE t1;`, opts)
			major := queryValue[int](t, f.sub, "postgres", `SELECT current_setting('server_version_num')::int`) / 10000
			execSQL(t, f.sub, "postgres", fmt.Sprintf(`CREATE SUBSCRIPTION sub_gen CONNECTION %s PUBLICATION pub_a WITH (copy_data = false)`, pgsql.Literal(f.conninfo(""))))
			// The default provider, unaliased: the import block that
			// -generate-config-out writes from names no provider.
			provider := fmt.Sprintf(`
provider "pgreplication" {
  host     = %q
  port     = %d
  username = "postgres"
  sslmode  = "disable"
}
`, f.sub.Host, f.sub.Port)
			// What the CLI generates, conninfo filled in.
			generated := provider + fmt.Sprintf(`
resource "pgreplication_subscription" "sub_gen" {
  binary               = false
  conninfo             = %q
  copy_data            = true
  create_slot          = true
  database             = "postgres"
  disable_on_error     = false
  drop_slot_on_destroy = true
  enabled              = true
  failover             = false
  name                 = "sub_gen"
  origin               = "any"
  owner                = "postgres"
  password_required    = true
  password_wo          = null # sensitive
  password_wo_version  = null
  publications         = ["pub_a"]
  run_as_owner         = false
  slot_name            = "sub_gen"
  streaming            = %q
  synchronous_commit   = "off"
  two_phase            = false
}
`, f.conninfo(""), defaultSubscriptionStreaming(major))
			// One step each: an import step after the first copies a state
			// that import-only test cases never write.
			for _, step := range []resource.TestStep{
				{Config: provider, GenerateConfig: true, ExpectError: errorText("Missing Configuration for Required Attribute", "conninfo")},
				{Config: generated},
			} {
				step.ResourceName, step.ImportState, step.ImportStateKind, step.ImportStateId =
					"pgreplication_subscription.sub_gen", true, resource.ImportBlockWithID, "postgres/sub_gen"
				resource.Test(t, resource.TestCase{ProtoV6ProviderFactories: testAccProtoV6ProviderFactories, Steps: []resource.TestStep{step}})
			}
		})
	}
}

// CREATE SUBSCRIPTION's answer never reaches the provider: a network that
// fails after the subscriber created it (and its slot on the publisher), or
// an apply interrupted at that moment. What the server created must end up
// in the state, or the next apply fails with "already exists"; but only the
// subscription declared: one of that name that differs (here, changed by
// hand while the provider waited) is neither recorded nor dropped, and the
// error says what it is and how to import or drop it. The publisher checks
// the password, a canary given as password_wo; the hand change puts another
// canary in the connection. The error names the connection with both
// replaced (conninfo's Redacted), and neither reaches the error, the TRACE
// log or the state.
func TestAccSubscription_createAnswerLost(t *testing.T) {
	topo := testAccTopology(t)
	skipWithoutWriteOnly(t) // the canary is given as password_wo
	const replicator = "sub_lost_repl"
	const pw = "canary" + canaryMark + "-lost 'q' \\b"
	const handPW = "canary" + canaryMark + "-by-hand"
	execSQL(t, topo.Primary, "postgres", "SET password_encryption = 'scram-sha-256'; CREATE ROLE "+replicator+" LOGIN REPLICATION PASSWORD "+pgsql.Literal(pw))
	t.Cleanup(func() { execSQL(t, topo.Primary, "postgres", "DROP ROLE IF EXISTS "+replicator) }) // after the fixture's database is gone
	if err := topo.Primary.RequirePassword(t.Context(), replicator); err != nil {
		t.Fatal(err)
	}
	f := newSubscriptionFixture(t, topo.Primary, "sub_pub_answer_lost", `
CREATE PUBLICATION pub_a FOR TABLE t1;
CREATE PUBLICATION pub_b FOR TABLE t2;
GRANT SELECT ON t1, t2 TO `+replicator+`;
INSERT INTO t1 SELECT g, 'row ' || g FROM generate_series(1, 10) g;`, nil)
	proxy := f.sub.NewProxy(t)
	proxy.HoldAnswers("CREATE SUBSCRIPTION", "CREATE SUBSCRIPTION")
	publisher := fmt.Sprintf("host=127.0.0.1 port=%d user=%s dbname=%s", f.pub.Port, replicator, f.pubDB)
	subscription := canaryVariable(t, pw) + fmt.Sprintf(`
resource "pgreplication_subscription" "this" {
  provider            = pgreplication.subscriber
  name                = "sub_lost"
  conninfo            = %q
  password_wo         = var.canary_password
  password_wo_version = 1
  publications        = ["pub_a"]
}
`, publisher)
	// The answer is held: execSubscription cancels at statement_timeout less
	// a second (too late: the statement is over, and the cancel does
	// nothing), and the client-side bound ends the wait 11 s later.
	throughProxy := fmt.Sprintf(`
provider "pgreplication" {
  alias             = "subscriber"
  host              = %q
  port              = %d
  username          = "postgres"
  database          = "postgres"
  sslmode           = "disable"
  statement_timeout = "15s"
}
`, f.sub.Host, proxy.Port()) + subscription
	subscriptions := func() int64 {
		return queryValue[int64](t, f.sub, "postgres", `SELECT count(*) FROM pg_subscription WHERE subname = 'sub_lost'`)
	}
	logPath := traceLog(t)
	noCanary := stateHasNo(append(canaryParts(pw), canaryParts(handPW)...))
	var changed chan error
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy: func(*terraform.State) error {
			if n := subscriptions(); n != 0 {
				return fmt.Errorf("%d subscription(s) sub_lost left after destroy", n)
			}
			if slotExists(t, f.pub, "sub_lost") {
				return fmt.Errorf("slot sub_lost left on the publisher after destroy")
			}
			return nil
		},
		Steps: []resource.TestStep{
			{
				// While the provider waits, someone makes the new
				// subscription another: it subscribes to pub_b instead,
				// with another password.
				PreConfig: func() {
					changed = make(chan error, 1)
					go func() {
						changed <- func() error {
							ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
							defer cancel()
							done, err := pollUntil(ctx, 60*time.Second, func(context.Context) (bool, error) {
								return subscriptions() == 1, nil
							})
							if err != nil || !done {
								return fmt.Errorf("the subscription did not appear: %v", err)
							}
							conn, err := pgx.Connect(ctx, f.sub.DSNFor("postgres"))
							if err != nil {
								return err
							}
							defer conn.Close(ctx)
							_, err = conn.Exec(ctx, `ALTER SUBSCRIPTION sub_lost SET PUBLICATION pub_b WITH (refresh = false)`)
							if err == nil {
								_, err = conn.Exec(ctx, `ALTER SUBSCRIPTION sub_lost CONNECTION `+pgsql.Literal(publisher+" password="+conninfo.Quote(handPW)))
							}
							return err
						}()
					}()
				},
				Config: throughProxy,
				ExpectError: errorWithout("Cannot Create Subscription", `CREATE SUBSCRIPTION "sub_lost" in database "postgres"`, "got no answer",
					"a subscription of that name is there now, but not the one declared",
					fmt.Sprintf("it connects to host='127.0.0.1' port='%d' user='%s' dbname='%s' password='REDACTED'", f.pub.Port, replicator, f.pubDB),
					"subscribes to pub_b",
					"It is not recorded and was not dropped", `terraform import <address> postgres/sub_lost`, "DROP SUBSCRIPTION"),
			},
			{
				// Nothing was dropped; dropped by hand, with its slot.
				PreConfig: func() {
					if err := <-changed; err != nil {
						t.Fatal(err)
					}
					if n := subscriptions(); n != 1 {
						t.Fatalf("%d subscription(s) sub_lost after the failed create, want the one changed by hand", n)
					}
					// The publisher refuses the password given by hand, and
					// DROP SUBSCRIPTION connects to it to drop the slot.
					execSQL(t, f.sub, "postgres", `ALTER SUBSCRIPTION sub_lost CONNECTION `+pgsql.Literal(publisher+" password="+conninfo.Quote(pw)))
					execSQL(t, f.sub, "postgres", `DROP SUBSCRIPTION sub_lost`)
					if slotExists(t, f.pub, "sub_lost") {
						t.Fatal("DROP SUBSCRIPTION left the slot on the publisher")
					}
				},
				Config: throughProxy,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(subscriptionAddr, tfjsonpath.New("id"), knownvalue.StringExact("postgres/sub_lost")),
					statecheck.ExpectKnownValue(subscriptionAddr, tfjsonpath.New("slot_name"), knownvalue.StringExact("sub_lost")),
				},
				// The publisher checked the password: the rows came.
				Check: resource.ComposeTestCheckFunc(waitRows(t, f.sub, "postgres", "t1", 10), noCanary),
			},
			{
				Config: subscriberProvider(f.sub) + subscription,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				Check: noCanary,
			},
		},
	})
	checkLogHasNo(t, logPath, append(canaryParts(pw), canaryParts(handPW)...), "Cannot Create Subscription", "not the one declared", "CREATE SUBSCRIPTION")
}

// betweenPlanAndApply runs do after the plan and before its apply, which
// applies the saved plan: what a person does by hand between terraform plan
// -out and terraform apply of that plan.
type betweenPlanAndApply func()

func (do betweenPlanAndApply) CheckPlan(context.Context, plancheck.CheckPlanRequest, *plancheck.CheckPlanResponse) {
	do()
}

// A subscription dropped by hand after the plan of its update and before
// the apply: the apply says so, names the subscription and how to go on
// (apply again, whose refresh plans a create), and runs no ALTER
// SUBSCRIPTION. On every path of Update: options only, a new write-only
// password (the old code read the catalog, found nothing, and ran ALTER …
// CONNECTION anyway: "Cannot Alter Subscription … does not exist"), and a
// new connection with the same write-only password.
func TestAccSubscription_droppedBetweenPlanAndApply(t *testing.T) {
	topo := testAccTopology(t)
	f := newSubscriptionFixture(t, topo.Primary, "sub_pub_gone", `CREATE PUBLICATION pub_gone FOR TABLE t1;`, nil)
	config := func(conninfoExtra, extra string) string {
		return subscriberProvider(f.sub) + fmt.Sprintf(`
resource "pgreplication_subscription" "this" {
  provider     = pgreplication.subscriber
  name         = "sub_gone"
  conninfo     = %q
  publications = ["pub_gone"]
  %s
}
`, f.conninfo(conninfoExtra), extra)
	}
	drop := betweenPlanAndApply(func() { execSQL(t, f.sub, "postgres", `DROP SUBSCRIPTION sub_gone`) })
	missing := errorText("Subscription Missing", `The subscription "sub_gone" is not in database "postgres"`,
		"something dropped it after this plan was made", "This apply changed nothing", "Run terraform apply again")
	// dropped is an update whose subscription is dropped between its plan
	// and its apply; the next step, with the same configuration, creates it.
	dropped := func(cfg string) []resource.TestStep {
		return []resource.TestStep{
			{
				Config: cfg,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(subscriptionAddr, plancheck.ResourceActionUpdate), drop,
				}},
				ExpectError: missing,
			},
			{
				Config: cfg,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(subscriptionAddr, plancheck.ResourceActionCreate),
				}},
			},
		}
	}
	steps := []resource.TestStep{{Config: config("", "")}}
	steps = append(steps, dropped(config("", "enabled = false"))...)
	if cliSupportsWriteOnly(t) {
		// The publisher trusts local connections: the password is not checked.
		const wo = "enabled = false\n  password_wo = \"unchecked\"\n  password_wo_version = 1"
		steps = append(steps, dropped(config("", wo))...)
		steps = append(steps, dropped(config("application_name=gone", wo))...)
	}
	resource.Test(t, resource.TestCase{ProtoV6ProviderFactories: testAccProtoV6ProviderFactories, Steps: steps})
}
