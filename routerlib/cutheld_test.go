package routerlib_test

import (
	"context"
	"testing"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// TestCutOffHeldConnClosedLater: a connection the application holds, with
// a reply it never reads, on a primary the router cuts off when it stops
// answering, is not closed at the cut (cutMidCall: pgx would close it
// after its cancel request, had a call read it), but within 20 s
// (cutMidCallClose), so that neither the client's socket nor the server's
// session outlives the fault for good. The server's session ends once
// the primary thaws and sees the close.
func TestCutOffHeldConnClosedLater(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(1))
	a, bound := hungHealth(topo.Artifact())
	r := newRouter(t, a)
	ctx := context.Background()
	c, err := r.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Release()
	var pid int
	if err := c.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	// Sent, never read: pgconn reads a reply only when asked, but its
	// background reader may start on a slow flush; the server sends
	// nothing of this one before the freeze, so no reply is read.
	_ = c.Conn.Conn().PgConn().Exec(ctx, "SELECT pg_sleep(3)")
	t.Cleanup(func() { _ = topo.Primary.Thaw() })
	// The cut may come before Freeze returns (the health check's
	// backend stops first): the 20 s are counted from before the freeze.
	freezing := time.Now()
	if err := topo.Primary.Freeze(); err != nil {
		t.Fatal(err)
	}
	frozen := time.Now()
	eventually(t, bound+5*time.Second, "the primary's health check to fail", func() bool { return !nodeStat(r, "primary").Healthy })
	// The socket's own state: SetDeadline fails once it is closed (the
	// past deadline set here is the one cutMidCall sets).
	nc := c.Conn.Conn().PgConn().Conn()
	open := func() bool { return nc.SetDeadline(time.Unix(1, 0)) == nil }
	time.Sleep(time.Until(frozen.Add(bound + time.Second))) // cut off by now, unless the machine is slow
	if !open() {
		t.Fatal("the held connection was closed at the cut: a call reading it would have had no cancel sent first")
	}
	// Closed 20 s after the cut (cutMidCallClose), which came after the
	// freeze: polled, since on a loaded machine the cut may come late.
	eventually(t, bound+40*time.Second, "the held connection to be closed after its node was cut off", func() bool { return !open() })
	if d := time.Since(freezing); d < 20*time.Second {
		t.Fatalf("the held connection was closed %v after the freeze, before cutMidCallClose (20 s) from the cut", d.Round(time.Millisecond))
	}
	if err := topo.Primary.Thaw(); err != nil {
		t.Fatal(err)
	}
	sessionOf := func() bool {
		var n int
		if err := topo.Primary.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == 1
	}
	eventually(t, 10*time.Second, "the held connection's session to end after the thaw", func() bool { return !sessionOf() })
}
