package routerlib_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// pausedReplica starts a primary and one standby whose replay is paused,
// and a read_your_writes Router over them with wait_timeout wait: a read
// that needs a write made now can only be served by the primary.
func pausedReplica(t *testing.T, wait string, opts ...routerlib.Option) (*routertest.Topology, *routerlib.Router) {
	t.Helper()
	topo := routertest.Start(t, routertest.WithStandbys(1))
	// Checks every 100ms bring the replica into rotation at once; these
	// tests are about read-your-writes, not ejection.
	a := steadyHealth(topo.Artifact(), 100*time.Millisecond)
	a.Consistency = artifact.Consistency{Mode: artifact.ModeReadYourWrites, WaitTimeout: artifact.Duration(wait)}
	r := newRouter(t, a, opts...)
	eventually(t, 10*time.Second, "replica-1 in rotation", func() bool { return nodeStat(r, "replica-1").Readable })
	if err := topo.Standbys[0].PauseReplay(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = topo.Standbys[0].ResumeReplay(context.Background()) })
	return topo, r
}

// TestMigrationConnRecordsSession: a migration made through MigrationConn
// is traced as a migration, and recorded in the caller's Session, so the
// read right after it sees the new schema although the replica has not
// replayed it.
func TestMigrationConnRecordsSession(t *testing.T) {
	rec := &recorder{}
	_, r := pausedReplica(t, "50ms", routerlib.WithTracer(rec))
	ctx := routerlib.WithSession(context.Background(), &routerlib.Session{})
	c, err := r.MigrationConn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d := rec.last(t); d.Op != routerlib.OpMigrate || d.Op.String() != "MigrationConn" || d.Node != "primary" {
		t.Errorf("MigrationConn traced as %+v (%s), want Op MigrationConn on the primary", d, d.Op)
	}
	if _, err := c.Exec(ctx, "CREATE TABLE migrated (id int)"); err != nil {
		t.Fatal(err)
	}
	c.Release()
	c.Release() // a second Release does nothing
	if routerlib.SessionFrom(ctx).LSN() == 0 {
		t.Fatal("the migration is not recorded in the session")
	}
	var n int
	if err := r.QueryRow(ctx, "SELECT count(*) FROM migrated").Scan(&n); err != nil {
		t.Fatalf("a read right after the migration: %v", err)
	}
	if d := rec.last(t); d.Node != "primary" || d.Reason != routerlib.ReasonSticky {
		t.Errorf("the read went to %s (%s), want the primary (sticky)", d.Node, d.Reason)
	}
}

