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
	"time"
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
// answers. Freeze returns once every one of those processes shows as
// stopped. [Node.Thaw] resumes it; [Node.Stop] and [Topology.Close] thaw
// it first, so a test that fails while a node is frozen leaves nothing
// stopped behind. It needs Linux's /proc.
func (n *Node) Freeze() error {
	pm, err := n.PostmasterPID()
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
		if err := stopProcess(pid); err != nil {
			return err
		}
		stopped[pid] = true
		t.frozen.pids[n] = append(t.frozen.pids[n], pid)
		return nil
	}
	if err := stop(pm); err != nil {
		return n.errorf("freezing", err)
	}
	// kill returns before the signal takes effect: a postmaster still
	// running (in the middle of a fork, on the other CPU, or waiting for
	// one under load) forks children after the last pass below has looked.
	// Once it shows as stopped it forks nothing more, so the children are
	// listed only then, and Freeze returns only when each of them shows as
	// stopped too: a backend that ran on after Freeze returned committed
	// writes on its open connection while the test took the node for
	// frozen.
	if err := waitStopped(pm); err != nil {
		n.thawLocked()
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
			break
		}
	}
	for _, pid := range t.frozen.pids[n] {
		if err := waitStopped(pid); err != nil {
			n.thawLocked()
			return n.errorf("freezing", err)
		}
	}
	return nil
}

// FreezeHost freezes the node as [Node.Freeze] does, and its PgBouncer
// ([WithPgBouncer]) with it, last: the host that runs both, frozen (a VM
// suspended, a host cut off). Clients of the PgBouncer then hang as the
// server's own would, cancel requests included. [Node.Thaw] resumes both,
// the PgBouncer first. Without a PgBouncer it is Freeze.
func (n *Node) FreezeHost() error {
	if err := n.Freeze(); err != nil {
		return err
	}
	if n.bouncer == nil {
		return nil
	}
	n.bouncer.mu.Lock()
	cmd := n.bouncer.cmd
	n.bouncer.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return nil
	}
	t := n.t
	t.frozen.mu.Lock()
	defer t.frozen.mu.Unlock()
	pid := cmd.Process.Pid
	if err := stopProcess(pid); err != nil {
		n.thawLocked()
		return n.errorf("freezing its PgBouncer", err)
	}
	t.frozen.pids[n] = append(t.frozen.pids[n], pid)
	if err := waitStopped(pid); err != nil {
		n.thawLocked()
		return n.errorf("freezing its PgBouncer", err)
	}
	return nil
}

// waitStopped waits until the process pid shows as stopped in /proc (state
// T), has exited (gone, or a zombie, X), or 10 s have passed.
func waitStopped(pid int) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		state, err := processState(pid)
		if err != nil || state == 'T' || state == 't' || state == 'Z' || state == 'X' {
			return nil // gone is as good as stopped
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("process %d still in state %c 10 s after SIGSTOP", pid, state)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// processState reads the state letter of /proc/pid/stat: the field after
// the command name, which is in parentheses and may hold spaces or ')'.
func processState(pid int) (byte, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 || i+2 >= len(stat) {
		return 0, fmt.Errorf("/proc/%d/stat: no state after the command name: %q", pid, stat)
	}
	return stat[i+2], nil
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
		if err := continueProcess(pids[i]); err != nil {
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

// PostmasterPID is the pid of the node's postmaster, from the first line
// of postmaster.pid in the data directory: for a test that signals the
// server itself (a smart shutdown, a paused postmaster).
func (n *Node) PostmasterPID() (int, error) {
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
