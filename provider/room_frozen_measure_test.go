package provider

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// A server that stops answering between a new pool's first connection and
// the read of the role's limits on it (measure) leaves the role's room
// unmeasured, and the pool is not kept: its first connection failed, as
// one the server never answered does. connectionCap took the read's
// timeout for a role that cannot read its limits: the pool was kept at
// max_connections and the room measured unlimited, so once the server
// answered again the role's pools opened past its CONNECTION LIMIT and
// the server refused the one past it (53300), the apply stopped halfway.
// And the read waited the statement's bound (here 30 s), holding the
// room, where a connection waits connect_timeout.
func TestRoomServerFrozenWhileMeasuredIsNotUnlimited(t *testing.T) {
	role := "room_frozen_measure"
	n, s, dbs := roleServerToFreeze(t, role)
	s.settings.StatementTimeout = "20s"
	ctx := context.Background()
	var pools []*pgxpool.Pool
	t.Cleanup(func() {
		for _, p := range pools {
			closeTestPool(p)
		}
	})
	// The server freezes once the first connection is made, before the
	// limits are read on it.
	freezeOnce(t, &afterFirstAcquire, n, dbs[0])
	began := time.Now()
	p, err := s.Pool(ctx, dbs[0])
	t.Logf("the pool of %s, the server frozen before its limits were read: %s, %v", dbs[0], time.Since(began).Round(time.Millisecond), err)
	if err == nil {
		pools = append(pools, p)
		t.Errorf("the pool of %s was made, its role's limits never read: the server stopped answering", dbs[0])
	}
	// Read within connect_timeout (2 s), then closed within it.
	if took, most := time.Since(began), 6*time.Second; took > most {
		t.Errorf("the pool of %s failed after %s, want at most %s: the read of the limits on a server that stopped answering waited "+
			"the statement's bound (30 s), every connection of the role behind it", dbs[0], took.Round(time.Millisecond), most)
	}
	thaw(t, n)
	// The frozen session ends once its backend reads the close: the
	// pool made next is sized by what the role has then.
	for deadline := time.Now().Add(10 * time.Second); queryValue[int64](t, n, "postgres",
		`SELECT count(*) FROM pg_stat_activity WHERE usename = $1`, role) > 0; {
		if time.Now().After(deadline) {
			t.Fatalf("the role's frozen session had not ended 10s after the server thawed")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if p, err = s.Pool(ctx, dbs[0]); err != nil {
		t.Fatalf("the pool of %s, the server thawed: %v", dbs[0], err)
	}
	pools = append(pools, p)
	// The role's two places, then a third connection, in another
	// database: it waits for a place, the server does not refuse it.
	for i := range 2 {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		c, err := p.Acquire(actx)
		if err != nil {
			t.Fatalf("connection %d of the role's 2: %v", i+1, err)
		}
		defer c.Release()
	}
	wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	q, err := s.Pool(wctx, dbs[1])
	if q != nil {
		pools = append(pools, q)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "53300" || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a third connection of the role, of CONNECTION LIMIT 2, while two are held: want it to wait for a place (context deadline), got %v", err)
	}
}
