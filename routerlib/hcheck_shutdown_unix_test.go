//go:build unix

package routerlib_test

import (
	"context"
	"errors"
	"log/slog"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// TestCheckAfterSessionEndedOnAShutdown: the check a write's ended
// session (57P01) asks for sets up a session of its own. A server
// shutting down refuses new sessions (57P03) from the moment it ends the
// first one, but ends the others one by one: a check on the monitor's
// session, not yet ended, answered "up", and the writes stayed on the
// primary until the next scheduled check (under load, the fast restart of
// TestPrimaryCallsAfterAFastPrimaryRestart, 1 run in 10 with the check
// asked for while one ran fixed). A smart shutdown, which ends no session
// but refuses new ones, holds that moment here: the write's session is
// then ended with pg_terminate_backend.
func TestCheckAfterSessionEndedOnAShutdown(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(0))
	ctx := context.Background()
	events := &syncBuffer{}
	r := newRouter(t, steadyHealth(topo.Artifact(), time.Minute),
		routerlib.WithLogger(slog.New(slog.NewTextHandler(events, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the router's log:\n%s", events.String())
		}
	})
	admin, err := topo.Primary.Connect(ctx) // kept: the shutdown refuses new sessions
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	write := inFlight(t, r, topo.Primary, 60)

	// Smart shutdown (SIGTERM to the postmaster): no new session, the
	// ones open go on.
	postmaster, err := topo.Primary.PostmasterPID()
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(postmaster, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "new sessions refused (57P03)", func() bool {
		err := topo.Primary.Exec(ctx, "SELECT 1")
		var pgErr *pgconn.PgError
		return errors.As(err, &pgErr) && pgErr.Code == "57P03"
	})
	if _, err := admin.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = $1", write.sql); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-write.done:
		t.Logf("the write whose session was ended: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the write whose session was ended did not return")
	}
	eventually(t, 10*time.Second, "the writes lost", func() bool {
		s, _ := r.NodeStat(topo.Primary.Name)
		return !s.Writer
	})
}
