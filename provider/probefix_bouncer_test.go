package provider

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/diag"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// A publisher behind PgBouncer in transaction pooling mode (1.18: no
// prepared statements across transactions): the probe's checks, many at
// once as a refresh makes them, over several commands. pgx's default
// statement cache prepares each query as a named statement in one
// transaction and runs it in the next, so a check met a server connection
// that had the name already from another client ("prepared statement
// \"stmtcache_…\" already exists", 42P05) or lacked it (26000), and the
// publisher was not checked. The probe's queries are one-off: they now run
// unprepared, in one round trip (QueryExecModeExec).
func TestProbefixProbeThroughPgBouncerTransactionPooling(t *testing.T) {
	testAccPreCheck(t)
	pub := routertest.Start(t, routertest.WithStandbys(0), routertest.WithPgBouncer()).Primary
	execSQL(t, pub, "postgres", `CREATE TABLE probefix_t (id int PRIMARY KEY); CREATE PUBLICATION probefix_pub FOR TABLE probefix_t`)
	execSQL(t, pub, "postgres", `SELECT pg_create_logical_replication_slot('probefix_slot', 'pgoutput')`)
	pw := "canary" + canaryMark + "-probefix-bouncer"
	connection := fmt.Sprintf("host=127.0.0.1 port=%d user=postgres dbname=postgres password='%s'", pub.BouncerPort, pw)
	ctx := context.Background()
	for round := range 4 {
		by := &server{} // one command
		var wg sync.WaitGroup
		var mu sync.Mutex
		var failures []string
		fail := func(what string, err error) {
			mu.Lock()
			defer mu.Unlock()
			failures = append(failures, fmt.Sprintf("%s: %v", what, err))
		}
		for range 6 {
			wg.Go(func() {
				probe := &publisherProbe{connection: connection, by: by}
				missing, _, err := missingPublications(ctx, probe, []string{"probefix_pub"})
				if err != nil || len(missing) > 0 {
					fail("publications", fmt.Errorf("%v (missing %v)", err, missing))
				}
				problem, err := publisherSlotProblem(ctx, probe, "probefix_slot", 0)
				if err != nil || problem != "" {
					fail("slot", fmt.Errorf("%v (%s)", err, problem))
				}
				var diags diag.Diagnostics
				checkPublisherWalLevel(ctx, probe, &diags)
				checkPublisherVersion(ctx, probe, []publisherFeature{{major: 99, why: "probefix"}}, &diags)
				if len(diags) != 1 {
					fail("wal_level and version", fmt.Errorf("want one diagnostic (the version), got %v", diags))
				}
			})
		}
		wg.Wait()
		for _, f := range failures {
			t.Errorf("round %d: %s", round, f)
			if strings.Contains(f, canaryMark) {
				t.Errorf("round %d: the error holds the password", round)
			}
		}
	}
}
