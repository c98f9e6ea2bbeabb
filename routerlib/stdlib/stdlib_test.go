package stdlib_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgreplication/terraform-provider-pgreplication/internal/allocs"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/stdlib"
)

// TestRoutesStatements: through database/sql, reads reach the standbys,
// writes and Primary contexts the primary, a route its own nodes, each
// answered by the server the decision names.
func TestRoutesStatements(t *testing.T) {
	topo := routertest.Shared(t)
	ctx := context.Background()
	a := topo.Artifact()
	a.Routes = []artifact.Route{{Name: "second", Nodes: []string{topo.Standbys[1].Name}}}
	db, _ := openDB(t, a)

	standbys := ports(topo.Standbys...)
	seen := map[int]bool{}
	for range 8 {
		p := port(t, ctx, db, "SELECT inet_server_port()")
		if _, ok := standbys[p]; !ok {
			t.Fatalf("a read ran on port %d, want a standby (%v)", p, standbys)
		}
		seen[p] = true
	}
	if len(seen) != 2 {
		t.Errorf("8 reads ran on %v, want both standbys in turn", seen)
	}
	if p := port(t, routerlib.Primary(ctx), db, "SELECT inet_server_port()"); p != topo.Primary.Port {
		t.Errorf("a read with a Primary context ran on %d, want the primary's %d", p, topo.Primary.Port)
	}
	for range 3 {
		if p := port(t, routerlib.Route(ctx, "second"), db, "SELECT inet_server_port()"); p != topo.Standbys[1].Port {
			t.Errorf("a read on route second ran on %d, want %s's %d", p, topo.Standbys[1].Name, topo.Standbys[1].Port)
		}
	}

	if _, err := db.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS sql_books (id serial PRIMARY KEY, title text, port int DEFAULT inet_server_port())"); err != nil {
		t.Fatal(err)
	}
	res, err := db.ExecContext(ctx, "INSERT INTO sql_books (title) VALUES ($1), ($2)", "Dune", "Emma")
	if err != nil {
		t.Fatal(err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 2 {
		t.Errorf("RowsAffected = %d, %v; want 2", n, err)
	}
	if p := port(t, ctx, db, "INSERT INTO sql_books (title) VALUES ($1) RETURNING port", "Ulysses"); p != topo.Primary.Port {
		t.Errorf("INSERT … RETURNING ran on %d, want the primary's %d", p, topo.Primary.Port)
	}
	var wrong int
	if err := topo.Primary.QueryRow(ctx, "SELECT count(*) FROM sql_books WHERE port <> $1", topo.Primary.Port).Scan(&wrong); err != nil {
		t.Fatal(err)
	}
	if wrong != 0 {
		t.Errorf("%d rows were inserted elsewhere than on the primary", wrong)
	}
}

// TestTransactions: a read-only transaction runs on one standby, any other
// on the primary, every statement on the transaction's one backend.
func TestTransactions(t *testing.T) {
	topo := routertest.Shared(t)
	ctx := context.Background()
	db, _ := openDB(t, topo.Artifact())
	standbys := ports(topo.Standbys...)

	for _, tc := range []struct {
		name     string
		opts     *sql.TxOptions
		recovery bool
	}{
		{"read only", &sql.TxOptions{ReadOnly: true}, true},
		{"read only repeatable read", &sql.TxOptions{ReadOnly: true, Isolation: sql.LevelRepeatableRead}, true},
		{"default", nil, false},
		{"serializable", &sql.TxOptions{Isolation: sql.LevelSerializable}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tx, err := db.BeginTx(ctx, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback()
			type where struct {
				port, pid int
				recovery  bool
			}
			var first where
			for i := range 5 {
				var w where
				if err := tx.QueryRowContext(ctx, "SELECT inet_server_port(), pg_backend_pid(), pg_is_in_recovery()").Scan(&w.port, &w.pid, &w.recovery); err != nil {
					t.Fatal(err)
				}
				if i == 0 {
					first = w
				} else if w != first {
					t.Fatalf("statement %d of the transaction ran on %+v, the first on %+v", i, w, first)
				}
			}
			if first.recovery != tc.recovery {
				t.Errorf("pg_is_in_recovery() = %v in the transaction, want %v", first.recovery, tc.recovery)
			}
			_, onStandby := standbys[first.port]
			if tc.recovery != onStandby || (!tc.recovery && first.port != topo.Primary.Port) {
				t.Errorf("the transaction ran on port %d", first.port)
			}
			if tc.opts != nil && tc.opts.Isolation != sql.LevelDefault {
				var iso string
				if err := tx.QueryRowContext(ctx, "SHOW transaction_isolation").Scan(&iso); err != nil {
					t.Fatal(err)
				}
				if want := map[sql.IsolationLevel]string{sql.LevelRepeatableRead: "repeatable read", sql.LevelSerializable: "serializable"}[tc.opts.Isolation]; iso != want {
					t.Errorf("transaction_isolation = %q, want %q", iso, want)
				}
			}
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
		})
	}

	// A write in a transaction commits on the primary, and a rolled back
	// one leaves nothing.
	for _, q := range []string{"DROP TABLE IF EXISTS sql_tx", "CREATE TABLE sql_tx (v text)"} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	for _, commit := range []bool{true, false} {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO sql_tx VALUES ($1)", map[bool]string{true: "kept", false: "dropped"}[commit]); err != nil {
			t.Fatal(err)
		}
		if commit {
			err = tx.Commit()
		} else {
			err = tx.Rollback()
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	rows, err := db.QueryContext(routerlib.Primary(ctx), "SELECT v FROM sql_tx")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		got = append(got, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, []string{"kept"}) {
		t.Errorf("rows after a committed and a rolled back transaction: %v, want [kept]", got)
	}
}

// TestPreparedRoutedAtExecution: a statement prepared once runs where each
// execution routes it, and preparing contacts no server (a prepared write
// runs after the primary it would have been prepared on has moved).
func TestPreparedRoutedAtExecution(t *testing.T) {
	topo := routertest.Shared(t)
	ctx := context.Background()
	rec := &recorder{}
	db, _ := openDB(t, topo.Artifact(), routerlib.WithTracer(rec))

	stmt, err := db.PrepareContext(ctx, "SELECT inet_server_port() WHERE $1::int > 0")
	if err != nil {
		t.Fatal(err)
	}
	defer stmt.Close()
	if d := rec.take(); len(d) != 0 {
		t.Errorf("Prepare made routing decisions %v; want none", d)
	}
	seen := map[int]int{}
	for range 6 {
		seen[port(t, ctx, stmtRow{stmt}, "", 1)]++
	}
	seen[port(t, routerlib.Primary(ctx), stmtRow{stmt}, "", 1)]++
	want := map[int]int{topo.Standbys[0].Port: 3, topo.Standbys[1].Port: 3, topo.Primary.Port: 1}
	if !reflect.DeepEqual(seen, want) {
		t.Errorf("one prepared statement ran on ports %v, want %v: each execution routed on its own", seen, want)
	}
	if d := rec.take(); len(d) != 7 {
		t.Errorf("%d routing decisions for 7 executions", len(d))
	}
}

// stmtRow lets port() run a prepared statement.
type stmtRow struct{ stmt *sql.Stmt }

func (s stmtRow) QueryRowContext(ctx context.Context, _ string, args ...any) *sql.Row {
	return s.stmt.QueryRowContext(ctx, args...)
}

// TestSessionState shows what a *sql.Conn is here. The pitfall: a SET on a
// *sql.Conn does not hold for the next statement on it, which database/sql
// may send to another server (here the SHOW goes to a standby). The right
// ways: a transaction holds one real connection, and SET LOCAL holds in it;
// a connection from Router.Acquire keeps its session until Release.
func TestSessionState(t *testing.T) {
	topo := routertest.Shared(t)
	ctx := context.Background()
	db, _ := openDB(t, topo.Artifact())

	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "SET statement_timeout = '42s'"); err != nil {
		t.Fatal(err)
	}
	var got string
	if err := conn.QueryRowContext(ctx, "SHOW statement_timeout").Scan(&got); err != nil {
		t.Fatal(err)
	}
	if got == "42s" {
		t.Errorf("SHOW after SET on one *sql.Conn saw the SET: the pitfall this test documents is gone, update the package doc")
	}

	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, "SET LOCAL statement_timeout = '42s'"); err != nil {
		t.Fatal(err)
	}
	if err := tx.QueryRowContext(ctx, "SHOW statement_timeout").Scan(&got); err != nil {
		t.Fatal(err)
	}
	if got != "42s" {
		t.Errorf("SHOW after SET LOCAL in a transaction = %q, want 42s", got)
	}
	// A temporary table lives as long as the transaction's connection.
	for _, q := range []string{
		"CREATE TEMP TABLE scratch (v int) ON COMMIT DROP",
		"INSERT INTO scratch VALUES (1), (2)",
	} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	var n int
	if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM scratch").Scan(&n); err != nil || n != 2 {
		t.Errorf("count of the transaction's temporary table = %d, %v; want 2", n, err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}

	// The Router's own connection, reached from database/sql's handle.
	err = conn.Raw(func(driverConn any) error {
		c, err := driverConn.(*stdlib.Conn).Router().Acquire(ctx)
		if err != nil {
			return err
		}
		defer c.Release()
		defer c.Exec(ctx, "RESET statement_timeout")
		if _, err := c.Exec(ctx, "SET statement_timeout = '42s'"); err != nil {
			return err
		}
		return c.QueryRow(ctx, "SHOW statement_timeout").Scan(&got)
	})
	if err != nil {
		t.Fatal(err)
	}
	if got != "42s" {
		t.Errorf("SHOW after SET on a connection from Router.Acquire = %q, want 42s", got)
	}
}

