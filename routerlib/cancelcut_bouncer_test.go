package routerlib_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// A connection cut mid-reply on a node frozen behind PgBouncer (here an
// application's Conn released while its statement runs) is sent a cancel
// request that stays open until the server answers it: PgBouncer before
// 1.19 (Debian 12's 1.18) exits with FATAL "bad client state: 0"
// (pgbouncer#801) when a cancel's client hangs up before the server
// answered, and the router gave up on its cancel after 500 ms, so the
// PgBouncer in front of a node that hung for longer went down as the node
// came back. Nor may the router's cut of a node that stopped answering
// close it: the node is thawed here before the checks cut it off, and
// after, and the cancel request must end after the thaw, answered (a cut
// closed it 0.97 s into the freeze; PgBouncer then did not always exit,
// but sent its answer, FATAL "successfully sent cancel request", to a
// health check that had the freed client's place). Release still returns
// within the bound, and the cancel still ends the statement.
func TestCancelCutOnFrozenNodeKeepsPgBouncerUp(t *testing.T) {
	for _, cutOff := range []bool{false, true} {
		name := "thawed before the cut-off"
		if cutOff {
			name = "thawed after the cut-off"
		}
		t.Run(name, func(t *testing.T) {
			topo := routertest.Start(t, routertest.WithStandbys(0), routertest.WithPgBouncer())
			a, bound := hungHealth(topo.Artifact())
			if !cutOff {
				a = topo.Artifact() // checks once a second: no cut-off within the test's freeze
			}
			r := newRouter(t, a, throughPgBouncer)
			ctx := context.Background()
			var ended atomic.Int64 // when the cancel request ended (UnixNano)
			t.Cleanup(routerlib.OnCancelCutEndedForTest(func(error) { ended.Store(time.Now().UnixNano()) }))
			c, err := r.Acquire(ctx)
			if err != nil {
				t.Fatal(err)
			}
			const sleep = "SELECT pg_sleep(60) -- cancelcut_bouncer"
			_ = c.Conn.Conn().PgConn().Exec(ctx, sleep) // its reply unread: the connection is busy
			running := statementRunning(t, topo.Primary, sleep)
			eventually(t, 10*time.Second, "the statement running", running)
			freeze(t, topo.Primary)
			start := time.Now()
			c.Release() // cut mid-reply: a cancel request, then the close
			if took := time.Since(start); took > 2*time.Second {
				t.Errorf("Release of a connection cut on a frozen node took %v", took)
			}
			if cutOff {
				took := eventually(t, 30*time.Second, "the frozen primary cut off", func() bool {
					s := nodeStat(r, topo.Primary.Name)
					return !s.Healthy && s.LastError != ""
				})
				time.Sleep(bound) // past the ejection: its connections closed
				t.Logf("the primary was seen down %v after the freeze (bound %v)", took, bound)
			} else {
				time.Sleep(500 * time.Millisecond) // PgBouncer sees the call's client gone
			}
			if e := ended.Load(); e != 0 {
				t.Errorf("the cancel request ended before the thaw, %v after the freeze: its client hung up first", time.Unix(0, e).Sub(start))
			}
			if err := topo.Primary.Thaw(); err != nil {
				t.Fatal(err)
			}
			thawed := time.Now()
			took := eventually(t, 20*time.Second, "the statement cancelled", func() bool { return !running() })
			t.Logf("the statement ended %v after the thaw", took)
			eventually(t, 10*time.Second, "the cancel request ended", func() bool { return ended.Load() != 0 })
			t.Logf("the cancel request ended %v after the thaw", time.Unix(0, ended.Load()).Sub(thawed))
			time.Sleep(500 * time.Millisecond) // the bouncer acts on the server's answer
			if n := topo.Primary.BouncerCrashes(); n != 0 {
				t.Errorf("the primary's PgBouncer exited %d times (see the log above)", n)
			}
		})
	}
}
