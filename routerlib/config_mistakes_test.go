package routerlib_test

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// TestPrimaryListedTwiceRefused: a router file that lists the primary's
// server a second time, as a replica under another name (to let a route
// read from it, say), is refused, by New and by a reload, and the writes go
// on. Accepted, it made the router see two nodes out of recovery on one
// timeline, a split brain: every write failed with ErrNoPrimary, and the
// error told the operator to fence one of them, that is, to stop the only
// primary.
func TestPrimaryListedTwiceRefused(t *testing.T) {
	topo := routertest.Shared(t)
	ctx := context.Background()
	a := steadyHealth(topo.Artifact(), 100*time.Millisecond)
	twice := a
	again := a.Nodes[0]
	again.Name, again.Role = "primary-reads", artifact.RoleReplica
	twice.Nodes = append(append([]artifact.Node(nil), a.Nodes...), again)

	if r, err := routerlib.New(ctx, twice); err == nil {
		r.Close()
		t.Error("New accepted a topology listing the primary twice")
	} else if !strings.Contains(err.Error(), `node "primary-reads" reaches the same server as nodes[0] "primary"`) {
		t.Errorf("New: %v, want an error naming both nodes", err)
	}

	r, path := openRouter(t, a, routerlib.WithWatch(0))
	// artifact.Marshal refuses it: written as a hand edit would be.
	data, err := json.Marshal(twice)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := r.Reload(ctx); err == nil || !strings.Contains(err.Error(), "list each server once") {
		t.Errorf("Reload of a file listing the primary twice: %v, want it refused", err)
	}
	// Past several checks of both nodes, had the file been taken.
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		if _, err := r.Exec(routerlib.Primary(ctx), "SELECT 1"); err != nil {
			t.Fatalf("a write after the refused reload: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
