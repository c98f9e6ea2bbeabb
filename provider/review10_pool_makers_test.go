package provider

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// A caller whose context is already cancelled makes no pool and leaves the
// role's room as it found it; callers of many deadlines asking at once for
// the pool of one database, the server slow to start sessions, end with
// one pool, the one every later caller gets, counted once in the room, and
// at most the role's CONNECTION LIMIT of sessions.
func TestReview10PoolMakersOfManyDeadlines(t *testing.T) {
	testAccPreCheck(t)
	node := routertest.Start(t, routertest.WithStandbys(0)).Primary
	role := "review10_makers"
	dbs := roleOfLimit2In3Databases(t, node, role)
	s := newServer(connSettings{Host: node.Host, Port: int64(node.Port), Database: dbs[0], Username: role,
		SSLMode: "disable", MaxConnections: 4, ConnectTimeout: 5})
	ctx := context.Background()
	room := processPools.roleRoom(roomKeyOfServer(t, s))
	state := func() (pools, firsts int, firstOut bool, held, pending int64, failed error) {
		room.mu.Lock()
		defer room.mu.Unlock()
		return len(room.pools), len(room.firsts), room.firstOut != nil, room.held, room.admitted(), room.failed
	}

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Pool(cancelled, dbs[0]); !errors.Is(err, context.Canceled) {
		t.Errorf("a pool asked with a cancelled context: %v, want context.Canceled", err)
	}
	// The pool is closed behind the caller's back (newPool), at once here:
	// it made no connection.
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if pools, _, _, _, _, _ := state(); pools == 0 {
			break
		}
	}
	if pools, firsts, out, held, pending, failed := state(); pools+firsts+int(held+pending) != 0 || out || failed != nil {
		t.Errorf("after a cancelled caller: %d pools, %d firsts, firstOut %v, failed %v, %d held, %d pending; want none", pools, firsts, out, failed, held, pending)
	}

	lockCatalogFor(t, node, time.Second)
	var (
		mu  sync.Mutex
		got = map[*pgxpool.Pool]int{}
		wg  sync.WaitGroup
	)
	for i := range 16 {
		wg.Go(func() {
			time.Sleep(time.Duration(i*40) * time.Millisecond)
			actx, cancel := context.WithTimeout(ctx, time.Duration(50+i*60)*time.Millisecond)
			if i%4 == 3 {
				actx, cancel = context.WithTimeout(ctx, 20*time.Second)
			}
			defer cancel()
			// A Terraform handler's own statements (PoolOrDiag).
			p, err := s.Pool(actx, dbs[0])
			if err == nil {
				err = ready(actx, p, 5*time.Second)
			}
			if err == nil {
				mu.Lock()
				got[p]++
				mu.Unlock()
			} else if i%4 == 3 {
				t.Errorf("caller %d, its context not done: %v", i, err)
			}
		})
	}
	wg.Wait()
	p, err := s.Pool(ctx, dbs[0])
	if err != nil {
		t.Fatal(err)
	}
	got[p]++
	if len(got) != 1 {
		t.Errorf("callers of one database's pool got %d pools, want 1", len(got))
	}
	if pools, firsts, out, _, _, failed := state(); pools != 1 || firsts != 0 || out || failed != nil {
		t.Errorf("the room holds %d pools (want 1), %d firsts, firstOut %v, failed %v", pools, firsts, out, failed)
	}
	for _, err := range acquireAtOnce(ctx, p, 2) {
		if err != nil {
			t.Errorf("the pool's connections, within the role's CONNECTION LIMIT: %v", err)
		}
	}
	if n := queryValue[int64](t, node, "postgres", `SELECT count(*) FROM pg_stat_activity WHERE usename = $1`, role); n > 2 {
		t.Errorf("the role has %d sessions, past its CONNECTION LIMIT 2", n)
	}
}
