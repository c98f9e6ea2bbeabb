package provider

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// Bursts of statements in three databases, as a role of CONNECTION LIMIT
// 2, each burst starting about when the pools' sessions of the last one
// idle out (poolIdle, poolIdleCheck): a session the health check is
// closing, a session admit closes for a waiting connection and a new
// connection race for the role's places. No connection may be refused
// (53300), none may fail, and no place may be lost (the last burst still
// gets both).
func TestReview10IdleCloseDuringBursts(t *testing.T) {
	testAccPreCheck(t)
	node := routertest.Start(t, routertest.WithStandbys(0)).Primary
	role := "review10_burst"
	dbs := roleOfLimit2In3Databases(t, node, role)
	s := newServer(connSettings{Host: node.Host, Port: int64(node.Port), Database: dbs[0], Username: role,
		SSLMode: "disable", MaxConnections: 4, ConnectTimeout: 5})
	ctx := context.Background()
	refused := func() int { return logLinesWith(t, node, "too many connections") }
	before := refused()
	var failures int
	var mu sync.Mutex
	gaps := []time.Duration{1900, 2200, 2500, 2300, 2600}
	for round, gap := range gaps {
		var wg sync.WaitGroup
		for i := range 6 {
			wg.Go(func() {
				actx, cancel := context.WithTimeout(ctx, 30*time.Second)
				defer cancel()
				p, err := s.Pool(actx, dbs[i%3])
				if err == nil {
					if err = ready(actx, p, 5*time.Second); err == nil {
						_, err = p.Exec(actx, `SELECT pg_sleep(0.05)`)
					}
				}
				if err != nil {
					mu.Lock()
					failures++
					mu.Unlock()
					t.Errorf("round %d, database %s: %v", round, dbs[i%3], err)
				}
			})
		}
		wg.Wait()
		time.Sleep(gap * time.Millisecond)
	}
	got := refused() - before
	t.Logf("%d bursts of 6 statements in 3 databases under CONNECTION LIMIT 2: %d failed, %d connections refused (53300)", len(gaps), failures, got)
	if got != 0 {
		t.Errorf("the server refused %d of the provider's connections (53300)", got)
	}
}
