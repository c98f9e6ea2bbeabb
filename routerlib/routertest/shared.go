package routertest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"
)

// The topology Main started for the tests of this package's binary, or why
// there is none.
var (
	shared        *Topology
	sharedSkipped error
)

// Main is a TestMain for a package whose tests share one topology: it starts
// a topology with opts, runs the tests, closes it, and returns the exit code.
// Tests reach the topology with [Shared]; a test that stops, promotes or
// delays a node starts its own with [Start] instead. As with Start, missing
// server binaries skip the tests, unless $CI is "true".
//
//	func TestMain(m *testing.M) { os.Exit(routertest.Main(m, routertest.WithStandbys(2))) }
func Main(m *testing.M, opts ...Option) int {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	t, err := New(ctx, opts...)
	switch {
	case errors.Is(err, ErrNoBinaries) && os.Getenv("CI") != "true":
		sharedSkipped = err
	case err != nil:
		fmt.Fprintln(os.Stderr, err)
		return 1
	default:
		shared = t
		defer t.Close()
	}
	return m.Run()
}

// Shared returns the topology [Main] started, or skips tb when it could not
// start one for lack of server binaries.
func Shared(tb testing.TB) *Topology {
	tb.Helper()
	if shared == nil {
		if sharedSkipped == nil {
			tb.Fatal("routertest.Shared: the package's TestMain does not call routertest.Main")
		}
		tb.Skip(sharedSkipped)
	}
	return shared
}

// Running returns the topology [Main] started, or nil when there is none:
// for Example functions, which have no testing.TB to skip.
func Running() *Topology { return shared }
