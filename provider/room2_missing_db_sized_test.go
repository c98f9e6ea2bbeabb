package provider

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// A pool kept for a database missing when it was made (3D000) could not be
// sized by newPool, which reads the limits on the pool's first connection:
// it stayed at max_connections. Once the database is created, WITH
// CONNECTION LIMIT 1 here, its first connection that succeeds reads the
// limits and the pool opens no more connections than they leave: a second
// connection waits for the first one's release, where the server refused
// it (53300, too many connections for database) and the handler failed.
func TestRoom2MissingDatabaseCreatedLaterSizesThePool(t *testing.T) {
	server := testAccTopology(t).Primary
	role := "room2_late_db"
	dbs := roleOfLimit2In3Databases(t, server, role)
	execSQL(t, server, "postgres", `ALTER ROLE `+role+` CONNECTION LIMIT 10`)
	late := role + "_late"
	s := newServer(connSettings{Host: server.Host, Port: int64(server.Port), Database: dbs[0], Username: role,
		SSLMode: "disable", MaxConnections: 4, ConnectTimeout: 5})
	ctx := context.Background()
	// The provider's own database first: the role's room is measured.
	p0, err := s.Pool(ctx, dbs[0])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeTestPool(p0) })
	p := keptPoolThenCreated(t, s, server, late, `OWNER `+role+` CONNECTION LIMIT 1`)

	c1, err := p.Acquire(ctx)
	if err != nil {
		t.Fatalf("the first connection to %s once created: %v", late, err)
	}
	// A second handler's connection while the first is held: it waits
	// for the database's one place.
	const held = time.Second
	got := make(chan error, 1)
	began := time.Now()
	var took time.Duration
	go func() {
		actx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		c2, err := p.Acquire(actx)
		took = time.Since(began)
		if err == nil {
			_, err = c2.Exec(actx, `SELECT 1`)
			c2.Release()
		}
		got <- err
	}()
	time.Sleep(held)
	// The role's other pool keeps its idle connection: the room has
	// places, only the pool's cap holds the second connection back.
	if n := p0.Stat().IdleConns(); n != 1 {
		t.Errorf("the pool of %s has %d idle connections while a connection to %s waited for its database's place, want 1: "+
			"the wait closed the idle connections of the role's other pools, where the role had places", dbs[0], n, late)
	}
	c1.Release()
	err = <-got
	t.Logf("a second connection to %s (CONNECTION LIMIT 1, pool of max_connections 4) while the first was held %s: %s, %v",
		late, held, took.Round(time.Millisecond), err)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "53300" {
		t.Fatalf("the server refused a second connection to %s, of CONNECTION LIMIT 1: the pool kept for it while it was missing "+
			"was never sized by its limits: %v", late, err)
	}
	if err != nil {
		t.Fatalf("a second connection to %s, once the first was released: %v", late, err)
	}
	if took < held {
		t.Errorf("a second connection to %s was made after %s, while the first was held (%s): past its CONNECTION LIMIT 1", late, took, held)
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
