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

// TestOneServerUnderTwoNames: the router file lists the primary twice,
// under 127.0.0.1 and under localhost (as a replica), which its
// same-server rule (host, port and database as written) lets pass. The
// two nodes are out of recovery with the same system identifier and the
// same postmaster start time: one server, not a split brain. The primary
// takes the writes, the second name none of its own, and the log says
// once that the file lists one server twice, without a host. On the old
// code no node took writes (split brain: both out of recovery on
// timeline 1).
func TestOneServerUnderTwoNames(t *testing.T) {
	ctx := context.Background()
	topo := routertest.Shared(t)
	a := topo.Artifact()
	alias := a.Nodes[0]
	if alias.Role != artifact.RolePrimary || alias.Host != "127.0.0.1" {
		t.Fatalf("the first node is not the primary on 127.0.0.1: %+v", alias)
	}
	alias.Name, alias.Role, alias.Host = "primary-again", artifact.RoleReplica, "localhost"
	a.Nodes = append(a.Nodes, alias)
	if err := a.Validate(); err != nil {
		t.Fatalf("the file's own rule refuses the same server under two names, so this test tests nothing: %v", err)
	}
	a = steadyHealth(a, interval)
	logs := &syncBuffer{}
	r := newRouter(t, a, routerlib.WithLogger(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))))
	eventually(t, 5*time.Second, "the second name checked", func() bool { return nodeStat(r, "primary-again").Healthy })
	time.Sleep(3 * interval)
	for range 5 {
		var port int
		if err := r.QueryRow(ctx, "SELECT inet_server_port() FROM pg_catalog.txid_current()").Scan(&port); err != nil || port != topo.Primary.Port {
			t.Fatalf("a write: port %d, %v; want the primary's %d", port, err, topo.Primary.Port)
		}
	}
	if s := nodeStat(r, "primary"); !s.Writer || s.SplitBrain != "" {
		t.Errorf("the primary: %+v; want it taking writes", s)
	}
	if s := nodeStat(r, "primary-again"); s.Writer || s.SplitBrain != "" || s.Readable {
		t.Errorf("the primary's second name: %+v; want no writes, no reads, no split brain", s)
	}
	out := logs.String()
	if n := strings.Count(out, "the router file lists one server twice"); n != 1 || !strings.Contains(out, `node=primary-again same_as=primary`) {
		t.Errorf("want one record that the file lists one server twice, naming both nodes; logged:\n%s", out)
	}
	if strings.Contains(out, "localhost") || strings.Contains(out, "127.0.0.1") || strings.Contains(out, "split brain") {
		t.Errorf("a host, or a split brain, in the log:\n%s", out)
	}
}

