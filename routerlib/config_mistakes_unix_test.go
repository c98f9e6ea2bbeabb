//go:build unix

package routerlib_test

import (
	"context"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// TestReloadRefusesAFIFO: the router file's path replaced by a named pipe
// (or a path mistaken for a device) is refused at once. Reading it waited
// for a writer forever, holding Reload, the watcher and Close.
func TestReloadRefusesAFIFO(t *testing.T) {
	topo := routertest.Shared(t)
	r, path := openRouter(t, steadyHealth(topo.Artifact(), 100*time.Millisecond), routerlib.WithWatch(10*time.Millisecond))
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- r.Reload(context.Background()) }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("Reload of a FIFO: %v, want it refused as not a regular file", err)
		}
	case <-time.After(5 * time.Second):
		// Let the reader go, so that Close (at cleanup) can return.
		if f, err := os.OpenFile(path, os.O_WRONLY, 0); err == nil {
			f.Close()
		}
		t.Fatal("Reload of a FIFO had not returned after 5s")
	}
	var one int
	if err := r.QueryRow(context.Background(), "SELECT 1").Scan(&one); err != nil {
		t.Fatalf("a read after the refused reload: %v", err)
	}
}