// TestReadOnlyRetry: a read that writes through a function is rejected by
// the standby (SQLSTATE 25006) and runs on the primary, invisibly.
func TestReadOnlyRetry(t *testing.T) {
	topo := routertest.Shared(t)
	ctx := context.Background()
	for _, q := range []string{
		"CREATE TABLE IF NOT EXISTS sql_ro_log (at timestamptz DEFAULT now())",
		"CREATE OR REPLACE FUNCTION sql_ro_write() RETURNS int LANGUAGE sql AS $$ INSERT INTO sql_ro_log DEFAULT VALUES; SELECT inet_server_port() $$",
	} {
		if err := topo.Primary.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	waitReplayed(t, topo)
	rec := &recorder{}
	db, _ := openDB(t, topo.Artifact(), routerlib.WithTracer(rec))
	if p := port(t, ctx, db, "SELECT sql_ro_write()"); p != topo.Primary.Port {
		t.Errorf("the writing read ran on %d, want the primary's %d", p, topo.Primary.Port)
	}
	d := rec.take()
	if len(d) != 2 || d[1].Reason != routerlib.ReasonReadOnlyRetry {
		t.Errorf("decisions %+v, want a replica then the read-only retry on the primary", d)
	}
}

// TestConversionMatchesPgxStdlib runs the same queries through pgx's own
// database/sql driver and through the Router, and requires the same Go
// values and the same column types.
func TestConversionMatchesPgxStdlib(t *testing.T) {
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeExec, pgx.QueryExecModeSimpleProtocol} {
		t.Run(mode.String(), func(t *testing.T) { conversionMatchesPgxStdlib(t, mode) })
	}
}

