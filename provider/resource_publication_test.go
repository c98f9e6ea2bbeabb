package provider

import (
	"context"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	fwresource "github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
	"github.com/jackc/pgx/v5"

	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/importid"
	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/pgsql"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// createDatabase gives a test a database of its own on n, empty of
// publications from an earlier run of the same test in this process.
func createDatabase(t *testing.T, n *routertest.Node, name string) {
	t.Helper()
	execSQL(t, n, "postgres", "DROP DATABASE IF EXISTS "+pgsql.Ident(name)+" WITH (FORCE)")
	execSQL(t, n, "postgres", "CREATE DATABASE "+pgsql.Ident(name))
}

// createRole creates a login-less role, once per server.
func createRole(t *testing.T, n *routertest.Node, name string) {
	t.Helper()
	execSQL(t, n, "postgres", fmt.Sprintf(`DO $$BEGIN CREATE ROLE %s; EXCEPTION WHEN duplicate_object THEN NULL; END$$`, pgsql.Ident(name)))
}

// hcl quotes s as an HCL string literal: Go's quoting, which HCL shares for
// the characters these tests use, plus HCL's template escapes.
func hcl(s string) string {
	q := strconv.Quote(s)
	return strings.NewReplacer("${", "$${", "%{", "%%{").Replace(q)
}

// tableValue is the state of one table of tables, for knownvalue.MapExact.
func tableValue(columns []string, where string) knownvalue.Check {
	var cols knownvalue.Check = knownvalue.Null()
	if columns != nil {
		checks := make([]knownvalue.Check, len(columns))
		for i, c := range columns {
			checks[i] = knownvalue.StringExact(c)
		}
		cols = knownvalue.SetExact(checks)
	}
	var w knownvalue.Check = knownvalue.Null()
	if where != "" {
		w = knownvalue.StringExact(where)
	}
	return knownvalue.ObjectExact(map[string]knownvalue.Check{
		"columns": cols,
		"where":   w,
	})
}

func stringSet(values ...string) knownvalue.Check {
	checks := make([]knownvalue.Check, len(values))
	for i, v := range values {
		checks[i] = knownvalue.StringExact(v)
	}
	return knownvalue.SetExact(checks)
}

// Create, import, change everything that changes in place, then drift by
// hand: options, tables, owner, and the whole publication.
func TestAccPublication_basic(t *testing.T) {
	topo := testAccTopology(t)
	const db = "pub_basic"
	createDatabase(t, topo.Primary, db)
	createRole(t, topo.Primary, "pub_basic_owner")
	execSQL(t, topo.Primary, db, `
CREATE TABLE orders (id int PRIMARY KEY, amount int);
CREATE TABLE customers (id int PRIMARY KEY, name text);
GRANT CREATE ON DATABASE pub_basic TO pub_basic_owner;`)
	const addr = "pgreplication_publication.this"
	// The provider's database is the test's: the resource leaves database unset.
	provider := providerConfigDB("primary", topo.Primary, db)
	created := provider + `
resource "pgreplication_publication" "this" {
  provider = pgreplication.primary
  name     = "pub_basic"
  tables   = { "public.orders" = {} }
}
`
	updated := provider + `
resource "pgreplication_publication" "this" {
  provider = pgreplication.primary
  name     = "pub_basic_renamed"
  owner    = "pub_basic_owner"
  publish  = ["insert", "update"]
  tables = {
    "public.orders"    = {}
    "public.customers" = {}
  }
}
`
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: created,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("id"), knownvalue.StringExact("pub_basic/pub_basic")),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("database"), knownvalue.StringExact(db)),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("owner"), knownvalue.StringExact("postgres")),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("all_tables"), knownvalue.Bool(false)),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("publish"), stringSet("insert", "update", "delete", "truncate")),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("publish_via_partition_root"), knownvalue.Bool(false)),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("publish_generated_columns"), knownvalue.StringExact("none")),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("tables_in_schema"), knownvalue.SetExact(nil)),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("tables"), knownvalue.MapExact(map[string]knownvalue.Check{
						"public.orders": tableValue(nil, ""),
					})),
				},
			},
			{
				ResourceName:      addr,
				ImportState:       true,
				ImportStateVerify: true,
			},
			{
				Config: updated,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("id"), knownvalue.StringExact("pub_basic/pub_basic_renamed")),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("owner"), knownvalue.StringExact("pub_basic_owner")),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("publish"), stringSet("insert", "update")),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("tables"), knownvalue.MapExact(map[string]knownvalue.Check{
						"public.orders":    tableValue(nil, ""),
						"public.customers": tableValue(nil, ""),
					})),
				},
			},
			{
				ResourceName:      addr,
				ImportState:       true,
				ImportStateVerify: true,
			},
			{
				PreConfig: func() {
					execSQL(t, topo.Primary, db, `ALTER PUBLICATION pub_basic_renamed SET (publish = 'insert')`)
				},
				Config: updated,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					expectDrift(addr, "publish"),
				}},
			},
			{
				PreConfig: func() {
					execSQL(t, topo.Primary, db, `ALTER PUBLICATION pub_basic_renamed DROP TABLE customers`)
				},
				Config: updated,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					expectDriftAt(addr, []string{"tables", "public.customers"}),
				}},
			},
			{
				PreConfig: func() {
					execSQL(t, topo.Primary, db, `ALTER PUBLICATION pub_basic_renamed OWNER TO postgres`)
				},
				Config: updated,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					expectDrift(addr, "owner"),
				}},
			},
			{
				// Renamed by hand: found by its OID, and renamed back in
				// place rather than created again.
				PreConfig: func() {
					execSQL(t, topo.Primary, db, `ALTER PUBLICATION pub_basic_renamed RENAME TO "Renamed by hand"`)
				},
				Config: updated,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					expectDrift(addr, "id", "name"),
				}},
				Check: func(*terraform.State) error {
					if n := queryValue[int](t, topo.Primary, db, `SELECT count(*)::int FROM pg_publication WHERE pubname = 'pub_basic_renamed'`); n != 1 {
						return fmt.Errorf("after apply, %d publications are named pub_basic_renamed, want the renamed one back", n)
					}
					if n := queryValue[int](t, topo.Primary, db, `SELECT count(*)::int FROM pg_publication`); n != 1 {
						return fmt.Errorf("after apply, the database has %d publications, want 1 (renamed back, not created again)", n)
					}
					return nil
				},
			},
			{
				PreConfig: func() {
					execSQL(t, topo.Primary, db, `DROP PUBLICATION pub_basic_renamed`)
				},
				Config: updated,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					expectRecreate(addr),
				}},
			},
		},
	})
}

