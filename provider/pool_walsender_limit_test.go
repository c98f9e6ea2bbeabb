package provider

import (
	"context"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// A pool counts the sessions of its role and database as the server counts
// them for CONNECTION LIMIT: client backends only. A WAL sender of the role
// (a standby's physical replication connection, or a logical one in the
// database) neither counts against those limits nor is refused by them,
// on the releases tested (15.18, 16.14, 17.10, 18.4: PostgreSQL counts and
// checks regular backends only). So with one held, a role of CONNECTION
// LIMIT 2 gets a pool of 2 whose connections the server accepts, and a WAL
// sender still connects while the pool holds both. Counting WAL senders
// would make the pool smaller than the server allows; a server that
// counted them would refuse the pool's second connection here (53300).
func TestAccProvider_poolWalSendersDoNotCount(t *testing.T) {
	server := testAccTopology(t).Primary
	for _, tc := range []struct {
		name        string
		replication string // the WAL sender's replication parameter
		roleLimit   int    // -1: none
		dbLimit     int    // -1: none
	}{
		{"physical_role", "true", 2, -1},
		{"logical_role", "database", 2, -1},
		{"logical_database", "database", -1, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			role := "tfacc_walsender_" + tc.name
			db := role + "_db"
			execSQL(t, server, "postgres", fmt.Sprintf(`CREATE ROLE %s LOGIN REPLICATION CONNECTION LIMIT %d`, role, tc.roleLimit))
			execSQL(t, server, "postgres", fmt.Sprintf(`CREATE DATABASE %s OWNER %s CONNECTION LIMIT %d`, db, role, tc.dbLimit))
			t.Cleanup(func() {
				execSQL(t, server, "postgres", `DROP DATABASE IF EXISTS `+db+` WITH (FORCE)`)
				execSQL(t, server, "postgres", `DROP ROLE IF EXISTS `+role)
			})
			walSender := func() (*pgconn.PgConn, error) {
				return pgconn.Connect(ctx, fmt.Sprintf("host=%s port=%d user=%s dbname=%s sslmode=disable replication=%s",
					server.Host, server.Port, role, db, tc.replication))
			}
			ws, err := walSender()
			if err != nil {
				t.Fatalf("replication connection: %v", err)
			}
			defer ws.Close(ctx)
			if got := queryValue[string](t, server, "postgres", `SELECT backend_type FROM pg_stat_activity WHERE pid = $1`, int32(ws.PID())); got != "walsender" {
				t.Fatalf("the replication connection's backend_type is %q, want walsender", got)
			}
			s := newServer(connSettings{Host: server.Host, Port: int64(server.Port), Database: db, Username: role,
				SSLMode: "disable", MaxConnections: 3})
			p, err := s.Pool(ctx, "")
			if err != nil {
				t.Fatal(err)
			}
			defer closeTestPool(p)
			if got := p.Config().MaxConns; got != 2 {
				t.Errorf("the pool holds up to %d connections, want 2: the limit, which the WAL sender does not count against", got)
			}
			var held []*pgxpool.Conn
			defer func() {
				for _, c := range held {
					c.Release()
				}
			}()
			for i := range p.Config().MaxConns {
				c, err := p.Acquire(ctx)
				if err != nil {
					t.Fatalf("connection %d of the pool's %d, with a WAL sender of the role: %v", i+1, p.Config().MaxConns, err)
				}
				held = append(held, c)
			}
			ws2, err := walSender()
			if err != nil {
				t.Fatalf("a replication connection while the pool holds the limit's connections: %v", err)
			}
			ws2.Close(ctx)
		})
	}
}