func conversionMatchesPgxStdlib(t *testing.T, mode pgx.QueryExecMode) {
	topo := routertest.Shared(t)
	ctx := context.Background()
	db, _ := openDB(t, topo.Artifact(), routerlib.WithPoolConfig(func(_ artifact.Node, cfg *pgxpool.Config) {
		cfg.ConnConfig.DefaultQueryExecMode = mode
	}))
	direct := pgxStdlibDB(t, topo.Primary, mode)

	const query = `SELECT true, 'x'::bytea, 7::int2, 8::int4, 9::int8, 1.5::float4, 2.25::float8,
		123.45::numeric(7,2), 10::numeric, 'text'::text, 'vc'::varchar(12), 'c'::char(3), B'101'::varbit(8),
		'2024-02-29'::date, '2024-02-29 12:34:56.789'::timestamp(3), '2024-02-29 12:34:56.789+02'::timestamptz,
		'12:00'::time, '1 day 2 hours'::interval, '{"a": [1, 2]}'::json, '{"b": null}'::jsonb, '<a/>'::xml,
		'00000000-0000-0000-0000-000000000001'::uuid, '{1,2,3}'::int[], 42::oid, '10.0.0.1'::inet,
		NULL::int, NULL::text, 'infinity'::date, '-infinity'::timestamptz, $1::text, $2::int8, $3::timestamptz`
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	read := func(db *sql.DB) ([]any, []*sql.ColumnType) {
		rows, err := db.QueryContext(ctx, query, "arg", int64(77), at)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		types, err := rows.ColumnTypes()
		if err != nil {
			t.Fatal(err)
		}
		vals := make([]any, len(types))
		ptrs := make([]any, len(types))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if !rows.Next() {
			t.Fatalf("no row: %v", rows.Err())
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		return vals, types
	}
	want, wantTypes := read(direct)
	got, gotTypes := read(db)
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("column %d (%s): %#v (%T), pgx stdlib gives %#v (%T)", i+1, wantTypes[i].DatabaseTypeName(), got[i], got[i], want[i], want[i])
		}
		w, g := wantTypes[i], gotTypes[i]
		wl, wlok := w.Length()
		gl, glok := g.Length()
		wp, ws, wpok := w.DecimalSize()
		gp, gs, gpok := g.DecimalSize()
		if g.Name() != w.Name() || g.DatabaseTypeName() != w.DatabaseTypeName() || g.ScanType() != w.ScanType() ||
			gl != wl || glok != wlok || gp != wp || gs != ws || gpok != wpok {
			t.Errorf("column %d type: %s %s %v len %d,%v size %d,%d,%v; pgx stdlib: %s %s %v len %d,%v size %d,%d,%v", i+1,
				g.Name(), g.DatabaseTypeName(), g.ScanType(), gl, glok, gp, gs, gpok,
				w.Name(), w.DatabaseTypeName(), w.ScanType(), wl, wlok, wp, ws, wpok)
		}
	}
	// Arguments pgx understands but database/sql's default converter
	// rejects pass through, as with pgx's stdlib.
	var sum int64
	if err := db.QueryRowContext(ctx, "SELECT sum(x) FROM unnest($1::int8[]) x", []int64{1, 2, 3}).Scan(&sum); err != nil || sum != 6 {
		t.Errorf("a []int64 argument: sum %d, %v; want 6", sum, err)
	}
}