// Row filters, column lists and partitioned tables read back exactly (#350,
// #550): no diff after apply, none for a filter written differently but
// meaning the same, and a filter or column list changed by hand is drift on
// table. tables_in_schema (#553) changes in place and drifts on its own.
func TestAccPublication_rowFiltersColumnListsPartitions(t *testing.T) {
	topo := testAccTopology(t)
	const db = "pub_filters"
	createDatabase(t, topo.Primary, db)
	execSQL(t, topo.Primary, db, `
CREATE TABLE orders (id int PRIMARY KEY, amount int, region text, note text);
CREATE TABLE events (id int, region text, amount int) PARTITION BY LIST (region);
CREATE TABLE events_eu PARTITION OF events FOR VALUES IN ('eu');
CREATE TABLE events_us PARTITION OF events FOR VALUES IN ('us');
CREATE TABLE metrics (id int, region text) PARTITION BY LIST (region);
CREATE TABLE metrics_eu PARTITION OF metrics FOR VALUES IN ('eu');
CREATE TABLE audit (id int, kind text);
CREATE SCHEMA sales;
CREATE TABLE sales.invoices (id int);
CREATE SCHEMA archive;`)
	type variant struct {
		ordersFilter string // the row filter of orders in pub_filtered
		viaRoot      bool   // pub_filtered: publish_via_partition_root, and a filter on events
		schemas      string // pub_schemas: tables_in_schema
	}
	config := func(v variant) string {
		eventsFilter := ""
		if v.viaRoot {
			eventsFilter = `where = "amount > 1"`
		}
		// The provider stays on "postgres": the resources name their database.
		return providerConfig("primary", topo.Primary) + fmt.Sprintf(`
resource "pgreplication_publication" "filtered" {
  provider                   = pgreplication.primary
  database                   = "pub_filters"
  name                       = "pub_filtered"
  publish_via_partition_root = %t
  tables = {
    "public.orders" = {
      columns = ["region", "id", "amount"]
      where   = %s
    }
    "public.events" = { %s }
  }
}

resource "pgreplication_publication" "partitioned" {
  provider = pgreplication.primary
  database = "pub_filters"
  name     = "pub_partitioned"
  tables = {
    "public.metrics" = {}
    "public.events"  = {}
  }
}

resource "pgreplication_publication" "schemas" {
  provider         = pgreplication.primary
  database         = "pub_filters"
  name             = "pub_schemas"
  tables_in_schema = %s
  publish          = ["insert", "truncate"]
  tables = {
    "public.audit" = { where = "kind IN ('a', 'b')" }
  }
}
`, v.viaRoot, hcl(v.ordersFilter), eventsFilter, v.schemas)
	}
	const (
		filtered    = "pgreplication_publication.filtered"
		partitioned = "pgreplication_publication.partitioned"
		schemas     = "pgreplication_publication.schemas"
		ordersWhere = "((amount > 100) AND (region = 'eu'::text))"
	)
	initial := variant{ordersFilter: "amount > 100 AND region = 'eu'", viaRoot: true, schemas: `["sales"]`}
	sameFilter := initial
	sameFilter.ordersFilter = "amount>100 and region='eu'"
	viaRootOff := initial
	viaRootOff.viaRoot = false
	twoSchemas := viaRootOff
	twoSchemas.schemas = `["sales", "archive"]`
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				// Apply keeps the filters as configured…
				Config: config(initial),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(filtered, tfjsonpath.New("tables"), knownvalue.MapExact(map[string]knownvalue.Check{
						"public.orders": tableValue([]string{"id", "amount", "region"}, initial.ordersFilter),
						"public.events": tableValue(nil, "amount > 1"),
					})),
					statecheck.ExpectKnownValue(schemas, tfjsonpath.New("tables"), knownvalue.MapExact(map[string]knownvalue.Check{
						"public.audit": tableValue(nil, "kind IN ('a', 'b')"),
					})),
				},
			},
			{
				// …and the next refresh reads them as PostgreSQL stores
				// them, with nothing to change.
				Config:           config(initial),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(filtered, tfjsonpath.New("tables"), knownvalue.MapExact(map[string]knownvalue.Check{
						"public.orders": tableValue([]string{"id", "amount", "region"}, ordersWhere),
						"public.events": tableValue(nil, "(amount > 1)"),
					})),
					// The partitioned tables, not their partitions.
					statecheck.ExpectKnownValue(partitioned, tfjsonpath.New("tables"), knownvalue.MapExact(map[string]knownvalue.Check{
						"public.metrics": tableValue(nil, ""),
						"public.events":  tableValue(nil, ""),
					})),
					statecheck.ExpectKnownValue(schemas, tfjsonpath.New("tables_in_schema"), stringSet("sales")),
					statecheck.ExpectKnownValue(schemas, tfjsonpath.New("tables"), knownvalue.MapExact(map[string]knownvalue.Check{
						"public.audit": tableValue(nil, "(kind = ANY (ARRAY['a'::text, 'b'::text]))"),
					})),
				},
			},
			{ResourceName: filtered, ImportState: true, ImportStateVerify: true},
			{ResourceName: partitioned, ImportState: true, ImportStateVerify: true},
			{ResourceName: schemas, ImportState: true, ImportStateVerify: true},
			{
				// The same filter, written differently: no change.
				Config:   config(sameFilter),
				PlanOnly: true,
			},
			{
				PreConfig: func() {
					execSQL(t, topo.Primary, db, `ALTER PUBLICATION pub_filtered SET TABLE ONLY orders (id, amount, region) WHERE (amount > 5), ONLY events WHERE (amount > 1)`)
				},
				Config: config(initial),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					expectDriftAt(filtered, []string{"tables", "public.orders", "where"}),
				}},
			},
			{
				PreConfig: func() {
					execSQL(t, topo.Primary, db, `ALTER PUBLICATION pub_filtered SET TABLE ONLY orders (id, amount) WHERE (amount > 100 AND region = 'eu'), ONLY events WHERE (amount > 1)`)
				},
				Config: config(initial),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					expectDriftAt(filtered, []string{"tables", "public.orders", "columns"}),
				}},
			},
			{
				// Turning publish_via_partition_root off drops the filter on
				// the partitioned table in the same apply: PostgreSQL accepts
				// only that order.
				Config: config(viaRootOff),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					expectDriftAt(filtered, []string{"publish_via_partition_root"}, []string{"tables", "public.events", "where"}),
				}},
			},
			{
				// And back on, with the filter.
				Config: config(initial),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					expectDriftAt(filtered, []string{"publish_via_partition_root"}, []string{"tables", "public.events", "where"}),
				}},
			},
			{
				Config: config(twoSchemas),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					expectDrift(schemas, "tables_in_schema"),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(schemas, tfjsonpath.New("tables_in_schema"), stringSet("sales", "archive")),
				},
			},
			{
				PreConfig: func() {
					execSQL(t, topo.Primary, db, `ALTER PUBLICATION pub_schemas DROP TABLES IN SCHEMA archive`)
				},
				Config: config(twoSchemas),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					expectDrift(schemas, "tables_in_schema"),
				}},
			},
			{
				PreConfig: func() {
					execSQL(t, topo.Primary, db, `ALTER PUBLICATION pub_schemas SET TABLE ONLY audit WHERE (kind = 'c'), TABLES IN SCHEMA sales, archive`)
				},
				Config: config(twoSchemas),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					expectDriftAt(schemas, []string{"tables", "public.audit", "where"}),
				}},
			},
		},
	})
}

