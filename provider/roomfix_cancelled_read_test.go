package provider

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// A read of the role's limits that the server cancelled (statement_timeout
// shorter than connect_timeout, with something holding pg_database; the
// same for lock_timeout or pg_cancel_backend) was taken for a role the
// provider cannot read the limits of, so for a role without limits: the
// room was measured unlimited, and the role's pools opened connections
// past its CONNECTION LIMIT (53300, too many connections for role). A
// cancelled read now leaves the limits unknown, as a read the server did
// not answer does: the pool is not made, with an error that says why, and
// the next one measures the room.
func TestRoomfixCancelledLimitsReadIsNotUnlimited(t *testing.T) {
	node := testAccTopology(t).Primary
	role := "roomfix_cancelled_read"
	dbs := roleOfLimit2In3Databases(t, node, role)
	s := newServer(connSettings{Host: node.Host, Port: int64(node.Port), Database: dbs[0], Username: role,
		SSLMode: "disable", MaxConnections: 4, ConnectTimeout: 5, StatementTimeout: "1s"})
	ctx := context.Background()

	lock, err := node.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close(ctx)
	const held = 2 * time.Second
	unlocked := make(chan struct{})
	var locked atomic.Bool
	// Once the first connection is made (a backend's startup reads
	// pg_database too), before its limits are read.
	take := func(database string) {
		if database != dbs[0] || !locked.CompareAndSwap(false, true) {
			return
		}
		if _, err := lock.Exec(ctx, `BEGIN; LOCK TABLE pg_catalog.pg_database IN ACCESS EXCLUSIVE MODE`); err != nil {
			t.Error(err)
			close(unlocked)
			return
		}
		time.AfterFunc(held, func() {
			_, _ = lock.Exec(ctx, `ROLLBACK`)
			close(unlocked)
		})
	}
	afterFirstAcquire.Store(&take)
	t.Cleanup(func() { afterFirstAcquire.Store(nil) })

	p, err := s.Pool(ctx, dbs[0])
	t.Logf("the pool of %s, its limits read while pg_database was locked (statement_timeout 1s): %v", dbs[0], err)
	if !locked.Load() {
		t.Fatal("pg_database was not locked")
	}
	<-unlocked
	if err != nil {
		for _, want := range []string{s.describe(), "statement_timeout", "57014"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("the error of the pool whose limits read was cancelled does not say %q: %v", want, err)
			}
		}
		// The server answers again: the next pool reads the limits.
		if p, err = s.Pool(ctx, dbs[0]); err != nil {
			t.Fatalf("the pool of %s, pg_database unlocked: %v", dbs[0], err)
		}
	}
	t.Cleanup(func() { closeTestPool(p) })
	// The role's two places held; the role's next pool waits for one.
	for range 2 {
		c, err := p.Acquire(ctx)
		if err != nil {
			t.Fatalf("a connection to %s: %v", dbs[0], err)
		}
		defer c.Release()
	}
	actx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	q, err := s.Pool(actx, dbs[1])
	if q != nil {
		closeTestPool(q)
	}
	t.Logf("the pool of %s, the role's two places held: %v", dbs[1], err)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "53300" {
		t.Fatalf("the server refused the role's third connection (53300): its room was taken for unlimited after a cancelled read of its limits: %v", err)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("the pool of %s, the role's two places held: want it to wait for one until its deadline, got %v", dbs[1], err)
	}
}
