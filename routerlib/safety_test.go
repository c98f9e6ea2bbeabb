package routerlib_test

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgreplication/terraform-provider-pgreplication/internal/allocs"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// TestReadOnlyRetry: a statement the classifier cannot see is a write (a
// user function that inserts) is rejected by the replica with SQLSTATE 25006,
// retried on the primary, and from then on routed there directly.
func TestReadOnlyRetry(t *testing.T) {
	topo := routertest.Shared(t)
	ctx := context.Background()
	for _, sql := range []string{
		"CREATE TABLE IF NOT EXISTS ro_log (at timestamptz DEFAULT now())",
		"CREATE OR REPLACE FUNCTION ro_write() RETURNS int LANGUAGE sql AS $$ INSERT INTO ro_log DEFAULT VALUES; SELECT inet_server_port() $$",
	} {
		if err := topo.Primary.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	lsn, err := topo.CurrentLSN(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range topo.Standbys {
		if err := s.WaitReplayed(ctx, lsn); err != nil {
			t.Fatal(err)
		}
	}
	for _, call := range []struct {
		name string
		sql  string
		run  func(r *routerlib.Router, sql string) (int, error)
	}{
		{"QueryRow", "SELECT ro_write()", func(r *routerlib.Router, sql string) (port int, err error) {
			return port, r.QueryRow(ctx, sql).Scan(&port)
		}},
		{"Query", "SELECT ro_write() AS q", func(r *routerlib.Router, sql string) (port int, err error) {
			rows, err := r.Query(ctx, sql)
			if err != nil {
				return 0, err
			}
			defer rows.Close()
			for rows.Next() {
				if err := rows.Scan(&port); err != nil {
					return 0, err
				}
			}
			return port, rows.Err()
		}},
		{"Exec", "SELECT ro_write() AS e", func(r *routerlib.Router, sql string) (int, error) {
			_, err := r.Exec(ctx, sql)
			return topo.Primary.Port, err
		}},
	} {
		t.Run(call.name, func(t *testing.T) {
			rec := &recorder{}
			r := newRouter(t, topo.Artifact(), routerlib.WithTracer(rec))
			port, err := call.run(r, call.sql)
			if err != nil {
				t.Fatal(err)
			}
			if port != topo.Primary.Port {
				t.Errorf("answered by %d, want the primary", port)
			}
			if len(rec.decisions) != 2 || rec.decisions[0].Reason != routerlib.ReasonReplica || rec.decisions[1].Reason != routerlib.ReasonReadOnlyRetry {
				t.Errorf("decisions %+v, want replica then read-only retry", rec.decisions)
			}
			rec.reset()
			if _, err := call.run(r, call.sql); err != nil {
				t.Fatal(err)
			}
			if got := rec.last(t); len(rec.decisions) != 1 || got.Reason != routerlib.ReasonWrite || got.Node != "primary" {
				t.Errorf("second call: %+v, want one decision: write on primary (remembered)", rec.decisions)
			}
		})
	}
}

// TestRouteDecisionAllocatesNothing proves the hot path (cached
// classification plus choosing a replica) does not allocate.
func TestRouteDecisionAllocatesNothing(t *testing.T) {
	topo := routertest.Shared(t)
	r := newRouter(t, topo.Artifact())
	ctx := context.Background()
	for _, sql := range []string{"SELECT 1", "INSERT INTO t VALUES (1)"} {
		if _, err := r.ChooseForTest(ctx, sql); err != nil {
			t.Fatal(err)
		}
		if n := testing.AllocsPerRun(1000, func() { _, _ = r.ChooseForTest(ctx, sql) }); n != 0 {
			t.Errorf("choosing a node for %q allocates %.1f times, want 0", sql, n)
		}
	}
	pctx := routerlib.Primary(ctx)
	if n := testing.AllocsPerRun(1000, func() { _, _ = r.ChooseForTest(pctx, "SELECT 1") }); n != 0 {
		t.Errorf("forced primary allocates %.1f times, want 0", n)
	}
}

// TestReplicaReadAllocations pins what a routed read costs in allocations
// beyond a pgxpool.Pool's own on the same replica: one wrapper for QueryRow
// and Query (the retry of a replica that fails before its first row), none
// for Exec, whose retry needs nothing kept past its return.
func TestReplicaReadAllocations(t *testing.T) {
	topo := routertest.Shared(t)
	ctx := context.Background()
	a := topo.Artifact()
	a.Nodes = a.Nodes[:2]    // the primary and replica-1: every read goes to replica-1
	a.Health.Interval = "1h" // no health check allocates while the reads are counted
	r := newRouter(t, a)
	pool, err := pgxpool.New(ctx, topo.Standbys[0].DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	const sql = "SELECT $1::int + 1"
	type querier interface {
		QueryRow(context.Context, string, ...any) pgx.Row
		Query(context.Context, string, ...any) (pgx.Rows, error)
		Exec(context.Context, string, ...any) (pgconn.CommandTag, error)
	}
	calls := []struct {
		name  string
		extra float64 // the router's allocations beyond the pool's
		run   func(q querier) error
	}{
		{"QueryRow", 1, func(q querier) error {
			var n int
			return q.QueryRow(ctx, sql, 41).Scan(&n)
		}},
		{"Query", 1, func(q querier) error {
			rows, err := q.Query(ctx, sql, 41)
			if err != nil {
				return err
			}
			var n int
			for rows.Next() {
				if err := rows.Scan(&n); err != nil {
					return err
				}
			}
			return rows.Err()
		}},
		{"Exec", 0, func(q querier) error {
			_, err := q.Exec(ctx, sql, 41)
			return err
		}},
	}
	for _, call := range calls {
		t.Run(call.name, func(t *testing.T) {
			count := func(q querier) float64 {
				if err := call.run(q); err != nil { // connects, prepares the statement
					t.Fatal(err)
				}
				var err error
				n := allocs.Least(200, func() {
					if e := call.run(q); e != nil && err == nil {
						err = e
					}
				})
				if err != nil {
					t.Fatal(err)
				}
				return n
			}
			p, rt := count(pool), count(r)
			if rt > p+call.extra {
				t.Errorf("a replica %s through the router allocates %.0f times, the pool's own %.0f: want at most %.0f more", call.name, rt, p, call.extra)
			}
		})
	}
}

// TestCloseLeaksNoGoroutines: Close stops the monitor, the file watcher and
// the pools' goroutines, and calls afterwards fail with ErrClosed.
func TestCloseLeaksNoGoroutines(t *testing.T) {
	topo := routertest.Shared(t)
	ctx := context.Background()
	settle := func() int {
		runtime.GC()
		time.Sleep(50 * time.Millisecond)
		return runtime.NumGoroutine()
	}
	before := settle()
	r, _ := openRouter(t, steadyHealth(topo.Artifact(), 50*time.Millisecond), routerlib.WithWatch(20*time.Millisecond))
	for range 10 {
		serverPort(t, ctx, r)
		if _, err := r.Exec(ctx, "SELECT pg_advisory_unlock_all()"); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(150 * time.Millisecond) // let the monitor and watcher run
	r.Close()
	r.Close() // idempotent
	deadline := time.Now().Add(5 * time.Second)
	after := settle()
	for after > before && time.Now().Before(deadline) {
		after = settle()
	}
	if after > before {
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines before Open, %d after Close:\n%s", before, after, buf[:runtime.Stack(buf, true)])
	}
	if _, err := r.Exec(ctx, "SELECT 1"); err != routerlib.ErrClosed {
		t.Errorf("Exec after Close: %v, want ErrClosed", err)
	}
}
