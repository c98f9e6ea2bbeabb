package routertest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// serverUser is the account that runs initdb, pg_ctl and postgres. PostgreSQL
// refuses to run as root, so a root process hands the servers to the postgres
// user; anyone else runs them as themselves (nil).
type serverUser struct {
	name     string
	uid, gid uint32
}

func lookupServerUser() (*serverUser, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("routertest: running as root, so the servers must run as the postgres user "+
			"(PostgreSQL refuses to run as root), but: %w; create it (useradd --system postgres) or run as another user", err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("routertest: postgres user: uid %q: %w", u.Uid, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("routertest: postgres user: gid %q: %w", u.Gid, err)
	}
	return &serverUser{name: u.Username, uid: uint32(uid), gid: uint32(gid)}, nil
}

// chown gives path to the server user; a no-op when servers run as ourselves.
func (u *serverUser) chown(path string) error {
	if u == nil {
		return nil
	}
	return os.Lchown(path, int(u.uid), int(u.gid))
}

// checkTraversable makes sure the server user can reach dir: a data dir below
// a directory such as /root (0700) fails in initdb with a bare "permission
// denied", so say which directory is in the way instead.
func (u *serverUser) checkTraversable(dir string) error {
	if u == nil {
		return nil
	}
	for d := dir; ; d = filepath.Dir(d) {
		info, err := os.Stat(d)
		if err != nil {
			return fmt.Errorf("routertest: %w", err)
		}
		uid, gid, ok := fileOwner(info)
		traversable := info.Mode().Perm()&0o001 != 0 ||
			ok && uid == u.uid && info.Mode().Perm()&0o100 != 0 ||
			ok && gid == u.gid && info.Mode().Perm()&0o010 != 0
		if !traversable {
			return fmt.Errorf("routertest: the servers run as the %s user, who cannot enter %s (mode %v); "+
				"chmod o+x %s or keep the topology elsewhere", u.name, d, info.Mode().Perm(), d)
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}

// command prepares one of the server binaries to run as the server user.
func (t *Topology) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(t.binDir, name), args...)
	// The working directory must be one the server user may enter.
	cmd.Dir = t.Dir
	cmd.Env = serverEnv()
	if t.user != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
		t.user.runAs(cmd.SysProcAttr)
	}
	// pg_ctl start leaves a daemon behind; should it ever inherit our output
	// pipe, do not wait for the daemon to close it.
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// run runs a server binary and returns its error with its output attached.
func (t *Topology) run(ctx context.Context, name string, args ...string) error {
	cmd := t.command(ctx, name, args...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(out.String())
		if msg == "" {
			return fmt.Errorf("%s: %w", name, err)
		}
		return fmt.Errorf("%s: %w: %s", name, err, msg)
	}
	return nil
}

// serverEnv is the environment minus what would change the servers'
// behaviour behind routertest's back: libpq's PG* variables (PGPORT sets the
// server's default port, PGDATA the data dir) and the locale, which initdb
// would otherwise bake into the cluster.
func serverEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "PG") || strings.HasPrefix(name, "LC_") || name == "LANG" || name == "LANGUAGE" {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "LC_ALL=C")
}

// processStart identifies a running process by its pid and start time (in
// clock ticks since boot, field 22 of /proc/PID/stat), so that a reused pid
// is not taken for the process that once had it. It returns "" where /proc
// does not exist.
func processStart(pid int) string {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	// The command name in parentheses may contain spaces: count from the last ')'.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return ""
	}
	fields := strings.Fields(string(stat[i+1:]))
	const startTime = 22 - 3 // fields 1 and 2 (pid, comm) are before ')'; field 3 is fields[0]
	if len(fields) <= startTime {
		return ""
	}
	return fields[startTime]
}
