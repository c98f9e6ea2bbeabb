package provider

import (
	"context"
	"errors"
	"testing"
	"time"
)

// Callers that ask for a pool another caller is making wait for that one
// (poolSet.get), and took its outcome whatever it was: when the maker's
// own deadline passed, every caller waiting got "context deadline
// exceeded" (PoolOrDiag: Cannot Connect to PostgreSQL), their own contexts
// not done and the server answering. A waiter now makes the pool itself
// when the maker's caller gave up, and stops waiting when its own context
// is done. The server is slow to start sessions for 1.5 s here (a
// transaction holds pg_database, which a backend's startup reads), the
// maker's deadline 0.5 s.
func TestRoomfixPoolMakersDeadlineIsNotTheWaiters(t *testing.T) {
	node := testAccTopology(t).Primary
	role := "roomfix_maker_deadline"
	dbs := roleOfLimit2In3Databases(t, node, role)
	s := newServer(connSettings{Host: node.Host, Port: int64(node.Port), Database: dbs[0], Username: role,
		SSLMode: "disable", MaxConnections: 4, ConnectTimeout: 5})
	ctx := context.Background()

	const slow = 1500 * time.Millisecond
	began := lockCatalogFor(t, node, slow)

	const deadline = 500 * time.Millisecond
	maker := make(chan error, 1)
	go func() {
		actx, cancel := context.WithTimeout(ctx, deadline)
		defer cancel()
		_, err := s.Pool(actx, dbs[0])
		maker <- err
	}()
	time.Sleep(200 * time.Millisecond) // the pool is being made
	waiter := make(chan error, 1)
	var took time.Duration
	go func() {
		actx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		p, err := s.Pool(actx, dbs[0])
		if err == nil {
			err = p.Ping(actx)
			t.Cleanup(func() { closeTestPool(p) })
		}
		took = time.Since(began)
		waiter <- err
	}()
	if err := <-maker; !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("the pool of %s, its maker's deadline %s: want the deadline's error, got %v", dbs[0], deadline, err)
	}
	err := <-waiter
	t.Logf("the pool of %s, asked while a caller of deadline %s made it, the server slow for %s: %s, %v",
		dbs[0], deadline, slow, took.Round(time.Millisecond), err)
	if err != nil {
		t.Errorf("the pool of %s failed for a caller whose context was not done (%s after the start), the server answering after %s: %v",
			dbs[0], took.Round(time.Millisecond), slow, err)
	}

	// A waiter whose own context is done stops waiting.
	execSQL(t, node, "postgres", `SELECT 1`) // the lock is gone
	lockCatalogFor(t, node, slow)
	go func() {
		_, err := s.Pool(ctx, dbs[1])
		maker <- err
	}()
	time.Sleep(200 * time.Millisecond)
	wctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	w0 := time.Now()
	_, err = s.Pool(wctx, dbs[1])
	waited := time.Since(w0)
	t.Logf("the pool of %s, asked with a deadline of 300ms while another caller made it: %s, %v", dbs[1], waited.Round(time.Millisecond), err)
	if !errors.Is(err, context.DeadlineExceeded) || waited > time.Second {
		t.Errorf("a caller of deadline 300ms waited %s for the pool another caller made (the server slow for %s): %v", waited.Round(time.Millisecond), slow, err)
	}
	if err := <-maker; err != nil {
		t.Errorf("the pool of %s: %v", dbs[1], err)
	}
}