// Names with dots, slashes, quotes, spaces, upper case and non-ASCII letters
// in every identifier, and SQL's own punctuation (a backslash, $$, a comment,
// a line break) in some, apply with no diff and import (#577).
func TestAccPublication_hostileNames(t *testing.T) {
	topo := testAccTopology(t)
	const (
		db     = `pub hostile.DB/"Ü"`
		schema = `Sales.EU "x"/ß`
		table  = "Order Items.\"Ö\"/1\\\n$$"
		colA   = `Amount "€" $$\`
		colB   = `ID.x/y -- /*`
		pub    = "Pub \"Ä\" ./ Name\n$$ -- \\"
		pub2   = `Schema Pub/"Ü".2`
		owner  = `Own er."Ö"/Ü`
		// The key of the table in tables: each part quoted as
		// quote_ident would, "" for a quote inside.
		hostileKey = "\"Sales.EU \"\"x\"\"/ß\".\"Order Items.\"\"Ö\"\"/1\\\n$$\""
	)
	createDatabase(t, topo.Primary, db)
	createRole(t, topo.Primary, owner)
	execSQL(t, topo.Primary, db, fmt.Sprintf(`
CREATE SCHEMA %[1]s;
CREATE TABLE %[2]s (%[3]s int, %[4]s int PRIMARY KEY, other text);
GRANT CREATE ON DATABASE %[5]s TO %[6]s;`,
		pgsql.Ident(schema), pgsql.QualifiedIdent(schema, table), pgsql.Ident(colA), pgsql.Ident(colB),
		pgsql.Ident(db), pgsql.Ident(owner)))
	where := pgsql.Ident(colA) + " > 0"
	config := providerConfig("primary", topo.Primary) + `
resource "pgreplication_publication" "table" {
  provider = pgreplication.primary
  database = ` + hcl(db) + `
  name     = ` + hcl(pub) + `
  owner    = ` + hcl(owner) + `
  tables = {
    ` + hcl(hostileKey) + ` = {
      columns = [` + hcl(colB) + `, ` + hcl(colA) + `]
      where   = ` + hcl(where) + `
    }
  }
}

resource "pgreplication_publication" "schema" {
  provider         = pgreplication.primary
  database         = ` + hcl(db) + `
  name             = ` + hcl(pub2) + `
  tables_in_schema = [` + hcl(schema) + `]
}
`
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: config,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("pgreplication_publication.table", tfjsonpath.New("id"), knownvalue.StringExact(importid.Format(db, pub))),
					statecheck.ExpectKnownValue("pgreplication_publication.table", tfjsonpath.New("owner"), knownvalue.StringExact(owner)),
					statecheck.ExpectKnownValue("pgreplication_publication.table", tfjsonpath.New("tables"), knownvalue.MapExact(map[string]knownvalue.Check{
						hostileKey: tableValue([]string{colA, colB}, where),
					})),
					statecheck.ExpectKnownValue("pgreplication_publication.schema", tfjsonpath.New("tables_in_schema"), stringSet(schema)),
				},
			},
			{
				Config:           config,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("pgreplication_publication.table", tfjsonpath.New("tables"), knownvalue.MapExact(map[string]knownvalue.Check{
						hostileKey: tableValue([]string{colA, colB}, "("+where+")"),
					})),
				},
			},
			{ResourceName: "pgreplication_publication.table", ImportState: true, ImportStateVerify: true},
			{ResourceName: "pgreplication_publication.schema", ImportState: true, ImportStateVerify: true},
			{
				// An import block with this configuration: Read spells the
				// key as the configuration does, so the import plans
				// nothing else.
				Config:          config,
				ResourceName:    "pgreplication_publication.table",
				ImportState:     true,
				ImportStateKind: resource.ImportBlockWithID,
				ImportStateId:   importid.Format(db, pub),
			},
		},
	})
}

// all_tables cannot be altered: switching it drops and creates the
// publication in one transaction, an update in place
// (TestAccPublication_allTablesSwitchKeepsSubscribers: its subscribers
// stream on).
func TestAccPublication_allTables(t *testing.T) {
	topo := testAccTopology(t)
	const db = "pub_all"
	createDatabase(t, topo.Primary, db)
	execSQL(t, topo.Primary, db, `CREATE TABLE orders (id int PRIMARY KEY)`)
	const addr = "pgreplication_publication.all"
	config := func(body string) string {
		return providerConfigDB("primary", topo.Primary, db) + `
resource "pgreplication_publication" "all" {
  provider = pgreplication.primary
  name     = "pub_all"
` + body + `
}
`
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: config(`all_tables = true`),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("all_tables"), knownvalue.Bool(true)),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("tables"), knownvalue.MapExact(map[string]knownvalue.Check{})),
				},
			},
			{ResourceName: addr, ImportState: true, ImportStateVerify: true},
			{
				Config: config(`tables = { "public.orders" = {} }`),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("all_tables"), knownvalue.Bool(false)),
				},
			},
			{
				// The last table removed: ALTER PUBLICATION … DROP, in place.
				Config: config(``),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("tables"), knownvalue.MapExact(map[string]knownvalue.Check{})),
				},
			},
		},
	})
}

// Configurations PostgreSQL would refuse fail at plan time, naming the
// attributes.
func TestAccPublication_planErrors(t *testing.T) {
	topo := testAccTopology(t)
	const db = "pub_errors"
	createDatabase(t, topo.Primary, db)
	execSQL(t, topo.Primary, db, `CREATE TABLE orders (id int PRIMARY KEY, amount int)`)
	config := func(body string) string {
		return providerConfigDB("primary", topo.Primary, db) + `
resource "pgreplication_publication" "bad" {
  provider = pgreplication.primary
  name     = "pub_errors"
` + body + `
}
`
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: config(`all_tables = true
  tables = { "public.orders" = {} }`),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)Conflicting Publication Targets.*all_tables.*tables_in_schema`),
			},
			{
				Config: config(`tables_in_schema = ["public"]
  tables = { "public.orders" = { columns = ["id"] } }`),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`Column Lists Cannot Be Combined With Schemas`),
			},
			{
				// A key names the table as PostgreSQL's quote_ident would
				// write it, schema first: the error says how.
				Config:      config(`tables = { "orders" = {} }`),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)Invalid Publication Table Key.*"orders".*names\s+no\s+schema,\s+as\s+public\.orders\s+would`),
			},
			{
				Config:      config(`tables = { "Public.Orders" = {} }`),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)Invalid Publication Table Key.*"Public\.Orders".*Write\s+"public\.orders".*folded\s+to\s+lower\s+case`),
			},
			{
				Config:      config(`tables = { "\"public\".\"orders\"" = {} }`),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)Invalid Publication Table Key.*Write\s+"public\.orders"`),
			},
			{
				Config:      config(`tables = { "public.orders.id" = {} }`),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)Invalid Publication Table Key.*has\s+3\s+parts`),
			},
			{
				Config:      config(`tables = { "public.orders" = { where = "amount >" } }`),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)Invalid Row Filter.*syntax error`),
			},
			{
				// One statement only: a filter cannot smuggle in another.
				Config:      config(`tables = { "public.orders" = { where = "true); DROP TABLE orders; --" } }`),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`Invalid Row Filter`),
			},
			{
				// Nor close its parentheses to add a table nobody declared…
				Config:      config(`tables = { "public.orders" = { where = "true), ONLY public.other WHERE (true" } }`),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)Invalid Row Filter.*did not open`),
			},
			{
				// …or to change the publication's options.
				Config:      config(`tables = { "public.orders" = { where = "id > 0) WITH (publish='insert') --" } }`),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)Invalid Row Filter.*did not open`),
			},
			{
				Config:      config(`tables = { "public.orders" = { where = "id IN (SELECT id FROM other)" } }`),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)Invalid Row Filter.*subquery`),
			},
			{
				// A subquery without SELECT: the plan's EXPLAIN accepts
				// it, PostgreSQL refuses it only when the publication is
				// created.
				Config:      config(`tables = { "public.orders" = { where = "id IN (VALUES (1), (2))" } }`),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)Invalid Row Filter.*subquery`),
			},
			{
				Config:      config(`tables = { "public.orders" = { where = "id IN (TABLE orders)" } }`),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)Invalid Row Filter.*subquery`),
			},
			{
				// …and the types: a filter that is not boolean, an operator
				// or a constant the column's type does not have.
				Config:      config(`tables = { "public.orders" = { where = "amount + 1" } }`),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)Invalid Row Filter.*must\s+be\s+type\s+boolean`),
			},
			{
				Config:      config(`tables = { "public.orders" = { where = "amount ~~ 'x%'" } }`),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)Invalid Row Filter.*operator\s+does\s+not\s+exist.*No\s+operator\s+matches`),
			},
			{
				Config:      config(`tables = { "public.orders" = { where = "amount > 'many'" } }`),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)Invalid Row Filter.*invalid\s+input\s+syntax\s+for\s+type\s+integer`),
			},
			{
				// The server, asked read-only at plan time, knows the columns.
				Config:      config(`tables = { "public.orders" = { where = "no_such_column > 0" } }`),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)Invalid Row Filter.*no_such_column`),
			},
			{
				Config:      config(`tables = { "public.orders" = { columns = ["id", "id) WHERE (true"] } }`),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)Unknown Column in Column List.*id\) WHERE \(true`),
			},
		},
	})
	// Nothing reached the server: no publication, and no statement that
	// names one in pg_stat_statements' absence, the catalog is the proof.
	if n := queryValue[int](t, topo.Primary, db, `SELECT count(*)::int FROM pg_publication`); n != 0 {
		t.Fatalf("%d publications exist after plans that must all have failed", n)
	}
	if n := queryValue[int](t, topo.Primary, db, `SELECT count(*)::int FROM pg_class WHERE relname = 'orders'`); n != 1 {
		t.Fatalf("table orders is gone: a row filter ran a statement of its own")
	}
}

// A publication whose database was dropped is gone with it: the refresh
// plans it created again instead of failing to connect, and destroy has
// nothing to do. (The provider checks its connection before each handler;
// a database that does not exist is the handler's to judge.)
func TestAccPublication_databaseDropped(t *testing.T) {
	topo := testAccTopology(t)
	const db = "pub_dropped_db"
	createDatabase(t, topo.Primary, db)
	execSQL(t, topo.Primary, db, `CREATE TABLE orders (id int PRIMARY KEY)`)
	config := providerConfig("primary", topo.Primary) + `
resource "pgreplication_publication" "this" {
  provider = pgreplication.primary
  database = "pub_dropped_db"
  name     = "pub_dropped"
  tables   = { "public.orders" = {} }
}
`
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{Config: config},
			{
				PreConfig: func() {
					execSQL(t, topo.Primary, "postgres", "DROP DATABASE "+pgsql.Ident(db)+" WITH (FORCE)")
				},
				Config:             config,
				PlanOnly:           true,
				ExpectNonEmptyPlan: true,
				ConfigPlanChecks: resource.ConfigPlanChecks{PostApplyPostRefresh: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("pgreplication_publication.this", plancheck.ResourceActionCreate),
				}},
			},
		},
	})
}

// A create or an update that fails midway leaves the publication as it was:
// the statements run in one transaction. The create's second statement
// (OWNER TO a role that does not exist) fails after CREATE PUBLICATION
// succeeded; the update's table list fails after the rename and before the
// options and the owner.
func TestAccPublication_failureChangesNothing(t *testing.T) {
	topo := testAccTopology(t)
	const db = "pub_atomic"
	createDatabase(t, topo.Primary, db)
	createRole(t, topo.Primary, "pub_atomic_owner")
	execSQL(t, topo.Primary, db, `CREATE TABLE orders (id int PRIMARY KEY); GRANT CREATE ON DATABASE pub_atomic TO pub_atomic_owner`)
	config := func(name, owner, publish, tables string) string {
		return providerConfigDB("primary", topo.Primary, db) + fmt.Sprintf(`
resource "pgreplication_publication" "this" {
  provider = pgreplication.primary
  name     = %q
  owner    = %q
  publish  = %s
  tables   = %s
}
`, name, owner, publish, tables)
	}
	publication := func() string {
		return queryValue[string](t, topo.Primary, db, `
SELECT coalesce(string_agg(format('%s owner=%s insert=%s update=%s tables=%s', pubname, pg_get_userbyid(pubowner), pubinsert, pubupdate,
       (SELECT string_agg(prrelid::regclass::text, ',') FROM pg_publication_rel WHERE prpubid = p.oid)), '; '), 'none')
FROM pg_publication p`)
	}
	original := config("pub_atomic", "postgres", `["insert", "update"]`, `{ "public.orders" = {} }`)
	const before = "pub_atomic owner=postgres insert=t update=t tables=orders"
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config:      config("pub_atomic", "no_such_role", `["insert", "update"]`, `{ "public.orders" = {} }`),
				ExpectError: regexp.MustCompile(`(?s)Cannot Create Publication.*OWNER\s+TO\s+"no_such_role":\s+ERROR:\s+role\s+"no_such_role"\s+does\s+not\s+exist`),
			},
			{
				Config: original,
				PreConfig: func() {
					if got := publication(); got != "none" {
						t.Errorf("after the failed create: %s, want no publication", got)
					}
				},
			},
			{
				Config:      config("pub_atomic_renamed", "pub_atomic_owner", `["insert"]`, `{ "public.orders" = {}, "public.missing" = {} }`),
				ExpectError: regexp.MustCompile(`(?s)Cannot Alter Publication.*nothing\s+was\s+changed.*relation\s+"public\.missing"\s+does\s+not\s+exist`),
			},
			{
				Config: original,
				PreConfig: func() {
					if got := publication(); got != before {
						t.Errorf("after the failed update: %s, want %s", got, before)
					}
				},
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
			},
		},
	})
}

// PostgreSQL accepts a row filter or a column list on a partitioned table
// only with publish_via_partition_root = true, and refuses to turn that off
// while one is there: both are refused at plan time, on the attribute, with
// the fix, where they failed at apply.
func TestAccPublication_partitionedNeedsViaRoot(t *testing.T) {
	topo := testAccTopology(t)
	const db = "pub_partitioned_root"
	createDatabase(t, topo.Primary, db)
	execSQL(t, topo.Primary, db, `
CREATE TABLE events (id int, region text) PARTITION BY LIST (region);
CREATE TABLE events_eu PARTITION OF events FOR VALUES IN ('eu');`)
	const addr = "pgreplication_publication.events"
	config := func(viaRoot bool, table string) string {
		return providerConfigDB("primary", topo.Primary, db) + fmt.Sprintf(`
resource "pgreplication_publication" "events" {
  provider                   = pgreplication.primary
  name                       = "pub_events"
  publish_via_partition_root = %t
  tables                     = { "public.events" = %s }
}
`, viaRoot, table)
	}
	refused := func(attr string) *regexp.Regexp {
		return regexp.MustCompile(`(?s)Partitioned Table Needs publish_via_partition_root.*Table\s+public\.events\s+is\s+partitioned.*` +
			`\(` + attr + `\)\s+with\s+publish_via_partition_root\s+=\s+false.*Set\s+publish_via_partition_root\s+=\s+true`)
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{Config: config(false, `{ where = "id > 0" }`), PlanOnly: true, ExpectError: refused("where")},
			{Config: config(false, `{ columns = ["id", "region"] }`), PlanOnly: true, ExpectError: refused("columns")},
			{
				Config: config(true, `{ where = "id > 0" }`),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("tables"), knownvalue.MapExact(map[string]knownvalue.Check{
						"public.events": tableValue(nil, "id > 0"),
					})),
				},
			},
			// Turned off under a filter that stays: PostgreSQL would refuse
			// the ALTER at apply.
			{Config: config(false, `{ where = "id > 0" }`), ExpectError: refused("where")},
			{Config: config(false, `{}`)},
		},
	})
}

// Row filters, column lists and tables_in_schema are PostgreSQL 15 features:
// they work there too, not only on the shared topology's newer server.
func TestAccPublication_postgres15(t *testing.T) {
	t.Parallel()
	testAccPreCheck(t)
	topo := routertest.Start(t, routertest.WithVersion(15), routertest.WithStandbys(0))
	const db = "pub15"
	createDatabase(t, topo.Primary, db)
	execSQL(t, topo.Primary, db, `
CREATE TABLE orders (id int PRIMARY KEY, amount int, region text);
CREATE SCHEMA sales;
CREATE TABLE sales.invoices (id int);`)
	config := providerConfigDB("primary", topo.Primary, db) + `
resource "pgreplication_publication" "filtered" {
  provider = pgreplication.primary
  name     = "pub15_filtered"
  tables = {
    "public.orders" = {
      columns = ["region", "id"]
      where   = "region <> 'us'"
    }
  }
}

resource "pgreplication_publication" "schemas" {
  provider         = pgreplication.primary
  name             = "pub15_schemas"
  tables_in_schema = ["sales"]
  tables = {
    "public.orders" = { where = "amount > 100" }
  }
}
`
	const addr = "pgreplication_publication.filtered"
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: config,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("tables"), knownvalue.MapExact(map[string]knownvalue.Check{
						"public.orders": tableValue([]string{"id", "region"}, "region <> 'us'"),
					})),
					statecheck.ExpectKnownValue("pgreplication_publication.schemas", tfjsonpath.New("tables_in_schema"), stringSet("sales")),
				},
			},
			{
				Config:           config,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("tables"), knownvalue.MapExact(map[string]knownvalue.Check{
						"public.orders": tableValue([]string{"id", "region"}, "(region <> 'us'::text)"),
					})),
				},
			},
			{ResourceName: addr, ImportState: true, ImportStateVerify: true},
			{ResourceName: "pgreplication_publication.schemas", ImportState: true, ImportStateVerify: true},
			{
				PreConfig: func() {
					execSQL(t, topo.Primary, db, `ALTER PUBLICATION pub15_filtered SET TABLE orders (id, region) WHERE (region = 'us')`)
				},
				Config: config,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					expectDriftAt(addr, []string{"tables", "public.orders", "where"}),
				}},
			},
		},
	})
}

// publish_generated_columns (PostgreSQL 18) publishes stored generated
// columns: applied, imported, drifted by hand and named alone in the plan on
// 18; refused at plan time, before anything is created, on an older server.
func TestAccPublication_generatedColumns(t *testing.T) {
	testAccPreCheck(t)
	config := func(n *routertest.Node, db, mode string) string {
		return providerConfigDB("primary", n, db) + `
resource "pgreplication_publication" "gen" {
  provider                  = pgreplication.primary
  name                      = "pub_gen"
  publish_generated_columns = "` + mode + `"
  tables                    = { "public.orders" = {} }
}
`
	}
	const addr = "pgreplication_publication.gen"
	const schema = `CREATE TABLE orders (id int PRIMARY KEY, amount int, doubled int GENERATED ALWAYS AS (amount * 2) STORED)`
	t.Run("18", func(t *testing.T) {
		topo := routertest.Start(t, routertest.WithVersion(18), routertest.WithStandbys(0))
		const db = "pub_gen"
		createDatabase(t, topo.Primary, db)
		execSQL(t, topo.Primary, db, schema)
		// genCols checks pg_publication.pubgencols: s (stored) or n (none).
		genCols := func(want string) resource.TestCheckFunc {
			return func(*terraform.State) error {
				if g := queryValue[string](t, topo.Primary, db, `SELECT pubgencols::text FROM pg_publication WHERE pubname = 'pub_gen'`); g != want {
					return fmt.Errorf("pg_publication.pubgencols = %q, want %q", g, want)
				}
				return nil
			}
		}
		resource.Test(t, resource.TestCase{
			ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
			Steps: []resource.TestStep{
				{
					Config: config(topo.Primary, db, "stored"),
					ConfigStateChecks: []statecheck.StateCheck{
						statecheck.ExpectKnownValue(addr, tfjsonpath.New("publish_generated_columns"), knownvalue.StringExact("stored")),
					},
					Check: genCols("s"),
				},
				{ResourceName: addr, ImportState: true, ImportStateVerify: true},
				{
					PreConfig: func() {
						execSQL(t, topo.Primary, db, `ALTER PUBLICATION pub_gen SET (publish_generated_columns = none)`)
					},
					Config: config(topo.Primary, db, "stored"),
					ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
						expectDrift(addr, "publish_generated_columns"),
					}},
				},
				{
					Config: config(topo.Primary, db, "none"),
					ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
						expectDrift(addr, "publish_generated_columns"),
					}},
					Check: genCols("n"),
				},
			},
		})
	})
	t.Run("17", func(t *testing.T) {
		topo := testAccTopology(t)
		if topo.Version >= 18 {
			t.Skipf("the shared topology runs PostgreSQL %d; the refusal needs an older server", topo.Version)
		}
		const db = "pub_gen_old"
		createDatabase(t, topo.Primary, db)
		execSQL(t, topo.Primary, db, schema)
		resource.Test(t, resource.TestCase{
			ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
			Steps: []resource.TestStep{
				{
					Config:      config(topo.Primary, db, "stored"),
					PlanOnly:    true,
					ExpectError: regexp.MustCompile(`(?s)publish_generated_columns.*needs PostgreSQL 18 or later`),
				},
				{
					// Its default is what older servers do: no error, no diff.
					Config: config(topo.Primary, db, "none"),
				},
			},
		})
	})
}

// A publisher without wal_level = logical still gets its publication, with a
// plan-time warning that names the setting and the fix.
func TestAccPublication_walLevelWarning(t *testing.T) {
	t.Parallel()
	testAccPreCheck(t)
	topo := routertest.Start(t, routertest.WithStandbys(0), routertest.WithSetting("wal_level", "replica"))
	execSQL(t, topo.Primary, "postgres", `CREATE TABLE orders (id int PRIMARY KEY)`)
	r := &publicationResource{server: newServer(connSettings{
		Host: topo.Primary.Host, Port: int64(topo.Primary.Port), Database: "postgres", Username: "postgres", SSLMode: "disable",
	})}
	var diags diag.Diagnostics
	r.warnWalLevel(context.Background(), "pub_wal", &diags)
	if diags.WarningsCount() != 1 || diags.HasError() {
		t.Fatalf("want one warning, got %v", diags)
	}
	for _, want := range []string{"wal_level = replica", "pub_wal", "ALTER SYSTEM SET wal_level = logical", "restart"} {
		if !strings.Contains(diags[0].Detail(), want) {
			t.Errorf("warning %q does not say %q", diags[0].Detail(), want)
		}
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config: providerConfig("primary", topo.Primary) + `
resource "pgreplication_publication" "this" {
  provider = pgreplication.primary
  name     = "pub_wal"
  tables   = { "public.orders" = {} }
}
`,
		}},
	})

	// The shared topology runs wal_level = logical: no warning.
	shared := testAccTopology(t)
	r.server = newServer(connSettings{Host: shared.Primary.Host, Port: int64(shared.Primary.Port), Database: "postgres", Username: "postgres", SSLMode: "disable"})
	diags = nil
	r.warnWalLevel(context.Background(), "pub_wal", &diags)
	if len(diags) != 0 {
		t.Errorf("wal_level = logical: want no diagnostics, got %v", diags)
	}
}

// The documented example applies, with no diff afterwards, on a server that
// has what it names.
func TestAccPublication_example(t *testing.T) {
	t.Parallel()
	testAccPreCheck(t)
	example, err := os.ReadFile("../examples/resources/pgreplication_publication/resource.tf")
	if err != nil {
		t.Fatal(err)
	}
	topo := routertest.Start(t, routertest.WithStandbys(0))
	createDatabase(t, topo.Primary, "app")
	createRole(t, topo.Primary, "replication_admin")
	execSQL(t, topo.Primary, "app", `
GRANT CREATE ON DATABASE app TO replication_admin;
CREATE TABLE orders (id int PRIMARY KEY, region text, amount int, created_at timestamptz, note text);
CREATE TABLE events (id int, kind text, at timestamptz) PARTITION BY RANGE (at);
CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE TABLE customers (id int PRIMARY KEY);
CREATE SCHEMA reporting;
CREATE SCHEMA billing;
CREATE TABLE billing.invoices (id int PRIMARY KEY);`)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config: providerConfig("primary", topo.Primary) + string(example),
		}},
	})
}

// database defaults to the provider's: a publication follows the provider's
// database (a replacement, since PostgreSQL cannot move a publication), and
// naming that database explicitly is no change.
func TestAccPublication_providerDatabase(t *testing.T) {
	topo := testAccTopology(t)
	createDatabase(t, topo.Primary, "pub_dbdefault_a")
	createDatabase(t, topo.Primary, "pub_dbdefault_b")
	const addr = "pgreplication_publication.this"
	config := func(providerDB, database string) string {
		return providerConfigDB("primary", topo.Primary, providerDB) + `
resource "pgreplication_publication" "this" {
  provider = pgreplication.primary
  name     = "pub_dbdefault"
  ` + database + `
}
`
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: config("pub_dbdefault_a", ""),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("database"), knownvalue.StringExact("pub_dbdefault_a")),
				},
			},
			{
				Config: config("pub_dbdefault_b", ""),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(addr, plancheck.ResourceActionReplace),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("database"), knownvalue.StringExact("pub_dbdefault_b")),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("id"), knownvalue.StringExact("pub_dbdefault_b/pub_dbdefault")),
				},
			},
			{
				Config:   config("pub_dbdefault_a", `database = "pub_dbdefault_b"`),
				PlanOnly: true,
			},
		},
	})
	if n := queryValue[int](t, topo.Primary, "pub_dbdefault_a", `SELECT count(*)::int FROM pg_publication`); n != 0 {
		t.Errorf("the replaced publication is still in pub_dbdefault_a")
	}
}

// fakePrivate is the private state that Create and Update leave for ModifyPlan.
type fakePrivate map[string][]byte

func (f fakePrivate) GetKey(_ context.Context, key string) ([]byte, diag.Diagnostics) {
	return f[key], nil
}

// Without asking the server, a plan keeps the state's stored filter when the
// configuration's text and the stored text are those of the last apply, and
// plans the configured text when either changed: a change by hand or in the
// configuration is never hidden.
func TestPlanRowFiltersFromLastApply(t *testing.T) {
	ctx := context.Background()
	tables := func(where string) types.Map {
		return types.MapValueMust(types.ObjectType{AttrTypes: publicationTableAttrTypes}, map[string]attr.Value{
			"public.orders": types.ObjectValueMust(publicationTableAttrTypes, map[string]attr.Value{
				"columns": types.SetNull(types.StringType), "where": types.StringValue(where),
			}),
		})
	}
	where := func(m publicationModel) string {
		ts, _ := tablesOf(ctx, m.Tables)
		return ts["public.orders"].Where.ValueString()
	}
	private := fakePrivate{rowFiltersKey: []byte(`{"public.orders": {"config": "amount > 100", "stored": "(amount > 100)"}}`)}
	r := &publicationResource{} // no server: nothing can be normalised
	for _, tc := range []struct {
		name, configured, stored, want string
	}{
		{"as applied", "amount > 100", "(amount > 100)", "(amount > 100)"},
		{"changed by hand", "amount > 100", "(amount > 5)", "amount > 100"},
		{"changed in the configuration", "amount > 200", "(amount > 100)", "amount > 200"},
		{"written as stored", "(amount > 5)", "(amount > 5)", "(amount > 5)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plan := publicationModel{Tables: tables(tc.configured)}
			state := publicationModel{Tables: tables(tc.stored)}
			if diags := r.planRowFilters(ctx, &plan, &state, private, nil); diags.HasError() {
				t.Fatal(diags)
			}
			if got := where(plan); got != tc.want {
				t.Errorf("planned where %q, want %q", got, tc.want)
			}
		})
	}
}

// The plan-time version gate names each feature the configuration uses.
func TestPublicationVersionGates(t *testing.T) {
	ctx := context.Background()
	tableType := types.ObjectType{AttrTypes: publicationTableAttrTypes}
	table := func(columns []string, where string) attr.Value {
		cols := types.SetNull(types.StringType)
		if columns != nil {
			cols, _ = types.SetValueFrom(ctx, types.StringType, columns)
		}
		w := types.StringNull()
		if where != "" {
			w = types.StringValue(where)
		}
		return types.ObjectValueMust(publicationTableAttrTypes, map[string]attr.Value{"columns": cols, "where": w})
	}
	model := func(schemas []string, viaRoot bool, tables map[string]attr.Value) publicationModel {
		s, _ := types.SetValueFrom(ctx, types.StringType, nonNil(schemas))
		return publicationModel{
			Tables:                  types.MapValueMust(tableType, tables),
			TablesInSchema:          s,
			PublishViaPartitionRoot: types.BoolValue(viaRoot),
		}
	}
	none := types.MapValueMust(tableType, nil)
	for _, tc := range []struct {
		name string
		m    publicationModel
		want []string
	}{
		{"plain tables", model(nil, false, map[string]attr.Value{"public.t": table(nil, "")}), nil},
		{"everything", model([]string{"s"}, true, map[string]attr.Value{"public.b": table([]string{"a"}, ""), "public.a": table(nil, "a > 1")}),
			[]string{`15:tables_in_schema`, `15:tables["public.b"].columns`, `15:tables["public.a"].where`, `13:publish_via_partition_root`}},
		{"row filter", model(nil, false, map[string]attr.Value{"public.t": table(nil, "a > 1"), "public.u": table(nil, "b > 1")}), []string{`15:tables["public.t"].where`}},
		{"column list", model(nil, false, map[string]attr.Value{"public.t": table([]string{"a"}, "")}), []string{`15:tables["public.t"].columns`}},
		{"schemas", model([]string{"s"}, false, nil), []string{"15:tables_in_schema"}},
		{"unknown schemas", publicationModel{Tables: none, TablesInSchema: types.SetUnknown(types.StringType)}, []string{"15:tables_in_schema"}},
		{"stored generated columns", publicationModel{Tables: none, PublishGeneratedColumns: types.StringValue("stored")}, []string{"18:publish_generated_columns"}},
		{"no generated columns", publicationModel{Tables: none, PublishGeneratedColumns: types.StringValue("none")}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, g := range publicationVersionGates(ctx, tc.m) {
				got = append(got, fmt.Sprintf("%d:%s", g.Major, g.Attr))
				if g.Feature == "" {
					t.Errorf("gate on %s does not name its feature", g.Attr)
				}
			}
			if strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Errorf("gates %v, want %v", got, tc.want)
			}
		})
	}
}

func TestPublicationSQL(t *testing.T) {
	p := publication{
		Name:    `Pub "Ä"`,
		Tables:  []publishedTable{{Schema: "s.x", Name: `T "1"`, Columns: []string{"a", `B"`}, Where: "a > 1"}, {Schema: "public", Name: "u"}},
		Schemas: []string{"Sales"},
		Publish: []string{"insert", "update"},
	}
	want := `CREATE PUBLICATION "Pub ""Ä""" FOR TABLE ONLY "s.x"."T ""1""" ("a", "B""") WHERE (a > 1), ONLY "public"."u", TABLES IN SCHEMA "Sales" WITH (publish = 'insert, update', publish_via_partition_root = false)`
	if got := createPublicationSQL(p); got != want {
		t.Errorf("createPublicationSQL:\n got %s\nwant %s", got, want)
	}
	if got := createPublicationSQL(publication{Name: "p", AllTables: true, Publish: []string{}}); got != `CREATE PUBLICATION "p" FOR ALL TABLES WITH (publish = '', publish_via_partition_root = false)` {
		t.Errorf("all tables: %s", got)
	}

	// publish_via_partition_root on: before the tables; off: after them.
	had := publication{Name: "old", Owner: "a", Tables: []publishedTable{{Schema: "public", Name: "t"}}, Publish: publishActions}
	on := had
	on.Name, on.Owner, on.ViaRoot = "new", "b", true
	on.Tables = []publishedTable{{Schema: "public", Name: "t", Where: "x > 1"}}
	wantOn := []string{
		`ALTER PUBLICATION "old" RENAME TO "new"`,
		`ALTER PUBLICATION "new" SET (publish = 'insert, update, delete, truncate', publish_via_partition_root = true)`,
		`ALTER PUBLICATION "new" SET TABLE ONLY "public"."t" WHERE (x > 1)`,
		`ALTER PUBLICATION "new" OWNER TO "b"`,
	}
	if got := alterPublicationSQL(had, on); strings.Join(got, "\n") != strings.Join(wantOn, "\n") {
		t.Errorf("alterPublicationSQL on:\n got %q\nwant %q", got, wantOn)
	}
	off := publication{Name: "new", Owner: "b", Publish: publishActions}
	wantOff := []string{
		`ALTER PUBLICATION "new" DROP TABLE ONLY "public"."t"`,
		`ALTER PUBLICATION "new" SET (publish = 'insert, update, delete, truncate', publish_via_partition_root = false)`,
	}
	if got := alterPublicationSQL(on, off); strings.Join(got, "\n") != strings.Join(wantOff, "\n") {
		t.Errorf("alterPublicationSQL off:\n got %q\nwant %q", got, wantOff)
	}
	if got := alterPublicationSQL(off, off); len(got) != 0 {
		t.Errorf("no change should need no statement, got %q", got)
	}
}

// A state of schema version 0, as Terraform stored it (table blocks with
// schema and name), upgrades through the framework to tables keyed by each
// table's qualified name, every other attribute kept; a table block without
// a schema was in public.
func TestPublicationUpgradeStateV0(t *testing.T) {
	v0 := `{
  "id": "app/pub", "name": "pub", "database": "app", "owner": "postgres", "all_tables": false,
  "tables_in_schema": [], "publish": ["insert", "update"], "publish_via_partition_root": true,
  "publish_generated_columns": "none",
  "table": [
    {"schema": "public", "name": "orders", "columns": ["id", "amount"], "where": "(amount > 100)"},
    {"schema": "Sales.EU \"x\"", "name": "Order Items", "columns": null, "where": null},
    {"schema": null, "name": "order", "columns": null, "where": "(id > 0)"}
  ]
}`
	got := upgradePublicationV0(t, v0)
	tables, diags := tablesOf(context.Background(), got.Tables)
	if diags.HasError() {
		t.Fatal(diags)
	}
	want := map[string]string{
		"public.orders":                  `["id","amount"] "(amount > 100)"`,
		`"Sales.EU ""x"""."Order Items"`: `<null> <null>`,
		`public."order"`:                 `<null> "(id > 0)"`,
	}
	if len(tables) != len(want) {
		t.Errorf("upgraded tables %v, want the keys of %v", slices.Sorted(maps.Keys(tables)), want)
	}
	for key, w := range want {
		tbl, ok := tables[key]
		if !ok {
			t.Errorf("upgraded tables %v lack %s", slices.Sorted(maps.Keys(tables)), key)
			continue
		}
		g := tbl.Columns.String() + " " + tbl.Where.String()
		if g != w {
			t.Errorf("tables[%s] = %s, want %s", key, g, w)
		}
	}
	for name, eq := range map[string]bool{
		"id":      got.ID.ValueString() == "app/pub",
		"name":    got.Name.ValueString() == "pub",
		"owner":   got.Owner.ValueString() == "postgres",
		"publish": len(got.Publish.Elements()) == 2,
		"via":     got.PublishViaPartitionRoot.ValueBool(),
		"gencols": got.PublishGeneratedColumns.ValueString() == "none",
		"schemas": !got.TablesInSchema.IsNull() && len(got.TablesInSchema.Elements()) == 0,
	} {
		if !eq {
			t.Errorf("%s was not kept by the upgrade: %+v", name, got)
		}
	}
}

// A version-0 state without tables (the attribute null, empty or absent, as
// a publication of all_tables or of schemas only left it) upgrades to an
// empty map, which is what the schema's default and Read give: the next
// plan shows no change to tables.
func TestPublicationUpgradeStateV0WithoutTables(t *testing.T) {
	const common = `"id": "app/pub", "name": "pub", "database": "app", "owner": "postgres", "all_tables": true,
  "tables_in_schema": [], "publish": ["insert"], "publish_via_partition_root": false, "publish_generated_columns": "none"`
	for name, v0 := range map[string]string{
		"null":   `{` + common + `, "table": null}`,
		"empty":  `{` + common + `, "table": []}`,
		"absent": `{` + common + `}`,
	} {
		t.Run(name, func(t *testing.T) {
			got := upgradePublicationV0(t, v0)
			if got.Tables.IsNull() || got.Tables.IsUnknown() || len(got.Tables.Elements()) != 0 {
				t.Errorf("tables = %s, want an empty map", got.Tables)
			}
			if !got.AllTables.ValueBool() || got.Name.ValueString() != "pub" {
				t.Errorf("the upgrade lost attributes: %+v", got)
			}
		})
	}
}

// upgradePublicationV0 upgrades a publication's state of schema version 0
// (its JSON as Terraform stored it) through the provider, as the framework
// does, failing on any diagnostic, and returns the upgraded state.
func upgradePublicationV0(t *testing.T, v0 string) publicationModel {
	t.Helper()
	ctx := context.Background()
	server, err := testAccProtoV6ProviderFactories["pgreplication"]()
	if err != nil {
		t.Fatal(err)
	}
	resp, err := server.UpgradeResourceState(ctx, &tfprotov6.UpgradeResourceStateRequest{
		TypeName: "pgreplication_publication",
		Version:  0,
		RawState: &tfprotov6.RawState{JSON: []byte(v0)},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range resp.Diagnostics {
		t.Errorf("%s: %s", d.Summary, d.Detail)
	}
	if resp.UpgradedState == nil {
		t.Fatal("no upgraded state")
	}
	s := publicationSchema()
	raw, err := resp.UpgradedState.Unmarshal(s.Type().TerraformType(ctx))
	if err != nil {
		t.Fatal(err)
	}
	var got publicationModel
	if diags := (tfsdk.State{Schema: s, Raw: raw}).Get(ctx, &got); diags.HasError() {
		t.Fatal(diags)
	}
	return got
}

// A key of tables is a qualified name spelled as Read spells it; anything
// else is refused with the spelling to use.
func TestCheckTableKey(t *testing.T) {
	for _, ok := range []string{"public.books", `"My Schema"."Odd.Table"`, `public."Books"`, `public."order"`, `"ü".t`, `s."a""b"`} {
		if err := checkTableKey(ok); err != nil {
			t.Errorf("checkTableKey(%s): %v", ok, err)
		}
	}
	for key, want := range map[string]string{
		"books":               `names no schema, as public.books would`,
		"Public.Books":        `Write "public.books". A part written without double quotes is folded to lower case`,
		`"public"."books"`:    `Write "public.books".`,
		`"public"."Books"`:    `Write "public.\"Books\"".`,
		`public.order`:        `Write "public.\"order\""`,
		`public . books`:      `Write "public.books"`,
		`public.books.id`:     `has 3 parts`,
		`public."books`:       `not closed`,
		`public.books; DROP`:  `is not a dot`,
		`public."` + "\x00\"": `NUL byte`,
	} {
		err := checkTableKey(key)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), strconv.Quote(key)) {
			t.Errorf("checkTableKey(%s) = %v, want an error that quotes the key and says %q", key, err, want)
		}
	}
	// Capitals inside double quotes are kept: no word about folding.
	if err := checkTableKey(`"public"."Books"`); err == nil || strings.Contains(err.Error(), "folded") {
		t.Errorf(`checkTableKey("public"."Books") = %v, want an error that does not speak of folding`, err)
	}
}

// A key of tables is spelled as the server's own quote_ident spells the
// name, keyword for keyword: the provider keeps PostgreSQL 18's list, of
// which an older server quotes a subset (quoting one more keyword is valid
// SQL on every version).
func TestAccTableKeyIsQuoteIdent(t *testing.T) {
	topo := testAccTopology(t)
	words := queryValue[[]string](t, topo.Primary, "postgres", `SELECT array_agg(word ORDER BY word) FROM pg_get_keywords()`)
	quoted := queryValue[[]string](t, topo.Primary, "postgres", `SELECT array_agg(quote_ident(word) ORDER BY word) FROM pg_get_keywords()`)
	if len(words) < 400 || len(words) != len(quoted) {
		t.Fatalf("pg_get_keywords() gave %d words and %d quoted", len(words), len(quoted))
	}
	for i, w := range words {
		ours := pgsql.QuoteIdent(w)
		if ours == quoted[i] || topo.Version < 18 && ours == pgsql.Ident(w) {
			continue
		}
		t.Errorf("PostgreSQL %d quotes keyword %s as %s, the provider as %s", topo.Version, w, quoted[i], ours)
	}
	for _, n := range [][2]string{
		{"public", "books"}, {"My Schema", "Odd.Table"}, {`Sales.EU "x"/ß`, `Order Items."Ö"/1`},
		{"s", "order"}, {"s", "Ü"}, {"s", "_x1"}, {"s", "1x"}, {"s", "a$b"}, {"s", "x1_"}, {"s", "Books"},
	} {
		want := queryValue[string](t, topo.Primary, "postgres", `SELECT format('%I.%I', $1::text, $2::text)`, n[0], n[1])
		if got := tableKey(n[0], n[1]); got != want {
			t.Errorf("tableKey(%q, %q) = %s, the server's format('%%I.%%I') %s", n[0], n[1], got, want)
		}
	}
}

// A database or role may set standard_conforming_strings = off, under which
// a backslash escapes a quote inside '…'. checkRowFilter reads a filter as
// PostgreSQL does with it on (the default), so the provider's own sessions
// must run with it on, whatever the database says: otherwise a filter whose
// quotes the server pairs differently closes WHERE ( … ) and publishes a
// table nobody declared. The plan-time check (rowFilterPlan) would refuse
// this one as a syntax error, but it is skipped when the table does not exist
// yet at plan time; Create runs the statement as built here.
func TestAccPublication_standardConformingStringsOff(t *testing.T) {
	topo := testAccTopology(t)
	const db = "pub_scs_off"
	createDatabase(t, topo.Primary, db)
	execSQL(t, topo.Primary, db, `CREATE TABLE orders (id int PRIMARY KEY, v text); CREATE TABLE other (id int PRIMARY KEY)`)
	execSQL(t, topo.Primary, "postgres", `ALTER DATABASE pub_scs_off SET standard_conforming_strings = off`)
	const filter = `v = '\' AND v = ') , ONLY public.other WHERE (true OR id = 1 /* ' */`
	if err := checkRowFilter(filter); err != nil {
		t.Fatalf("checkRowFilter refuses the filter, so the test proves nothing: %v", err)
	}
	ctx := context.Background()
	s := newServer(connSettings{Host: topo.Primary.Host, Port: int64(topo.Primary.Port), Username: "postgres", Database: db, SSLMode: "disable"})
	pool, err := s.Pool(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	var scs string
	if err := pool.QueryRow(ctx, "SHOW standard_conforming_strings").Scan(&scs); err != nil {
		t.Fatal(err)
	}
	if scs != "on" {
		t.Errorf("the provider's session runs with standard_conforming_strings = %s, want on", scs)
	}
	want := publication{Name: "pub_scs", Tables: []publishedTable{{Schema: "public", Name: "orders", Where: filter}}, Publish: publishActions}
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return execOne(ctx, tx, createPublicationSQL(want)) })
	t.Logf("CREATE PUBLICATION with the filter: %v", err)
	if n := queryValue[int](t, topo.Primary, db, `SELECT count(*)::int FROM pg_publication_rel r JOIN pg_class c ON c.oid = r.prrelid WHERE c.relname = 'other'`); n != 0 {
		t.Errorf("the row filter %q published table other, which nothing declared", filter)
	}
}

// A publication the provider cannot read (a site revoked SELECT on the
// publication catalogs from PUBLIC) fails the refresh with "Cannot Read
// Publication", naming the publication, the database, the server, the
// server's message and the fix: the GRANT that lets the provider's role read
// them, which, run as printed, makes the next plan empty again.
func TestAccPublication_cannotRead(t *testing.T) {
	t.Parallel()
	testAccPreCheck(t)
	topo := routertest.Start(t, routertest.WithStandbys(0)) // catalog privileges changed: not the shared one
	const role = "tfacc_pub_reader"
	execSQL(t, topo.Primary, "postgres", `CREATE ROLE `+role+` LOGIN; GRANT CREATE ON DATABASE postgres TO `+role+`;
CREATE TABLE orders (id int PRIMARY KEY); ALTER TABLE orders OWNER TO `+role)
	config := providerConfigAs("", topo.Primary, role) + `
resource "pgreplication_publication" "this" {
  name   = "pub_unreadable"
  tables = { "public.orders" = {} }
}
`
	grant := "GRANT SELECT ON pg_catalog.pg_publication, pg_catalog.pg_publication_rel, pg_catalog.pg_publication_namespace TO " + pgsql.Ident(role)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{Config: config},
			{
				PreConfig: func() {
					execSQL(t, topo.Primary, "postgres", `REVOKE SELECT ON pg_catalog.pg_publication_rel FROM PUBLIC`)
				},
				Config: config,
				ExpectError: errorText("Cannot Read Publication", `Reading publication "pub_unreadable" in database "postgres" from pg_publication`,
					fmt.Sprintf("on 127.0.0.1:%d failed", topo.Primary.Port), "permission denied for table pg_publication_rel", "42501",
					`The provider's role "`+role+`" lacks a privilege`, grant+";", "Then plan again."),
			},
			{
				PreConfig: func() { execSQL(t, topo.Primary, "postgres", grant) },
				Config:    config,
				PlanOnly:  true,
			},
		},
	})
}