// TestRowsKeepTheirValues: the values of a result's rows and columns, and
// of two results open at once on one *sql.Conn read in turns, stay what
// pgx's stdlib gives, however the driver shares its conversion state
// between them: byte slices of earlier rows and columns are not
// overwritten by later ones.
func TestRowsKeepTheirValues(t *testing.T) {
	topo := routertest.Shared(t)
	ctx := context.Background()
	db, _ := openDB(t, topo.Artifact())
	direct := pgxStdlibDB(t, topo.Primary)

	const query = `SELECT i, 'row ' || i, decode(lpad(to_hex(i), 2, '0'), 'hex'), decode(lpad(to_hex(i + 100), 2, '0'), 'hex')
		FROM generate_series($1::int, $1::int + 4) i`
	// The other result's columns are of other types, in another order.
	const other = `SELECT decode(lpad(to_hex(i), 2, '0'), 'hex'), i * 0.5::float8, 'row ' || i, i::int8
		FROM generate_series($1::int, $1::int + 4) i`
	type scanner interface {
		QueryContext(context.Context, string, ...any) (*sql.Rows, error)
	}
	open := func(q scanner, query string, from int) *sql.Rows {
		rows, err := q.QueryContext(ctx, query, from)
		if err != nil {
			t.Fatal(err)
		}
		return rows
	}
	next := func(rows *sql.Rows) []any {
		vals := make([]any, 4)
		ptrs := make([]any, len(vals))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if !rows.Next() {
			t.Fatalf("no row: %v", rows.Err())
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		return vals
	}
	all := func(rows *sql.Rows) (got [][]any) {
		defer rows.Close()
		for range 5 {
			got = append(got, next(rows))
		}
		return got
	}
	want := all(open(direct, query, 1))
	if got := all(open(db, query, 1)); !reflect.DeepEqual(got, want) {
		t.Errorf("rows %#v, pgx stdlib gives %#v", got, want)
	}

	// Two results open at once outside a transaction: each took its own
	// connection from the Router, and database/sql reads them in turns on
	// the one handle.
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	wantB := all(open(direct, other, 11))
	a, b := open(conn, query, 1), open(conn, other, 11)
	defer a.Close() // before the deferred conn.Close, which waits for them
	defer b.Close()
	var gotA, gotB [][]any
	for i := range 5 {
		gotA = append(gotA, next(a))
		if i < 2 {
			gotB = append(gotB, next(b))
		}
	}
	// a's rows are closed while b's are open: the handle's next statement
	// takes the rows a had (see Conn.rows), b keeps its own.
	a.Close()
	c := open(conn, query, 1)
	defer c.Close()
	var gotC [][]any
	for range 5 {
		gotC = append(gotC, next(c))
		if len(gotB) < 5 {
			gotB = append(gotB, next(b))
		}
	}
	if !reflect.DeepEqual(gotA, want) || !reflect.DeepEqual(gotB, wantB) || !reflect.DeepEqual(gotC, want) {
		t.Errorf("results read in turns on one *sql.Conn: %#v, %#v and %#v, pgx stdlib gives %#v, %#v and %#v", gotA, gotB, gotC, want, wantB, want)
	}
}

// TestRowsReusedPerHandle: a handle's statements share one Rows, the
// Router's reader of their rows and the room for their arguments, one after
// another, so that a read allocates none of them; a statement run while
// another's rows are still open on the same handle gets its own three.
func TestRowsReusedPerHandle(t *testing.T) {
	topo := routertest.Shared(t)
	ctx := context.Background()
	a := topo.Artifact()
	a.Nodes = a.Nodes[:2]
	db, _ := openDB(t, a)
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const query = "SELECT $1::int + 1"
	read := func() {
		var n int
		if err := conn.QueryRowContext(ctx, query, 41).Scan(&n); err != nil || n != 42 {
			t.Fatalf("read %d, %v; want 42", n, err)
		}
	}
	read() // the connection and its statement cache
	alone := allocs.Least(200, read)
	held, err := conn.QueryContext(ctx, query, 1) // open while the reads run
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	beside := allocs.Least(200, read)
	t.Logf("%.0f allocations a read alone on the handle, %.0f beside open rows", alone, beside)
	if alone != beside-3 {
		t.Errorf("%.0f allocations a read alone on the handle, %.0f beside open rows: want three fewer alone (the handle's Rows, the Router's reader, the arguments)", alone, beside)
	}
}

// TestAllocationsAtMostPgxStdlib: a routed read through database/sql
// allocates no more than the same read through pgx's own driver on one
// server, narrow or wide: the Router's routing and pool cost allocations
// that the driver saves in converting rows.
func TestAllocationsAtMostPgxStdlib(t *testing.T) {
	topo := routertest.Shared(t)
	ctx := context.Background()
	direct := pgxStdlibDB(t, topo.Standbys[0])
	a := topo.Artifact()
	a.Nodes = a.Nodes[:2] // the primary and replica-1: every read goes to replica-1
	routed, _ := openDB(t, a)
	for _, query := range []string{
		"SELECT $1::int + 1, 'a title'::text",
		"SELECT $1::int, 'a title'::text, 'an author'::text, 2.5::float8, true, now(), 7::int8, NULL::text",
	} {
		count := func(db *sql.DB) float64 {
			var cols []any
			read := func() {
				rows, err := db.QueryContext(ctx, query, 41)
				if err != nil {
					t.Fatal(err)
				}
				defer rows.Close()
				if cols == nil {
					names, _ := rows.Columns()
					cols = make([]any, len(names))
					for i := range cols {
						cols[i] = new(any)
					}
				}
				if !rows.Next() {
					t.Fatalf("%s: no row: %v", query, rows.Err())
				}
				if err := rows.Scan(cols...); err != nil {
					t.Fatal(err)
				}
			}
			read() // the connection and its statement cache
			return allocs.Least(200, read)
		}
		d, r := count(direct), count(routed)
		t.Logf("%s: %.0f allocations, pgx stdlib %.0f", query, r, d)
		if r > d {
			t.Errorf("%s: %.0f allocations a read, pgx stdlib %.0f", query, r, d)
		}
	}
}

// TestReadYourWrites: with standbys that apply each commit late, a session
// reads its own writes made through database/sql (a plain write, a write
// with RETURNING, a committed transaction); a read without the session
// goes to a standby that has not seen it yet.
func TestReadYourWrites(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(2))
	ctx := context.Background()
	const delay = 2 * time.Second
	for _, s := range topo.Standbys {
		if err := s.SetApplyDelay(ctx, delay); err != nil {
			t.Fatal(err)
		}
	}
	a := topo.Artifact()
	a.Consistency = artifact.Consistency{Mode: artifact.ModeReadYourWrites, WaitTimeout: "1ms"}
	db, _ := openDB(t, a)
	if err := topo.Primary.Exec(ctx, `CREATE TABLE ryw (id int PRIMARY KEY);
		CREATE FUNCTION ryw_add(i int) RETURNS int LANGUAGE sql AS $$ INSERT INTO ryw VALUES (i) RETURNING i $$`); err != nil {
		t.Fatal(err)
	}
	// The table reaches the standbys only after the delay.
	deadline := time.Now().Add(10 * time.Second)
	for {
		var n int
		err := db.QueryRowContext(ctx, "SELECT count(*) FROM ryw").Scan(&n)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}

	writes := []struct {
		name  string
		write func(ctx context.Context, id int) error
	}{
		{"Exec", func(ctx context.Context, id int) error {
			_, err := db.ExecContext(ctx, "INSERT INTO ryw VALUES ($1)", id)
			return err
		}},
		{"RETURNING", func(ctx context.Context, id int) error {
			var got int
			return db.QueryRowContext(ctx, "INSERT INTO ryw VALUES ($1) RETURNING id", id).Scan(&got)
		}},
		// A SELECT of a function that writes, while the session reads
		// from the primary after its INSERT: the primary runs it as a
		// read, and its write is recorded too (before, the session kept
		// the INSERT's position).
		{"writing SELECT", func(ctx context.Context, id int) error {
			if _, err := db.ExecContext(ctx, "INSERT INTO ryw VALUES ($1)", 100+id); err != nil {
				return err
			}
			inserted := routerlib.SessionFrom(ctx).LSN()
			var got int
			if err := db.QueryRowContext(ctx, "SELECT ryw_add($1)", id).Scan(&got); err != nil {
				return err
			}
			if routerlib.SessionFrom(ctx).LSN() <= inserted {
				return fmt.Errorf("the function's write left the session at the INSERT's position %s", inserted)
			}
			return nil
		}},
		{"Tx", func(ctx context.Context, id int) error {
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, "INSERT INTO ryw VALUES ($1)", id); err != nil {
				tx.Rollback()
				return err
			}
			return tx.Commit()
		}},
	}
	for i, w := range writes {
		t.Run(w.name, func(t *testing.T) {
			id := i + 1
			sctx := routerlib.WithSession(ctx, &routerlib.Session{})
			if err := w.write(sctx, id); err != nil {
				t.Fatal(err)
			}
			if routerlib.SessionFrom(sctx).LSN() == 0 {
				t.Fatal("the write recorded no position in the session")
			}
			var n int
			if err := db.QueryRowContext(sctx, "SELECT count(*) FROM ryw WHERE id = $1", id).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != 1 {
				t.Errorf("the session did not read its own write")
			}
			if err := db.QueryRowContext(ctx, "SELECT count(*) FROM ryw WHERE id = $1", id).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != 0 {
				t.Errorf("a read without the session saw the write within the %v apply delay: the test proves nothing", delay)
			}
		})
	}
}

