package provider

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// A database of CONNECTION LIMIT 2 that two roles' pools share (dbRoom),
// its room measured by one role's first connection while the other role's
// connection is made: that connection's session is not among those the
// server counted, but it is among the room's held places by the time the
// room is set from the count, and was taken for a place the count left
// over. The room came out one place larger than the limit (3), the
// database's third session was admitted, and the server refused it (53300,
// "too many connections for database"). Only the sessions held through the
// whole read are taken from the count now: the third connection waits for
// a place.
func TestSubreviewDatabaseRoomMeasuredWhileAnotherRoleConnects(t *testing.T) {
	// A primary of its own without autovacuum: a worker in the database
	// while a room is measured takes a place of the limit (the server
	// counts it before 18), and the test's two places would be one.
	testAccPreCheck(t)
	n := routertest.Start(t, routertest.WithStandbys(0), routertest.WithSetting("autovacuum", "off")).Primary
	const role, other = "subreview_dbrace", "subreview_dbrace_other"
	_, dbs := roleServer(t, n, role, -1, 5)
	execSQL(t, n, "postgres", `ALTER DATABASE `+dbs[0]+` CONNECTION LIMIT 2`)
	execSQL(t, n, "postgres", `CREATE ROLE `+other+` LOGIN`)
	t.Cleanup(func() { execSQL(t, n, "postgres", `DROP ROLE IF EXISTS `+other) })
	settings := func(user string) connSettings {
		// MaxConnections 2: the database's limit sizes the pool no
		// smaller, so newPool keeps its first connection and does not
		// measure again on another.
		return connSettings{Host: n.Host, Port: int64(n.Port), Database: dbs[0], Username: user, SSLMode: "disable", MaxConnections: 2, ConnectTimeout: 5}
	}
	ctx := context.Background()
	sOther := newServer(settings(other))
	pOther := testPool(t, sOther, dbs[0])
	// The other role's pool measured the database's room and holds no
	// session.
	c, err := pOther.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	processPools.roleRoom(roomKeyOfServer(t, sOther)).closeHeld(pOther, c.Hijack(), 5*time.Second)

	var held atomic.Pointer[pgxpool.Conn]
	var fired atomic.Bool
	hook := func(database string) {
		if database != dbs[0] || !fired.CompareAndSwap(false, true) {
			return
		}
		actx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		c, err := pOther.Acquire(actx)
		if err != nil {
			t.Errorf("the other role's connection made while the room was measured: %v", err)
			return
		}
		held.Store(c)
	}
	afterLimitsRead.Store(&hook)
	t.Cleanup(func() { afterLimitsRead.Store(nil) })
	pool := testPool(t, newServer(settings(role)), dbs[0])
	afterLimitsRead.Store(nil)
	if !fired.Load() || held.Load() == nil {
		t.Fatal("the other role's connection was not made while the role's first connection measured the database's room")
	}
	defer held.Load().Release()
	holdConns(t, pool, 1)

	// Both places of the limit are held: a third connection waits.
	actx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	c, err = pOther.Acquire(actx)
	if err == nil {
		c.Release()
		t.Fatal("a third connection was made to a database of CONNECTION LIMIT 2 while two were held")
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a third connection to a database of CONNECTION LIMIT 2, both places held: got %v, want it to wait for a place (context deadline exceeded)", err)
	}
	logSessionsOnFailure(t, n, dbs[0])
}
