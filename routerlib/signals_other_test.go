//go:build !unix

package routerlib_test

import (
	"testing"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// killNode and pausePostmaster need Unix signals (SIGSTOP, SIGKILL): the
// tests that use them skip elsewhere.
func killNode(t *testing.T, _ *routertest.Node) {
	t.Helper()
	t.Skip("killing a server's processes needs Unix signals")
}

func pausePostmaster(t *testing.T, _ *routertest.Node) (resume func()) {
	t.Helper()
	t.Skip("pausing a postmaster needs Unix signals (SIGSTOP)")
	return nil
}
