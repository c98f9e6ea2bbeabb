package provider

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/pgsql"
)

// One role of CONNECTION LIMIT 3 on one server, the provider's own (its
// pools) and the one a subscription's conninfo names (the publisher
// probe's pool): each plan probes the publisher, three subscriptions at
// once, while three handlers run statements. The provider's pools counted
// their connections under the role's limit (roleRoom) and the probe's
// pool did not, so together they opened more than 3, and the server
// refused the probe (53300, "too many connections for role"), whose
// failure answered every probe of that command: "Publisher Not Checked".
// The probe's connections are now admitted through the provider's room
// for that server and role. On the old code 43 of 45 probes and 1 of 45
// statements failed over three runs on PostgreSQL 17, 13 of 15 probes and
// 1 of 15 statements on 15: the provider's idle connections held the
// role's places, which the probe's connections did not wait for.
func TestProberoomProbeSharesTheRoleRoom(t *testing.T) {
	n := testAccTopology(t).Primary
	const role = "proberoom_shared"
	s, dbs := roleServer(t, n, role, 3, 5)
	pool := testPool(t, s, dbs[0])
	connection := fmt.Sprintf("host=%s port=%d user=%s dbname=%s", n.Host, n.Port, role, dbs[0])
	probeBesideStatements(t, pool, connection, "the role's CONNECTION LIMIT 3")
}

// probeBesideStatements runs, five rounds, three probes of the publisher
// that connection names and three statements on pool at once, and fails
// t when any fails, the limit they share named by shared.
func probeBesideStatements(t *testing.T, pool *pgxpool.Pool, connection, shared string) {
	t.Helper()
	ctx := context.Background()
	const rounds, probes, statements = 5, 3, 3
	var probeFailures, statementFailures int
	for round := range rounds {
		// A later plan is a new provider instance: an earlier round's
		// failure does not answer for this one's probes.
		by := &server{}
		var wg sync.WaitGroup
		errs := make(chan error, probes)
		for range probes {
			wg.Go(func() {
				probe := &publisherProbe{connection: connection, by: by}
				_, _, err := missingPublications(ctx, probe, []string{"x"})
				errs <- err
			})
		}
		var got []<-chan statementResult
		for range statements {
			got = append(got, selectOneAside(ctx, pool, 20*time.Second))
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				probeFailures++
				t.Logf("round %d: a probe of the publisher: %v", round, err)
			}
		}
		for _, g := range got {
			if r := <-g; r.err != nil {
				statementFailures++
				t.Logf("round %d: a provider statement: %v", round, r.err)
			}
		}
	}
	if probeFailures > 0 || statementFailures > 0 {
		t.Errorf("with %s shared by the provider and the publisher probe, %d of %d probes and %d of %d "+
			"provider statements failed, want none", shared, probeFailures, rounds*probes, statementFailures, rounds*statements)
	}
}

// The provider's own statements holding every place of the role that the
// probe connects as: the probe's connection waits for one, within the
// probe's bound, and the probe fails saying so, not that the publisher did
// not answer (its caller gives up when the wait does). On the old code the
// server refused the probe (53300).
//
// "hosts in the other order" (review14): the provider's host list and a
// subscription's name the same servers in another order
// (host=127.0.0.1,localhost and host=localhost,127.0.0.1), both reaching
// the one server that listens there: the room was keyed by the list in its
// order, so the provider's connections and the probe's were counted in two
// rooms and the server refused the probe (53300). The key is now the set
// of servers.
func TestProberoomProbeWaitingForAPlaceNamesTheLimit(t *testing.T) {
	n := testAccTopology(t).Primary
	for _, c := range []struct {
		name, role            string
		providerHosts, probed string // "" for the node's own host
	}{
		{"one host", "proberoom_full", "", ""},
		{"hosts in the other order", "review14_order", "127.0.0.1,localhost", "localhost,127.0.0.1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.probed != "" && n.Host != "127.0.0.1" && n.Host != "localhost" {
				t.Skipf("the primary listens on %s, not on 127.0.0.1 and localhost", n.Host)
			}
			s, dbs := roleServer(t, n, c.role, 2, 5)
			if c.providerHosts != "" {
				s.settings.Host = c.providerHosts
			}
			pool := testPool(t, s, dbs[0])
			ctx := context.Background()
			holdConns(t, pool, 2)
			host := n.Host
			if c.probed != "" {
				host = c.probed
			}
			connection := fmt.Sprintf("host=%s port=%d user=%s dbname=%s", host, n.Port, c.role, dbs[1])
			_, _, err := publisherPools.reach(ctx, &server{}, connection)
			if err == nil {
				t.Fatal("the probe connected while the provider held both places of its role's CONNECTION LIMIT 2")
			}
			if err == errPublisherSilent || !strings.Contains(err.Error(), "the CONNECTION LIMIT of the provider's role "+pgsql.Ident(c.role)) {
				t.Errorf("the probe, waiting for a place the provider's statements held, failed with %q; want the role's CONNECTION LIMIT named", err)
			}
		})
	}
}
