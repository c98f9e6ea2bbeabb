package routertest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// frozen records the processes [Node.Freeze] stopped, per node, so that
// [Node.Thaw], [Node.Stop] and [Topology.Close] can resume them whatever
// happens to the test in between.
type frozen struct {
	mu   sync.Mutex
	pids map[*Node][]int
}

// Freeze stops every process of the node's server with SIGSTOP, the
// postmaster first (so it forks nothing new) and then each of its children:
// the server hangs as a frozen VM or a network black hole would. Connections
// stay open and connection attempts are accepted by the kernel, but nothing
// answers. [Node.Thaw] resumes it; [Node.Stop] and [Topology.Close] thaw
// it first, so a test that fails while a node is frozen leaves nothing
// stopped behind. It needs Linux's /proc.
func (n *Node) Freeze() error {
	pm, err := n.postmasterPID()
	if err != nil {
		return n.errorf("freezing", err)
	}
	t := n.t
	t.frozen.mu.Lock()
	defer t.frozen.mu.Unlock()
	if t.frozen.pids == nil {
		t.frozen.pids = map[*Node][]int{}
	}
	if len(t.frozen.pids[n]) > 0 {
		return nil // frozen already
	}
	stopped := map[int]bool{}
	stop := func(pid int) error {
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil && !errors.Is(err, syscall.ESRCH) {
			return err
		}
		stopped[pid] = true
		t.frozen.pids[n] = append(t.frozen.pids[n], pid)
		return nil
	}
	if err := stop(pm); err != nil {
		return n.errorf("freezing", err)
	}
	// A child forked just before the postmaster stopped shows up on a
	// second pass: stop until a pass finds none left.
	for {
		children, err := childrenOf(pm)
		if err != nil {
			n.thawLocked()
			return n.errorf("freezing", err)
		}
		more := false
		for _, pid := range children {
			if !stopped[pid] {
				more = true
				if err := stop(pid); err != nil {
					n.thawLocked()
					return n.errorf("freezing", err)
				}
			}
		}
		if !more {
			return nil
		}
	}
}

// Thaw resumes a node stopped by [Node.Freeze]. Thawing a node that is not
// frozen does nothing.
func (n *Node) Thaw() error {
	n.t.frozen.mu.Lock()
	defer n.t.frozen.mu.Unlock()
	if err := n.thawLocked(); err != nil {
		return n.errorf("thawing", err)
	}
	return nil
}

func (n *Node) thawLocked() error {
	var errs []error
	pids := n.t.frozen.pids[n]
	// Children first, the postmaster (the first stopped) last.
	for i := len(pids) - 1; i >= 0; i-- {
		if err := syscall.Kill(pids[i], syscall.SIGCONT); err != nil && !errors.Is(err, syscall.ESRCH) {
			errs = append(errs, err)
		}
	}
	delete(n.t.frozen.pids, n)
	return errors.Join(errs...)
}

// thawAll resumes every frozen node of t.
func (t *Topology) thawAll() error {
	t.frozen.mu.Lock()
	defer t.frozen.mu.Unlock()
	var errs []error
	for n := range t.frozen.pids {
		if err := n.thawLocked(); err != nil {
			errs = append(errs, n.errorf("thawing", err))
		}
	}
	return errors.Join(errs...)
}

// postmasterPID reads the postmaster's pid from the first line of
// postmaster.pid in the data directory.
func (n *Node) postmasterPID() (int, error) {
	data, err := os.ReadFile(filepath.Join(n.DataDir, "postmaster.pid"))
	if err != nil {
		return 0, fmt.Errorf("the server is not running: %w", err)
	}
	first, _, _ := strings.Cut(string(data), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("postmaster.pid does not start with a pid: %q", first)
	}
	return pid, nil
}

// childrenOf lists the processes whose parent is pid, from /proc: the
// kernel's list of its children where it keeps one (fast, whatever else
// runs on the machine), else every process's parent.
func childrenOf(pid int) ([]int, error) {
	if data, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid)); err == nil {
		var out []int
		for _, f := range strings.Fields(string(data)) {
			if child, err := strconv.Atoi(f); err == nil {
				out = append(out, child)
			}
		}
		return out, nil
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("listing processes needs /proc (Linux): %w", err)
	}
	var out []int
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // gone meanwhile
		}
		// The command name in parentheses may contain spaces: count from
		// the last ')'. Field 4, the parent's pid, is the second after it.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		fields := strings.Fields(string(stat[i+1:]))
		if len(fields) > 1 && fields[1] == strconv.Itoa(pid) {
			out = append(out, child)
		}
	}
	return out, nil
}