// TestClusterIdentityTie: a primary and one standby that disagree on the
// system identifier, with no majority to say which is the application's
// cluster. A Router that saw them agree remembers the identifier; one
// that starts now cannot know. Both now refuse writes where they cannot
// be sure of the cluster, and never send them to the other cluster:
//
//   - "primary initialised again": the primary's address now reaches
//     another cluster (a fresh initdb; here the router file is pointed at
//     another cluster's primary) while the standby holds the cluster's
//     data. Before a restart the remembered identifier makes the new
//     primary one of another cluster: no writes. After a restart, the old
//     code let the primary win the tie and took the writes there; now no
//     node takes writes, and ErrNoPrimary names both identifiers.
//   - "stray standby": the standby is of another cluster (a wrong host).
//     Before a restart the remembered identifier keeps the writes on the
//     primary and the stray standby out; after a restart nothing tells
//     this case from the one above, so no node takes writes either, and
//     the error says what to fix. The stray standby serves no reads in
//     either.
func TestClusterIdentityTie(t *testing.T) {
	ctx := context.Background()
	topo := routertest.Start(t, routertest.WithStandbys(1))
	other := routertest.Start(t, routertest.WithStandbys(1), routertest.WithOwnCluster())
	var ours, theirs string
	for _, c := range []struct {
		p  *routertest.Node
		id *string
	}{{topo.Primary, &ours}, {other.Primary, &theirs}} {
		if err := c.p.Exec(ctx, "CREATE TABLE tie (id int)"); err != nil {
			t.Fatal(err)
		}
		if err := c.p.QueryRow(ctx, "SELECT system_identifier::text FROM pg_control_system()").Scan(c.id); err != nil {
			t.Fatal(err)
		}
	}
	waitReplayed(t, topo)
	waitReplayed(t, other)
	at := func(n artifact.Node, on *routertest.Node) artifact.Node {
		n.Host, n.Port = on.Host, on.Port
		return n
	}
	agreed := steadyHealth(topo.Artifact(), interval)
	primary, replica := agreed.Nodes[0], agreed.Nodes[1]
	if primary.Role != artifact.RolePrimary || len(agreed.Nodes) != 2 {
		t.Fatalf("unexpected file: %+v", agreed.Nodes)
	}
	noWrites := func(t *testing.T, r *routerlib.Router) {
		t.Helper()
		_, err := r.Exec(ctx, "INSERT INTO tie VALUES (1)")
		if !errors.Is(err, routerlib.ErrNoPrimary) || !strings.Contains(err.Error(), ours) || !strings.Contains(err.Error(), theirs) {
			t.Errorf("a write: %v; want ErrNoPrimary naming both system identifiers (%s, %s)", err, ours, theirs)
		}
	}
	writesToPrimary := func(t *testing.T, r *routerlib.Router) {
		t.Helper()
		var port int
		if err := r.QueryRow(ctx, "INSERT INTO tie VALUES (1) RETURNING inet_server_port()").Scan(&port); err != nil || port != topo.Primary.Port {
			t.Errorf("a write ran on port %d (%v), want the primary's %d", port, err, topo.Primary.Port)
		}
	}
	for _, c := range []struct {
		name   string
		file   artifact.Topology
		before func(*testing.T, *routerlib.Router)
		stray  string // the node of another cluster, out of read rotation
	}{
		{"primary initialised again", withNodes(agreed, at(primary, other.Primary), replica), noWrites, ""},
		{"stray standby", withNodes(agreed, primary, at(replica, other.Standbys[0])), writesToPrimary, replica.Name},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, path := openRouter(t, agreed)
			eventually(t, 5*time.Second, "both nodes checked", func() bool {
				return nodeStat(r, primary.Name).Writer && nodeStat(r, replica.Name).Readable
			})
			writeFile(t, path, c.file)
			if err := r.Reload(ctx); err != nil {
				t.Fatal(err)
			}
			time.Sleep(3 * interval)
			t.Run("before a restart", func(t *testing.T) { c.before(t, r) })
			restarted := newRouter(t, c.file)
			time.Sleep(3 * interval)
			t.Run("after a restart", func(t *testing.T) { noWrites(t, restarted) })
			if c.stray != "" {
				for _, r := range []*routerlib.Router{r, restarted} {
					if s := nodeStat(r, c.stray); s.Readable {
						t.Errorf("the standby of another cluster serves reads: %+v", s)
					}
				}
			}
			var n int
			if err := other.Primary.QueryRow(ctx, "SELECT count(*) FROM tie").Scan(&n); err != nil || n != 0 {
				t.Errorf("the other cluster's primary has %d rows written through the router (%v)", n, err)
			}
		})
	}
}

// withNodes is a with nodes instead of its own.
func withNodes(a artifact.Topology, nodes ...artifact.Node) artifact.Topology {
	a.Nodes = nodes
	return a
}

