package stdlib_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// Review of 82c15e1: the names a statement's rows handed out are handed
// again to the handle's next statement named alike. database/sql gives the
// caller the driver's slice itself (sql.Rows.Columns), so a caller that
// changes its own slice (lowercasing names in place, say) changes the names
// another caller kept from an earlier statement.
func TestReviewColumnNamesNotShared(t *testing.T) {
	topo := routertest.Shared(t)
	ctx := context.Background()
	db, _ := openDB(t, topo.Artifact())
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	columns := func(query string) []string {
		rows, err := conn.QueryContext(ctx, query)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		names, err := rows.Columns()
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
		}
		return names
	}
	kept := columns(`SELECT 1 AS "ID"`)
	mine := columns(`SELECT 2 AS "ID"`)
	mine[0] = strings.ToLower(mine[0])
	if kept[0] != "ID" {
		t.Errorf("the first statement's caller kept the column names %q; another caller's change to its own names reached them", kept)
	}
}

// The same across goroutines: the pool gives one handle to one caller after
// another, and a caller that works on the names it was given races with
// the next caller's Columns (run with -race).
func TestReviewColumnNamesRace(t *testing.T) {
	topo := routertest.Shared(t)
	ctx := context.Background()
	db, _ := openDB(t, topo.Artifact())
	db.SetMaxOpenConns(1)
	names := func() []string {
		rows, err := db.QueryContext(ctx, `SELECT 1 AS id`)
		if err != nil {
			t.Error(err)
			return nil
		}
		defer rows.Close()
		cols, _ := rows.Columns()
		return cols
	}
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				cols := names()
				for i := range cols {
					cols[i] = strings.ToLower(cols[i]) // the caller's own slice
				}
			}
		}()
	}
	wg.Wait()
}
