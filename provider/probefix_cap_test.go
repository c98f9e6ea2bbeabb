package provider

import (
	"context"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// Repro for the lead (connectionCap is client.go's, roomfix's): a role
// without pg_read_all_stats is shown no other role's backend_type in
// pg_stat_activity (null), so connectionCap counts only its own role's
// client backends against max_connections, sizes the pool past the room
// the other roles' sessions leave, and a connection of the pool is
// refused (53300) although the provider meant to open no more than the
// limits leave.
func TestProbefixConnectionCapCountsOtherRolesSessions(t *testing.T) {
	if os.Getenv("PROBEFIX_CAPREPRO") == "" {
		t.Skip("repro of a client.go fault, for the lead: set PROBEFIX_CAPREPRO=1")
	}
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
