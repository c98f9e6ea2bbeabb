package provider

import (
	"fmt"
	"regexp"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
)

// A row filter that the plan cannot tell PostgreSQL will refuse (a cast of
// a date to timestamptz, or < between the two, calls a stable function,
// which the plan does not look for behind casts and operators that have
// immutable overloads) passes the plan
// and is refused by PostgreSQL at apply. Nothing is half-applied: the
// refused create leaves no publication, and the refused update (the filter
// added with an owner change, two statements) leaves the owner and the
// filter as they were, so the next plan is the same change again.
func TestAccPublication_refusedFilterHalfAppliesNothing(t *testing.T) {
	topo := testAccTopology(t)
	const db, owner = "pub_keyword_filter", "pub_keyword_owner"
	createDatabase(t, topo.Primary, db)
	createRole(t, topo.Primary, owner)
	execSQL(t, topo.Primary, db, `CREATE TABLE t (id int PRIMARY KEY, d date, u text); GRANT CREATE ON DATABASE pub_keyword_filter TO pub_keyword_owner`)
	config := func(owner, where string) string {
		filter := ""
		if where != "" {
			filter = "where = " + hcl(where)
		}
		return providerConfig("primary", topo.Primary) + `
resource "pgreplication_publication" "this" {
  provider = pgreplication.primary
  database = ` + hcl(db) + `
  name     = "pub_kw"
  owner    = ` + hcl(owner) + `
  tables   = { "public.t" = { ` + filter + ` } }
}
`
	}
	// What the server holds: the publication's owner and its table's
	// filter, "" when there is no publication.
	server := func() string {
		return queryValue[string](t, topo.Primary, db, `SELECT coalesce((SELECT p.pubowner::regrole::text || ' ' || coalesce(pg_get_expr(r.prqual, r.prrelid), 'no filter')
FROM pg_publication p JOIN pg_publication_rel r ON r.prpubid = p.oid WHERE p.pubname = 'pub_kw'), '')`)
	}
	holds := func(want string) resource.TestCheckFunc {
		return func(*terraform.State) error {
			if got := server(); got != want {
				return fmt.Errorf("the server holds %q, want %q", got, want)
			}
			return nil
		}
	}
	refused := errorText("Cannot", "Publication", "mutable functions are not allowed")
	const apply = "d::timestamptz < '2020-01-01'" // refused at apply only
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{Config: config("postgres", apply), ExpectError: refused},
			{PreConfig: func() { checkNow(t, holds("")) }, Config: config("postgres", "d < '2020-01-01'::timestamptz"), ExpectError: refused},
			{PreConfig: func() { checkNow(t, holds("")) }, Config: config("postgres", ""), Check: holds("postgres no filter")},
			{Config: config(owner, apply), ExpectError: refused},
			{
				PreConfig: func() { checkNow(t, holds("postgres no filter")) },
				Config:    config(owner, apply),
				PlanOnly:  true, ExpectNonEmptyPlan: true, // the refused change again
			},
			{Config: config(owner, "d > '2020-01-01'"), Check: holds(owner + " (d > '2020-01-01'::date)")},
		},
	})
}

// A row filter that uses one of SQL's functions written as a keyword
// (current_date, CURRENT_USER, localtimestamp(3): no parentheses, or none
// needed, so the plan's lookup of called functions never saw them) is
// refused at plan, with the same "Invalid Row Filter" as the other
// functions PostgreSQL refuses, in any case: before, the plan passed and
// CREATE PUBLICATION failed at apply. Columns that have those names,
// quoted or after the table's name, are columns: that filter is created
// as written and plans nothing after.
func TestAccPublication_keywordFunctionFilterRefusedAtPlan(t *testing.T) {
	topo := testAccTopology(t)
	const db = "pub_keyword_plan"
	createDatabase(t, topo.Primary, db)
	execSQL(t, topo.Primary, db, `CREATE TABLE t (id int PRIMARY KEY, d date, u text, "current_date" date, "user" text, "CURRENT_USER" text)`)
	config := func(where string) string {
		return providerConfig("primary", topo.Primary) + `
resource "pgreplication_publication" "this" {
  provider = pgreplication.primary
  database = ` + hcl(db) + `
  name     = "pub_kw_plan"
  tables   = { "public.t" = { where = ` + hcl(where) + ` } }
}
`
	}
	server := func() string {
		return queryValue[string](t, topo.Primary, db, `SELECT coalesce((SELECT pg_get_expr(r.prqual, r.prrelid)
FROM pg_publication p JOIN pg_publication_rel r ON r.prpubid = p.oid WHERE p.pubname = 'pub_kw_plan'), 'none')`)
	}
	var steps []resource.TestStep
	for _, c := range []struct{ where, keyword string }{
		{"d > current_date", "current_date"},
		{"d >= CURRENT_DATE - 30", "CURRENT_DATE"},
		{"u = Current_User", "Current_User"},
		{"d < current_timestamp", "current_timestamp"},
		{"d < localtimestamp(3)", "localtimestamp"},
		{"localtime IS NOT NULL", "localtime"},
		{"current_time(2) IS NOT NULL AND id > 0", "current_time"},
		{`"current_date" IS NULL OR u = session_user`, "session_user"},
		{"u = user", "user"},
		{"u = current_role", "current_role"},
		{"u = current_catalog", "current_catalog"},
		{"u = current_schema", "current_schema"},
	} {
		steps = append(steps, resource.TestStep{
			PreConfig:   func() { checkNow(t, func(*terraform.State) error { return wantServer(server(), "none") }) },
			Config:      config(c.where),
			PlanOnly:    true,
			ExpectError: errorText("Invalid Row Filter", "cannot be used: it uses "+c.keyword+",", "written as a keyword"),
		})
	}
	const columns = `"current_date" > '2020-01-01' AND "user" <> '' AND t.current_date IS NOT NULL AND "CURRENT_USER" IS NULL`
	steps = append(steps, resource.TestStep{
		Config: config(columns),
		Check: func(*terraform.State) error {
			return wantServer(server(), `(("current_date" > '2020-01-01'::date) AND ("user" <> ''::text) AND ("current_date" IS NOT NULL) AND ("CURRENT_USER" IS NULL))`)
		},
	}, resource.TestStep{Config: config(columns), PlanOnly: true})
	resource.Test(t, resource.TestCase{ProtoV6ProviderFactories: testAccProtoV6ProviderFactories, Steps: steps})
}

