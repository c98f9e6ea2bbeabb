package routerlib_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// TestRoomfaultFullPrimaryStays: a write waits for room on a primary whose
// role has no session left (CONNECTION LIMIT, SQLSTATE 53300) past
// connect_timeout (1 s), and fails saying so. The primary answered: it is
// full, not down. It must keep the writes and stay healthy, and once
// sessions come free the next write and read (the primary serves reads
// when no replica is declared) succeed at once, not after the checks
// readmit it (interval 1 min here: none comes in the test's time).
func TestRoomfaultFullPrimaryStays(t *testing.T) {
	ctx := context.Background()
	topo := routertest.Start(t, routertest.WithStandbys(0))
	const role = "rf_lim"
	if err := topo.Primary.Exec(ctx, "CREATE ROLE "+role+" LOGIN CONNECTION LIMIT 2; CREATE TABLE rf_full (v int); GRANT SELECT, INSERT ON rf_full TO "+role); err != nil {
		t.Fatal(err)
	}
	a := topo.Artifact()
	a.Health = artifact.Health{Interval: "1m", Timeout: "1s", EjectAfter: 3, ReadmitAfter: 1, ConnectTimeout: "1s"}
	a.Nodes[0].User = role
	a.Pool.MinConns = 0
	r := newRouter(t, a)
	name := topo.Primary.Name
	held := holdAll(t, topo, role)
	start := time.Now()
	_, err := r.Exec(ctx, "INSERT INTO rf_full VALUES (1)")
	t.Logf("the write on the full primary failed after %v: %v", time.Since(start), err)
	if err == nil {
		t.Fatal("the write succeeded with no room")
	}
	if errors.Is(err, routerlib.ErrMaybeCommitted) {
		t.Errorf("a write refused for want of room says it may have committed: %v", err)
	}
	st := nodeStat(r, name)
	t.Logf("the primary after the failed write: %+v", st)
	if !st.Writer || !st.Healthy {
		t.Errorf("the full primary, which answered, was marked down: writer %v, healthy %v, ejected %v", st.Writer, st.Healthy, st.Ejected)
	}
	for _, c := range held {
		c.Close(ctx)
	}
	start = time.Now()
	if _, err := r.Exec(ctx, "INSERT INTO rf_full VALUES (2)"); err != nil {
		t.Errorf("the write once sessions came free failed after %v: %v", time.Since(start), err)
	} else if took := time.Since(start); took > 5*time.Second {
		// Far below the checks' interval (1 min); the backends of the
		// sessions closed may take a moment to exit on a busy machine,
		// and the write waits for room until they have.
		t.Errorf("the write once sessions came free took %v", took)
	}
	start = time.Now()
	var n int
	if err := r.QueryRow(ctx, "SELECT count(*) FROM rf_full").Scan(&n); err != nil {
		t.Errorf("the read once sessions came free failed after %v: %v", time.Since(start), err)
	}
	t.Logf("the primary at the end: %+v", nodeStat(r, name))
}

// TestRoomfaultBeginWaitsForRoom: a plain Begin (no read_your_writes
// session) on a primary whose role has no session left, one of which
// closes 300 ms later, waits for room as a write through Exec does
// (awaitRoom, connect_timeout 10 s), and its transaction commits. Before,
// pgxpool's BeginTx failed at once with 53300.
func TestRoomfaultBeginWaitsForRoom(t *testing.T) {
	ctx := context.Background()
	topo, a := fullPrimary(t)
	r := newRouter(t, a)
	held := holdAll(t, topo, "r13_lim")
	go func() {
		time.Sleep(300 * time.Millisecond)
		held[0].Close(context.Background())
	}()
	start := time.Now()
	tx, err := r.Begin(ctx)
	if err != nil {
		t.Fatalf("Begin failed after %v although a session came free after 300 ms: %v", time.Since(start), err)
	}
	if _, err := tx.Exec(ctx, "INSERT INTO r13_full VALUES (1)"); err != nil {
		tx.Rollback(ctx)
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("the transaction committed after %v", time.Since(start))
}
