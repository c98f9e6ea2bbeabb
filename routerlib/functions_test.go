package routerlib_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// TestVolatileFunctionsClassified reads pg_proc on the servers under test
// (the suite's version and PostgreSQL 15, so make test covers 15 and 17 and
// make test-matrix 15 to 18) and requires every volatile function in
// pg_catalog to be primary-only or on the reviewed read-safe list, never
// both. Then it routes a call of each through a Router against those
// servers: primary-only calls to the primary, read-safe ones to a replica.
// A new release that adds an admin function fails here instead of sending
// it to a replica.
func TestVolatileFunctionsClassified(t *testing.T) {
	shared := routertest.Shared(t)
	topos := map[int]*routertest.Topology{shared.Version: shared}
	if shared.Version != 15 {
		topo, err := routertest.New(context.Background(), routertest.WithVersion(15), routertest.WithStandbys(1))
		switch {
		case errors.Is(err, routertest.ErrNoBinaries) && os.Getenv("CI") != "true":
			t.Logf("PostgreSQL 15 not checked: %v", err)
		case err != nil:
			t.Fatal(err)
		default:
			t.Cleanup(func() { topo.Close() })
			topos[15] = topo
		}
	}
	for version, topo := range topos {
		t.Run("PostgreSQL-"+strconv.Itoa(version), func(t *testing.T) {
			ctx := context.Background()
			names := volatileFunctions(t, topo)
			if len(names) < 200 {
				t.Fatalf("pg_proc lists %d volatile functions in pg_catalog; expected over 200: the query is wrong", len(names))
			}
			var missing, both []string
			for _, name := range names {
				primary, reason := routerlib.FunctionForTest(name)
				switch {
				case primary && reason != "":
					both = append(both, name)
				case !primary && reason == "":
					missing = append(missing, name)
				}
			}
			if len(missing) > 0 {
				t.Errorf("PostgreSQL %d has volatile functions routerlib has not classified: %s\n"+
					"Add each to primaryFunctions in routerlib/functions.go if it changes server or session state or fails during recovery, "+
					"else to readSafeFunctions with the reason it is safe on a replica.", version, strings.Join(missing, ", "))
			}
			if len(both) > 0 {
				t.Errorf("functions both primary-only and read-safe: %s", strings.Join(both, ", "))
			}
			r := newRouter(t, topo.Artifact())
			replicasInRotation(t, r, topo)
			for _, name := range names {
				primary, _ := routerlib.FunctionForTest(name)
				calls := []string{`SELECT pg_catalog."` + name + `"()`}
				if strings.ToLower(name) == name {
					calls = append(calls, "SELECT "+strings.ToUpper(name)+"()", "SELECT * FROM pg_catalog."+name+" ( )")
				}
				for _, sql := range calls {
					node, err := r.ChooseForTest(ctx, sql)
					if err != nil {
						t.Fatal(err)
					}
					if (node == "primary") != primary {
						t.Errorf("%s went to %s; primary-only: %v", sql, node, primary)
					}
				}
			}
		})
	}
}

