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
