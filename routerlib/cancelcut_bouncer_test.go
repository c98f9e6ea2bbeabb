package routerlib_test

import (
	"context"
	"testing"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// A connection cut mid-reply on a node frozen behind PgBouncer (here an
// application's Conn released while its statement runs) is sent a cancel
// request that stays open until the server answers it: PgBouncer before
// 1.19 (Debian 12's 1.18) exits with FATAL "bad client state: 0"
// (pgbouncer#801) when a cancel's client hangs up before the server
// answered, and the router gave up on its cancel after 500 ms, so the
// PgBouncer in front of a node that hung for longer went down as the node
// came back. Release still returns within that bound, and the cancel still
// ends the statement.
func TestCancelCutOnFrozenNodeKeepsPgBouncerUp(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(0), routertest.WithPgBouncer())
	r := newRouter(t, topo.Artifact(), throughPgBouncer)
	ctx := context.Background()
	c, err := r.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const sleep = "SELECT pg_sleep(60) -- cancelcut_bouncer"
	_ = c.Conn.Conn().PgConn().Exec(ctx, sleep) // its reply unread: the connection is busy
	running := func() bool {
		var n int
		if err := topo.Primary.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE query = $1 AND state = 'active'", sleep).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n > 0
	}
	eventually(t, 10*time.Second, "the statement running", running)
	freeze(t, topo.Primary)
	start := time.Now()
	c.Release() // cut mid-reply: a cancel request, then the close
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Release of a connection cut on a frozen node took %v", took)
	}
	time.Sleep(500 * time.Millisecond) // PgBouncer sees the call's client gone
	if err := topo.Primary.Thaw(); err != nil {
		t.Fatal(err)
	}
	took := eventually(t, 20*time.Second, "the statement cancelled", func() bool { return !running() })
	t.Logf("the statement ended %v after the thaw", took)
	time.Sleep(500 * time.Millisecond) // the bouncer acts on the server's answer
	if n := topo.Primary.BouncerCrashes(); n != 0 {
		t.Errorf("the primary's PgBouncer exited %d times (see the log above)", n)
	}
}