// TestReplicaStoppedUnderLoad stops a standby while readers use the
// *sql.DB: no read fails, and the reads move to the other standby.
func TestReplicaStoppedUnderLoad(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(2))
	ctx := context.Background()
	const interval = 200 * time.Millisecond
	a := fastHealth(topo.Artifact(), interval)
	// The stopped standby refuses connections: the read that meets the
	// refusal takes it out of rotation, whatever the health settings. The
	// healthy nodes must stay in: with a 400ms timeout and eject_after 1,
	// one check slower than that (4 readers spinning with -race on a busy
	// 2-core machine) cut off the primary and the other standby, and reads
	// failed with every node out of rotation.
	a.Health.Timeout, a.Health.EjectAfter = "1s", 3
	db, _ := openDB(t, a)
	victim, survivor := topo.Standbys[0], topo.Standbys[1]

	var reads, failed atomic.Int64
	var afterStop sync.Map
	var stopped atomic.Bool
	var firstErr atomic.Pointer[error]
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				down := stopped.Load()
				var p int
				if err := db.QueryRowContext(ctx, "SELECT inet_server_port()").Scan(&p); err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, &err)
					continue
				}
				reads.Add(1)
				if down {
					afterStop.Store(p, true)
				}
			}
		})
	}
	time.Sleep(300 * time.Millisecond)
	if err := victim.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	stopped.Store(true)
	time.Sleep(5 * interval)
	close(stop)
	wg.Wait()
	if e := firstErr.Load(); e != nil {
		t.Logf("first failed read: %v", *e)
	}
	if failed.Load() != 0 {
		t.Errorf("%d of %d reads failed while a standby stopped; want 0", failed.Load(), reads.Load())
	}
	if _, ok := afterStop.Load(survivor.Port); !ok {
		t.Errorf("no read reached %s after %s stopped", survivor.Name, victim.Name)
	}
	if _, ok := afterStop.Load(victim.Port); ok {
		t.Errorf("a read was answered by the stopped standby")
	}
	t.Logf("%d reads, %d failed", reads.Load(), failed.Load())
}

