package provider

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// roleServer is the provider's server on n, logged in as role: a role of
// CONNECTION LIMIT limit that owns three databases (roleOfLimit2In3Databases,
// whose names it returns; the first is the provider's database), at most 4
// connections a pool and connect_timeout connectTimeout seconds.
func roleServer(t *testing.T, n *routertest.Node, role string, limit int, connectTimeout int64) (*server, []string) {
	t.Helper()
	dbs := roleOfLimit2In3Databases(t, n, role)
	execSQL(t, n, "postgres", `ALTER ROLE `+role+` CONNECTION LIMIT `+strconv.Itoa(limit))
	return newServer(connSettings{Host: n.Host, Port: int64(n.Port), Database: dbs[0], Username: role,
		SSLMode: "disable", MaxConnections: 4, ConnectTimeout: connectTimeout}), dbs
}

// roleServerToFreeze is roleServer, of CONNECTION LIMIT 2 and
// connect_timeout 2 s, on a primary of its own that the test may freeze
// (the shared topology's answers the other tests), which it returns.
func roleServerToFreeze(t *testing.T, role string) (*routertest.Node, *server, []string) {
	t.Helper()
	testAccPreCheck(t)
	n := routertest.Start(t, routertest.WithStandbys(0)).Primary
	s, dbs := roleServer(t, n, role, 2, 2)
	return n, s, dbs
}

// testPool is s's pool of database, closed at the test's end.
func testPool(t *testing.T, s *server, database string) *pgxpool.Pool {
	t.Helper()
	p, err := s.Pool(context.Background(), database)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeTestPool(p) })
	return p
}

// holdConns acquires n connections of pool, released at the test's end:
// the provider's statements holding their places.
func holdConns(t *testing.T, pool *pgxpool.Pool, n int) {
	t.Helper()
	for range n {
		c, err := pool.Acquire(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Release)
	}
}

// keptPoolThenCreated is s's pool of database late, made while late did
// not exist, so kept (3D000), and then late created on n: CREATE DATABASE
// late, then create (its options). Both are gone at the test's end.
func keptPoolThenCreated(t *testing.T, s *server, n *routertest.Node, late, create string) *pgxpool.Pool {
	t.Helper()
	t.Cleanup(func() { execSQL(t, n, "postgres", `DROP DATABASE IF EXISTS `+late+` WITH (FORCE)`) })
	ctx := context.Background()
	p, err := s.Pool(ctx, late)
	if err != nil {
		t.Fatalf("the pool of %s, not created yet: %v", late, err)
	}
	t.Cleanup(func() { closeTestPool(p) })
	if err := ready(ctx, p, 5*time.Second); !isMissingDatabase(err) {
		t.Fatalf("the pool of %s, not created yet: want the database missing (3D000), got %v", late, err)
	}
	execSQL(t, n, "postgres", `CREATE DATABASE `+late+` `+create)
	return p
}

// measuredThenKept makes the two pools of s's role (roleServer) on n that
// a connection waiting for a database's one place needs: p0, of the
// provider's database, made first so that the role's room is measured on
// it; then p, of late (the role's name and _late), kept while late was
// missing, then created of CONNECTION LIMIT 1 (keptPoolThenCreated).
func measuredThenKept(t *testing.T, s *server, n *routertest.Node) (p0, p *pgxpool.Pool, late string) {
	t.Helper()
	role := s.settings.Username
	late = role + "_late"
	p0 = testPool(t, s, s.settings.Database)
	// Kept before the caller holds more of the role's places: its
	// connections to the missing database have places to spare (a refused
	// one's backend is counted a while after its refusal).
	p = keptPoolThenCreated(t, s, n, late, `OWNER `+role+` CONNECTION LIMIT 1`)
	return p0, p, late
}

// statementResult is how a statement run aside (selectOneAside) ended, and
// how long its connection took to come.
type statementResult struct {
	err      error
	acquired time.Duration
}

// selectOneAside runs SELECT 1 on a connection of p, as another handler
// would, while the caller goes on: the connection acquired within bound,
// and released once the statement has run. The result comes once it has.
func selectOneAside(ctx context.Context, p *pgxpool.Pool, bound time.Duration) <-chan statementResult {
	got := make(chan statementResult, 1)
	began := time.Now()
	go func() {
		actx, cancel := context.WithTimeout(ctx, bound)
		defer cancel()
		c, err := p.Acquire(actx)
		r := statementResult{acquired: time.Since(began)}
		if err == nil {
			_, err = c.Exec(actx, `SELECT 1`)
			c.Release()
		}
		r.err = err
		got <- r
	}()
	return got
}

// freezeOnce freezes n the first time hook (afterFirstAcquire,
// beforeLimitsRead) runs for database. At the test's end the hook is unset
// and n thawed.
func freezeOnce(t *testing.T, hook *atomic.Pointer[func(database string)], n *routertest.Node, database string) {
	var froze atomic.Bool
	freeze := func(d string) {
		if d == database && froze.CompareAndSwap(false, true) {
			if err := n.Freeze(); err != nil {
				t.Error(err)
			}
		}
	}
	hook.Store(&freeze)
	t.Cleanup(func() { hook.Store(nil) })
	t.Cleanup(func() { _ = n.Thaw() })
}

// lockCatalogFor makes n slow to start sessions for d: a connection of its
// own locks pg_database (a backend's startup reads it) and rolls back after
// d. It returns when the lock is held, with that time; the connection is
// closed at the test's end.
func lockCatalogFor(t *testing.T, n *routertest.Node, d time.Duration) time.Time {
	t.Helper()
	ctx := context.Background()
	lock, err := n.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lock.Close(ctx) })
	if _, err := lock.Exec(ctx, `BEGIN; LOCK TABLE pg_catalog.pg_database IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	unlock := time.AfterFunc(d, func() { _, _ = lock.Exec(ctx, `ROLLBACK`) })
	t.Cleanup(func() { unlock.Stop() })
	return began
}

// roomKeyOfServer is the roomKey of s's pools.
func roomKeyOfServer(t *testing.T, s *server) roomKey {
	t.Helper()
	cfg, err := s.connConfig("")
	if err != nil {
		t.Fatal(err)
	}
	return roomKeyOf(cfg)
}
