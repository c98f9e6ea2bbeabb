package provider

import (
	"context"
	"sync"
	"testing"
)

// The first pools of a role of CONNECTION LIMIT 2, made at once in three
// databases before any has read the limit, each open their first
// connection: the room was not measured yet, so all three were admitted and
// the server refused the third (53300, too many connections for role) — the
// apply stopped halfway (fix_connection_budget_test.go's "prefer" subtest,
// under load). On the old code every one of 5 rounds failed so.
func TestAccProvider_poolRoomFirstPoolsAtOnce(t *testing.T) {
	server := testAccTopology(t).Primary
	role := "tfacc_room_first"
	dbs := roleOfLimit2In3Databases(t, server, role)
	ctx := context.Background()
	for round := range 5 {
		// A room not measured yet each round (max_connections makes the
		// pools new, not the room).
		processPools.mu.Lock()
		for k := range processPools.rooms {
			delete(processPools.rooms, k)
		}
		processPools.mu.Unlock()
		s := newServer(connSettings{Host: server.Host, Port: int64(server.Port), Database: dbs[0], Username: role,
			SSLMode: "disable", MaxConnections: int64(2 + round)})
		start := make(chan struct{})
		var wg sync.WaitGroup
		errs := make([]error, len(dbs))
		for i, db := range dbs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				p, err := s.Pool(ctx, db)
				if err == nil {
					err = p.Ping(ctx)
				}
				errs[i] = err
			}()
		}
		close(start)
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("round %d: the pool of %s: %v", round+1, dbs[i], err)
			}
		}
		// The next round's pools need the role's places: these close
		// once their sessions have ended on the server.
		processPools.mu.Lock()
		for k, p := range processPools.m {
			if k.maxConns == int32(2+round) {
				p.Close()
				delete(processPools.m, k)
			}
		}
		processPools.mu.Unlock()
	}
}
