package routerlib_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// TestKeptConnsUnderReloadAndClose: eight readers on two connections a
// node, while the file flips between listing both standbys and listing
// one (the other's pool closes under kept connections and reads in
// flight), then Close under load: no read fails before Close, none begun
// after a reload returned runs on the standby it dropped, and every call
// after Close ends with ErrClosed, Close returning promptly.
func TestKeptConnsUnderReloadAndClose(t *testing.T) {
	topo := routertest.Shared(t)
	both := topo.Artifact()
	both.Pool.MaxConns = 2
	one := both
	one.Nodes = both.Nodes[:2] // the primary and replica-1
	r, path := openRouter(t, both, routerlib.WithWatch(0))
	ctx := context.Background()
	stop := make(chan struct{})
	wait := readLoadWith(r, loadOpts{readers: 8}, stop)
	gone := both.Nodes[2] // replica-2, which one drops
	for i := range 20 {
		a := both
		if i%2 == 0 {
			a = one
		}
		writeFile(t, path, a)
		if err := r.Reload(ctx); err != nil {
			t.Fatalf("reload %d: %v", i, err)
		}
		// A read begun once the reload returned does not run on a node
		// the file no longer lists.
		for range 5 {
			var port int
			if err := r.QueryRow(ctx, "SELECT inet_server_port()").Scan(&port); err != nil {
				t.Errorf("a read after reload %d: %v", i, err)
			} else if i%2 == 0 && port == gone.Port {
				t.Errorf("a read after reload %d, which dropped %s, ran on it", i, gone.Name)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	close(stop)
	l := wait()
	t.Logf("%d reads during 20 reloads, %d failed", l.reads, l.failed)
	if l.failed != 0 {
		t.Errorf("%d of %d reads failed during reloads; first: %v", l.failed, l.reads, l.firstErr)
	}

	// Close under load.
	var wg sync.WaitGroup
	var afterClose atomic.Int64
	var wrong atomic.Value
	var closed atomic.Bool
	for range 8 {
		wg.Go(func() {
			for {
				var v int
				after := closed.Load()
				err := r.QueryRow(ctx, "SELECT 1").Scan(&v)
				switch {
				case after && !errors.Is(err, routerlib.ErrClosed):
					wrong.CompareAndSwap(nil, err) // begun after Close returned
				case err != nil && !errors.Is(err, routerlib.ErrClosed):
					wrong.CompareAndSwap(nil, err) // in flight at Close
				}
				if after && afterClose.Add(1) > 200 {
					return
				}
			}
		})
	}
	time.Sleep(200 * time.Millisecond)
	start := time.Now()
	r.Close()
	took := time.Since(start)
	closed.Store(true)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("readers still running 10 s after Close")
	}
	t.Logf("Close under load took %v", took)
	if took > 3*time.Second {
		t.Errorf("Close under load took %v", took)
	}
	if w := wrong.Load(); w != nil {
		t.Errorf("a read at or after Close: %v, want success or ErrClosed", w)
	}
}

// TestKeptConnsTerminatedTogether: every kept session of the only
// replica ended at once (pg_terminate_backend over the application's
// sessions): the reads after it succeed, and the replica serves again.
func TestKeptConnsTerminatedTogether(t *testing.T) {
	topo := routertest.Shared(t)
	const app = "rt4_kept_terminated"
	a := oneReplica(topo, 4)
	r := newRouter(t, a, withApplicationName(app))
	ctx := context.Background()
	replica := topo.Standbys[0]
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			var v int
			_ = r.QueryRow(ctx, "SELECT 1 FROM pg_sleep(0.2)").Scan(&v)
		})
	}
	wg.Wait()
	kept := r.KeptForTest(a.Nodes[1].Name)
	var ended int
	if err := replica.QueryRow(ctx, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1", app).Scan(&ended); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d kept connections, %d sessions ended", kept, ended)
	failed := 0
	ports := map[int]int{}
	for range 20 {
		var port int
		if err := r.QueryRow(ctx, "SELECT inet_server_port()").Scan(&port); err != nil {
			failed++
			t.Log(err)
			continue
		}
		ports[port]++
	}
	t.Logf("20 reads after: %d failed, ports %v (replica %d)", failed, ports, replica.Port)
	if failed != 0 {
		t.Errorf("%d of 20 reads failed after the replica's sessions were ended", failed)
	}
	if ports[replica.Port] == 0 {
		t.Errorf("no read went back to the replica: %v", ports)
	}
}

// TestKeptConnsAfterCancelledReads: reads cut by their caller's deadline
// mid-query, on the only replica with one connection: the connection is
// not kept (pgx closed it), and the reads after succeed on the replica.
func TestKeptConnsAfterCancelledReads(t *testing.T) {
	topo := routertest.Shared(t)
	a := oneReplica(topo, 1)
	r := newRouter(t, a)
	ctx := context.Background()
	for i := range 5 {
		cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		var v int
		err := r.QueryRow(cctx, "SELECT 1 FROM pg_sleep(1)").Scan(&v)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("cut read %d: %v, want the deadline", i, err)
		}
		var port int
		if err := r.QueryRow(ctx, "SELECT inet_server_port()").Scan(&port); err != nil {
			t.Fatalf("the read after cut read %d: %v", i, err)
		}
		if port != topo.Standbys[0].Port {
			t.Errorf("the read after cut read %d ran on port %d, want the replica's %d", i, port, topo.Standbys[0].Port)
		}
	}
}
