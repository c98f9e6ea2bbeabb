package routerlib_test

import (
	"context"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// TestPgBouncerTerminatePassAttempts: pg_terminate_backend() passes over
// every server session of one replica behind PgBouncer (transaction
// pooling), under six readers, two replicas in rotation and no fallback
// to the primary. A read whose session a pass ended runs again; through
// PgBouncer the new client session the retry takes (see newSession) may
// be handed a server session the same pass ends next, so one pass can end
// two attempts of one read when the retry runs on the same replica. The
// other replica the pass cannot reach: a retry after 57P01 prefers it
// (retryState.avoid). No read fails either way (three attempts with two
// replicas and the primary); the test logs the reads by attempts and where
// second attempts ran, and asserts that none ran on the replica the pass
// was ending (5 of 19 did before the retry preferred another). For figures:
// ROUTERTEST_PASSES (default 20) and ROUTERTEST_PGBOUNCER_EXTRA (settings
// appended to routertest.PgBouncerSettings, ';'-separated, such as
// "server_check_delay = 30", PgBouncer's default), ROUTERTEST_STANDBYS=1
// for a single replica.
func TestPgBouncerTerminatePassAttempts(t *testing.T) {
	if extra := os.Getenv("ROUTERTEST_PGBOUNCER_EXTRA"); extra != "" {
		saved := routertest.PgBouncerSettings
		routertest.PgBouncerSettings = append(append([]string(nil), saved...), strings.Split(extra, ";")...)
		t.Cleanup(func() { routertest.PgBouncerSettings = saved })
	}
	standbys, passes := 2, 20
	if os.Getenv("ROUTERTEST_STANDBYS") == "1" {
		standbys = 1
	}
	if v, err := strconv.Atoi(os.Getenv("ROUTERTEST_PASSES")); err == nil {
		passes = v
	}
	topo := routertest.Start(t, routertest.WithStandbys(standbys), routertest.WithPgBouncer())
	replica := topo.Standbys[0]
	a := steadyHealth(topo.Artifact(), interval)
	a.ReadPolicy.Fallback = artifact.FallbackError
	tracer := routerlib.TracerFunc(func(ctx context.Context, d routerlib.Decision) {
		if a, ok := ctx.Value(attemptsKey{}).(*readAttempts); ok {
			a.nodes = append(a.nodes, d.Node) // the read's own goroutine
		}
	})
	r := newRouter(t, a, throughPgBouncer, routerlib.WithTracer(tracer))
	var byAttempts [4]atomic.Int64 // 1, 2, 3, more
	var failed, sameNode, otherNode atomic.Int64
	var firstErr atomic.Pointer[error]
	stop := underLoad(6, func() {
		at := &readAttempts{}
		var port int
		if err := r.QueryRow(context.WithValue(context.Background(), attemptsKey{}, at), "SELECT inet_server_port()").Scan(&port); err != nil {
			failed.Add(1)
			firstErr.CompareAndSwap(nil, &err)
		}
		byAttempts[min(len(at.nodes), 4)-1].Add(1)
		if len(at.nodes) > 1 && at.nodes[0] == replica.Name {
			if at.nodes[1] == replica.Name {
				sameNode.Add(1)
			} else {
				otherNode.Add(1)
			}
		}
	})
	eventually(t, 5*time.Second, "the replica serving reads", func() bool { return nodeStat(r, replica.Name).Reads > 0 })
	terminated := 0
	for range passes {
		var ended int
		// Every server session of the bouncer (and of the router's
		// health check through it), not this one.
		if err := replica.QueryRow(context.Background(), "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()").Scan(&ended); err != nil {
			t.Fatal(err)
		}
		terminated += ended
		time.Sleep(300 * time.Millisecond)
	}
	stop()
	t.Logf("%d replicas, PgBouncer %q: %d passes ended %d server sessions; reads by attempts: 1: %d, 2: %d, 3: %d, more: %d; %d failed; second attempts of a read ended on %s: %d there again, %d elsewhere",
		standbys, os.Getenv("ROUTERTEST_PGBOUNCER_EXTRA"), passes, terminated, byAttempts[0].Load(), byAttempts[1].Load(), byAttempts[2].Load(), byAttempts[3].Load(), failed.Load(), replica.Name, sameNode.Load(), otherNode.Load())
	if e := firstErr.Load(); e != nil {
		t.Errorf("%d reads failed; want 0; the first: %v", failed.Load(), *e)
	}
	if terminated == 0 {
		t.Fatal("no server session terminated: the test tested nothing")
	}
	if standbys == 2 && sameNode.Load() != 0 {
		t.Errorf("%d reads whose session a pass on %s ended ran again there, where the same pass can end them again, though the other replica was in rotation", sameNode.Load(), replica.Name)
	}
}

type attemptsKey struct{}

// readAttempts are the nodes a read's attempts were routed to, in order.
type readAttempts struct{ nodes []string }
