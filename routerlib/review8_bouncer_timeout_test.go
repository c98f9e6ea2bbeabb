package routerlib_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// TestReview8BouncerQueryTimeoutKeepsReplicas: PgBouncer's query_timeout
// ends a client whose statement ran too long (FATAL 08P01 "query_timeout"),
// PgBouncer's statement_timeout: the statement's, not the node's. One slow
// read must not take replicas out of rotation, nor run again on every node.
func TestReview8BouncerQueryTimeoutKeepsReplicas(t *testing.T) {
	withPgBouncerSettings(t, "query_timeout = 1")
	topo := routertest.Start(t, routertest.WithStandbys(2), routertest.WithPgBouncer())
	var mu sync.Mutex
	var nodes []string
	tracer := routerlib.TracerFunc(func(_ context.Context, d routerlib.Decision) {
		mu.Lock()
		nodes = append(nodes, d.Node)
		mu.Unlock()
	})
	r := newRouter(t, steadyHealth(topo.Artifact(), 200*time.Millisecond), throughPgBouncer, routerlib.WithTracer(tracer))
	ctx := context.Background()
	for _, s := range topo.Standbys {
		eventually(t, 10*time.Second, s.Name+" in rotation", func() bool { return nodeStat(r, s.Name).Readable })
	}
	mu.Lock()
	nodes = nil
	mu.Unlock()
	_, err := r.Exec(ctx, "SELECT pg_sleep(3)")
	t.Logf("slow read: %v", err)
	mu.Lock()
	t.Logf("ran on %v", nodes)
	ran := len(nodes)
	mu.Unlock()
	for _, s := range topo.Standbys {
		st := nodeStat(r, s.Name)
		if !st.Readable {
			t.Errorf("%s out of rotation (%s) after one slow read: %s", s.Name, st.Ejected, st.LastError)
		}
	}
	if ran > 1 {
		t.Errorf("one slow read ran %d times", ran)
	}
	// A batch of reads, the same.
	mu.Lock()
	nodes = nil
	mu.Unlock()
	b := &pgx.Batch{}
	b.Queue("SELECT 1")
	b.Queue("SELECT pg_sleep(3)")
	err = r.SendBatch(ctx, b).Close()
	mu.Lock()
	t.Logf("slow read batch: %v; ran on %v", err, nodes)
	if err == nil || len(nodes) > 1 {
		t.Errorf("a slow read batch PgBouncer ended: %v, sent to %v", err, nodes)
	}
	mu.Unlock()

	// A write PgBouncer ends so runs on to its end on the server: it may
	// have committed (it does here), and says so; the primary keeps the
	// writes.
	if _, err := r.Exec(ctx, "CREATE TABLE review8_slow (id int)"); err != nil {
		t.Fatal(err)
	}
	_, err = r.Exec(ctx, "INSERT INTO review8_slow SELECT 1 FROM pg_sleep(2)")
	if !errors.Is(err, routerlib.ErrMaybeCommitted) || !strings.Contains(err.Error(), "commit later") {
		t.Errorf("a write PgBouncer ended past query_timeout: %v, want ErrMaybeCommitted saying it may commit later", err)
	}
	// It does: the server ran it on after PgBouncer ended the session.
	var now int
	if err := topo.Primary.QueryRow(ctx, "SELECT count(*) FROM review8_slow").Scan(&now); err != nil {
		t.Fatal(err)
	}
	t.Logf("rows right after the error: %d", now)
	eventually(t, 10*time.Second, "the slow write committed", func() bool {
		var n int
		return topo.Primary.QueryRow(ctx, "SELECT count(*) FROM review8_slow").Scan(&n) == nil && n == 1
	})
	if st := nodeStat(r, topo.Primary.Name); !st.Writer {
		t.Errorf("%s lost the writes after one slow write: %+v", topo.Primary.Name, st)
	}
	for _, s := range topo.Standbys {
		if st := nodeStat(r, s.Name); !st.Readable {
			t.Errorf("%s out of rotation (%s) after a slow read and write: %s", s.Name, st.Ejected, st.LastError)
		}
	}
}

// TestReview8BouncerQueryTimeoutFrozenServer: the server behind a
// replica's PgBouncer hangs (frozen) and PgBouncer has a query_timeout:
// the reads there meet the timeout, which ejects nothing by itself, but
// the check each asks for does not answer, and the replica leaves
// rotation within eject_after × interval + timeout; reads then run on the
// other replica and none fails.
func TestReview8BouncerQueryTimeoutFrozenServer(t *testing.T) {
	withPgBouncerSettings(t, "query_timeout = 1")
	topo := routertest.Start(t, routertest.WithStandbys(2), routertest.WithPgBouncer())
	a := steadyHealth(topo.Artifact(), 200*time.Millisecond)
	a.ReadPolicy.Fallback = artifact.FallbackError
	r := newRouter(t, a, throughPgBouncer)
	ctx := context.Background()
	for _, s := range topo.Standbys {
		eventually(t, 10*time.Second, s.Name+" in rotation", func() bool { return nodeStat(r, s.Name).Readable })
	}
	var failed atomic.Int64
	stop := underLoad(4, func() {
		if _, err := r.Exec(ctx, "SELECT 1"); err != nil {
			failed.Add(1)
		}
	})
	frozenLeavesRotation(t, r, topo.Standbys[0])
	failedThen := failed.Load()
	time.Sleep(time.Second)
	stop()
	t.Logf("%d reads failed before, %d after", failedThen, failed.Load()-failedThen)
	if n := failed.Load() - failedThen; n > 0 {
		t.Errorf("%d reads failed after the frozen replica left rotation", n)
	}
}

// withPgBouncerSettings adds settings to the bouncers of the topologies
// the test starts from now on.
func withPgBouncerSettings(t *testing.T, settings ...string) {
	saved := routertest.PgBouncerSettings
	routertest.PgBouncerSettings = append(append([]string(nil), saved...), settings...)
	t.Cleanup(func() { routertest.PgBouncerSettings = saved })
}

// frozenLeavesRotation freezes the server behind a replica's PgBouncer and
// fails the test unless the replica leaves rotation within eject_after 3
// × interval 200ms + timeout 1s (steadyHealth's), and the lateness of the
// machine's timers.
func frozenLeavesRotation(t *testing.T, r *routerlib.Router, frozen *routertest.Node) {
	t.Helper()
	if err := frozen.Freeze(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = frozen.Thaw() })
	lateness := timerLateness()
	took := eventually(t, 20*time.Second, frozen.Name+" out of rotation", func() bool { return !nodeStat(r, frozen.Name).Readable })
	late := lateness()
	bound := 3*200*time.Millisecond + time.Second
	t.Logf("out after %v (bound %v, timers up to %v late)", took, bound, late)
	if took > bound+time.Second+3*late {
		t.Errorf("a frozen replica behind PgBouncer left rotation after %v, bound %v", took, bound)
	}
}
