//go:build unix

package routerlib_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// killNode kills every process of n's server with SIGKILL, as a machine
// that dies: the kernel closes their sockets (a connection reset, not a
// FATAL from the server), and nothing shuts down cleanly. The postmaster
// is stopped first so that it forks nothing meanwhile.
func killNode(t *testing.T, n *routertest.Node) {
	t.Helper()
	pidFile := filepath.Join(n.DataDir, "postmaster.pid")
	pid, err := n.PostmasterPID()
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	children, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range strings.Fields(string(children)) {
		if child, err := strconv.Atoi(f); err == nil {
			_ = syscall.Kill(child, syscall.SIGKILL)
		}
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// What the dead server leaves: routertest then finds it stopped.
	if err := os.Remove(pidFile); err != nil {
		t.Fatal(err)
	}
}

// pausePostmaster stops the postmaster of n alone (SIGSTOP): the backends
// already connected keep serving, a new connection waits. It returns the
// function that resumes it, which also runs when the test ends.
func pausePostmaster(t *testing.T, n *routertest.Node) (resume func()) {
	t.Helper()
	pid, err := n.PostmasterPID()
	if err != nil {
		t.Fatalf("%s: %v", n.Name, err)
	}
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	resume = func() {
		once.Do(func() {
			if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
				t.Error(err)
			}
		})
	}
	t.Cleanup(resume)
	return resume
}