// TestAcquire: a connection for session work is the primary's, keeps its
// session between statements, is traced as Acquire, and records what it
// wrote in the Session.
func TestAcquire(t *testing.T) {
	topo := routertest.Shared(t)
	a := topo.Artifact()
	a.Consistency.Mode = artifact.ModeReadYourWrites
	rec := &recorder{}
	r := newRouter(t, a, routerlib.WithTracer(rec))
	ctx := routerlib.WithSession(context.Background(), &routerlib.Session{})
	c, err := r.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d := rec.last(t); d.Op != routerlib.OpAcquire || d.Node != "primary" || d.Reason != routerlib.ReasonForcedPrimary {
		t.Errorf("Acquire traced as %+v, want Acquire on the primary (forced primary)", d)
	}
	if p := serverPort(t, ctx, c); p != topo.Primary.Port {
		t.Errorf("Acquire gave port %d, want the primary", p)
	}
	for _, sql := range []string{"SET application_name = 'rs_acquire'", "CREATE TEMP TABLE scratch (id int)", "INSERT INTO scratch VALUES (1)"} {
		if _, err := c.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	var name string
	var rows int
	if err := c.QueryRow(ctx, "SELECT current_setting('application_name'), (SELECT count(*) FROM scratch)").Scan(&name, &rows); err != nil {
		t.Fatal(err)
	}
	if name != "rs_acquire" || rows != 1 {
		t.Errorf("the session lost its state: application_name %q, %d rows", name, rows)
	}
	if _, err := c.Exec(ctx, "DISCARD ALL"); err != nil {
		t.Fatal(err)
	}
	before := routerlib.SessionFrom(ctx).LSN()
	c.Release()
	if after := routerlib.SessionFrom(ctx).LSN(); after == 0 || after < before {
		t.Errorf("Release recorded LSN %s in the session", after)
	}
}

// TestWaitTimeoutZero: with wait_timeout 0s a read_your_writes read whose
// write no replica has replayed goes to the primary at once, without
// waiting for a replica.
func TestWaitTimeoutZero(t *testing.T) {
	rec := &recorder{}
	_, r := pausedReplica(t, "0s", routerlib.WithTracer(rec))
	ctx := routerlib.WithSession(context.Background(), &routerlib.Session{})
	if _, err := r.Exec(ctx, "CREATE TABLE zero_wait (id int)"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var n int
	if err := r.QueryRow(ctx, "SELECT count(*) FROM zero_wait").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if d := rec.last(t); d.Node != "primary" || d.Reason != routerlib.ReasonSticky {
		t.Errorf("the read went to %s (%s), want the primary (sticky)", d.Node, d.Reason)
	}
	t.Logf("read in %v", time.Since(start))
	// Without a write to wait for, reads still go to the replica.
	if err := r.QueryRow(context.Background(), "SELECT 1").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if d := rec.last(t); d.Node != "replica-1" {
		t.Errorf("a read without a session went to %s, want replica-1", d.Node)
	}
}

// migrateAndCut makes table on the primary through MigrationConn, then has
// the primary terminate that connection's session before Release, so that
// Release cannot read the position there. It fails the test if Release
// recorded a position all the same (the cut did not happen).
func migrateAndCut(t *testing.T, ctx context.Context, topo *routertest.Topology, r *routerlib.Router, table string) {
	t.Helper()
	c, err := r.MigrationConn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, "CREATE TABLE "+table+" (id int)"); err != nil {
		t.Fatal(err)
	}
	var pid int
	if err := c.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	var ended bool
	if err := topo.Primary.QueryRow(ctx, "SELECT pg_terminate_backend($1, 10000)", pid).Scan(&ended); err != nil || !ended {
		t.Fatalf("terminating the migration's session: %v, %v", ended, err)
	}
	before := routerlib.SessionFrom(ctx).LSN()
	c.Release()
	if after := routerlib.SessionFrom(ctx).LSN(); after != before {
		t.Fatalf("Release recorded %s on a terminated session: the test cut nothing", after)
	}
}

// TestReleaseAfterConnectionCut: a migration commits, then its session is
// terminated before Release, which cannot read the position there. The
// session does not forget the migration: its next read learns the
// primary's position on another connection and waits for it, so with the
// replica paused it goes to the primary and sees the new table; through
// the session middleware, the value the response carries is past the
// migration, so the next request's read sees it too.
func TestReleaseAfterConnectionCut(t *testing.T) {
	rec := &recorder{}
	topo, r := pausedReplica(t, "50ms", routerlib.WithTracer(rec))
	s := &routerlib.Session{}
	ctx := routerlib.WithSession(context.Background(), s)
	migrateAndCut(t, ctx, topo, r, "cut_migration")
	var n int
	if err := r.QueryRow(ctx, "SELECT count(*) FROM cut_migration").Scan(&n); err != nil {
		t.Fatalf("a read right after the migration: %v", err)
	}
	if d := rec.last(t); d.Node != "primary" || d.Reason != routerlib.ReasonSticky {
		t.Errorf("the read went to %s (%s), want the primary (sticky)", d.Node, d.Reason)
	}
	if s.LSN() == 0 {
		t.Error("the session still has no position after its read asked the primary")
	}

	// Across requests: the handler migrates and its session is cut; the
	// next request carries the response's value.
	m := sessionMiddleware(t, r, routerlib.SessionConfig{Keys: [][]byte{key1}, Header: "X-Lsn"})
	w := httptest.NewRecorder()
	m.Header(http.HandlerFunc(func(_ http.ResponseWriter, req *http.Request) {
		migrateAndCut(t, req.Context(), topo, r, "cut_migration_http")
	})).ServeHTTP(w, httptest.NewRequest("POST", "/", nil))
	value := w.Result().Header.Get("X-Lsn")
	if value == "" {
		t.Fatal("the response carries no session value after a migration whose position Release could not read")
	}
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("X-Lsn", value)
	var readErr error
	m.Header(http.HandlerFunc(func(_ http.ResponseWriter, req *http.Request) {
		readErr = r.QueryRow(req.Context(), "SELECT count(*) FROM cut_migration_http").Scan(&n)
	})).ServeHTTP(httptest.NewRecorder(), req)
	if readErr != nil {
		t.Fatalf("the next request's read: %v", readErr)
	}
	if d := rec.last(t); d.Node != "primary" {
		t.Errorf("the next request's read went to %s (%s), want the primary", d.Node, d.Reason)
	}
}

// TestDiscardAllKeepsStatementsWorking: DISCARD ALL (what Release's
// documentation suggests after session work) drops every prepared statement
// on the server, pgx's cached ones included. pgx's statement cache still
// names them, so each cached statement failed once with 26000 afterwards:
// on the connection that ran it, and, once it is back in the pool, in any
// later call that gets the connection. The router resets pgx's cache when
// the server says it discarded them, so neither fails. One connection in
// the pool, so every call here gets the same one.
func TestDiscardAllKeepsStatementsWorking(t *testing.T) {
	topo := routertest.Shared(t)
	r := newRouter(t, topo.Artifact(), routerlib.WithPoolConfig(func(_ artifact.Node, cfg *pgxpool.Config) { cfg.MaxConns = 1 }))
	ctx := routerlib.Primary(context.Background())
	const sql = "SELECT $1::int + 1"
	var n int
	if err := r.QueryRow(ctx, sql, 1).Scan(&n); err != nil { // prepared and cached
		t.Fatal(err)
	}
	for _, discard := range []string{"DISCARD ALL", "DEALLOCATE ALL"} {
		// sessionWork acquires the connection, makes sure the statement is
		// cached there, discards, and runs then.
		sessionWork := func(then func(*routerlib.Conn) error) error {
			c, err := r.Acquire(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Release()
			if err := c.QueryRow(ctx, sql, 2).Scan(&n); err != nil {
				t.Fatalf("before %s: %v", discard, err)
			}
			if _, err := c.Exec(ctx, discard); err != nil {
				t.Fatal(err)
			}
			return then(c)
		}
		if err := sessionWork(func(c *routerlib.Conn) error { return c.QueryRow(ctx, sql, 3).Scan(&n) }); err != nil {
			t.Errorf("the cached statement on the connection after %s: %v", discard, err)
		}
		sessionWork(func(*routerlib.Conn) error { return nil })
		if err := r.QueryRow(ctx, sql, 4).Scan(&n); err != nil {
			t.Errorf("the cached statement in the next call after %s and Release: %v", discard, err)
		}
	}
}