// The plan's row filter checks read the table's columns from the catalogs;
// when that read fails (here a site revoked SELECT on pg_collation from
// PUBLIC) the plan warns, naming the table, the publication and the
// server's reason, and apply goes on (PostgreSQL checks the filter there).
// The old code skipped the checks without a word. A table that is not there
// at plan because the same apply creates it (made here between the plan and
// the apply of the saved plan) plans and applies without a warning.
func TestAccPublication_rowFilterCheckCannotRead(t *testing.T) {
	testAccPreCheck(t)
	topo := routertest.Start(t, routertest.WithStandbys(0)) // catalog privileges changed: not the shared one
	const role = "tfacc_rf_reader"
	execSQL(t, topo.Primary, "postgres", `CREATE ROLE `+role+` LOGIN; GRANT CREATE ON DATABASE postgres TO `+role+`;
CREATE TABLE orders (id int PRIMARY KEY); ALTER TABLE orders OWNER TO `+role+`;
REVOKE SELECT ON pg_catalog.pg_collation FROM PUBLIC`)
	config := func(tables string) string {
		return providerConfigAs("", topo.Primary, role) + fmt.Sprintf(`
resource "pgreplication_publication" "this" {
  name   = "pub_rf_unread"
  tables = { %s }
}
`, tables)
	}
	const orders = `"public.orders" = { where = "id > 0" }`
	logPath := traceLog(t)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: config(orders),
				Check: func(*terraform.State) error {
					if !logHasEntry(t, logPath, "Row Filter and Column List Not Checked", "table public.orders", `publication "pub_rf_unread"`,
						"permission denied for table pg_collation", "Apply checks them instead") {
						return fmt.Errorf("no warning \"Row Filter and Column List Not Checked\" naming public.orders and the server's reason in the TRACE log")
					}
					return nil
				},
			},
			{
				PreConfig: func() { execSQL(t, topo.Primary, "postgres", `GRANT SELECT ON pg_catalog.pg_collation TO PUBLIC`) },
				Config:    config(orders + `, "public.later" = { where = "id > 1" }`),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{betweenPlanAndApply(func() {
					execSQL(t, topo.Primary, "postgres", `CREATE TABLE later (id int PRIMARY KEY); ALTER TABLE later OWNER TO `+role)
				})}},
				Check: func(*terraform.State) error {
					if logHasEntry(t, logPath, "Row Filter and Column List Not Checked", "public.later") {
						return fmt.Errorf("a table created by the same apply was warned about")
					}
					if n := queryValue[int64](t, topo.Primary, "postgres",
						`SELECT count(*) FROM pg_publication_tables WHERE pubname = 'pub_rf_unread' AND rowfilter IS NOT NULL`); n != 2 {
						return fmt.Errorf("pub_rf_unread has %d tables with a row filter, want 2", n)
					}
					return nil
				},
			},
		},
	})
}

