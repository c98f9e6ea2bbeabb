package routerlib_test

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"sync/atomic"
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

// TestReloadRefusedByPrimary: a new router file whose declared primary
// refuses its connection settings (a database or user that does not
// exist: a typo, a rename not yet made on the server) is refused by a
// reload, as New refuses it, and the configuration in force goes on
// serving. The old code took it: every write failed with ErrNoPrimary, and
// with the same mistake on the replicas every read failed too.
func TestReloadRefusedByPrimary(t *testing.T) {
	topo := routertest.Shared(t)
	ctx := context.Background()
	a := steadyHealth(topo.Artifact(), 100*time.Millisecond)
	for _, tc := range []struct {
		name, want string
		mistake    func(*artifact.Node)
	}{
		{"database", `node "primary" has no database named as the router file says (fix database)`, func(n *artifact.Node) { n.Database = "no_such_db" }},
		{"user", `node "primary" refuses the router file's user or password`, func(n *artifact.Node) { n.User = "no_such_user" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var reported atomic.Pointer[error]
			r, path := openRouter(t, a, routerlib.WithWatch(10*time.Millisecond), routerlib.WithOnReloadError(func(err error) { reported.Store(&err) }))
			b := a
			b.Nodes = append([]artifact.Node(nil), a.Nodes...)
			for i := range b.Nodes {
				tc.mistake(&b.Nodes[i])
			}
			writeFile(t, path, b)
			eventually(t, 10*time.Second, "the watcher's reload refused", func() bool { return reported.Load() != nil })
			if err := *reported.Load(); !strings.Contains(err.Error(), tc.want) {
				t.Errorf("reload error: %v, want %q", err, tc.want)
			}
			// Several checks later, the configuration in force still serves.
			deadline := time.Now().Add(time.Second)
			for time.Now().Before(deadline) {
				if _, err := r.Exec(routerlib.Primary(ctx), "SELECT 1"); err != nil {
					t.Fatalf("a write after the refused reload: %v", err)
				}
				var one int
				if err := r.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
					t.Fatalf("a read after the refused reload: %v", err)
				}
				time.Sleep(50 * time.Millisecond)
			}
			for _, s := range r.Stat() {
				if s.LastError != "" && strings.Contains(s.LastError, "no_such") {
					t.Errorf("node %s took the refused file's settings: %s", s.Name, s.LastError)
				}
			}
		})
	}
}
