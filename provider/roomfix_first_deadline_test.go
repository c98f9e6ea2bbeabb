package provider

import (
	"context"
	"errors"
	"testing"
	"time"
)

// A caller whose own deadline passed while the first connection of its
// pool was being made, before the role's room was measured, was recorded
// as "the server did not answer" (firstOver): the role's connections
// waiting for that one to be admitted in turn failed at once with
// "not tried: the server did not answer the role's connection made just
// before this one within connect_timeout", the server healthy and
// answering well within connect_timeout. The server here is slow to
// start sessions for 1.5 s (a transaction holds pg_database, which a
// backend's startup reads), the first caller's deadline 0.5 s, the
// connect_timeout 5 s: the later caller waits for its own connection.
func TestRoomfixCallersDeadlineIsNotTheServersSilence(t *testing.T) {
	server := testAccTopology(t).Primary
	role := "roomfix_first_deadline"
	dbs := roleOfLimit2In3Databases(t, server, role)
	execSQL(t, server, "postgres", `ALTER ROLE `+role+` CONNECTION LIMIT 10`)
	s := newServer(connSettings{Host: server.Host, Port: int64(server.Port), Database: dbs[0], Username: role,
		SSLMode: "disable", MaxConnections: 4, ConnectTimeout: 5})
	ctx := context.Background()

	const slow = 1500 * time.Millisecond
	began := lockCatalogFor(t, server, slow)

	const deadline = 500 * time.Millisecond
	first := make(chan error, 1)
	go func() {
		actx, cancel := context.WithTimeout(ctx, deadline)
		defer cancel()
		p, err := s.Pool(actx, dbs[0])
		if p != nil {
			closeTestPool(p)
		}
		first <- err
	}()
	time.Sleep(200 * time.Millisecond) // the first pool's connection is admitted alone
	later := make(chan error, 1)
	var took time.Duration
	go func() {
		actx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		p, err := s.Pool(actx, dbs[1])
		if err == nil {
			err = p.Ping(actx)
			closeTestPool(p)
		}
		took = time.Since(began)
		later <- err
	}()
	if err := <-first; !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("the pool of %s, its caller's deadline %s: want the deadline's error, got %v", dbs[0], deadline, err)
	}
	err := <-later
	t.Logf("the pool of %s, asked while the first pool's caller (deadline %s) waited for a server slow for %s: %s, %v",
		dbs[1], deadline, slow, took.Round(time.Millisecond), err)
	var unanswered *roomUnansweredError
	if errors.As(err, &unanswered) {
		t.Fatalf("the pool of %s failed as if the server had not answered within connect_timeout (5 s), %s after the start, "+
			"when only the first caller's own deadline (%s) had passed: %v", dbs[1], took.Round(time.Millisecond), deadline, err)
	}
	if err != nil {
		t.Fatalf("the pool of %s, the server answering after %s: %v", dbs[1], slow, err)
	}
}
