package provider

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// A handler cancelled (Terraform's StopProvider, Ctrl-C) while the first
// connection of its new pool waits in admit for a place under the role's
// CONNECTION LIMIT returns at once, and leaves the place to the next
// connection. admit ignored the context: pgxpool returned the cancelled
// Acquire, and newPool's Close of the pool waited for its connection
// still being made, in admit, until the place was freed (here a 6 s
// statement's) or roleRoomWait (30 min with statement_timeout off).
func TestRoomCancelledWhileWaitingForAPlace(t *testing.T) {
	server := testAccTopology(t).Primary
	role := "room_cancel_admit"
	s, dbs := roleServer(t, server, role, 1, 5)
	ctx := context.Background()
	var pools []*pgxpool.Pool
	t.Cleanup(func() {
		for _, p := range pools {
			closeTestPool(p)
		}
	})
	p := testPool(t, s, dbs[0])
	// The role's one place, held by a statement.
	c, err := p.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const statement = 6 * time.Second
	done := make(chan error, 1)
	go func() {
		_, err := c.Exec(ctx, `SELECT pg_sleep(6)`)
		c.Release()
		done <- err
	}()
	time.Sleep(200 * time.Millisecond) // the statement runs

	const cancelAfter = time.Second
	cctx, cancel := context.WithTimeout(ctx, cancelAfter)
	defer cancel()
	began := time.Now()
	q, err := s.Pool(cctx, dbs[1])
	took := time.Since(began)
	if q != nil {
		pools = append(pools, q)
	}
	t.Logf("the pool of %s, cancelled after %s while it waited for the role's place: %s, %v", dbs[1], cancelAfter, took.Round(time.Millisecond), err)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("the pool of %s, cancelled while it waited for the role's place: want the context's error, got %v", dbs[1], err)
	}
	if most := cancelAfter + time.Second; took > most {
		t.Errorf("the pool of %s returned %s after its start, cancelled after %s, want at most %s: it waited in admit for a place held by a %s statement",
			dbs[1], took.Round(time.Millisecond), cancelAfter, most, statement)
	}
	if err := <-done; err != nil {
		t.Fatalf("the statement holding the place: %v", err)
	}
	// The place is given back: the next pool gets it.
	q, err = s.Pool(ctx, dbs[1])
	if err != nil {
		t.Fatalf("the pool of %s, once the place was free: %v", dbs[1], err)
	}
	pools = append(pools, q)
	if err := q.Ping(ctx); err != nil {
		t.Errorf("the pool of %s, once the place was free: %v", dbs[1], err)
	}
}
