package provider

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/importid"
	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/pgsql"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// The hostile publication name of the adoption test: quotes, a slash and a
// percent sign (both escaped in the import ID), non-ASCII.
const adoptionHostilePublication = `Books "odd" ü/x%`

// adoptionTopology builds, with SQL only, what a cluster replicated by hand
// has: physical slots the standbys stream through, a logical slot,
// publications with a row filter, a column list, tables_in_schema and a
// hostile name, a subscription on another server, the standbys' settings
// (in other units than a configuration would write them) and
// synchronous_standby_names. It returns the subscriber.
func adoptionTopology(t *testing.T, topo *routertest.Topology) *routertest.Node {
	t.Helper()
	primary := topo.Primary
	execSQL(t, primary, "postgres", `CREATE DATABASE app`)
	execSQL(t, primary, "app", `
CREATE SCHEMA archive;
CREATE TABLE books (id int PRIMARY KEY, title text, author text, published bool, price numeric);
CREATE TABLE archive.old_books (id int PRIMARY KEY, title text);
CREATE TABLE "Odd ""Table"" ü" (id int PRIMARY KEY, note text);
CREATE PUBLICATION books_pub FOR TABLE books (id, title, published) WHERE (published) WITH (publish = 'insert');
CREATE PUBLICATION archive_pub FOR TABLES IN SCHEMA archive;
CREATE PUBLICATION `+pgsql.Ident(adoptionHostilePublication)+` FOR TABLE "Odd ""Table"" ü";
INSERT INTO books VALUES (1, 'Dune', 'Herbert', true, 9.99), (2, 'Draft', 'Nobody', false, 0);`)
	execSQL(t, primary, "app", `SELECT pg_create_logical_replication_slot('cdc', 'pgoutput')`)
	for i, s := range topo.Standbys {
		slot := fmt.Sprintf("replica_%d", i+1)
		execSQL(t, primary, "postgres", `SELECT pg_create_physical_replication_slot($1, true)`, slot)
		for _, sql := range []string{
			`ALTER SYSTEM SET primary_slot_name = ` + pgsql.Literal(slot),
			`ALTER SYSTEM SET hot_standby_feedback = on`,
			`ALTER SYSTEM SET wal_receiver_timeout = '2min'`,
			`ALTER SYSTEM SET max_standby_streaming_delay = '45s'`,
			`SELECT pg_reload_conf()`,
		} {
			execSQL(t, s, "postgres", sql)
		}
		waitFor(t, 60*time.Second, s.Name+" to stream through slot "+slot, func() bool {
			return queryValue[bool](t, primary, "postgres", `SELECT coalesce((SELECT active FROM pg_replication_slots WHERE slot_name = $1), false)`, slot)
		})
	}
	execSQL(t, primary, "postgres", `ALTER SYSTEM SET synchronous_standby_names = 'FIRST 1 ("replica-1")'`)
	execSQL(t, primary, "postgres", `SELECT pg_reload_conf()`)

	sub := routertest.Start(t, routertest.WithStandbys(0)).Primary
	execSQL(t, sub, "postgres", `CREATE TABLE books (id int PRIMARY KEY, title text, author text, published bool, price numeric)`)
	execSQL(t, sub, "postgres", fmt.Sprintf(`CREATE SUBSCRIPTION books_sub
CONNECTION 'host=127.0.0.1 port=%d user=postgres dbname=app sslmode=disable'
PUBLICATION books_pub WITH (binary = true)`, primary.Port))
	waitFor(t, 60*time.Second, "the subscription to copy books", func() bool {
		return queryValue[int64](t, sub, "postgres", `SELECT count(*) FROM books`) == 1
	})
	// The row is there before the table's sync ends: its worker then
	// catches up and drops its slot on the primary, which a snapshot taken
	// before showed as a slot the adoption had dropped (seen once in CI).
	waitFor(t, 60*time.Second, "the subscription's table sync to end", func() bool {
		return queryValue[bool](t, sub, "postgres", `SELECT bool_and(srsubstate = 'r') FROM pg_subscription_rel`) &&
			queryValue[int64](t, primary, "postgres", `SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'pg\_%\_sync\_%'`) == 0
	})
	return sub
}