// checkNow runs a check outside a step's Check (in a PreConfig), failing
// the test when it fails.
func checkNow(t *testing.T, check resource.TestCheckFunc) {
	t.Helper()
	if err := check(nil); err != nil {
		t.Error(err)
	}
}

// Row filters that try to end the WHERE clause early (a parenthesis closed
// early, hidden from a naive lexer in an E” string or behind an identifier
// holding $$, or a comment hiding the statement's WITH) are refused at plan
// with "Invalid Row Filter", and nothing is created; a filter with upper
// case, a dollar-quoted string holding a quote and a column named c$$
// round-trips: created as declared (publish stays insert only), next plan
// empty.
func TestAccPublication_hostileRowFilters(t *testing.T) {
	topo := testAccTopology(t)
	const db = "pub_hostile_filter"
	createDatabase(t, topo.Primary, db)
	execSQL(t, topo.Primary, db, `CREATE TABLE t (id int PRIMARY KEY, u text, c$$ int); CREATE TABLE t2 (id int PRIMARY KEY)`)
	config := func(where string) string {
		return providerConfig("primary", topo.Primary) + `
resource "pgreplication_publication" "this" {
  provider = pgreplication.primary
  database = ` + hcl(db) + `
  name     = "pub_hostile"
  publish  = ["insert"]
  tables   = { "public.t" = { where = ` + hcl(where) + ` } }
}
`
	}
	server := func() string {
		return queryValue[string](t, topo.Primary, db, `SELECT coalesce((SELECT string_agg(format('%s insert=%s update=%s %s', r.prrelid::regclass, p.pubinsert, p.pubupdate, pg_get_expr(r.prqual, r.prrelid)), '; ')
FROM pg_publication p JOIN pg_publication_rel r ON r.prpubid = p.oid WHERE p.pubname = 'pub_hostile'), 'none')`)
	}
	var steps []resource.TestStep
	for _, where := range []string{
		"id > 0) --",
		"id > 0), ONLY public.t2 WHERE (true",
		"id > 0) /* x */ OR (true",
		`u = E'\'' ), ONLY public.t2 WHERE (true OR u = '`,
		"c$$ > 0 ), ONLY public.t2 WHERE (c$$ IS NULL OR $$ = $$",
		"id > 0 --",
		"id > 0 -- x\n",
	} {
		steps = append(steps, resource.TestStep{
			PreConfig:   func() { checkNow(t, func(*terraform.State) error { return wantServer(server(), "none") }) },
			Config:      config(where),
			PlanOnly:    true,
			ExpectError: regexp.MustCompile(`Invalid Row Filter`),
		})
	}
	const roundTrip = `ID > 0 AND u = $q$it's$q$ AND c$$ IS NOT NULL`
	steps = append(steps,
		resource.TestStep{
			PreConfig: func() { checkNow(t, func(*terraform.State) error { return wantServer(server(), "none") }) },
			Config:    config(roundTrip),
			Check: func(*terraform.State) error {
				return wantServer(server(), `t insert=t update=f ((id > 0) AND (u = 'it''s'::text) AND ("c$$" IS NOT NULL))`)
			},
		},
		resource.TestStep{Config: config(roundTrip), PlanOnly: true},
	)
	resource.Test(t, resource.TestCase{ProtoV6ProviderFactories: testAccProtoV6ProviderFactories, Steps: steps})
}

func wantServer(got, want string) error {
	if got != want {
		return fmt.Errorf("the server holds %q, want %q", got, want)
	}
	return nil
}