// The server commits CREATE PUBLICATION but the answer to the COMMIT never
// reaches the provider: a network that fails after the server did the work,
// or an apply interrupted at that moment. The publication must end up in the
// state: otherwise the next apply fails with "already exists".
func TestAccPublication_commitAnswerLost(t *testing.T) {
	topo := testAccTopology(t)
	const name = "pub_answer_lost" // the proxy stops at the first statement holding "commit": not this name
	execSQL(t, topo.Primary, "postgres", `CREATE TABLE IF NOT EXISTS answer_lost (id int PRIMARY KEY)`)
	t.Cleanup(func() { execSQL(t, topo.Primary, "postgres", `DROP PUBLICATION IF EXISTS `+name) })
	proxy := topo.Primary.NewProxy(t)
	proxy.HoldAnswers("CREATE PUBLICATION", "commit")
	// The answer to CREATE PUBLICATION itself held: the server waits for
	// the COMMIT, which never comes, and rolls back when the provider
	// closes the connection. (The statement was not bounded: the apply
	// waited as long as the answer did.)
	createHeld := topo.Primary.NewProxy(t)
	createHeld.HoldAnswers("CREATE PUBLICATION", "CREATE PUBLICATION")
	throughProxy := func(port int) string {
		return fmt.Sprintf(`
provider "pgreplication" {
  host              = %q
  port              = %d
  username          = "postgres"
  database          = "postgres"
  sslmode           = "disable"
  statement_timeout = "2s"
}
`, topo.Primary.Host, port)
	}
	publication := fmt.Sprintf(`
resource "pgreplication_publication" "this" {
  name   = %q
  tables = { "public.answer_lost" = {} }
}
`, name)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy: func(*terraform.State) error {
			if n := queryValue[int64](t, topo.Primary, "postgres", `SELECT count(*) FROM pg_publication WHERE pubname = $1`, name); n != 0 {
				return fmt.Errorf("publication %s still there after destroy", name)
			}
			return nil
		},
		Steps: []resource.TestStep{
			{
				Config:      throughProxy(createHeld.Port()) + publication,
				ExpectError: errorText("Cannot Create Publication", `Creating publication "pub_answer_lost" in database "postgres"`, "timeout"),
			},
			{
				// The COMMIT's answer is held: the provider gives up after
				// statement_timeout and the grace of its client-side bound.
				PreConfig: func() {
					if n := queryValue[int64](t, topo.Primary, "postgres", `SELECT count(*) FROM pg_publication WHERE pubname = $1`, name); n != 0 {
						t.Fatalf("the create that got no answer and never committed left publication %s", name)
					}
				},
				Config: throughProxy(proxy.Port()) + publication,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("pgreplication_publication.this", tfjsonpath.New("id"), knownvalue.StringExact(importid.Format("postgres", name))),
					statecheck.ExpectKnownValue("pgreplication_publication.this", tfjsonpath.New("owner"), knownvalue.StringExact("postgres")),
				},
			},
			{
				Config: providerConfig("", topo.Primary) + publication,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
			},
		},
	})
}