// TestStandbyReinitedFromTheSameTemplate: a standby's data directory is
// replaced, while the Router runs, by a cluster made from the same
// template (the same system identifier, as with a golden image) and
// started as a primary on timeline 1, the primary's own timeline. A
// promotion from the primary would have started a later timeline, so it
// is a copy of the cluster, not a rival: it takes no reads and no writes,
// the log says so with the fix, and the declared primary, healthy, keeps
// every write. On the old code every write failed ("split brain: nodes
// "primary" and "replica-1" are both out of recovery on timeline 1").
func TestStandbyReinitedFromTheSameTemplate(t *testing.T) {
	ctx := context.Background()
	topo := routertest.Start(t, routertest.WithStandbys(2))
	if err := topo.Primary.Exec(ctx, "CREATE TABLE reinit (id int)"); err != nil {
		t.Fatal(err)
	}
	waitReplayed(t, topo)
	a := steadyHealth(topo.Artifact(), interval)
	logs := &syncBuffer{}
	r := newRouter(t, a, routerlib.WithLogger(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))))
	copied, other := a.Nodes[1].Name, a.Nodes[2].Name
	eventually(t, 10*time.Second, "both replicas in rotation", func() bool {
		return nodeStat(r, copied).Readable && nodeStat(r, other).Readable
	})
	impostor := topo.Standbys[0]
	if err := impostor.Reinit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := impostor.Exec(ctx, "CREATE TABLE reinit (id int)"); err != nil {
		t.Fatal(err)
	}
	var ours, theirs string
	if err := topo.Primary.QueryRow(ctx, "SELECT system_identifier::text FROM pg_control_system()").Scan(&ours); err != nil {
		t.Fatal(err)
	}
	if err := impostor.QueryRow(ctx, "SELECT system_identifier::text FROM pg_control_system()").Scan(&theirs); err != nil {
		t.Fatal(err)
	}
	if ours != theirs {
		t.Fatalf("the re-initialised standby has system identifier %s, the primary %s: want one (the template's)", theirs, ours)
	}
	eventually(t, 10*time.Second, "the copy seen out of recovery, out of rotation", func() bool {
		s := nodeStat(r, copied)
		return s.ObservedRole == artifact.RolePrimary && !s.Readable
	})
	for i := range 40 {
		if port := serverPort(t, ctx, r); port == impostor.Port {
			t.Fatalf("read %d ran on the re-initialised standby", i)
		}
		var port int
		if err := r.QueryRow(ctx, "INSERT INTO reinit VALUES ($1) RETURNING inet_server_port()", i).Scan(&port); err != nil || port != topo.Primary.Port {
			t.Fatalf("write %d ran on port %d (%v), want the primary's %d", i, port, err, topo.Primary.Port)
		}
		time.Sleep(interval / 4)
	}
	var there int
	if err := impostor.QueryRow(ctx, "SELECT count(*) FROM reinit").Scan(&there); err != nil || there != 0 {
		t.Errorf("%d writes landed on the re-initialised standby (%v)", there, err)
	}
	if s := nodeStat(r, copied); s.Readable || s.Writer || s.Ejected != routerlib.EjectOtherCluster || !strings.Contains(s.SplitBrain, "copy of the cluster") {
		t.Errorf("the re-initialised standby: %+v", s)
	}
	if s := nodeStat(r, other); !s.Readable {
		t.Errorf("the other standby, which follows the primary, out of rotation: %+v", s)
	}
	if out := logs.String(); !strings.Contains(out, "level=ERROR") || !strings.Contains(out, "node="+copied) || !strings.Contains(out, "pg_basebackup") {
		t.Errorf("no error record naming %s and the fix; logged:\n%s", copied, out)
	}

	// Stopped, the copy does not block the writes as an old primary last
	// seen on the primary's timeline would.
	if err := impostor.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the copy seen down", func() bool { return !nodeStat(r, copied).Healthy })
	time.Sleep(2 * interval)
	if _, err := r.Exec(ctx, "INSERT INTO reinit VALUES (100)"); err != nil {
		t.Errorf("a write with the copy down: %v", err)
	}
}

