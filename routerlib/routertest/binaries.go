package routertest

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// ErrNoBinaries reports that the PostgreSQL server binaries (initdb, pg_ctl,
// postgres) were not found. [Start] turns it into a skipped test, or a failed
// one when $CI is "true"; callers of [New] test for it with [errors.Is].
var ErrNoBinaries = errors.New("PostgreSQL server binaries not found")

// serverBinaries are the programs routertest runs; pg_basebackup and psql are
// deliberately not among them, since some server builds ship without them.
var serverBinaries = []string{"initdb", "pg_ctl", "postgres"}

// modulePath names this repository's go.mod, whose .cache/postgres holds the
// servers that tools/postgres/install.sh installs.
const modulePath = "github.com/pgreplication/terraform-provider-pgreplication"

// findBinDir returns the directory of the server binaries, looked up in this
// order: WithBinDir; WithVersion; $ROUTERTEST_PGBIN; initdb on $PATH; the
// highest /usr/lib/postgresql/*/bin.
func findBinDir(c *config) (string, error) {
	if c.binDir != "" {
		return c.binDir, checkBinDir(c.binDir)
	}
	env := os.Getenv("ROUTERTEST_PGBIN")
	if c.version != 0 {
		return findVersion(c.version, env)
	}
	if env != "" {
		if err := checkBinDir(env); err != nil {
			return "", fmt.Errorf("%w (from $ROUTERTEST_PGBIN)", err)
		}
		return env, nil
	}
	if initdb, err := exec.LookPath("initdb"); err == nil {
		// Resolve symlinks such as /usr/local/bin/initdb so that pg_ctl and
		// postgres come from the same installation as initdb.
		if real, err := filepath.EvalSymlinks(initdb); err == nil {
			initdb = real
		}
		dir := filepath.Dir(initdb)
		if checkBinDir(dir) == nil {
			return dir, nil
		}
	}
	if dirs := debianBinDirs(); len(dirs) > 0 {
		return dirs[len(dirs)-1], nil
	}
	return "", fmt.Errorf("%w: initdb is not on $PATH nor in /usr/lib/postgresql/*/bin; "+
		"set $ROUTERTEST_PGBIN to a PostgreSQL bin dir, or run tools/postgres/install.sh VERSION", ErrNoBinaries)
}

func findVersion(major int, env string) (string, error) {
	var candidates []string
	if env != "" {
		if v, err := serverVersion(env); err == nil && v == major {
			candidates = append(candidates, env)
		}
	}
	candidates = append(candidates, fmt.Sprintf("/usr/lib/postgresql/%d/bin", major))
	if root := repoRoot(); root != "" {
		candidates = append(candidates, filepath.Join(root, ".cache", "postgres", strconv.Itoa(major), "bin"))
	}
	for _, dir := range candidates {
		if checkBinDir(dir) == nil {
			return dir, nil
		}
	}
	return "", fmt.Errorf("%w: PostgreSQL %d is not in %s; run tools/postgres/install.sh %d, or set $ROUTERTEST_PGBIN",
		ErrNoBinaries, major, strings.Join(candidates, " nor "), major)
}

// checkBinDir names the first server binary missing from dir.
func checkBinDir(dir string) error {
	for _, name := range serverBinaries {
		path := filepath.Join(dir, name)
		info, err := os.Stat(path)
		if err != nil || info.IsDir() || info.Mode()&0o111 == 0 {
			return fmt.Errorf("%w: %s is missing", ErrNoBinaries, path)
		}
	}
	return nil
}

// debianBinDirs lists /usr/lib/postgresql/*/bin holding a server, lowest
// major version first.
func debianBinDirs() []string {
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	type dir struct {
		path  string
		major int
	}
	var dirs []dir
	for _, m := range matches {
		major, err := strconv.Atoi(filepath.Base(filepath.Dir(m)))
		if err == nil && checkBinDir(m) == nil {
			dirs = append(dirs, dir{m, major})
		}
	}
	sort.Slice(dirs, func(i, j int) bool { return dirs[i].major < dirs[j].major })
	paths := make([]string, len(dirs))
	for i, d := range dirs {
		paths[i] = d.path
	}
	return paths
}

// SkipBelow skips tb when the servers that [Start] would run with opts are
// older than PostgreSQL major, before anything starts: a test of a feature
// of newer servers costs nothing on older ones. why says what needs major.
// Like Start, it skips when no server binaries are found, unless $CI is
// "true".
func SkipBelow(tb testing.TB, major int, why string, opts ...Option) {
	tb.Helper()
	c := newConfig(opts)
	binDir, err := findBinDir(&c)
	if errors.Is(err, ErrNoBinaries) && os.Getenv("CI") != "true" {
		tb.Skip(err)
		return
	}
	if err != nil {
		tb.Fatal(err)
		return
	}
	version, err := serverVersion(binDir)
	if err != nil {
		tb.Fatal(err)
		return
	}
	if version < major {
		tb.Skipf("PostgreSQL %d (%s): %s needs PostgreSQL %d or later", version, binDir, why, major)
	}
}

var versionOutput = regexp.MustCompile(`\(PostgreSQL\) (\d+)`)

// serverVersion returns the major version of the postgres binary in binDir,
// from `postgres --version` ("postgres (PostgreSQL) 17.10").
func serverVersion(binDir string) (int, error) {
	out, err := exec.Command(filepath.Join(binDir, "postgres"), "--version").Output()
	if err != nil {
		return 0, fmt.Errorf("routertest: %s --version: %w", filepath.Join(binDir, "postgres"), err)
	}
	m := versionOutput.FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("routertest: cannot read the version in %q", strings.TrimSpace(string(out)))
	}
	return strconv.Atoi(string(m[1]))
}

// repoRoot walks up from the working directory to this repository's go.mod,
// and returns "" outside it (an application using routertest has its own).
func repoRoot() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		if modulePathOf(filepath.Join(dir, "go.mod")) == modulePath {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

func modulePathOf(gomod string) string {
	f, err := os.Open(gomod)
	if err != nil {
		return ""
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(s.Text()), "module "); ok {
			return strings.Trim(strings.TrimSpace(rest), `"`)
		}
	}
	return ""
}
