package routertest_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// serverMajor returns the major version that n reports in server_version_num.
func serverMajor(t *testing.T, n *routertest.Node) int {
	t.Helper()
	var num string
	if err := n.QueryRow(testContext(t), "SHOW server_version_num").Scan(&num); err != nil {
		t.Fatal(err)
	}
	v, err := strconv.Atoi(num)
	if err != nil {
		t.Fatal(err)
	}
	return v / 10000
}

// TestWithVersion runs the servers that tools/postgres/install.sh installs.
// A version that is not installed is skipped locally (make test-matrix
// installs one major at a time) but fails under CI=true, where make test has
// installed both.
func TestWithVersion(t *testing.T) {
	sharedTopology(t) // no binaries at all is Start's skip, or failure in CI
	for _, major := range []int{15, 17} {
		t.Run(strconv.Itoa(major), func(t *testing.T) {
			topo, err := routertest.New(testContext(t), routertest.WithVersion(major), routertest.WithStandbys(1))
			if errors.Is(err, routertest.ErrNoBinaries) {
				skipUnlessCI(t, err)
			}
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { topo.Close() })
			if topo.Version != major {
				t.Errorf("Topology.Version = %d, want %d", topo.Version, major)
			}
			for _, n := range topo.Nodes() {
				if got := serverMajor(t, n); got != major {
					t.Errorf("%s runs PostgreSQL %d, want %d", n.Name, got, major)
				}
			}
		})
	}
}

func TestWithBinDir(t *testing.T) {
	const dir = "/usr/lib/postgresql/15/bin"
	if _, err := os.Stat(filepath.Join(dir, "postgres")); err != nil {
		skipUnlessCI(t, fmt.Sprintf("no Debian PostgreSQL 15 here: %v", err))
	}
	t.Setenv("ROUTERTEST_PGBIN", "/nonexistent") // WithBinDir wins over the environment
	topo := routertest.Start(t, routertest.WithBinDir(dir), routertest.WithStandbys(0))
	if got := serverMajor(t, topo.Primary); got != 15 {
		t.Errorf("primary runs PostgreSQL %d, want 15 from %s", got, dir)
	}
}

func TestNoBinaries(t *testing.T) {
	_, err := routertest.New(testContext(t), routertest.WithBinDir(t.TempDir()))
	if !errors.Is(err, routertest.ErrNoBinaries) {
		t.Fatalf("New with an empty bin dir: %v, want ErrNoBinaries", err)
	}
	if !strings.Contains(err.Error(), "initdb") {
		t.Errorf("error %q does not name the missing binary", err)
	}

	t.Setenv("ROUTERTEST_PGBIN", t.TempDir())
	_, err = routertest.New(testContext(t))
	if !errors.Is(err, routertest.ErrNoBinaries) || !strings.Contains(err.Error(), "ROUTERTEST_PGBIN") {
		t.Errorf("New with an empty $ROUTERTEST_PGBIN: %v, want ErrNoBinaries naming the variable", err)
	}
}

// recordingTB records how Start ends a test instead of ending it.
type recordingTB struct {
	testing.TB
	skipped, failed string
}

func (r *recordingTB) Helper()             {}
func (r *recordingTB) Logf(string, ...any) {}
func (r *recordingTB) Cleanup(func())      {}
func (r *recordingTB) Skip(args ...any)    { r.skipped = fmt.Sprint(args...) }
func (r *recordingTB) Fatal(args ...any)   { r.failed = fmt.Sprint(args...) }
func (r *recordingTB) Skipf(format string, args ...any) {
	r.skipped = fmt.Sprintf(format, args...)
}

func TestStartSkipsWithoutBinariesExceptInCI(t *testing.T) {
	empty := routertest.WithBinDir(t.TempDir())

	t.Setenv("CI", "")
	var local recordingTB
	if topo := routertest.Start(&local, empty); topo != nil || local.skipped == "" || local.failed != "" {
		t.Errorf("outside CI: skipped %q, failed %q; want a skip", local.skipped, local.failed)
	}
	if !strings.Contains(local.skipped, "initdb") {
		t.Errorf("skip message %q does not name the missing binary", local.skipped)
	}

	t.Setenv("CI", "true")
	var ci recordingTB
	if topo := routertest.Start(&ci, empty); topo != nil || ci.failed == "" || ci.skipped != "" {
		t.Errorf("with CI=true: skipped %q, failed %q; want a failure", ci.skipped, ci.failed)
	}
}

// skipUnlessCI skips a test whose servers are not installed here, except in
// CI, where make test has installed them and a skip would hide a failure.
func skipUnlessCI(t *testing.T, why any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(why)
	}
	t.Skip(why)
}

// TestSkipBelow: a version gate skips on an older server and lets a new
// enough one through, and with no binaries it ends the test as Start does.
func TestSkipBelow(t *testing.T) {
	version := sharedTopology(t).Version
	var older recordingTB
	routertest.SkipBelow(&older, version+1, "the feature")
	if want := fmt.Sprintf("PostgreSQL %d", version); !strings.Contains(older.skipped, want) ||
		!strings.Contains(older.skipped, fmt.Sprintf("the feature needs PostgreSQL %d", version+1)) || older.failed != "" {
		t.Errorf("gate above the server: skipped %q, failed %q; want a skip naming %s and the feature", older.skipped, older.failed, want)
	}
	var same recordingTB
	routertest.SkipBelow(&same, version, "the feature")
	if same.skipped != "" || same.failed != "" {
		t.Errorf("gate at the server's version: skipped %q, failed %q; want neither", same.skipped, same.failed)
	}

	empty := routertest.WithBinDir(t.TempDir())
	t.Setenv("CI", "")
	var local recordingTB
	if routertest.SkipBelow(&local, 1, "x", empty); local.skipped == "" || local.failed != "" {
		t.Errorf("no binaries outside CI: skipped %q, failed %q; want a skip", local.skipped, local.failed)
	}
	t.Setenv("CI", "true")
	var ci recordingTB
	if routertest.SkipBelow(&ci, 1, "x", empty); ci.failed == "" || ci.skipped != "" {
		t.Errorf("no binaries with CI=true: skipped %q, failed %q; want a failure", ci.skipped, ci.failed)
	}
}
