package routerlib_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// TestReview8BouncerQueryTimeoutKeepsReplicas: PgBouncer's query_timeout
// ends a client whose statement ran too long (FATAL 08P01 "query_timeout"),
// PgBouncer's statement_timeout: the statement's, not the node's. One slow
// read must not take replicas out of rotation, nor run again on every node.
func TestReview8BouncerQueryTimeoutKeepsReplicas(t *testing.T) {
	saved := routertest.PgBouncerSettings
	routertest.PgBouncerSettings = append(append([]string(nil), saved...), "query_timeout = 1")
	t.Cleanup(func() { routertest.PgBouncerSettings = saved })
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

	// A write PgBouncer ends so runs on to its end on the server: it may
	// have committed (it does here), and says so; the primary keeps the
	// writes.
	if _, err := r.Exec(ctx, "CREATE TABLE review8_slow (id int)"); err != nil {
		t.Fatal(err)
	}
	_, err = r.Exec(ctx, "INSERT INTO review8_slow SELECT 1 FROM pg_sleep(2)")
	if !errors.Is(err, routerlib.ErrMaybeCommitted) {
		t.Errorf("a write PgBouncer ended past query_timeout: %v, want ErrMaybeCommitted", err)
	}
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
