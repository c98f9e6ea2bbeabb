package routerlib_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

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
	a := steadyHealth(topo.Artifact(), 200*time.Millisecond)
	r := newRouter(t, a, throughPgBouncer)
	var restarted time.Time
	o := underWrites(t, topo, r, "bouncer_restart", func() {
		restartBouncer(t, topo, topo.Primary, time.Second)
		restarted = time.Now()
		time.Sleep(3 * time.Second)
	})
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
	var started, resumed time.Time
	o := underWrites(t, topo, r, "killed_behind", func() {
		killNode(t, topo.Primary)
		time.Sleep(time.Second)
		if err := topo.Primary.Start(ctx); err != nil {
			t.Fatal(err)
		}
		started = time.Now()
		time.Sleep(3 * time.Second)
		pid := bouncerPID(t, topo, topo.Primary)
		if err := syscall.Kill(pid, syscall.SIGUSR1); err != nil {
			t.Fatal(err)
		}
		time.Sleep(3 * time.Second)
		if err := syscall.Kill(pid, syscall.SIGUSR2); err != nil {
			t.Fatal(err)
		}
		resumed = time.Now()
		time.Sleep(2 * time.Second)
	})
	t.Logf("last write done %v after the server started again, %v after RESUME", o.lastOK.Sub(started), o.lastOK.Sub(resumed))
	if o.lastOK.Before(resumed) {
		t.Errorf("no write done in the 2 s after RESUME: %+v", nodeStat(r, topo.Primary.Name))
	}
}
