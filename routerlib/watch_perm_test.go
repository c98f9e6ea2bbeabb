//go:build unix

package routerlib_test

import (
	"context"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// unprivilegedRun is set in the process TestReloadAfterPermissionFixed
// starts as an unprivileged user: the router file it watches.
const unprivilegedRun = "ROUTERLIB_TEST_UNPRIVILEGED_FILE"

// TestReloadAfterPermissionFixed: a new router file arrives unreadable to
// the application (written as another user, or with a umask that leaves
// it 0600), so the reload is refused and the old topology stays in force.
// The operator fixes the mode with chmod, which changes neither the file's
// size nor its modification time: the watcher must still read it again.
// Tests run as root, who reads any file, so the router runs in a child
// process (this test binary) as the PostgreSQL server's user.
func TestReloadAfterPermissionFixed(t *testing.T) {
	if path := os.Getenv(unprivilegedRun); path != "" {
		reloadAfterChmod(t, path)
		return
	}
	if os.Geteuid() != 0 {
		// Not root: this process itself is the unprivileged user.
		reloadAfterChmod(t, writeTopology(t, t.TempDir()))
		return
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		t.Fatalf("running as root, the test needs an unprivileged user to run the router as: %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	// t.TempDir's parent is root's alone: the user could not reach it.
	dir, err := os.MkdirTemp("", "routerlib-perm-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := writeTopology(t, dir)
	bin := filepath.Join(dir, "routerlib.test")
	copyExecutable(t, bin)
	for _, p := range []string{dir, path, bin} {
		if err := os.Chown(p, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(bin, "-test.run=^TestReloadAfterPermissionFixed$", "-test.v", "-test.count=1")
	cmd.Dir = dir
	// No server binaries in the child: its TestMain starts no topology; it
	// uses the one this process started, through the file.
	cmd.Env = append(os.Environ(), unprivilegedRun+"="+path, "ROUTERTEST_PGBIN="+filepath.Join(dir, "none"), "CI=", "HOME="+dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	out, err := cmd.CombinedOutput()
	t.Logf("router process, as user %s:\n%s", u.Username, out)
	if err != nil {
		t.Fatalf("router process: %v", err)
	}
	if !strings.Contains(string(out), "--- PASS: TestReloadAfterPermissionFixed") {
		t.Fatal("the router process did not run the test")
	}
}

// writeTopology writes the shared topology's router file into dir.
func writeTopology(t *testing.T, dir string) string {
	path := filepath.Join(dir, "router.json")
	writeFile(t, path, steadyHealth(routertest.Shared(t).Artifact(), 100*time.Millisecond))
	return path
}

func copyExecutable(t *testing.T, dst string) {
	src, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// reloadAfterChmod runs as a user without the privilege to read any file.
func reloadAfterChmod(t *testing.T, path string) {
	ctx := context.Background()
	refused := make(chan error, 10)
	r, err := routerlib.Open(ctx, path, routerlib.WithWatch(20*time.Millisecond), routerlib.WithOnReloadError(func(err error) {
		select {
		case refused <- err:
		default:
		}
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	a, err := artifact.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Nodes) < 2 {
		t.Fatalf("the topology has %d nodes; the test drops a replica", len(a.Nodes))
	}
	dropped := a.Nodes[len(a.Nodes)-1].Name
	a.Nodes = a.Nodes[:len(a.Nodes)-1]
	next, err := artifact.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	// The new file replaces the old one whole, as Terraform writes it, but
	// with a mode the application's user may not read.
	tmp := path + ".new"
	if err := os.WriteFile(tmp, next, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(tmp, 0); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-refused:
		t.Logf("refused, as it should be: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the unreadable router file was not reported")
	}
	if _, ok := r.NodeStat(dropped); !ok {
		t.Fatalf("node %q left while the new file could not be read", dropped)
	}
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	fixed := time.Now()
	for {
		if _, ok := r.NodeStat(dropped); !ok {
			t.Logf("the file was read again %v after its mode was fixed", time.Since(fixed).Round(time.Millisecond))
			return
		}
		if time.Since(fixed) > 5*time.Second {
			t.Fatalf("5s after chmod made the router file readable, the router still has node %q, which the file no longer lists: the watcher did not read it again", dropped)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
