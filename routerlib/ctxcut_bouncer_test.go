package routerlib_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// A call whose context ends while its statement runs on a node that hangs
// behind PgBouncer: pgx closes the connection and first sends the server a
// cancel request (pgconn's asyncClose), which a frozen server answers only
// when it comes back. PgBouncer before 1.19 (Debian 12's 1.18) exits with
// FATAL "bad client state: 0" (pgbouncer#801) when the client of a cancel
// request hangs up before the server answered it, and two things hung up
// first: pgx itself, which gives up on the request after 15 s, and the
// router's cut-off of a node whose checks fail, which closed it with the
// pools' connections. Both took the PgBouncer down as the node came back.
// The request now stays open until the server answers it, up to
// cutCancelLinger, whatever ends the call.
func TestContextCutOnFrozenNodeKeepsPgBouncerUp(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cutOff bool
		frozen time.Duration
	}{
		{"cut off, thawed after 3s", true, 3 * time.Second},
		{"not cut off, thawed after pgx's 15s", false, 17 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			topo := routertest.Start(t, routertest.WithStandbys(0), routertest.WithPgBouncer())
			a, _ := hungHealth(topo.Artifact())
			if !tc.cutOff {
				// No check within the freeze: nothing but pgx ends the request.
				a.Health = artifact.Health{Interval: "1m", Timeout: "50s", EjectAfter: 5, ReadmitAfter: 1}
			}
			r := newRouter(t, a, throughPgBouncer)
			bg := context.Background()
			const sleep = "SELECT pg_sleep(60) -- ctxcut_bouncer"
			running := statementRunning(t, topo.Primary, sleep)
			ctx, cancel := context.WithCancel(bg)
			defer cancel()
			done := make(chan error, 1)
			go func() { _, err := r.Exec(ctx, sleep); done <- err }()
			eventually(t, 10*time.Second, "the statement running", running)
			freeze(t, topo.Primary)
			start := time.Now()
			time.Sleep(100 * time.Millisecond)
			cancel() // before the checks cut the node off
			if err := <-done; err == nil {
				t.Fatal("a call cut by its context on a frozen primary succeeded")
			}
			t.Logf("the call returned %v into the freeze", time.Since(start))
			if tc.cutOff {
				took := eventually(t, 30*time.Second, "the frozen primary cut off", func() bool {
					s := nodeStat(r, topo.Primary.Name)
					return !s.Healthy && s.LastError != ""
				})
				t.Logf("the primary was cut off %v into the freeze", took)
			}
			time.Sleep(tc.frozen - time.Since(start))
			if err := topo.Primary.Thaw(); err != nil {
				t.Fatal(err)
			}
			took := eventually(t, 20*time.Second, "the statement cancelled", func() bool { return !running() })
			t.Logf("the statement ended %v after the thaw", took)
			time.Sleep(time.Second) // PgBouncer acts on the server's answer
			if n := topo.Primary.BouncerCrashes(); n != 0 {
				t.Errorf("the primary's PgBouncer exited %d times (see the log above)", n)
			}
		})
	}
}

// A call the router cuts off with a node that stopped answering has its
// statement cancelled when the node comes back, whether the router
// connects to it directly or through PgBouncer, a read as a
// read-your-writes write (sent as BEGIN, the write, COMMIT and the LSN
// query by routerlib's own protocol path). Twice the statement ran on after
// the thaw, to its end (here a minute): the router closed the connection
// under the call and refused pgx's cancel request that followed, the node
// being cut off; and, once that cancel went out, PgBouncer dropped it, for
// it came after the close, and PgBouncer forwards no cancel of a client
// gone. The call's connection now stays open until pgx has sent it.
func TestCutOffCallIsCancelledWhenNodeThaws(t *testing.T) {
	for _, tc := range []struct {
		name                 string
		bouncer, write, host bool
	}{
		{"direct", false, false, false},
		{"through PgBouncer", true, false, false},
		{"through PgBouncer, a read-your-writes write", true, true, false},
		// The host of both frozen: the cancel request waits in
		// PgBouncer's listen queue until it thaws.
		{"through PgBouncer frozen with it, a read-your-writes write", true, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var topo *routertest.Topology
			var opts []routerlib.Option
			if tc.bouncer {
				topo = routertest.Start(t, routertest.WithStandbys(0), routertest.WithPgBouncer())
				opts = append(opts, throughPgBouncer)
			} else {
				topo = routertest.Start(t, routertest.WithStandbys(0))
			}
			a, _ := hungHealth(topo.Artifact())
			r := newRouter(t, a, opts...)
			bg := context.Background()
			sql, ctx := "SELECT pg_sleep(60) -- cutoff_cancel", bg
			if tc.write {
				if err := topo.Primary.Exec(bg, "CREATE TABLE cutoff_cancel (n int)"); err != nil {
					t.Fatal(err)
				}
				sql, ctx = "INSERT INTO cutoff_cancel SELECT 1 FROM pg_sleep(60)", routerlib.WithSession(bg, &routerlib.Session{})
			}
			running := statementRunning(t, topo.Primary, sql)
			done := make(chan error, 1)
			go func() { _, err := r.Exec(ctx, sql); done <- err }()
			eventually(t, 10*time.Second, "the statement running", running)
			if tc.host {
				if err := topo.Primary.FreezeHost(); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = topo.Primary.Thaw() })
			} else {
				freeze(t, topo.Primary)
			}
			start := time.Now()
			err := <-done
			if err == nil {
				t.Fatal("a call on a frozen primary succeeded")
			}
			t.Logf("the call was cut %v into the freeze: %v", time.Since(start), err)
			if !strings.Contains(err.Error(), `node "primary" stopped answering`) {
				t.Errorf("the call's error does not say the router cut the primary off: %v", err)
			}
			if tc.write && !errors.Is(err, routerlib.ErrMaybeCommitted) {
				t.Errorf("a write cut off after it went out is no ErrMaybeCommitted: %v", err)
			}
			time.Sleep(3*time.Second - time.Since(start))
			if err := topo.Primary.Thaw(); err != nil {
				t.Fatal(err)
			}
			took := eventually(t, 20*time.Second, "the statement cancelled", func() bool { return !running() })
			t.Logf("the statement ended %v after the thaw", took)
			if tc.write {
				var n int
				if err := topo.Primary.QueryRow(bg, "SELECT count(*) FROM cutoff_cancel").Scan(&n); err != nil {
					t.Fatal(err)
				}
				if n != 0 {
					t.Errorf("the cancelled write committed %d rows", n)
				}
			}
			if tc.bouncer {
				time.Sleep(time.Second) // PgBouncer acts on the server's answer
				if n := topo.Primary.BouncerCrashes(); n != 0 {
					t.Errorf("the primary's PgBouncer exited %d times (see the log above)", n)
				}
			}
		})
	}
}
