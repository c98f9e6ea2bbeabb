package provider

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// A pool kept for a database missing when it was made, sized once the
// database exists (caps), has more handlers at once than its cap: those
// over it wait in admit for a place the others free, never for ever and
// never past the database's CONNECTION LIMIT (53300). Each waiting
// connection is made once a held one is released and closed (admit
// closes the pool's own idle connections), so every handler gets one.
func TestReview7CappedPoolMoreHandlersThanItsCap(t *testing.T) {
	server := testAccTopology(t).Primary
	role := "review7_handoff"
	dbs := roleOfLimit2In3Databases(t, server, role)
	execSQL(t, server, "postgres", `ALTER ROLE `+role+` CONNECTION LIMIT 20`)
	late := role + "_late"
	s := newServer(connSettings{Host: server.Host, Port: int64(server.Port), Database: dbs[0], Username: role,
		SSLMode: "disable", MaxConnections: 6, ConnectTimeout: 5})
	ctx := context.Background()
	p0, err := s.Pool(ctx, dbs[0])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeTestPool(p0) })
	p := keptPoolThenCreated(t, s, server, late, `OWNER `+role+` CONNECTION LIMIT 2`)

	const handlers = 6
	errs := make([]error, handlers)
	var wg sync.WaitGroup
	began := time.Now()
	for i := range handlers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			actx, cancel := context.WithTimeout(ctx, 60*time.Second)
			defer cancel()
			c, err := p.Acquire(actx)
			if err == nil {
				_, err = c.Exec(actx, `SELECT pg_catalog.pg_sleep(0.3)`)
				c.Release()
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	took := time.Since(began)
	t.Logf("%d handlers at once on the pool of %s (CONNECTION LIMIT 2, max_connections 6): %s", handlers, late, took.Round(time.Millisecond))
	for i, err := range errs {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "53300" {
			t.Errorf("handler %d: the server refused a connection to %s past its CONNECTION LIMIT 2: %v", i, late, err)
		} else if err != nil {
			t.Errorf("handler %d on %s: %v", i, late, err)
		}
	}
	if n := p.Stat().TotalConns(); n > 2 {
		t.Errorf("the pool of %s has %d connections after its handlers, want at most its cap 2", late, n)
	}
	room := processPools.roleRoom(roomKeyOfServer(t, s))
	room.mu.Lock()
	limit, made, pending := room.caps[p], room.made[p], room.pending[p]
	room.mu.Unlock()
	if limit != 2 || made != int64(p.Stat().TotalConns()) || pending != 0 {
		t.Errorf("the room's count of the pool of %s after its handlers: cap %d, made %d, pending %d; want cap 2, made %d (its connections), pending 0",
			late, limit, made, pending, p.Stat().TotalConns())
	}
}