// TestTerminatedAfterFirstRow: the server ends a replica read's session
// after the first row went out and before the statement's end (the row
// waits in the backend's buffer and comes just before the FATAL 57P01,
// as when a fast shutdown's signal lands between a row and the end: the
// one failed read of 55,261 in TestReplicaStoppedUnderLoad in CI).
// QueryRowContext's caller had nothing of the read yet, so it runs again
// and gets its row, as Router.QueryRow's does; a read whose first row
// went to the caller does not, and the caller gets the error at the row
// that failed.
func TestTerminatedAfterFirstRow(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(1))
	ctx := context.Background()
	var retries atomic.Int64
	tracer := routerlib.TracerFunc(func(_ context.Context, d routerlib.Decision) {
		if d.Reason == routerlib.ReasonConnRetry {
			retries.Add(1)
		}
	})
	db, _ := openDB(t, fastHealth(topo.Artifact(), 200*time.Millisecond), routerlib.WithTracer(tracer))
	// The first rows are sent to the backend's buffer, then the last
	// branch sleeps until the session is ended: the rows, then FATAL.
	terminate := func(marker string) <-chan int {
		ended := make(chan int, 1)
		go func() {
			var n int
			for range 100 {
				time.Sleep(50 * time.Millisecond)
				if err := topo.Standbys[0].QueryRow(ctx, "SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity WHERE state = 'active' AND query LIKE '%-- '||$1 AND clock_timestamp() - query_start > interval '300 ms'", marker).Scan(&n); err != nil || n > 0 {
					break
				}
			}
			ended <- n
		}()
		return ended
	}

	ended := terminate("one row")
	var x int
	err := db.QueryRowContext(ctx, "SELECT 1 AS x UNION ALL SELECT 2 FROM pg_sleep(2) WHERE random() < 0 -- one row").Scan(&x)
	if n := <-ended; n != 1 {
		t.Fatalf("%d sessions terminated during the read, want 1: the test did not end the session after the row", n)
	}
	if err != nil || x != 1 {
		t.Errorf("QueryRowContext whose session ended after its row: x=%d, %v; want 1 and no error (the read runs again)", x, err)
	}
	if n := retries.Swap(0); n != 1 {
		t.Errorf("QueryRowContext: %d retries, want 1", n)
	}

	ended = terminate("two rows")
	rows, err := db.QueryContext(ctx, "SELECT 1 AS x UNION ALL SELECT 2 UNION ALL SELECT 3 FROM pg_sleep(2) WHERE random() < 0 -- two rows")
	if err != nil {
		t.Fatal(err)
	}
	var got []int
	for rows.Next() {
		if err := rows.Scan(&x); err != nil {
			t.Fatal(err)
		}
		got = append(got, x)
	}
	err = rows.Err()
	rows.Close()
	if n := <-ended; n != 1 {
		t.Fatalf("%d sessions terminated during the read, want 1", n)
	}
	var pgErr *pgconn.PgError
	if !slices.Equal(got, []int{1, 2}) || !errors.As(err, &pgErr) || pgErr.Code != "57P01" {
		t.Errorf("rows whose session ended after their second row: %v, %v; want [1 2] and the 57P01 (a row went to the caller: not run again)", got, err)
	}
	if n := retries.Load(); n != 0 {
		t.Errorf("rows whose first row went to the caller: %d retries, want 0", n)
	}
}

