package routerlib_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// oneReplica is the shared topology's primary and first standby: every
// read goes to the standby.
func oneReplica(topo *routertest.Topology, maxConns int32) artifact.Topology {
	a := topo.Artifact()
	a.Nodes = a.Nodes[:2]
	a.Pool.MaxConns = maxConns
	return a
}

// TestKeptConnsSkipPgxpool: reads one after another take the connection
// the replica kept from the last one, not pgxpool's (whose acquire and
// release take a lock and a semaphore every core shares), and Stat counts
// the kept connection idle, as it is.
func TestKeptConnsSkipPgxpool(t *testing.T) {
	topo := routertest.Shared(t)
	a := oneReplica(topo, 4)
	r := newRouter(t, a)
	ctx := context.Background()
	replica := a.Nodes[1].Name
	read := func() {
		t.Helper()
		var v int
		if err := r.QueryRow(ctx, "SELECT 1").Scan(&v); err != nil {
			t.Fatal(err)
		}
	}
	read()
	before, _ := r.NodeStat(replica)
	const reads = 50
	for range reads {
		read()
	}
	after, _ := r.NodeStat(replica)
	// A connection goes back to pgxpool every readConnsTick, so a slow
	// machine sees a few acquires; one a read is what pgxpool alone does.
	if n := after.Pool.AcquireCount - before.Pool.AcquireCount; n >= reads/2 {
		t.Errorf("%d reads acquired %d connections from pgxpool, want the kept one reused", reads, n)
	}
	if after.Reads-before.Reads != reads {
		t.Errorf("Stat counted %d reads, want %d", after.Reads-before.Reads, reads)
	}
	if after.Pool.AcquiredConns != 0 || after.Pool.IdleConns < 1 {
		t.Errorf("Stat after the reads: %d acquired, %d idle; want 0 acquired (the kept connection is idle)", after.Pool.AcquiredConns, after.Pool.IdleConns)
	}
}

// TestKeptConnsGoBack: a kept connection goes back to pgxpool when no read
// takes it (within readConnsTick, so that pgxpool's lifetime, idle time and
// ping apply to it as to any idle connection).
func TestKeptConnsGoBack(t *testing.T) {
	topo := routertest.Shared(t)
	a := oneReplica(topo, 4)
	r := newRouter(t, a)
	replica := a.Nodes[1].Name
	var v int
	if err := r.QueryRow(context.Background(), "SELECT 1").Scan(&v); err != nil {
		t.Fatal(err)
	}
	if k := r.KeptForTest(replica); k != 1 {
		t.Fatalf("after a read the replica keeps %d connections, want 1", k)
	}
	awaitKeptGoneBack(t, r, replica, r.KeptForTest)
}

// awaitKeptGoneBack waits until node keeps no connection (kept counts
// them), which readConnsTick bounds, and checks that pgxpool then counts
// none acquired.
func awaitKeptGoneBack(t *testing.T, r *routerlib.Router, node string, kept func(string) int32) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for kept(node) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the kept connection did not go back to pgxpool")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if st, _ := r.NodeStat(node); st.Pool.AcquiredConns != 0 {
		t.Errorf("after the connection went back, pgxpool counts %d acquired, want 0", st.Pool.AcquiredConns)
	}
}

// TestKeptConnsServeOtherCalls: with one connection per node, the one a
// replica keeps between reads is the one a read-only transaction, a batch
// and the other reads take: nothing waits for ever in pgxpool while it is
// kept, whichever call comes first.
func TestKeptConnsServeOtherCalls(t *testing.T) {
	topo := routertest.Shared(t)
	// Nothing gives a kept connection back on a timer: only the calls do.
	r := newRouter(t, oneReplica(topo, 1), routerlib.WithKeptTickForTest(time.Hour))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	calls := []func() error{
		func() error {
			var v int
			return r.QueryRow(ctx, "SELECT 1").Scan(&v)
		},
		func() error {
			_, err := r.Exec(ctx, "SELECT 1")
			return err
		},
		func() error {
			tx, err := r.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
			if err != nil {
				return err
			}
			var v int
			if err := tx.QueryRow(ctx, "SELECT 1").Scan(&v); err != nil {
				return err
			}
			return tx.Rollback(ctx)
		},
		func() error {
			b := &pgx.Batch{}
			b.Queue("SELECT 1")
			return r.SendBatch(ctx, b).Close()
		},
	}
	// One after another: each call follows a read, whose connection is
	// kept; then from four goroutines at once.
	afterKeptAndTogether(t, calls, "a read")
}

// afterKeptAndTogether runs each of calls right after calls[0] (whose
// connection is kept), then all of them from four goroutines at once,
// and fails the test for each call that fails.
func afterKeptAndTogether(t *testing.T, calls []func() error, first string) {
	t.Helper()
	for i, call := range calls {
		if err := calls[0](); err != nil {
			t.Fatal(err)
		}
		if err := call(); err != nil {
			t.Fatalf("call %d after %s: %v", i, first, err)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4*len(calls))
	for g := range 4 {
		wg.Go(func() {
			for i := range 20 {
				if err := calls[(g+i)%len(calls)](); err != nil {
					errs <- fmt.Errorf("goroutine %d, call %d: %w", g, (g+i)%len(calls), err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
