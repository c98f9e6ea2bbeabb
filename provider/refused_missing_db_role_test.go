package provider

import (
	"context"
	"testing"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// A connection the server refused during its startup (3D000: a pool kept
// for a database that does not exist yet) freed its place in the role's
// room as soon as pgx returned the error, but PostgreSQL counts its
// backend against the role's CONNECTION LIMIT until that backend exits:
// the next connection of the role was refused with 53300 (too many
// connections for role), 2 of 20 here. Its place is now held until the
// server has closed the socket.
func TestRefusedMissingDatabaseKeepsThePlaceUntilTheBackendExits(t *testing.T) {
	refusedMissingDatabase(t, testAccTopology(t).Primary, "refused_missing", "disable")
}

// Over TLS: the connection pgconn closes is a *tls.Conn (its close_notify
// first), the socket under it the one that waits for the server's end.
func TestRefusedMissingDatabaseOverTLSKeepsThePlace(t *testing.T) {
	testAccPreCheck(t)
	cert, key := selfSignedCertificate(t, serverDir(t))
	topo := routertest.Start(t, routertest.WithStandbys(0), routertest.WithSetting("ssl", "on"),
		routertest.WithSetting("ssl_cert_file", cert), routertest.WithSetting("ssl_key_file", key))
	refusedMissingDatabase(t, topo.Primary, "refused_missing_tls", "require")
}

func refusedMissingDatabase(t *testing.T, server *routertest.Node, role, sslmode string) {
	t.Helper()
	dbs := roleOfLimit2In3Databases(t, server, role)
	execSQL(t, server, "postgres", `ALTER ROLE `+role+` CONNECTION LIMIT 3`)
	s := newServer(connSettings{Host: server.Host, Port: int64(server.Port), Database: dbs[0], Username: role,
		SSLMode: sslmode, MaxConnections: 4, ConnectTimeout: 5})
	ctx := context.Background()
	p0, err := s.Pool(ctx, dbs[0])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeTestPool(p0) })
	// Two of the role's three places held: one left for the missing
	// database's connections, one at a time.
	a, err := p0.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Release()
	b, err := p0.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Release()
	p, err := s.Pool(ctx, role+"_missing")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeTestPool(p) })
	refused := 0
	for i := 0; i < 20; i++ {
		if err := ready(ctx, p, 5*time.Second); !isMissingDatabase(err) {
			refused++
			t.Logf("attempt %d: %v", i, err)
		}
	}
	if refused > 0 {
		t.Errorf("%d of 20 connections to a missing database, the role at 2 of its 3 places, refused otherwise than 3D000; want 0", refused)
	}
}