// adoptionConfig declares the same objects, with import blocks. It writes
// values the way a person would, not the way the servers show them: "120s"
// for SHOW's "2min", "45000" (milliseconds) for "45s", "0s" for "0", the
// connection's keywords in another order, immediately_reserve left out.
func adoptionConfig(topo *routertest.Topology, sub *routertest.Node) string {
	var b strings.Builder
	b.WriteString(topologyProviders(topo))
	b.WriteString(serverProvider("pgrsubscriber", sub))
	for i := range topo.Standbys {
		n := i + 1
		fmt.Fprintf(&b, `
import {
  provider = pgrprimary
  to       = pgreplication_replication_slot.replica_%[1]d
  id       = "replica_%[1]d"
}

resource "pgreplication_replication_slot" "replica_%[1]d" {
  provider = pgrprimary
  name     = "replica_%[1]d"
  type     = "physical"
}

import {
  provider = pgrstandby%[1]d
  to       = pgreplication_standby.replica_%[1]d
  id       = "standby"
}

resource "pgreplication_standby" "replica_%[1]d" {
  provider                    = pgrstandby%[1]d
  primary_host                = %[2]q
  primary_port                = %[3]d
  primary_user                = "postgres"
  primary_sslmode             = "disable"
  application_name            = "replica-%[1]d"
  primary_slot_name           = pgreplication_replication_slot.replica_%[1]d.name
  hot_standby_feedback        = true
  wal_receiver_timeout        = "120s"
  max_standby_streaming_delay = "45000"
  recovery_min_apply_delay    = "0s"
}
`, n, topo.Primary.Host, topo.Primary.Port)
	}
	fmt.Fprintf(&b, `
import {
  provider = pgrprimary
  to       = pgreplication_replication_slot.cdc
  id       = "cdc"
}

resource "pgreplication_replication_slot" "cdc" {
  provider = pgrprimary
  name     = "cdc"
  type     = "logical"
  database = "app"
}

import {
  provider = pgrprimary
  to       = pgreplication_synchronous_replication.this
  id       = "synchronous_replication"
}

resource "pgreplication_synchronous_replication" "this" {
  provider      = pgrprimary
  standby_names = [pgreplication_standby.replica_1.application_name]
}

import {
  provider = pgrprimary
  to       = pgreplication_publication.books
  id       = "app/books_pub"
}

resource "pgreplication_publication" "books" {
  provider = pgrprimary
  name     = "books_pub"
  database = "app"
  publish  = ["insert"]
  tables = {
    "public.books" = {
      columns = ["id", "title", "published"]
      where   = "published"
    }
  }
}

import {
  provider = pgrprimary
  to       = pgreplication_publication.archive
  id       = "app/archive_pub"
}

resource "pgreplication_publication" "archive" {
  provider         = pgrprimary
  name             = "archive_pub"
  database         = "app"
  tables_in_schema = ["archive"]
}

import {
  provider = pgrprimary
  to       = pgreplication_publication.hostile
  id       = %[2]q
}

resource "pgreplication_publication" "hostile" {
  provider = pgrprimary
  name     = %[3]q
  database = "app"
  tables = {
    "public.\"Odd \"\"Table\"\" ü\"" = {}
  }
}

import {
  provider = pgrsubscriber
  to       = pgreplication_subscription.books
  id       = "postgres/books_sub"
}

resource "pgreplication_subscription" "books" {
  provider     = pgrsubscriber
  name         = "books_sub"
  conninfo     = "dbname=app user=postgres host=127.0.0.1 port=%[1]d sslmode=disable"
  publications = [pgreplication_publication.books.name]
  binary       = true
}
`, topo.Primary.Port, importid.Format("app", adoptionHostilePublication), adoptionHostilePublication)
	return b.String()
}

