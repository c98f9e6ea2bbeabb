//go:build unix

package routertest_test

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// TestStopWhileASmartShutdownEnds: a server that a test shut down the
// smart way (SIGTERM: no new session, the open ones go on) ends when its
// last session does, and may end between Stop's look at it and pg_ctl's
// own: Stop then has what it asked for, not an error. Before, pg_ctl's
// "PID file … does not exist" failed the cleanup of
// TestCheckAfterSessionEndedOnAShutdown (1 run in about 10 under load).
func TestStopWhileASmartShutdownEnds(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(0))
	n := topo.Primary
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for round := range 8 {
		if err := n.Start(ctx); err != nil {
			t.Fatal(err)
		}
		conn, err := n.Connect(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pid, err := n.PostmasterPID()
		if err != nil {
			t.Fatal(err)
		}
		if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		// The last session ends while Stop looks: the server's shutdown
		// checkpoint and Stop's pg_ctl status race for a few ms.
		go conn.Close(context.Background())
		time.Sleep(time.Duration(round) * 2 * time.Millisecond)
		if err := n.Stop(ctx); err != nil {
			t.Fatalf("round %d: Stop of a server ending its smart shutdown: %v", round, err)
		}
	}
}