// TestCopyOfTheClusterWithThePrimaryDown: the declared primary is down and
// a standby's data directory was replaced by a copy of the cluster (the
// same system identifier) started as a primary on timeline 1. No
// promotion leaves a node on timeline 1, so the copy was never promoted:
// a Router that starts (New, an application restarted, nothing
// remembered) or that a reload shows the copy to must give it no writes,
// and ErrNoPrimary names the copy and the fix. A real failover still
// takes the writes: a standby promoted (timeline 2), by a running Router,
// and by a Router started after it.
func TestCopyOfTheClusterWithThePrimaryDown(t *testing.T) {
	ctx := context.Background()
	topo := routertest.Start(t, routertest.WithStandbys(2))
	if err := topo.Primary.Exec(ctx, "CREATE TABLE startcopy (id int)"); err != nil {
		t.Fatal(err)
	}
	waitReplayed(t, topo)
	a := steadyHealth(topo.Artifact(), interval)
	copied, other := topo.Standbys[0], topo.Standbys[1]
	if err := topo.Primary.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := copied.Reinit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := copied.Exec(ctx, "CREATE TABLE startcopy (id int)"); err != nil {
		t.Fatal(err)
	}
	refused := func(t *testing.T, r *routerlib.Router) {
		t.Helper()
		eventually(t, 10*time.Second, "the copy seen out of recovery", func() bool {
			return nodeStat(r, copied.Name).ObservedRole == artifact.RolePrimary
		})
		for i := range 20 {
			var port int
			err := r.QueryRow(ctx, "INSERT INTO startcopy VALUES ($1) RETURNING inet_server_port()", i).Scan(&port)
			if err == nil {
				t.Fatalf("write %d taken by port %d, the copy's %d: want ErrNoPrimary", i, port, copied.Port)
			}
			if !errors.Is(err, routerlib.ErrNoPrimary) || !strings.Contains(err.Error(), copied.Name) || !strings.Contains(err.Error(), "never promoted") || !strings.Contains(err.Error(), "pg_basebackup") {
				t.Fatalf("write %d: %v; want ErrNoPrimary naming %s, why, and the fix", i, err, copied.Name)
			}
			time.Sleep(interval / 4)
		}
		if s := nodeStat(r, copied.Name); s.Readable || s.Writer || s.Ejected != routerlib.EjectOtherCluster {
			t.Errorf("the copy: %+v", s)
		}
		if s := nodeStat(r, other.Name); !s.Readable {
			t.Errorf("the other standby, out of rotation: %+v", s)
		}
	}
	t.Run("New", func(t *testing.T) {
		refused(t, newRouter(t, a))
	})
	t.Run("reload", func(t *testing.T) {
		r, path := openRouter(t, withNodes(a, a.Nodes[0], a.Nodes[2]))
		writeFile(t, path, a)
		if err := r.Reload(ctx); err != nil {
			t.Fatal(err)
		}
		refused(t, r)
	})
	var there int
	if err := copied.QueryRow(ctx, "SELECT count(*) FROM startcopy").Scan(&there); err != nil || there != 0 {
		t.Errorf("%d writes landed on the copy (%v)", there, err)
	}

	// A real failover: the other standby promoted, on timeline 2.
	running := newRouter(t, a)
	if err := other.Promote(ctx); err != nil {
		t.Fatal(err)
	}
	for name, r := range map[string]*routerlib.Router{"running": running, "started after": newRouter(t, a)} {
		eventually(t, 10*time.Second, name+": writes on the promoted standby", func() bool {
			var port int
			err := r.QueryRow(ctx, "INSERT INTO startcopy VALUES (1) RETURNING inet_server_port()").Scan(&port)
			return err == nil && port == other.Port
		})
		// Beside a promotion, the node on timeline 1 is behind it (an
		// old primary, or this copy): never one that may be the primary.
		if s := nodeStat(r, copied.Name); s.Writer || s.Readable || !strings.Contains(s.SplitBrain, "fence it") || strings.Contains(s.SplitBrain, "declare it as the primary") {
			t.Errorf("%s: the copy beside the promoted standby: %+v", name, s)
		}
	}
	if err := copied.QueryRow(ctx, "SELECT count(*) FROM startcopy").Scan(&there); err != nil || there != 0 {
		t.Errorf("%d writes landed on the copy (%v)", there, err)
	}
}
