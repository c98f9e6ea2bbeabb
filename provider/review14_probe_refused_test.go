package provider

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// A probe connection the publisher refuses during its startup (3D000: the
// subscription's conninfo names a database that does not exist) freed its
// place in the role's room as soon as pgx returned the error, while
// PostgreSQL counts that backend against the role's CONNECTION LIMIT
// until it exits: the provider's next connection of the role, admitted
// into the freed place, was refused (53300, too many connections for
// role). The provider's own connections hold such a place until the
// server has closed the socket (startingConn); the probe's now do too.
func TestReview14ProbeRefusedAtStartupKeepsThePlaceUntilTheBackendExits(t *testing.T) {
	n := testAccTopology(t).Primary
	const role = "review14_refused"
	s, dbs := roleServer(t, n, role, 3, 5)
	p0 := testPool(t, s, dbs[0])
	room := processPools.roleRoom(roomKeyOf(p0.Config().ConnConfig))
	ctx := context.Background()
	// Two of the role's three places held by the provider: one left, for
	// the probe's connection, then the provider's.
	for range 2 {
		c, err := p0.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Release()
	}
	connection := fmt.Sprintf("host=%s port=%d user=%s dbname=%s", n.Host, n.Port, role, role+"_missing")
	const rounds = 30
	refused := 0
	for i := range rounds {
		// A new provider instance each round: a failed probe answers the
		// probes of its own instance only.
		if _, _, err := publisherPools.reach(ctx, &server{}, connection); !isMissingDatabase(err) {
			t.Fatalf("round %d: the probe of a missing database: want 3D000, got %v", i, err)
		}
		c, err := p0.Acquire(ctx)
		if err != nil {
			refused++
			t.Logf("round %d: the provider's connection after the probe's: %v", i, err)
			continue
		}
		// Its session ended before the next round's probe.
		room.closeHeld(p0, c.Hijack(), 5*time.Second)
	}
	if refused > 0 {
		t.Errorf("%d of %d provider connections, each right after a probe connection refused with 3D000, the role at 2 of its "+
			"CONNECTION LIMIT 3, failed; want 0", refused, rounds)
	}
}
