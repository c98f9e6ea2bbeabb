package routerlib_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// bouncerPID finds the PgBouncer routertest started for n (its
// configuration is in topo.Dir/<node>-pgbouncer).
func bouncerPID(t *testing.T, topo *routertest.Topology, n *routertest.Node) int {
	t.Helper()
	dir := filepath.Join(topo.Dir, n.Name+"-pgbouncer")
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil || !strings.Contains(string(b), "pgbouncer") || !strings.Contains(string(b), dir) {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
		return pid
	}
	t.Fatalf("no pgbouncer process for %s", dir)
	return 0
}

// TestPgBouncerPaused: a replica's PgBouncer paused (SIGUSR1, as PAUSE on
// its console: it holds every query) for 6 s: reads leave it and do not
// fail, none waits out the pause; a write through the primary's paused
// PgBouncer, which never reached the server, did not commit.
func TestPgBouncerPaused(t *testing.T) {
	topo := bouncedTopology(t)
	ctx := context.Background()
	a := steadyHealth(topo.Artifact(), 200*time.Millisecond)
	r := newRouter(t, a, throughPgBouncer)
	if _, err := r.Exec(ctx, "CREATE TABLE paused (id int)"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "both replicas in rotation", func() bool {
		return nodeStat(r, a.Nodes[1].Name).Readable && nodeStat(r, a.Nodes[2].Name).Readable
	})
	pid := bouncerPID(t, topo, topo.Standbys[0])
	stop := make(chan struct{})
	var reads, failed, slow atomic.Int64
	var maxTook atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
				start := time.Now()
				var v int
				err := r.QueryRow(cctx, "SELECT 1").Scan(&v)
				cancel()
				took := time.Since(start)
				if int64(took) > maxTook.Load() {
					maxTook.Store(int64(took))
				}
				reads.Add(1)
				if took > 5*time.Second {
					slow.Add(1)
				}
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
				}
			}
		})
	}
	time.Sleep(300 * time.Millisecond)
	if err := syscall.Kill(pid, syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	time.Sleep(6 * time.Second)
	if err := syscall.Kill(pid, syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	back := eventually(t, 15*time.Second, "the replica back after RESUME", func() bool { return nodeStat(r, a.Nodes[1].Name).Readable })
	close(stop)
	wg.Wait()
	t.Logf("replica's PgBouncer paused 6 s: %d reads, %d failed, %d over 5 s, slowest %v; back %v after RESUME", reads.Load(), failed.Load(), slow.Load(), time.Duration(maxTook.Load()), back)
	if failed.Load() != 0 {
		t.Errorf("%d reads failed; first: %v", failed.Load(), firstErr.Load())
	}

	// The primary's PgBouncer paused under a write.
	ppid := bouncerPID(t, topo, topo.Primary)
	if err := syscall.Kill(ppid, syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	start := time.Now()
	_, werr := r.Exec(ctx, "INSERT INTO paused VALUES (1)")
	took := time.Since(start)
	if err := syscall.Kill(ppid, syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	var n int
	if err := topo.Primary.QueryRow(ctx, "SELECT count(*) FROM paused").Scan(&n); err != nil {
		t.Fatal(err)
	}
	t.Logf("a write through the primary's paused PgBouncer: %v after %v (ErrMaybeCommitted %v); %d rows on the primary", werr, took, errors.Is(werr, routerlib.ErrMaybeCommitted), n)
	if werr == nil && n != 1 || werr != nil && n != 0 && !errors.Is(werr, routerlib.ErrMaybeCommitted) {
		t.Errorf("the write said %v and %d rows are on the primary", werr, n)
	}
}