// A row filter that calls a user-defined function, or a built-in one that is
// not immutable, is refused at plan time, with the function named: the
// server refused it only when the publication was created. Nothing PostgreSQL
// accepts is refused: the last step's filter, full of built-in immutable
// functions, keywords that take parentheses and casts with modifiers, is
// applied.
func TestAccPublication_rowFilterFunctions(t *testing.T) {
	topo := testAccTopology(t)
	const db = "pub_filter_functions"
	createDatabase(t, topo.Primary, db)
	execSQL(t, topo.Primary, db, `CREATE TABLE orders (id int PRIMARY KEY, amount int, note text, created timestamp);
CREATE FUNCTION is_big(int) RETURNS boolean LANGUAGE sql IMMUTABLE AS 'SELECT $1 > 100';`)
	config := func(where string) string {
		return providerConfigDB("", topo.Primary, db) + fmt.Sprintf(`
resource "pgreplication_publication" "this" {
  name   = "pub_filter_functions"
  tables = { "public.orders" = { where = %q } }
}
`, where)
	}
	refused := func(phrases ...string) *regexp.Regexp {
		return errorText(append([]string{"Invalid Row Filter", `The row filter of table public.orders in publication "pub_filter_functions"`},
			append(phrases, "User-defined or built-in mutable functions are not allowed")...)...)
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config:      config("is_big(amount)"),
				PlanOnly:    true,
				ExpectError: refused("it calls is_big(integer), a user-defined function"),
			},
			{
				Config:      config(`id > 0 AND "public".IS_BIG(amount)`),
				PlanOnly:    true,
				ExpectError: refused("it calls is_big(integer), a user-defined function"),
			},
			{
				// random has overloads from PostgreSQL 17 on, all volatile.
				Config:      config("random() < 0.5"),
				PlanOnly:    true,
				ExpectError: refused("it calls random", "volatile"),
			},
			{
				Config:      config("created > clock_timestamp()"),
				PlanOnly:    true,
				ExpectError: refused("it calls clock_timestamp(), a built-in volatile function"),
			},
			{
				Config:      config("created > now()"),
				PlanOnly:    true,
				ExpectError: refused("it calls now(), a built-in stable function"),
			},
			{
				Config: config(`id IN (1, 2) AND amount = ANY (ARRAY[1, 2]) AND coalesce(note, '') <> 'x' AND nullif(note, '') IS NOT NULL ` +
					`AND greatest(amount, 0) > 0 AND abs(amount) > 0 AND date_part('year', created) > 2000 AND lower(note) <> 'x' ` +
					`AND amount::numeric(10, 2) > 0 AND created::timestamp(3) > '2000-01-01' AND substring(note FROM 1 FOR 2) <> 'x' ` +
					`AND extract(year FROM created) > 2000`),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("pgreplication_publication.this", tfjsonpath.New("name"), knownvalue.StringExact("pub_filter_functions")),
				},
			},
		},
	})
}

