package provider

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// A role without pg_read_all_stats is shown no other role's backend_type
// in pg_stat_activity (null): connectionCap counted only its own role's
// client backends against max_connections, sized the pool past the room
// the other roles' sessions leave, and a connection of the pool was
// refused (53300) although the provider meant to open no more than the
// limits leave.
func TestProbefixConnectionCapCountsOtherRolesSessions(t *testing.T) {
	testAccPreCheck(t)
	pub := routertest.Start(t, routertest.WithStandbys(0),
		routertest.WithSetting("max_connections", "8"), routertest.WithSetting("superuser_reserved_connections", "3")).Primary
	const role = "probefix_cap"
	execSQL(t, pub, "postgres", `CREATE ROLE `+role+` LOGIN`)
	ctx := context.Background()
	// Another role's sessions: 3 of the 5 places for roles that are not
	// superusers.
	for range 3 {
		c, err := pgx.Connect(ctx, pub.DSNFor("postgres"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close(ctx) })
	}
	provider := newServer(connSettings{Host: "127.0.0.1", Port: int64(pub.Port), Database: "postgres", Username: role, SSLMode: "disable"})
	pool, err := provider.Pool(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("pool size %d; room for roles that are not superusers: 2", pool.Config().MaxConns)
	for _, err := range acquireAtOnce(ctx, pool, int(pool.Config().MaxConns)) {
		if err != nil {
			t.Errorf("a connection within the pool's size, which the provider sized to the room it measured, was refused: %v", err)
		}
	}
}

// connectionCap reads the same limits for a role without pg_read_all_stats,
// shown null backend_type on other roles' rows, as for one with it, on a
// publisher with another role's WAL senders (a standby's physical one, a
// subscription's logical one in the database) and on a subscriber with
// another role's apply worker in the database: counting every null row
// that has a role and a database took the logical WAL sender for a client
// backend of the database, and the apply worker for one of the subscriber's
// database, and made the pool one smaller than the server allows.
func TestRoomConnectionCapSameWithoutReadAllStats(t *testing.T) {
	testAccPreCheck(t)
	const db = "ownpool_cap"
	pub := routertest.Start(t, routertest.WithStandbys(1)).Primary
	sub := routertest.Start(t, routertest.WithStandbys(0)).Primary
	for _, n := range []*routertest.Node{pub, sub} {
		execSQL(t, n, "postgres", "CREATE DATABASE "+db)
		execSQL(t, n, db, "CREATE TABLE t1 (id int PRIMARY KEY)")
		execSQL(t, n, "postgres", "CREATE ROLE ownpool_viewer LOGIN")
		execSQL(t, n, "postgres", "CREATE ROLE ownpool_stats LOGIN IN ROLE pg_read_all_stats")
	}
	execSQL(t, pub, db, "CREATE PUBLICATION ownpool_pub FOR TABLE t1")
	execSQL(t, sub, db, fmt.Sprintf("CREATE SUBSCRIPTION ownpool_sub CONNECTION 'host=%s port=%d dbname=%s user=postgres' PUBLICATION ownpool_pub",
		pub.Host, pub.Port, db))
	t.Cleanup(func() { execSQL(t, sub, db, "DROP SUBSCRIPTION ownpool_sub") })
	// The apply worker streaming, its table synced (no table sync worker
	// comes and goes while the limits are read).
	for deadline := time.Now().Add(30 * time.Second); ; {
		ready := queryValue[bool](t, sub, db, `SELECT EXISTS (SELECT FROM pg_stat_subscription WHERE relid IS NULL AND pid IS NOT NULL)
   AND NOT EXISTS (SELECT FROM pg_subscription_rel WHERE srsubstate <> 'r')
   AND (SELECT count(*) FROM pg_stat_subscription WHERE pid IS NOT NULL) = 1`) &&
			queryValue[int64](t, pub, "postgres", `SELECT count(*) FROM pg_stat_replication`) == 2
		if ready {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the subscription did not start streaming with its table synced within 30 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	ctx := context.Background()
	for _, n := range []*routertest.Node{pub, sub} {
		name := map[*routertest.Node]string{pub: "the publisher", sub: "the subscriber"}[n]
		connect := func(role string) *pgx.Conn {
			c, err := pgx.Connect(ctx, fmt.Sprintf("host=%s port=%d dbname=%s user=%s sslmode=disable", n.Host, n.Port, db, role))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close(ctx) })
			return c
		}
		// Both connected before either reads: each counts the other.
		viewer, stats := connect("ownpool_viewer"), connect("ownpool_stats")
		var hidden int64
		if err := viewer.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE backend_type IS NULL AND usesysid IS NOT NULL AND datid IS NOT NULL`).Scan(&hidden); err != nil {
			t.Fatal(err)
		}
		// ownpool_stats's session, and the logical WAL sender or the apply
		// worker.
		if hidden < 2 {
			t.Fatalf("on %s, a role without pg_read_all_stats was shown the type of all but %d sessions of a role and a database, want 2", name, hidden)
		}
		for _, dbLimit := range []int{-1, 10} {
			execSQL(t, n, "postgres", fmt.Sprintf("ALTER DATABASE %s CONNECTION LIMIT %d", db, dbLimit))
			v, err := connectionCap(ctx, viewer)
			if err != nil {
				t.Fatal(err)
			}
			st, err := connectionCap(ctx, stats)
			if err != nil {
				t.Fatal(err)
			}
			vLimit, vBy, sLimit, sBy := v.cap, v.by, st.cap, st.by
			t.Logf("%s, database CONNECTION LIMIT %d: %d connections (limit %d) without pg_read_all_stats (%d sessions shown without a type), %d (limit %d) with it",
				name, dbLimit, vLimit, vBy, hidden, sLimit, sBy)
			// Never more room than there is. Less by a few is allowed:
			// an autovacuum worker (at most autovacuum_max_workers, 3)
			// that starts between the two reads is counted by the role
			// that cannot see its type, and not by the one that can.
			if vLimit > sLimit || sLimit-vLimit > 3 || vBy != sBy {
				t.Errorf("on %s, database CONNECTION LIMIT %d: connectionCap read %d connections (limit %d) for a role without pg_read_all_stats, %d (limit %d) for one with it",
					name, dbLimit, vLimit, vBy, sLimit, sBy)
			}
			// The places under max_connections, which the publisher
			// probe reads to spare its sessions (spare), likewise.
			if v.serverFree > st.serverFree || st.serverFree-v.serverFree > 3 || v.held != st.held {
				t.Errorf("on %s, database CONNECTION LIMIT %d: connectionCap read %d places under max_connections (limited: %t) for a role without "+
					"pg_read_all_stats, %d (limited: %t) for one with it", name, dbLimit, v.serverFree, v.held, st.serverFree, st.held)
			}
		}
	}
}
