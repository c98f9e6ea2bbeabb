package routerlib_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
)

// TestPgBouncerReadOptions: through PgBouncer (where each read is sent
// after a read-only set_config in one pipeline), a read with pgx's
// per-query options (QueryExecMode, result formats), and an Exec of
// several statements, read what they read on a direct connection, read
// only. Before, pgx's batch took the option for an argument ("bind message
// supplies 2 parameters, but prepared statement requires 1") and could
// not run two statements (42601).
func TestPgBouncerReadOptions(t *testing.T) {
	topo := bouncedTopology(t)
	ctx := context.Background()
	r := newRouter(t, topo.Artifact(), throughPgBouncer)
	// The standby itself, not through PgBouncer.
	direct, err := topo.Standbys[0].Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close(ctx)
	cases := []struct {
		name string
		call func(q interface {
			QueryRow(context.Context, string, ...any) pgx.Row
		}) (int, error)
	}{
		{"simple protocol", func(q interface {
			QueryRow(context.Context, string, ...any) pgx.Row
		}) (int, error) {
			var v int
			err := q.QueryRow(ctx, "SELECT $1::int", pgx.QueryExecModeSimpleProtocol, 7).Scan(&v)
			return v, err
		}},
		{"exec mode", func(q interface {
			QueryRow(context.Context, string, ...any) pgx.Row
		}) (int, error) {
			var v int
			err := q.QueryRow(ctx, "SELECT $1::int", pgx.QueryExecModeExec, 7).Scan(&v)
			return v, err
		}},
		{"result formats", func(q interface {
			QueryRow(context.Context, string, ...any) pgx.Row
		}) (int, error) {
			var v int
			err := q.QueryRow(ctx, "SELECT $1::int", pgx.QueryResultFormats{pgx.BinaryFormatCode}, 7).Scan(&v)
			return v, err
		}},
		{"named args", func(q interface {
			QueryRow(context.Context, string, ...any) pgx.Row
		}) (int, error) {
			var v int
			err := q.QueryRow(ctx, "SELECT @v::int", pgx.NamedArgs{"v": 7}).Scan(&v)
			return v, err
		}},
	}
	for _, c := range cases {
		want, err := c.call(direct)
		if err != nil {
			t.Errorf("%s, direct: %v", c.name, err)
			continue
		}
		got, err := c.call(r)
		if err != nil || got != want {
			t.Errorf("%s through PgBouncer: %d, %v; direct: %d", c.name, got, err, want)
		}
	}
	// Each still runs read only, as every read through PgBouncer must (a
	// replica promoted behind the router's back then refuses a write).
	for _, opt := range []any{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeExec, pgx.QueryResultFormats{pgx.TextFormatCode}} {
		var ro string
		if err := r.QueryRow(ctx, "SELECT current_setting('transaction_read_only')", opt).Scan(&ro); err != nil || ro != "on" {
			t.Errorf("a read with option %v through PgBouncer: transaction_read_only %q, %v; want on", opt, ro, err)
		}
	}
	for _, opt := range []any{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeExec} {
		if _, err := r.Exec(ctx, "SELECT 1/(current_setting('transaction_read_only') = 'on')::int", opt); err != nil {
			t.Errorf("Exec with option %v through PgBouncer did not run read only: %v", opt, err)
		}
	}
	if _, err := r.Exec(ctx, "SELECT 1; SELECT 1/(current_setting('transaction_read_only') = 'on')::int"); err != nil {
		t.Errorf("Exec of two statements through PgBouncer did not run read only: %v", err)
	}
	for _, sql := range []string{"SELECT 1; SELECT 2", "SHOW search_path"} {
		if _, err := direct.Exec(ctx, sql); err != nil {
			t.Errorf("Exec %q, direct: %v", sql, err)
			continue
		}
		if _, err := r.Exec(ctx, sql); err != nil {
			t.Errorf("Exec %q through PgBouncer: %v", sql, err)
		}
	}
}
