package provider

import (
	"fmt"
	"regexp"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
)

// A row filter that calls a function written without parentheses
// (current_date, current_user: SQL keywords, which the plan's lexing of
// calls does not see) passes the plan and is refused by PostgreSQL at apply.
// Nothing is half-applied: the refused create leaves no publication, and
// the refused update (the filter added with an owner change, two statements)
// leaves the owner and the filter as they were, so the next plan is the
// same change again.
func TestAccPublication_refusedKeywordFilterHalfAppliesNothing(t *testing.T) {
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
	refused := regexp.MustCompile(`(?i)Cannot (Create|Update|Change) Publication|current_(date|user)`)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{Config: config("postgres", "d > current_date"), ExpectError: refused},
			{PreConfig: func() { checkNow(t, holds("")) }, Config: config("postgres", "u = current_user"), ExpectError: refused},
			{PreConfig: func() { checkNow(t, holds("")) }, Config: config("postgres", ""), Check: holds("postgres no filter")},
			{Config: config(owner, "d > current_date"), ExpectError: refused},
			{
				PreConfig: func() { checkNow(t, holds("postgres no filter")) },
				Config:    config(owner, "d > current_date"),
				PlanOnly:  true, ExpectNonEmptyPlan: true, // the refused change again
			},
			{Config: config(owner, "d > '2020-01-01'"), Check: holds(owner + " (d > '2020-01-01'::date)")},
		},
	})
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
