package routertest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// stateFile, in a topology's directory, records what Open needs to attach to
// the topology again, and who owns a temporary one.
const stateFile = "routertest.json"

type state struct {
	BinDir  string      `json:"bin_dir"`
	Version int         `json:"version"`
	Nodes   []stateNode `json:"nodes"` // primary first; data dirs are Dir/Name
	// A temporary topology belongs to one process; once that process is gone
	// its servers and files are reaped by the next New.
	Temporary  bool   `json:"temporary,omitempty"`
	OwnerPID   int    `json:"owner_pid,omitempty"`
	OwnerStart string `json:"owner_start,omitempty"`
}

type stateNode struct {
	Name    string `json:"name"`
	Port    int    `json:"port"`
	Standby bool   `json:"standby"` // as created; a promoted standby is still listed as one
}

// writeState records the topology in its directory, atomically.
func (t *Topology) writeState() error {
	s := state{BinDir: t.binDir, Version: t.Version, Temporary: t.temporary}
	if t.temporary {
		s.OwnerPID = os.Getpid()
		s.OwnerStart = processStart(s.OwnerPID)
	}
	for _, n := range t.Nodes() {
		s.Nodes = append(s.Nodes, stateNode{Name: n.Name, Port: n.Port, Standby: n != t.Primary})
	}
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(t.Dir, stateFile), append(data, '\n'), 0o644)
}

func readState(dir string) (state, error) {
	var s state
	data, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal(data, &s); err != nil {
		return s, fmt.Errorf("%s: %w", filepath.Join(dir, stateFile), err)
	}
	return s, nil
}

// Open attaches to a topology that [New] created with [WithDir] dir, from this
// process or an earlier one. Its servers may be running or stopped; start
// stopped ones with [Node.Start]. Close stops the servers and keeps the
// files.
func Open(dir string) (*Topology, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("routertest: %w", err)
	}
	s, err := readState(dir)
	if err != nil {
		return nil, fmt.Errorf("routertest: %s holds no topology (start one with New and WithDir): %w", dir, err)
	}
	if len(s.Nodes) == 0 || s.Nodes[0].Standby {
		return nil, fmt.Errorf("routertest: %s: the state file lists no primary", filepath.Join(dir, stateFile))
	}
	u, err := lookupServerUser()
	if err != nil {
		return nil, err
	}
	t := &Topology{Dir: dir, Version: s.Version, binDir: s.BinDir, user: u, logf: func(string, ...any) {}}
	if err := checkBinDir(s.BinDir); err != nil {
		return nil, fmt.Errorf("routertest: %s was started with binaries that are gone: %w", dir, err)
	}
	for _, sn := range s.Nodes {
		n := t.newNode(sn.Name, sn.Port)
		if sn.Standby {
			t.Standbys = append(t.Standbys, n)
		} else {
			t.Primary = n
		}
	}
	return t, nil
}

// reapOrphans stops the servers and removes the directories of temporary
// topologies whose owning process died without calling Close (a test binary
// killed by -timeout, say), so that they do not pile up across runs.
func reapOrphans(ctx context.Context, logf func(string, ...any)) {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), tempPattern+"*"))
	for _, dir := range dirs {
		s, err := readState(dir)
		if err != nil || !s.Temporary || s.OwnerPID == 0 || s.OwnerStart == "" {
			continue
		}
		if start := processStart(s.OwnerPID); start == s.OwnerStart || start == "" && !procMounted() {
			continue // still running, or we cannot tell
		}
		t, err := Open(dir)
		if err != nil {
			continue
		}
		t.temporary = true
		logf("routertest: removing %s, left behind by process %d", dir, s.OwnerPID)
		stopCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
		_ = t.close(stopCtx)
		cancel()
	}
}

const tempPattern = "routertest-"

func procMounted() bool {
	_, err := os.Stat("/proc/self/stat")
	return err == nil
}

// writeFileAtomic replaces path with data, so that a reader sees the old file
// or the new one, never a part.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, perm)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}