// adoptionSnapshot is what the servers record about the adopted objects:
// their catalogs (without the positions that move with WAL) and every
// server's postgresql.auto.conf. Adoption must leave it as it was.
func adoptionSnapshot(t *testing.T, topo *routertest.Topology, sub *routertest.Node) string {
	t.Helper()
	type query struct {
		node     *routertest.Node
		database string
		sql      string
	}
	queries := []query{
		{topo.Primary, "postgres", `SELECT slot_name, slot_type, database, plugin, temporary, two_phase, restart_lsn IS NULL AS unreserved FROM pg_replication_slots ORDER BY slot_name`},
		{topo.Primary, "app", `SELECT oid, pubname, pubowner, puballtables, pubinsert, pubupdate, pubdelete, pubtruncate, pubviaroot FROM pg_publication ORDER BY oid`},
		{topo.Primary, "app", `SELECT oid, prpubid, prrelid::regclass, pg_get_expr(prqual, prrelid), prattrs FROM pg_publication_rel ORDER BY oid`},
		{topo.Primary, "app", `SELECT oid, pnpubid, pnnspid::regnamespace FROM pg_publication_namespace ORDER BY oid`},
		{sub, "postgres", `SELECT oid, subname, subowner, subenabled, subbinary, substream, subconninfo, subslotname, subsynccommit, subpublications FROM pg_subscription ORDER BY oid`},
	}
	for _, n := range append([]*routertest.Node{topo.Primary, sub}, topo.Standbys...) {
		queries = append(queries, query{n, "postgres", `SELECT pg_read_file('postgresql.auto.conf')`})
	}
	var b strings.Builder
	for _, q := range queries {
		rows := queryValue[string](t, q.node, q.database, `SELECT coalesce(string_agg(r::text, E'\n'), '') FROM (`+q.sql+`) AS r`)
		fmt.Fprintf(&b, "%s/%s: %s\n%s\n\n", q.node.Name, q.database, q.sql, rows)
	}
	return b.String()
}

// expectImportsOnly asserts that the plan imports exactly n resources and
// changes nothing: no create, update, replace or destroy.
func expectImportsOnly(n int) plancheck.PlanCheck { return importsOnly(n) }

type importsOnly int

func (n importsOnly) CheckPlan(_ context.Context, req plancheck.CheckPlanRequest, resp *plancheck.CheckPlanResponse) {
	var problems []string
	imports := 0
	for _, rc := range req.Plan.ResourceChanges {
		if rc.Change.Importing != nil {
			imports++
		}
		if !rc.Change.Actions.NoOp() {
			problems = append(problems, fmt.Sprintf("%s: %v %v", rc.Address, rc.Change.Actions, changedAttributes(rc.Change.Before, rc.Change.After)))
		}
		if rc.Change.Importing == nil {
			problems = append(problems, rc.Address+": not imported")
		}
	}
	if imports != int(n) {
		problems = append(problems, fmt.Sprintf("%d imports, want %d", imports, int(n)))
	}
	if len(problems) > 0 {
		resp.Error = fmt.Errorf("the plan must import only: %s", strings.Join(problems, "; "))
	}
}

// changedAttributes names the top-level attributes whose planned value
// differs from the prior one, never a value (some are secrets).
func changedAttributes(before, after any) []string {
	b, _ := before.(map[string]any)
	a, _ := after.(map[string]any)
	var names []string
	for k := range a {
		if !reflect.DeepEqual(a[k], b[k]) {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	return names
}

// Adopting a cluster built by hand: the first plan imports every object and
// changes nothing, the apply leaves every catalog and postgresql.auto.conf as
// it was, and the next plan is empty. docs/guides/adopting-an-existing-cluster.md
// walks through the same steps.
func TestAccAdoption_existingCluster(t *testing.T) {
	t.Parallel()
	testAccPreCheck(t)
	// Own servers: the test builds the topology by hand and takes it over.
	topo := routertest.Start(t, routertest.WithStandbys(2))
	sub := adoptionTopology(t, topo)
	config := adoptionConfig(topo, sub)
	before := adoptionSnapshot(t, topo, sub)
	unchanged := func(*terraform.State) error {
		if after := adoptionSnapshot(t, topo, sub); after != before {
			return fmt.Errorf("adoption changed the servers.\nbefore:\n%s\nafter:\n%s", before, after)
		}
		return nil
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccMultiServerFactories,
		Steps: []resource.TestStep{
			{
				Config: config,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{expectImportsOnly(10)},
				},
				Check: unchanged,
			},
			{
				Config: config,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				Check: unchanged,
			},
			{
				// Before the test's destroy: the standbys stop streaming
				// through their slots, so that destroying the slots does not
				// fail on an active slot (the plan shows the drift).
				PreConfig: func() {
					for i, s := range topo.Standbys {
						execSQL(t, s, "postgres", `ALTER SYSTEM SET primary_slot_name = ''`)
						execSQL(t, s, "postgres", `SELECT pg_reload_conf()`)
						slot := fmt.Sprintf("replica_%d", i+1)
						waitFor(t, 60*time.Second, "slot "+slot+" to be released", func() bool {
							return !queryValue[bool](t, topo.Primary, "postgres", `SELECT active FROM pg_replication_slots WHERE slot_name = $1`, slot)
						})
					}
				},
				Config:             config,
				PlanOnly:           true,
				ExpectNonEmptyPlan: true,
			},
		},
	})
}