// TestReloadAndFailover: a *sql.DB follows the Router through a reload of
// the router file (a route added) and a failover (writes on the promoted
// standby), with a statement prepared before both.
func TestReloadAndFailover(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(2))
	ctx := context.Background()
	const interval = 200 * time.Millisecond
	path := filepath.Join(t.TempDir(), "router.json")
	write := func(a artifact.Topology) {
		data, err := artifact.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path+".tmp", data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(path+".tmp", path); err != nil {
			t.Fatal(err)
		}
	}
	// Checks every interval, acting on the first failure, but with a
	// timeout that the first check (in Open, on a loaded machine under
	// -race) meets.
	a := fastHealth(topo.Artifact(), interval)
	a.Health.Timeout = "2s"
	write(a)
	r, err := routerlib.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	db := sql.OpenDB(stdlib.NewConnector(r))
	defer db.Close()
	if _, err := db.ExecContext(ctx, "CREATE TABLE sql_failover (port int DEFAULT inet_server_port())"); err != nil {
		t.Fatal(err)
	}
	insert, err := db.PrepareContext(ctx, "INSERT INTO sql_failover DEFAULT VALUES RETURNING port")
	if err != nil {
		t.Fatal(err)
	}
	defer insert.Close()

	var p int
	if err := db.QueryRowContext(routerlib.Route(ctx, "second"), "SELECT 1").Scan(&p); !errors.Is(err, routerlib.ErrUnknownRoute) {
		t.Fatalf("a route the file does not declare: %v, want ErrUnknownRoute", err)
	}
	a.Routes = []artifact.Route{{Name: "second", Nodes: []string{topo.Standbys[1].Name}}}
	write(a)
	if err := r.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if p := port(t, routerlib.Route(ctx, "second"), db, "SELECT inet_server_port()"); p != topo.Standbys[1].Port {
		t.Errorf("after the reload, route second ran on %d, want %d", p, topo.Standbys[1].Port)
	}

	if p := port(t, ctx, stmtRow{insert}, ""); p != topo.Primary.Port {
		t.Fatalf("the prepared insert ran on %d, want the primary's %d", p, topo.Primary.Port)
	}
	if err := topo.Primary.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	promoted := topo.Standbys[0]
	if err := promoted.Promote(ctx); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := insert.QueryRowContext(ctx).Scan(&p)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no write succeeded within 10s of the promotion: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if p != promoted.Port {
		t.Errorf("after failover the prepared insert ran on %d, want the promoted %s's %d", p, promoted.Name, promoted.Port)
	}
}

// TestReturningAfterIdleSession: an INSERT … RETURNING through database/sql
// whose pooled session the server ended as idle (idle_session_timeout,
// FATAL 57P05: it never ran) runs again and succeeds, once, in
// read_your_writes mode as in eventual mode. database/sql's queries carry
// a result-format option, which keeps a read_your_writes write out of the
// capture's pipeline: the 57P05 came at the first row, after Query had
// returned without the retry the other calls have, and half the writes
// failed with it.
func TestReturningAfterIdleSession(t *testing.T) {
	topo := routertest.Shared(t)
	ctx := context.Background()
	if err := topo.Primary.Exec(ctx, "DROP TABLE IF EXISTS idle_returning; CREATE TABLE idle_returning (id int)"); err != nil {
		t.Fatal(err)
	}
	id := 0
	for _, mode := range []string{artifact.ModeEventual, artifact.ModeReadYourWrites} {
		t.Run(mode, func(t *testing.T) {
			a := topo.Artifact()
			a.Consistency.Mode = mode
			ended := &idleEnded{}
			db, _ := openDB(t, a, routerlib.WithPoolConfig(func(_ artifact.Node, cfg *pgxpool.Config) {
				// Under pgxpool's ping of sessions idle a second.
				cfg.ConnConfig.RuntimeParams["idle_session_timeout"] = "500ms"
				cfg.ConnConfig.Tracer = ended
			}))
			sctx := routerlib.WithSession(ctx, &routerlib.Session{})
			for range 6 {
				id++
				var got int
				if err := db.QueryRowContext(sctx, "INSERT INTO idle_returning VALUES ($1) RETURNING id", id).Scan(&got); err != nil {
					t.Errorf("write %d: %v", id, err)
				}
				time.Sleep(700 * time.Millisecond)
			}
			if ended.n.Load() == 0 {
				t.Fatal("no write met a session the server ended: the test proves nothing")
			}
			t.Logf("%d writes met an ended session", ended.n.Load())
		})
	}
	var rows, distinct int
	if err := topo.Primary.QueryRow(ctx, "SELECT count(*), count(DISTINCT id) FROM idle_returning").Scan(&rows, &distinct); err != nil {
		t.Fatal(err)
	}
	if rows != id || distinct != id {
		t.Errorf("%d rows (%d distinct) after %d writes, want each once", rows, distinct, id)
	}
}

