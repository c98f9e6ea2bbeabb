//go:build unix

package routerlib_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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
// PgBouncer (held there until the resume, or refused before it reached the
// server) says what happened: success with its row, or an error with no row
// unless the error says it may have committed.
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
	wait := readLoadWith(r, loadOpts{readers: 4, timeout: 15 * time.Second, slowAfter: 5 * time.Second}, stop)
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
	l := wait()
	t.Logf("replica's PgBouncer paused 6 s: %d reads, %d failed, %d over 5 s, slowest %v; back %v after RESUME", l.reads, l.failed, l.slow, l.slowest, back)
	if l.failed != 0 {
		t.Errorf("%d reads failed; first: %v", l.failed, l.firstErr)
	}
	if l.slow != 0 {
		t.Errorf("%d reads took over 5 s: they waited out the pause (slowest %v)", l.slow, l.slowest)
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