// TestAccPublication_rowFilterNames: a row filter with a user-defined
// operator, a user-defined collation, a cast to a user-defined type, or a
// column of a user-defined type or collation is refused by the plan, with
// the operator, collation, type or column named; PostgreSQL refused each
// only at apply. A filter that only looks like them plans and applies: a
// built-in operator that shares its name with a user-defined one, the
// built-in collation "C", extract's field named like a column of a
// user-defined type, a string that holds a user-defined type's name, casts to
// built-in types of several words or with a keyword for a name.
func TestAccPublication_rowFilterNames(t *testing.T) {
	topo := testAccTopology(t)
	const db = "pub_filter_names"
	createDatabase(t, topo.Primary, db)
	execSQL(t, topo.Primary, db, `CREATE TYPE mood AS ENUM ('ok', 'sad');
CREATE COLLATION mine (provider = libc, locale = 'C');
CREATE OPERATOR === (leftarg = int, rightarg = int, function = int4eq);
CREATE FUNCTION int_text_eq(int, text) RETURNS boolean LANGUAGE sql IMMUTABLE AS 'SELECT $1::text = $2';
CREATE OPERATOR = (leftarg = int, rightarg = text, function = int_text_eq);
CREATE TABLE orders (id int PRIMARY KEY, amount int, note text, created timestamp, year mood, label text COLLATE mine);`)
	config := func(where string) string {
		return providerConfigDB("", topo.Primary, db) + fmt.Sprintf(`
resource "pgreplication_publication" "this" {
  name   = "pub_filter_names"
  tables = { "public.orders" = { where = %q } }
}
`, where)
	}
	refused := func(why, rule string) *regexp.Regexp {
		return errorText("Invalid Row Filter", `The row filter of table public.orders in publication "pub_filter_names" cannot be used`, why, rule)
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config:      config("amount === 5"),
				PlanOnly:    true,
				ExpectError: refused("it uses the operator ===, and every operator of that name is user-defined (===(integer,integer))", "User-defined operators are not allowed"),
			},
			{
				Config:      config("note COLLATE mine = 'x'"),
				PlanOnly:    true,
				ExpectError: refused("it uses the collation mine, which is user-defined", "User-defined collations are not allowed"),
			},
			{
				Config:      config("note::mood IS NOT NULL"),
				PlanOnly:    true,
				ExpectError: refused("it casts to mood, a user-defined type", "User-defined types are not allowed"),
			},
			{
				Config:      config("amount > 0 AND year = 'ok'"),
				PlanOnly:    true,
				ExpectError: refused("it uses the column year, of the user-defined type mood", "User-defined types are not allowed"),
			},
			{
				Config:      config("label <> ''"),
				PlanOnly:    true,
				ExpectError: refused("it uses the column label, whose collation mine is user-defined", "User-defined collations are not allowed"),
			},
			{
				Config: config(`amount = 5 AND note COLLATE "C" <> 'x' AND extract(year FROM created) > 2000 AND note <> text 'mood' ` +
					`AND created > timestamp '2000-01-01' AND note::varchar(10) <> 'y' AND amount::double precision > 0`),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("pgreplication_publication.this", tfjsonpath.New("name"), knownvalue.StringExact("pub_filter_names")),
				},
			},
		},
	})
}

