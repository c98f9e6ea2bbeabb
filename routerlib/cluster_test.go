package routerlib_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// TestNodeOfAnotherCluster: a router file that names a node of another
// cluster (another initdb, so another system identifier; here on
// timeline 1, as late as the primary's, so no timeline rule can tell).
// The router's user has pg_monitor only. A standby of the other cluster
// serves no read; a "primary" of the other cluster, whose standbys are
// not in the file while the right cluster's standbys are, takes no
// write, and ErrNoPrimary and the log name both identifiers. On the old
// code the standby served reads of the other cluster's data, and the
// wrong primary took the writes.
func TestNodeOfAnotherCluster(t *testing.T) {
	ctx := context.Background()
	topo := routertest.Start(t, routertest.WithStandbys(2))
	other := routertest.Start(t, routertest.WithStandbys(1), routertest.WithOwnCluster())
	for _, p := range []*routertest.Node{topo.Primary, other.Primary} {
		if err := p.Exec(ctx, "CREATE ROLE oc_monitor LOGIN IN ROLE pg_monitor; CREATE TABLE oc (id int); GRANT SELECT, INSERT ON oc TO oc_monitor"); err != nil {
			t.Fatal(err)
		}
	}
	waitReplayed(t, topo)
	waitReplayed(t, other)
	var ours, theirs string
	if err := topo.Primary.QueryRow(ctx, "SELECT system_identifier::text FROM pg_control_system()").Scan(&ours); err != nil {
		t.Fatal(err)
	}
	if err := other.Primary.QueryRow(ctx, "SELECT system_identifier::text FROM pg_control_system()").Scan(&theirs); err != nil {
		t.Fatal(err)
	}
	if ours == theirs {
		t.Fatalf("both clusters have system identifier %s", ours)
	}
	// node declares n of its topology under another name.
	node := func(n *routertest.Node, name, role string) artifact.Node {
		return artifact.Node{Name: name, Role: role, Host: n.Host, Port: n.Port, Database: "postgres", User: "oc_monitor", SSLMode: artifact.SSLModeDisable}
	}

	t.Run("standby", func(t *testing.T) {
		a := steadyHealth(artifact.Topology{FormatVersion: artifact.FormatVersion, Nodes: []artifact.Node{
			node(topo.Primary, "primary", artifact.RolePrimary),
			node(topo.Standbys[0], "replica", artifact.RoleReplica),
			node(other.Standbys[0], "stranger", artifact.RoleReplica),
		}}, interval)
		logs := &syncBuffer{}
		r := newRouter(t, a, routerlib.WithLogger(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))))
		time.Sleep(3 * interval)
		if s := nodeStat(r, "stranger"); s.Readable || s.Ejected != routerlib.EjectOtherCluster {
			t.Errorf("a standby of another cluster: %+v", s)
		}
		for range 30 {
			if port := serverPort(t, ctx, r); port != topo.Standbys[0].Port {
				t.Fatalf("a read ran on port %d, want %d (the standby of the primary's cluster)", port, topo.Standbys[0].Port)
			}
		}
		var port int
		if err := r.QueryRow(ctx, "INSERT INTO oc VALUES (1) RETURNING inet_server_port()").Scan(&port); err != nil || port != topo.Primary.Port {
			t.Errorf("a write ran on port %d (%v), want the primary's %d", port, err, topo.Primary.Port)
		}
		if out := logs.String(); !strings.Contains(out, "level=ERROR") || !strings.Contains(out, theirs) || !strings.Contains(out, ours) {
			t.Errorf("no error record naming both system identifiers (%s, %s); logged:\n%s", theirs, ours, out)
		}
	})

	t.Run("primary", func(t *testing.T) {
		a := steadyHealth(artifact.Topology{FormatVersion: artifact.FormatVersion, Nodes: []artifact.Node{
			node(other.Primary, "wrong-primary", artifact.RolePrimary),
			node(topo.Standbys[0], "replica-1", artifact.RoleReplica),
			node(topo.Standbys[1], "replica-2", artifact.RoleReplica),
		}}, interval)
		r := newRouter(t, a)
		time.Sleep(3 * interval)
		_, err := r.Exec(ctx, "INSERT INTO oc VALUES (2)")
		if !errors.Is(err, routerlib.ErrNoPrimary) || !strings.Contains(err.Error(), theirs) || !strings.Contains(err.Error(), ours) {
			t.Errorf("a write with the primary of another cluster in the file: %v; want ErrNoPrimary naming both system identifiers", err)
		}
		var n int
		if err := other.Primary.QueryRow(ctx, "SELECT count(*) FROM oc WHERE id = 2").Scan(&n); err != nil || n != 0 {
			t.Errorf("the other cluster's primary has %d rows written through the router (%v)", n, err)
		}
		if s := nodeStat(r, "wrong-primary"); s.Writer || s.Ejected != routerlib.EjectOtherCluster || !strings.Contains(s.SplitBrain, "another cluster") {
			t.Errorf("the primary of another cluster: %+v", s)
		}
		for _, name := range []string{"replica-1", "replica-2"} {
			if s := nodeStat(r, name); !s.Readable {
				t.Errorf("%s, a standby of the cluster most nodes belong to, out of rotation: %+v", name, s)
			}
		}
	})
}
