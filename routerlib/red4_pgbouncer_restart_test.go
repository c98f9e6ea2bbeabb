package routerlib_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// writeOutcomes runs writers that each insert unique ids into table until
// stop closes, and sorts each id by what the router said of it: done, may
// have committed, or failed (did not commit).
type writeOutcomes struct {
	mu                sync.Mutex
	ok, maybe, failed []int
	firstFail         error
	slowest           time.Duration
	lastOK            time.Time
}

func red4WriteLoad(r *routerlib.Router, table string, writers int, stop <-chan struct{}) (wait func() *writeOutcomes) {
	var next atomic.Int64
	o := &writeOutcomes{}
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				id := int(next.Add(1))
				start := time.Now()
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				_, err := r.Exec(ctx, "INSERT INTO "+table+" (id) VALUES ($1)", id)
				cancel()
				took := time.Since(start)
				o.mu.Lock()
				o.slowest = max(o.slowest, took)
				switch {
				case err == nil:
					o.ok = append(o.ok, id)
					o.lastOK = time.Now()
				case errors.Is(err, routerlib.ErrMaybeCommitted):
					o.maybe = append(o.maybe, id)
				default:
					o.failed = append(o.failed, id)
					if o.firstFail == nil {
						o.firstFail = err
					}
				}
				o.mu.Unlock()
				if err != nil {
					time.Sleep(20 * time.Millisecond)
				}
			}
		})
	}
	return func() *writeOutcomes { wg.Wait(); return o }
}

// check compares the outcomes with the rows table holds on the primary:
// every id said done is there once, none said failed is there, none twice.
func (o *writeOutcomes) check(t *testing.T, topo *routertest.Topology, table string) {
	t.Helper()
	ctx := context.Background()
	conn, err := topo.Primary.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, "SELECT id, count(*) FROM "+table+" GROUP BY id")
	if err != nil {
		t.Fatal(err)
	}
	have := map[int]int{}
	for rows.Next() {
		var id, n int
		if err := rows.Scan(&id, &n); err != nil {
			t.Fatal(err)
		}
		have[id] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	var lost, phantom, twice, maybeIn int
	for _, id := range o.ok {
		if have[id] == 0 {
			lost++
		}
	}
	for _, id := range o.failed {
		if have[id] > 0 {
			phantom++
			if phantom == 1 {
				t.Logf("id %d was said not to have committed, and is on the primary", id)
			}
		}
	}
	for _, id := range o.maybe {
		if have[id] > 0 {
			maybeIn++
		}
	}
	for _, n := range have {
		if n > 1 {
			twice++
		}
	}
	t.Logf("%d writes done, %d may have committed (%d did), %d failed (first: %v); slowest %v", len(o.ok), len(o.maybe), maybeIn, len(o.failed), o.firstFail, o.slowest)
	if lost > 0 {
		t.Errorf("%d writes said done are not on the primary", lost)
	}
	if phantom > 0 {
		t.Errorf("%d writes said failed (not ErrMaybeCommitted) committed", phantom)
	}
	if twice > 0 {
		t.Errorf("%d ids written twice", twice)
	}
}

// restartBouncer kills n's PgBouncer (kill -9) and starts it again on the
// same port with the same configuration after down, as its supervisor
// would; the new process is stopped when the test ends.
func restartBouncer(t *testing.T, topo *routertest.Topology, n *routertest.Node, down time.Duration) {
	t.Helper()
	pid := bouncerPID(t, topo, n)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	time.Sleep(down)
	dir := filepath.Join(topo.Dir, n.Name+"-pgbouncer")
	ini := filepath.Join(dir, "pgbouncer.ini")
	fi, err := os.Stat(ini)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	bin := os.Getenv("ROUTERTEST_PGBOUNCER")
	if bin == "" {
		bin = "/usr/sbin/pgbouncer"
	}
	cmd := exec.Command(bin, ini)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if os.Getuid() == 0 {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: st.Uid, Gid: st.Gid}
	}
	out, err := os.Create(filepath.Join(t.TempDir(), "pgbouncer-restarted.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		out.Close()
	})
	eventually(t, 10*time.Second, fmt.Sprintf("%s's PgBouncer answering again", n.Name), func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, n.BouncerDSN())
		if err != nil {
			return false
		}
		c.Close(ctx)
		return true
	})
}

// TestRed4PgBouncerRestartUnderWrites: the primary's PgBouncer is killed
// (kill -9) and started again by its supervisor 1 s later, under four
// writers. A write said done is on the primary, one said failed without
// ErrMaybeCommitted is not, none is written twice, and writes are taken
// again soon after PgBouncer answers.
func TestRed4PgBouncerRestartUnderWrites(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(1), routertest.WithPgBouncer())
	ctx := context.Background()
	a := steadyHealth(topo.Artifact(), 200*time.Millisecond)
	r := newRouter(t, a, throughPgBouncer)
	if _, err := r.Exec(ctx, "CREATE TABLE bouncer_restart (id int)"); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	wait := red4WriteLoad(r, "bouncer_restart", 4, stop)
	time.Sleep(time.Second)
	restartBouncer(t, topo, topo.Primary, time.Second)
	restarted := time.Now()
	time.Sleep(3 * time.Second)
	close(stop)
	o := wait()
	o.check(t, topo, "bouncer_restart")
	if o.lastOK.Before(restarted) {
		t.Errorf("no write done in the 3 s after the primary's PgBouncer answered again: %+v", nodeStat(r, topo.Primary.Name))
	}
}

// TestRed4PrimaryKilledBehindPgBouncer: the primary's server (every
// process, kill -9) dies behind its PgBouncer, which stays up, and is
// started again 1 s later (its supervisor), under four writers; then
// PgBouncer is paused (PAUSE, SIGUSR1) for 3 s under them and resumed.
// Nothing said done is lost, nothing said failed committed, nothing is
// written twice, and writes are taken again once the server is back.
func TestRed4PrimaryKilledBehindPgBouncer(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(1), routertest.WithPgBouncer())
	ctx := context.Background()
	a := steadyHealth(topo.Artifact(), 200*time.Millisecond)
	r := newRouter(t, a, throughPgBouncer)
	if _, err := r.Exec(ctx, "CREATE TABLE killed_behind (id int)"); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	wait := red4WriteLoad(r, "killed_behind", 4, stop)
	time.Sleep(time.Second)
	killNode(t, topo.Primary)
	time.Sleep(time.Second)
	if err := topo.Primary.Start(ctx); err != nil {
		t.Fatal(err)
	}
	started := time.Now()
	time.Sleep(3 * time.Second)
	pid := bouncerPID(t, topo, topo.Primary)
	if err := syscall.Kill(pid, syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	if err := syscall.Kill(pid, syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	resumed := time.Now()
	time.Sleep(2 * time.Second)
	close(stop)
	o := wait()
	o.check(t, topo, "killed_behind")
	t.Logf("last write done %v after the server started again, %v after RESUME", o.lastOK.Sub(started), o.lastOK.Sub(resumed))
	if o.lastOK.Before(resumed) {
		t.Errorf("no write done in the 2 s after RESUME: %+v", nodeStat(r, topo.Primary.Name))
	}
}
