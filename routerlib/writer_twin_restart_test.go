package routerlib_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// TestPrimaryUnderTwoNamesRestarts: the router file lists the primary
// twice (127.0.0.1, and localhost as a replica), and its postmaster
// restarts. Each name's check reads the new start time when it connects
// again, on its own schedule; the router compared the first name back
// with the other's check from before the restart, two start times, so
// two servers out of recovery on timeline 1: a split brain (or a copy of
// the cluster) until the second name's next check, and the primary's
// connections were cut as an old primary's. Now a node whose last answer
// predates the restart its twin showed since is still its twin.
func TestPrimaryUnderTwoNamesRestarts(t *testing.T) {
	ctx := context.Background()
	topo := routertest.Start(t, routertest.WithStandbys(1))
	a := topo.Artifact()
	alias := a.Nodes[0]
	if alias.Role != artifact.RolePrimary || alias.Host != "127.0.0.1" {
		t.Fatalf("the first node is not the primary on 127.0.0.1: %+v", alias)
	}
	alias.Name, alias.Role, alias.Host = "primary-again", artifact.RoleReplica, "localhost"
	a.Nodes = append(a.Nodes, alias)
	a = patientHealth(a) // the primary keeps the writes while it restarts
	logs := &syncBuffer{}
	r := newRouter(t, a, routerlib.WithLogger(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))))
	eventually(t, 10*time.Second, "the second name checked", func() bool { return nodeStat(r, "primary-again").Healthy })
	if s := nodeStat(r, "primary"); !s.Writer {
		t.Fatalf("the primary takes no writes before the restart: %+v", s)
	}
	before := len(logs.String())
	if err := topo.Primary.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	// No call until both names answered: a call on a session the
	// restart ended has its own consequences (see server.recheck).
	eventually(t, 15*time.Second, "both names answering after the restart", func() bool {
		return nodeStat(r, "primary").Healthy && nodeStat(r, "primary-again").Healthy
	})
	time.Sleep(3 * interval)
	// The pool's sessions from before the restart are gone: the first
	// write may meet one.
	eventually(t, 15*time.Second, "a write after the restart", func() bool {
		_, err := r.Exec(ctx, "SELECT pg_catalog.txid_current()")
		return err == nil
	})
	for range 10 { // every name checked a few times since
		if _, err := r.Exec(ctx, "SELECT pg_catalog.txid_current()"); err != nil {
			t.Errorf("a write after the restart: %v", err)
		}
		time.Sleep(interval)
	}
	after := logs.String()[before:]
	t.Logf("logged since the restart:\n%s", after)
	// (The name whose check answers first stands for the server while the
	// other's fails, and may take the writes meanwhile: one server.)
	for _, bad := range []string{"split brain", "no primary is taking writes", "takes no writes", "copy of the cluster", "connections to an old primary were closed"} {
		if strings.Contains(after, bad) {
			t.Errorf("the restart of the primary listed under two names was taken for %q", bad)
		}
	}
	if s := nodeStat(r, "primary"); !s.Writer || s.SplitBrain != "" {
		t.Errorf("the primary after the restart: %+v", s)
	}
}
