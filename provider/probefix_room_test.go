package provider

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// A publisher with little room under max_connections, which the provider
// also manages (publications), as a role that is not a superuser: the
// provider's pool measured the room at its first connection (connectionCap)
// and counts on it, and the subscriptions' probes of that publisher, many
// at once as a refresh makes them, opened publisherPoolConns sessions that
// stayed idle for publisherPoolIdle, places the provider had counted on:
// with 5 places for roles that are not superusers and a pool of 4, the
// provider's fourth connection was refused (53300, "remaining connection
// slots are reserved for roles with the SUPERUSER attribute"). The
// probe's connections now close after their check when the publisher has
// little room (sparing), as for a role's CONNECTION LIMIT.
func TestProbefixProbeLeavesMaxConnectionsToProvider(t *testing.T) {
	testAccPreCheck(t)
	const role = "probefix_manager"
	// The probe as a superuser, and as the provider's own role, which is
	// shown no other role's backend_type in pg_stat_activity: there, with
	// another role's sessions taking most of a larger room, which a count
	// of the sessions whose type it is shown found ample (15 places).
	for _, c := range []struct {
		name, prober   string
		maxConnections int
		othersSessions int
	}{
		{"superuser", "postgres", 8, 0},
		{"own role", role, 8, 0},
		{"own role, other roles' sessions", role, 20, 12},
	} {
		t.Run(c.name, func(t *testing.T) {
			pub := routertest.Start(t, routertest.WithStandbys(0),
				routertest.WithSetting("max_connections", strconv.Itoa(c.maxConnections)),
				routertest.WithSetting("superuser_reserved_connections", "3")).Primary
			execSQL(t, pub, "postgres", `CREATE ROLE `+role+` LOGIN`)
			ctx := context.Background()
			for range c.othersSessions {
				other, err := pgx.Connect(ctx, pub.DSNFor("postgres"))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { other.Close(ctx) })
			}
			prober := c.prober
			provider := newServer(connSettings{Host: "127.0.0.1", Port: int64(pub.Port), Database: "postgres", Username: role, SSLMode: "disable"})
			pool, err := provider.Pool(ctx, "postgres")
			if err != nil {
				t.Fatal(err)
			}
			pw := "canary" + canaryMark + "-probefix-room"
			connection := fmt.Sprintf("host=127.0.0.1 port=%d user=%s dbname=postgres password='%s'", pub.Port, prober, pw)
			// A refresh of many subscriptions to that publisher: their checks at once.
			var wg sync.WaitGroup
			for range 8 {
				wg.Go(func() {
					probe := &publisherProbe{connection: connection, by: provider}
					if _, _, err := missingPublications(ctx, probe, []string{"x"}); err != nil {
						t.Errorf("probe: %v", err)
						if strings.Contains(err.Error(), canaryMark) {
							t.Errorf("the probe's error holds the password: %v", err)
						}
					}
				})
			}
			wg.Wait()
			// The provider, at its pool's size: four statements at once.
			errs := acquireAtOnce(ctx, pool, 4)
			for _, err := range errs {
				if err != nil {
					t.Errorf("a provider connection, within the room max_connections left it, failed after probes of the publisher: %v", err)
				}
			}
		})
	}
}

// acquireAtOnce takes n connections of pool at once, as n handlers of an
// apply do, holding each until all have been tried, and returns what each
// attempt got; an attempt waits at most 20 s.
func acquireAtOnce(ctx context.Context, pool *pgxpool.Pool, n int) []error {
	var wg sync.WaitGroup
	acquired := make(chan error, n)
	hold := make(chan struct{})
	for range n {
		wg.Go(func() {
			actx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			c, err := pool.Acquire(actx)
			acquired <- err
			if err == nil {
				<-hold
				c.Release()
			}
		})
	}
	errs := make([]error, n)
	for i := range errs {
		errs[i] = <-acquired
	}
	close(hold)
	wg.Wait()
	return errs
}
