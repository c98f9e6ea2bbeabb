package provider

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// A connection whose read of the role's limits in AfterConnect fails (a
// pool kept for a database missing when it was made, sizing itself once
// the database exists) gave its place in the role's room back at once,
// while pgxpool's close of it did not wait for its backend to exit: the
// server still counted the session, and the role's next connection, let
// through by the room, was refused (53300, too many connections for role).
// The backend here is stopped (SIGSTOP) during the read, as a loaded or
// frozen host deschedules it, and resumed 1 s after the read gave up, well
// within the close's wait (connect_timeout). The place is now held until
// the session has ended on the server (closeHeld), as everywhere else.
func TestRoomfixFailedLimitsReadHoldsThePlaceUntilTheBackendExits(t *testing.T) {
	server := testAccTopology(t).Primary
	role := "roomfix_read_place"
	late := role + "_late"
	const connectTimeout = 2
	s, dbs := roleServer(t, server, role, 2, connectTimeout)
	ctx := context.Background()
	p0 := testPool(t, s, dbs[0])
	p := keptPoolThenCreated(t, s, server, late, `OWNER `+role)
	// One of the role's two places held: the other is late's connection's.
	a, err := p0.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Release()

	var stopped atomic.Int64
	resumeAfter := connectTimeout*time.Second + time.Second
	stop := func(database string) {
		if database != late || stopped.Load() != 0 {
			return
		}
		var pid int
		if err := server.QueryRow(ctx, `SELECT pid FROM pg_stat_activity WHERE datname = $1 AND usename = $2`, late, role).Scan(&pid); err != nil {
			t.Errorf("the backend of the connection to %s: %v", late, err)
			return
		}
		if err := stopProcess(pid); err != nil {
			t.Errorf("stopping backend %d: %v", pid, err)
			return
		}
		stopped.Store(int64(pid))
		time.AfterFunc(resumeAfter, func() { _ = continueProcess(pid) })
	}
	beforeLimitsRead.Store(&stop)
	t.Cleanup(func() { beforeLimitsRead.Store(nil) })
	t.Cleanup(func() {
		if pid := stopped.Load(); pid != 0 {
			_ = continueProcess(int(pid))
		}
	})

	actx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	began := time.Now()
	_, err = p.Exec(actx, `SELECT 1`)
	t.Logf("a statement in %s, its backend stopped before the limits were read: %s, %v", late, time.Since(began).Round(time.Millisecond), err)
	if stopped.Load() == 0 {
		t.Fatalf("the connection to %s did not read the role's limits", late)
	}
	if err == nil {
		t.Fatalf("a statement in %s ran, its backend stopped", late)
	}
	// The role's next connection, at once: the room has a place for it
	// only once the stopped session has ended on the server.
	b, err := p0.Acquire(actx)
	at := time.Since(began)
	if err == nil {
		_, err = b.Exec(actx, `SELECT 1`)
		b.Release()
	}
	t.Logf("the role's next connection, to %s: %s, %v", dbs[0], at.Round(time.Millisecond), err)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "53300" {
		t.Fatalf("the server refused the role's next connection (53300) %s after the failed read began, its backend resumed only after %s: "+
			"the room gave the failed connection's place back before its session had ended: %v", at.Round(time.Millisecond), resumeAfter, err)
	}
	if err != nil {
		t.Fatalf("the role's next connection, to %s: %v", dbs[0], err)
	}
}
