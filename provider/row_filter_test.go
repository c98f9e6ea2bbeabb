package provider

import (
	"context"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// A row filter is one expression: what could close the provider's
// parentheses and go on with SQL of its own is refused, and what only looks
// like it (a parenthesis in a string or a quoted name) is not.
func TestCheckRowFilter(t *testing.T) {
	for _, ok := range []string{
		"amount > 100",
		"region = 'eu' AND (amount > 100 OR note IS NULL)",
		`"weird ) name" > 0`,
		"note = ')'",
		"note = E'it\\'s ) here'",
		"note = $$ ; -- ) $$",
		"tags[1] = 'a'",
		"extract(year FROM created_at) > 2020",
		"created_at > '2020-01-01'::timestamp with time zone",
		"U&\"d\\0061ta\" IS NOT NULL",
		"values > 0 AND \"table\" IS NOT NULL", // a column named values, another named table
	} {
		if err := checkRowFilter(ok); err != nil {
			t.Errorf("checkRowFilter(%q) = %v, want nil", ok, err)
		}
	}
	for _, bad := range []struct{ filter, says string }{
		{"true), ONLY public.other WHERE (true", "did not open"},
		{"id > 0) WITH (publish='insert') --", "did not open"},
		{"id > 0 -- )", "comment"},
		{"id > 0 /* x */", "comment"},
		{"true); DROP TABLE orders; --", "did not open"},
		{"id > 0; DROP TABLE orders", "semicolon"},
		{"(id > 0", "does not close"},
		{"id IN (SELECT id FROM other)", "subquery"},
		{"id IN (TABLE other)", "subquery"},
		{"id IN (VALUES (1), (2))", "subquery"},
		{"EXISTS (values(1))", "subquery"},
		{"note = 'unterminated", "not closed"},
		{`"unterminated > 0`, "not closed"},
		{"note = $x$ never", "not closed"},
		{"a[1)", "did not open"},
		{"  ", "empty"},
	} {
		err := checkRowFilter(bad.filter)
		if err == nil || !strings.Contains(err.Error(), bad.says) {
			t.Errorf("checkRowFilter(%q) = %v, want an error saying %q", bad.filter, err, bad.says)
		}
	}
}

// The server's own printing of a filter tells a filter written differently
// from the same filter (equal) from another filter (different), for the
// rewrites PostgreSQL makes when it stores one; and it runs as a role that
// may only read, with no lock on the table and no transaction ID.
func TestAccRowFilterPlan(t *testing.T) {
	topo := testAccTopology(t)
	const db = "row_filter_plan"
	createDatabase(t, topo.Primary, db)
	execSQL(t, topo.Primary, db, `
CREATE TABLE "Order Lines" (id bigint, total numeric(12,2), region text COLLATE "C", "Note)" text, tags text[], created_at timestamptz, published boolean);
DO $$BEGIN CREATE ROLE row_filter_reader LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END$$;`)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, strings.Replace(topo.Primary.DSNFor(db), "postgres@", "row_filter_reader@", 1))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var user string
	if err := conn.QueryRow(ctx, "SELECT current_user").Scan(&user); err != nil || user != "row_filter_reader" {
		t.Fatalf("connected as %q (%v), want row_filter_reader", user, err)
	}
	rels, err := readCatalogTables(ctx, conn, []qualifiedName{{"public", "no such table"}, {"public", "Order Lines"}})
	if err != nil || len(rels) != 2 || rels[1] == nil || !rels[1].isTable() {
		t.Fatalf("readCatalogTables = %v, %v", rels, err)
	}
	if rels[0] != nil {
		t.Errorf("readCatalogTables of a missing table = %+v, want nil", rels[0])
	}
	table := &rels[1].tableColumns
	plan := func(expr string) string {
		t.Helper()
		s, err := rowFilterPlan(ctx, conn, *table, expr)
		if err != nil {
			t.Fatalf("rowFilterPlan(%q): %v", expr, err)
		}
		return s
	}
	// Each configured filter against what PostgreSQL stores for it
	// (pg_get_expr after CREATE PUBLICATION): the same filter.
	for _, pair := range [][2]string{
		{"total > 0", "(total > (0)::numeric)"},
		{"region = 'eu' AND total > 100", "((region = 'eu'::text) AND (total > (100)::numeric))"},
		{"region IN ('a', 'b')", "(region = ANY (ARRAY['a'::text, 'b'::text]))"},
		{`"Note)" IS NOT NULL`, `("Note)" IS NOT NULL)`},
		{"published", "published"},
		{"created_at > '2020-01-01'", "(created_at > '2020-01-01 00:00:00+00'::timestamp with time zone)"},
		{`"Order Lines".total>0`, "(total > (0)::numeric)"},
	} {
		if a, b := plan(pair[0]), plan(pair[1]); a != b {
			t.Errorf("%q and %q print differently:\n%s\n%s", pair[0], pair[1], a, b)
		}
	}
	// A filter changed by hand is another filter.
	for _, pair := range [][2]string{
		{"total > 0", "(total > (5)::numeric)"},
		{"region = 'eu'", "(region = 'us'::text)"},
		{"published", "(NOT published)"},
		{"total > 0 AND region = 'eu'", "(total > (0)::numeric)"},
	} {
		if a, b := plan(pair[0]), plan(pair[1]); a == b {
			t.Errorf("%q and %q print the same, want different:\n%s", pair[0], pair[1], a)
		}
	}
	if _, err := rowFilterPlan(ctx, conn, *table, "no_such_column > 0"); err == nil {
		t.Error("a filter over a column the table lacks printed, want an error")
	}
	// Read-only: in its own transaction, it takes no transaction ID and no
	// lock on the table. (The server-wide counter is the drift-audit
	// test's check, on a topology of its own: the shared one here serves
	// other tests, whose background work takes IDs.)
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rowFilterPlan(ctx, tx, *table, "total > 0"); err != nil {
		t.Fatal(err)
	}
	var locked int
	if err := tx.QueryRow(ctx, `SELECT count(*)::int FROM pg_locks WHERE pid = pg_backend_pid() AND relation = '"Order Lines"'::regclass`).Scan(&locked); err != nil {
		t.Fatal(err)
	}
	var xid *string
	if err := tx.QueryRow(ctx, `SELECT pg_current_xact_id_if_assigned()::text`).Scan(&xid); err != nil {
		t.Fatal(err)
	}
	_ = tx.Rollback(ctx)
	if locked != 0 {
		t.Errorf("planning a row filter holds %d locks on the table, want none", locked)
	}
	if xid != nil {
		t.Errorf("planning a row filter took transaction ID %s, want none", *xid)
	}
}

