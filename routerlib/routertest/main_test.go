package routertest_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// shared is the topology (primary and two standbys) that every test which
// leaves it as it found it uses; a test that breaks its topology starts its
// own with routertest.Start. This is the pattern the package documents.
var (
	shared        *routertest.Topology
	sharedSkipped error // why shared is nil: no server binaries here
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if os.Getenv(orphanEnv) != "" {
		return leaveOrphan()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var err error
	shared, err = routertest.New(ctx)
	switch {
	case errors.Is(err, routertest.ErrNoBinaries) && os.Getenv("CI") != "true":
		sharedSkipped = err
	case err != nil:
		fmt.Fprintln(os.Stderr, err)
		return 1
	default:
		defer func() {
			if err := shared.Close(); err != nil {
				fmt.Fprintln(os.Stderr, err)
			}
		}()
	}
	return m.Run()
}

// sharedTopology returns the shared topology, or skips the test where there
// are no server binaries.
func sharedTopology(t *testing.T) *routertest.Topology {
	t.Helper()
	if shared == nil {
		t.Skip(sharedSkipped)
	}
	return shared
}

// testContext bounds what one test step may wait for.
func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// orphanEnv makes the test binary start a topology and exit without closing
// it, as a test binary killed by -timeout would (see TestReapsOrphans).
const orphanEnv = "ROUTERTEST_LEAVE_ORPHAN"

func leaveOrphan() int {
	topo, err := routertest.New(context.Background(), routertest.WithStandbys(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(topo.Dir)
	fmt.Println(topo.Primary.DSN())
	return 0
}