// volatileFunctions lists the distinct names of pg_catalog's volatile
// functions on topo's primary.
func volatileFunctions(t *testing.T, topo *routertest.Topology) []string {
	t.Helper()
	conn, err := topo.Primary.Connect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(context.Background(),
		"SELECT DISTINCT proname FROM pg_proc WHERE pronamespace = 'pg_catalog'::regnamespace AND provolatile = 'v' ORDER BY 1")
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// TestStateChangingFunctionsRunOnPrimary runs, through a Router, the calls
// issue 9 saw act on a replica, and checks on the servers where they acted.
func TestStateChangingFunctionsRunOnPrimary(t *testing.T) {
	topo := routertest.Shared(t)
	ctx := context.Background()
	rec := &recorder{}
	r := newRouter(t, topo.Artifact(), routerlib.WithTracer(rec))
	replicasInRotation(t, r, topo)
	onPrimary := func(t *testing.T, sql string) {
		t.Helper()
		if d := rec.last(t); d.Node != "primary" || d.SQL != sql {
			t.Errorf("%s: decided %+v, want the primary", sql, d)
		}
	}
	count := func(t *testing.T, n *routertest.Node, sql string) int {
		t.Helper()
		var c int
		if err := n.QueryRow(ctx, sql).Scan(&c); err != nil {
			t.Fatal(err)
		}
		return c
	}

	t.Run("slot", func(t *testing.T) {
		const create = "SELECT pg_create_physical_replication_slot('rs_issue9', true)"
		if _, err := r.Exec(ctx, create); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = topo.Primary.Exec(ctx, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = 'rs_issue9'")
		})
		onPrimary(t, create)
		const has = "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'rs_issue9'"
		if got := count(t, topo.Primary, has); got != 1 {
			t.Errorf("the primary has %d slots rs_issue9, want 1", got)
		}
		for _, s := range topo.Standbys {
			if got := count(t, s, has); got != 0 {
				t.Errorf("%s has %d slots rs_issue9, want 0", s.Name, got)
			}
		}
		const drop = "SELECT pg_drop_replication_slot('rs_issue9')"
		if _, err := r.Exec(ctx, drop); err != nil {
			t.Fatalf("dropping the slot through the router: %v", err)
		}
		onPrimary(t, drop)
	})

	t.Run("replay pause", func(t *testing.T) {
		const pause = "SELECT pg_wal_replay_pause()"
		_, err := r.Exec(ctx, pause)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "55000" {
			t.Errorf("pg_wal_replay_pause through the router: %v, want the primary's 55000 (recovery is not in progress)", err)
		}
		onPrimary(t, pause)
		for _, s := range topo.Standbys {
			if got := count(t, s, "SELECT pg_is_wal_replay_paused()::int"); got != 0 {
				t.Errorf("%s is paused", s.Name)
				_ = s.Exec(ctx, "SELECT pg_wal_replay_resume()")
			}
		}
	})

	t.Run("set_config", func(t *testing.T) {
		// Its own router: the setting stays on one pooled primary
		// connection (as with pgxpool), which Close discards.
		rec := &recorder{}
		r := newRouter(t, topo.Artifact(), routerlib.WithTracer(rec))
		replicasInRotation(t, r, topo)
		for _, sql := range []string{
			"SELECT set_config('search_path', 'rs_nowhere', false)",
			`SELECT PG_CATALOG."set_config"('search_path', 'rs_nowhere', false)`,
		} {
			var v string
			if err := r.QueryRow(ctx, sql).Scan(&v); err != nil {
				t.Fatal(err)
			}
			if d := rec.last(t); d.Node != "primary" {
				t.Errorf("%s went to %s, want the primary", sql, d.Node)
			}
		}
		for range 6 {
			var path string
			if err := r.QueryRow(ctx, "SHOW search_path").Scan(&path); err != nil {
				t.Fatal(err)
			}
			if d := rec.last(t); d.Node == "primary" || path == "rs_nowhere" {
				t.Errorf("a later read on %s saw search_path %q", d.Node, path)
			}
		}
	})

	t.Run("admin", func(t *testing.T) {
		for _, sql := range []string{
			"SELECT pg_reload_conf()",
			"SELECT pg_stat_reset()",
			"SELECT pg_stat_reset_shared('bgwriter')",
			"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE false",
			"SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE false",
			"SELECT setseed(0.5)",
			"SELECT pg_advisory_unlock_all()",
		} {
			if _, err := r.Exec(ctx, sql); err != nil {
				t.Errorf("%s: %v", sql, err)
			}
			onPrimary(t, sql)
		}
	})

	t.Run("read-safe on a replica", func(t *testing.T) {
		var port int
		var recovery bool
		const sql = "SELECT inet_server_port(), pg_is_in_recovery(), random(), clock_timestamp(), gen_random_uuid(), pg_last_wal_replay_lsn(), pg_database_size(current_database())"
		if err := r.QueryRow(ctx, sql).Scan(&port, &recovery, nil, nil, nil, nil, nil); err != nil {
			t.Fatal(err)
		}
		if !recovery || port == topo.Primary.Port || !slices.ContainsFunc(topo.Standbys, func(s *routertest.Node) bool { return s.Port == port }) {
			t.Errorf("read-safe functions ran on port %d (in recovery: %v), want a replica", port, recovery)
		}
	})
}

// replicasInRotation waits until every standby of topo serves reads through
// r: on a loaded machine New's first check of one may have timed out.
func replicasInRotation(t *testing.T, r *routerlib.Router, topo *routertest.Topology) {
	t.Helper()
	for _, s := range topo.Standbys {
		eventually(t, 10*time.Second, s.Name+" in rotation", func() bool { return nodeStat(r, s.Name).Readable })
	}
}

// TestTablesampleAndDblink runs, through a Router, reads that sample a
// table (the clause names the method's handler like a call) and calls of
// the dblink extension, and checks where they ran: TABLESAMPLE on a
// replica, dblink (another server, or connections kept in the session) on
// the primary.
func TestTablesampleAndDblink(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(1))
	ctx := context.Background()
	if err := topo.Primary.Exec(ctx, "CREATE EXTENSION dblink"); err != nil {
		t.Fatal(err)
	}
	if err := topo.WaitReplayed(ctx); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	r := newRouter(t, topo.Artifact(), routerlib.WithTracer(rec))
	replicasInRotation(t, r, topo)
	for _, sql := range []string{
		"SELECT pg_is_in_recovery() FROM pg_class TABLESAMPLE SYSTEM (100) LIMIT 1",
		"SELECT pg_is_in_recovery() FROM pg_class TABLESAMPLE BERNOULLI (100) REPEATABLE (1) LIMIT 1",
	} {
		var recovery bool
		if err := r.QueryRow(ctx, sql).Scan(&recovery); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		if d := rec.last(t); !recovery || d.Node == "primary" {
			t.Errorf("%s ran on %s (in recovery: %v), want a replica", sql, d.Node, recovery)
		}
	}
	dsn := topo.Primary.DSN()
	for _, sql := range []string{
		"SELECT port FROM dblink($1, 'SELECT inet_server_port()') AS t(port int)",
		"SELECT dblink_exec($1, 'SET application_name = rs')",
		"SELECT dblink_connect('rs_link', $1)",
		"SELECT dblink_connect_u('rs_link_u', $1)",
	} {
		var v any
		if err := r.QueryRow(ctx, sql, dsn).Scan(&v); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		if d := rec.last(t); d.Node != "primary" {
			t.Errorf("%s ran on %s, want the primary", sql, d.Node)
		}
	}
	// Named connections and cursors live in one session: one string.
	const cursor = "SELECT dblink_connect('rs_cur', '%[1]s'); SELECT dblink_open('rs_cur', 'c', 'SELECT 1'); " +
		"SELECT dblink_send_query('rs_cur', 'SELECT 1') WHERE false; SELECT dblink_close('rs_cur', 'c'); SELECT dblink_disconnect('rs_cur')"
	sql := fmt.Sprintf(cursor, dsn)
	if _, err := r.Exec(ctx, sql); err != nil {
		t.Fatalf("dblink cursor: %v", err)
	}
	if d := rec.last(t); d.Node != "primary" {
		t.Errorf("dblink_open ran on %s, want the primary", d.Node)
	}
}