// idleEnded counts the INSERTs that met a session the server had ended as
// idle (the health checks' sessions meet it too).
type idleEnded struct{ n atomic.Int64 }

type insertKey struct{}

func (e *idleEnded) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	return context.WithValue(ctx, insertKey{}, strings.HasPrefix(d.SQL, "INSERT"))
}

func (e *idleEnded) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryEndData) {
	var pgErr *pgconn.PgError
	if insert, _ := ctx.Value(insertKey{}).(bool); insert && errors.As(d.Err, &pgErr) && pgErr.Code == "57P05" {
		e.n.Add(1)
	}
}

// TestTxCommitAnswerLost: a database/sql transaction whose COMMIT reached
// the server, and committed, but whose answer was lost fails with
// routerlib.ErrMaybeCommitted, in eventual and read_your_writes mode
// alike (before: the bare "conn closed" of the connection).
func TestTxCommitAnswerLost(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct{ mode, commit string }{
		{artifact.ModeEventual, "commit"},       // pgx's Tx.Commit
		{artifact.ModeReadYourWrites, "COMMIT"}, // the capture's
	} {
		t.Run(c.mode, func(t *testing.T) {
			topo := routertest.Start(t, routertest.WithStandbys(1))
			if err := topo.Primary.Exec(ctx, "CREATE TABLE lost_t (tag text)"); err != nil {
				t.Fatal(err)
			}
			proxy := topo.Primary.NewProxy(t)
			a := fastHealth(topo.Artifact(), 100*time.Millisecond)
			a.Health.Timeout, a.Health.EjectAfter = "1s", 3
			a.Nodes[0].Port = proxy.Port()
			a.Consistency = artifact.Consistency{Mode: c.mode, WaitTimeout: "50ms"}
			// One primary connection, which the first write prepares the
			// capture's statements on: the COMMIT's text is then sent once,
			// by Commit.
			a.Pool.MaxConns = 1
			db, _ := openDB(t, a)
			sctx := routerlib.WithSession(ctx, &routerlib.Session{})
			if _, err := db.ExecContext(sctx, "INSERT INTO lost_t VALUES ('warm')"); err != nil {
				t.Fatal(err)
			}
			tx, err := db.BeginTx(sctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tx.ExecContext(sctx, "INSERT INTO lost_t VALUES ('commit')"); err != nil {
				t.Fatal(err)
			}
			proxy.LoseAnswerTo(c.commit)
			if err := tx.Commit(); !errors.Is(err, routerlib.ErrMaybeCommitted) {
				t.Errorf("Commit whose answer was lost: %v, want ErrMaybeCommitted", err)
			}
			if proxy.Lost() != 1 {
				t.Fatalf("the proxy lost %d answers, want 1", proxy.Lost())
			}
			var n int
			if err := topo.Primary.QueryRow(ctx, "SELECT count(*) FROM lost_t WHERE tag = 'commit'").Scan(&n); err != nil || n != 1 {
				t.Errorf("%d rows committed (%v), want 1: the test lost another answer than the COMMIT's", n, err)
			}
		})
	}
}

// TestTxReusedPerHandle: a handle's transactions, one after another, take
// the handle's one Tx (no allocation of their own), and each commits or
// rolls back what it did; a driver Tx already ended (reached through
// sql.Conn.Raw: database/sql never calls one again) says so.
func TestTxReusedPerHandle(t *testing.T) {
	topo := routertest.Shared(t)
	ctx := context.Background()
	db, _ := openDB(t, topo.Artifact())
	if _, err := db.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS tx_reused (v int)"); err != nil {
		t.Fatal(err)
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for i, commit := range []bool{true, false, true} {
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO tx_reused VALUES ($1)", i); err != nil {
			t.Fatal(err)
		}
		if commit {
			err = tx.Commit()
		} else {
			err = tx.Rollback()
		}
		if err != nil {
			t.Fatalf("transaction %d: %v", i, err)
		}
	}
	var got []int
	rows, err := conn.QueryContext(routerlib.Primary(ctx), "SELECT v FROM tx_reused ORDER BY v")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		got = append(got, v)
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []int{0, 2}) {
		t.Errorf("rows %v after commit, rollback, commit; want [0 2]", got)
	}

	err = conn.Raw(func(driverConn any) error {
		c := driverConn.(*stdlib.Conn)
		first, err := c.BeginTx(ctx, driver.TxOptions{})
		if err != nil {
			return err
		}
		if err := first.Commit(); err != nil {
			return err
		}
		if err := first.Commit(); !errors.Is(err, sql.ErrTxDone) {
			t.Errorf("Commit of a committed driver Tx: %v, want sql.ErrTxDone", err)
		}
		if err := first.Rollback(); !errors.Is(err, sql.ErrTxDone) {
			t.Errorf("Rollback of a committed driver Tx: %v, want sql.ErrTxDone", err)
		}
		second, err := c.BeginTx(ctx, driver.TxOptions{})
		if err != nil {
			return err
		}
		return second.Rollback()
	})
	if err != nil {
		t.Fatal(err)
	}
}