// A publication whose name has a backslash is created (PostgreSQL allows
// it), but plan warns on name: no PostgreSQL subscriber can stream from it
// (TestAccSubscription_hostileNames: a subscription to it is refused). The
// warning comes when the publication is created or renamed to such a name,
// not on a rename away from one, nor on a plan that changes nothing.
func TestPublication_backslashNameWarns(t *testing.T) {
	ctx := context.Background()
	sch := publicationSchema()
	model := func(name string) publicationModel {
		return publicationModel{
			ID: types.StringValue(importid.Format("app", name)), Name: types.StringValue(name), Database: types.StringValue("app"), Owner: types.StringValue("app_owner"),
			AllTables: types.BoolValue(true), Tables: types.MapNull(types.ObjectType{AttrTypes: publicationTableAttrTypes}),
			TablesInSchema: types.SetNull(types.StringType), Publish: types.SetNull(types.StringType),
			PublishViaPartitionRoot: types.BoolValue(false), PublishGeneratedColumns: types.StringValue("none"),
		}
	}
	warnings := func(had, want string) diag.Diagnostics {
		t.Helper()
		plan := tfsdk.Plan{Schema: sch}
		if d := plan.Set(ctx, model(want)); d.HasError() {
			t.Fatal(d)
		}
		state := tfsdk.State{Schema: sch, Raw: tftypes.NewValue(sch.Type().TerraformType(ctx), nil)}
		if had != "" {
			if d := state.Set(ctx, model(had)); d.HasError() {
				t.Fatal(d)
			}
		}
		req := fwresource.ModifyPlanRequest{Config: tfsdk.Config{Schema: sch, Raw: plan.Raw}, Plan: plan, State: state}
		resp := fwresource.ModifyPlanResponse{Plan: plan}
		(&publicationResource{}).ModifyPlan(ctx, req, &resp)
		if resp.Diagnostics.HasError() {
			t.Fatalf("ModifyPlan failed: %v", resp.Diagnostics)
		}
		return resp.Diagnostics.Warnings()
	}
	for _, c := range []struct{ had, want string }{{"", `pub\two`}, {"pub_two", `pub\two`}} {
		got := warnings(c.had, c.want)
		if len(got) != 1 || got[0].Summary() != "Publication Name Cannot Be Subscribed To" {
			t.Fatalf("%q to %q: warnings %v, want one", c.had, c.want, got)
		}
		if w, ok := got[0].(diag.DiagnosticWithPath); !ok || !w.Path().Equal(path.Root("name")) {
			t.Errorf("%q to %q: the warning is not on name: %v", c.had, c.want, got[0])
		}
		if !errorText(`"pub\\two" has a backslash`, `E'…' string`, "without a backslash", "RENAME TO").MatchString(got[0].Detail()) {
			t.Errorf("%q to %q: the warning does not say what, why and the fix: %s", c.had, c.want, got[0].Detail())
		}
	}
	for _, c := range []struct{ had, want string }{{"", "pub_two"}, {`pub\two`, "pub_two"}, {`pub\two`, `pub\two`}} {
		if got := warnings(c.had, c.want); len(got) != 0 {
			t.Errorf("%q to %q: warnings %v, want none", c.had, c.want, got)
		}
	}
}