func TestRowFilterCalls(t *testing.T) {
	for _, c := range []struct {
		src  string
		want []calledFunction
	}{
		{"amount > 100", nil},
		{"is_big(amount)", []calledFunction{{Name: "is_big"}}},
		{`"public".IS_BIG(amount) AND "Odd Name"(x) AND s.f (y)`, []calledFunction{{"public", "is_big"}, {Name: "Odd Name"}, {"s", "f"}}},
		{"lower(note) = 'f(x)' AND lower(note) <> \"col(\"", []calledFunction{{Name: "lower"}}},
		{"id IN (1, 2) AND random() < 0.5", []calledFunction{{Name: "in"}, {Name: "random"}}},
	} {
		if got := rowFilterCalls(c.src); !slices.Equal(got, c.want) {
			t.Errorf("rowFilterCalls(%q) = %v, want %v", c.src, got, c.want)
		}
	}
}

// SQL's keyword functions are found however they are written, and only
// where they are the function: a quoted name, a name after a dot or an
// argument's name is a column or a label, and system_user is the column
// of a table that has one (before PostgreSQL 16 it is no keyword).
func TestRowFilterKeywordCall(t *testing.T) {
	for _, c := range []struct {
		src     string
		columns []string
		want    string
	}{
		{"d > current_date", nil, "current_date"},
		{"d > CURRENT_DATE", nil, "CURRENT_DATE"},
		{"localtimestamp(3) > d", nil, "localtimestamp"},
		{`"current_date" > '2020-01-01' AND u = Session_User`, nil, "Session_User"},
		{"u = system_user", nil, "system_user"},
		{"u = system_user", []string{"system_user"}, ""},
		{`"current_date" > d AND "user" = 'x' AND t.current_date IS NULL AND t.user = 'x'`, nil, ""},
		{"f(current_user => 1) AND g(user := 2)", nil, ""},
		{"note = 'current_date'", nil, ""},
		{"u = current_username", nil, ""},
	} {
		got, ok := rowFilterKeywordCall(c.src, c.columns)
		if got.Text != c.want || ok != (c.want != "") {
			t.Errorf("rowFilterKeywordCall(%q, %q) = %q, %v; want %q", c.src, c.columns, got.Text, ok, c.want)
		}
	}
}

// The operators, collations, types and columns a row filter names, as far
// as the text tells them apart for sure: what could be something else (a
// field of extract, a typed literal's type, the first word of a multi-word
// type, a keyword) is left out, so that the plan never refuses what it
// misread.
func TestScanRowFilterNames(t *testing.T) {
	columns := []string{"amount", "status", "year", "Label", "note", "day"}
	for _, c := range []struct {
		filter string
		want   rowFilterNames
	}{
		{"amount === 5", rowFilterNames{Operators: []string{"==="}, Columns: []string{"amount"}}},
		{"amount>-1 AND amount*-2 < 0", rowFilterNames{Operators: []string{">", "*", "<"}, Columns: []string{"amount"}}},
		{"note @-@ 'x' AND note <-> 'y'", rowFilterNames{Operators: []string{"@-@", "<->"}, Columns: []string{"note"}}},
		{`note COLLATE "C" = 'x' AND note COLLATE public.mine <> 'y'`, rowFilterNames{
			Operators:  []string{"=", "<>"},
			Collations: []qualifiedName{{Name: "C"}, {Schema: "public", Name: "mine"}},
			Columns:    []string{"note"},
		}},
		{"note::mood IS NOT NULL AND CAST(note AS public.mood) IS NULL", rowFilterNames{
			Types:   []qualifiedName{{Name: "mood"}, {Schema: "public", Name: "mood"}},
			Columns: []string{"note"},
		}},
		// double starts a multi-word type; numeric is a keyword: built-in.
		{"amount::double precision > 0 AND amount::numeric(10, 2) > 0", rowFilterNames{
			Operators: []string{">"},
			Columns:   []string{"amount"},
		}},
		// year and day name extract's field and an interval's unit, Label
		// unquoted is label, not "Label"; status only after a dot.
		{"extract(year FROM created) > 2000 AND x > interval '1' day AND label = 'a' AND t.status = 'x'", rowFilterNames{
			Operators: []string{">", "="},
		}},
		{`"Label" = 'a' AND NOT status AND (CASE WHEN year THEN 1 END) = 1`, rowFilterNames{
			Operators: []string{"="},
			Columns:   []string{"Label", "status", "year"},
		}},
		{"status 'x' AND f(amount => 1)", rowFilterNames{}},
	} {
		if got := scanRowFilterNames(c.filter, columns); !reflect.DeepEqual(got, c.want) {
			t.Errorf("scanRowFilterNames(%q) =\n  %+v\nwant\n  %+v", c.filter, got, c.want)
		}
	}
}
