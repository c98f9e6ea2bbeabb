package routerlib_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// patientHealth checks every interval, but takes a node out only after
// many failed checks: a frozen primary loses the writes to a promoted
// node (a rival on a later timeline) long before it is ejected, whose cut
// would close its connections for a reason of its own.
func patientHealth(a artifact.Topology) artifact.Topology {
	a = steadyHealth(a, interval)
	a.Health.EjectAfter = 100
	return a
}

// holdOnPrimary acquires a connection and begins a transaction (which
// writes a row) on the primary through r, and starts a long statement on
// a third connection, all released when the test ends.
func holdOnPrimary(t *testing.T, r *routerlib.Router, table string) (held *routerlib.Conn, tx func(string) error, commit func() error, inFlight <-chan error) {
	t.Helper()
	ctx := context.Background()
	held, err := r.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(held.Release)
	ptx, err := r.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ptx.Rollback(ctx) })
	if _, err := ptx.Exec(ctx, "INSERT INTO "+table+" VALUES (0, 'transaction, before')"); err != nil {
		t.Fatal(err)
	}
	busy, err := r.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	errs, done := make(chan error, 1), make(chan struct{})
	t.Cleanup(func() {
		cancel() // a statement the router did not cut ends before its connection goes back
		<-done
		busy.Release()
	})
	go func() {
		defer close(done)
		_, err := busy.Exec(sctx, "SELECT pg_sleep(60)")
		errs <- err
	}()
	time.Sleep(100 * time.Millisecond) // the statement is on the server
	tx = func(via string) error {
		_, err := ptx.Exec(ctx, "INSERT INTO "+table+" VALUES (2, $1)", via)
		return err
	}
	return held, tx, func() error { return ptx.Commit(ctx) }, errs
}

// noWriteOnOldPrimary writes through what holdOnPrimary held, after the
// writes moved to promoted, and checks that nothing committed on old, that
// the errors say the node lost the writes and to which node, and that the
// statement in flight says it may have committed.
func noWriteOnOldPrimary(t *testing.T, old, promoted *routertest.Node, table string, held *routerlib.Conn, tx func(string) error, commit func() error, inFlight <-chan error) {
	t.Helper()
	ctx := context.Background()
	// The application comes back to its connections a while after the
	// router saw the old primary: Stat shows it before the check that
	// showed it is through, and a write at that very moment may still
	// reach it, as one just before would.
	time.Sleep(time.Second)
	_, errHeld := held.Exec(ctx, "INSERT INTO "+table+" VALUES (1, 'acquired connection')")
	errTx := tx("transaction")
	errCommit := commit()
	t.Logf("acquired connection: %v\ntransaction: %v\ncommit: %v", errHeld, errTx, errCommit)
	var n int
	if err := old.QueryRow(ctx, "SELECT count(*) FROM "+table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("%d rows committed on the old primary after the router moved the writes to %s", n, promoted.Name)
	}
	if errHeld == nil || errTx == nil || errCommit == nil {
		t.Errorf("a write on a connection held on the old primary succeeded")
	}
	for what, err := range map[string]error{"acquired connection": errHeld, "transaction": errTx} {
		if err != nil && !strings.Contains(err.Error(), `lost the writes (writes go to "`+promoted.Name+`"`) {
			t.Errorf("the %s's error does not say the node lost the writes, and to which: %v", what, err)
		}
	}
	select {
	case err := <-inFlight:
		if !errors.Is(err, routerlib.ErrMaybeCommitted) || !strings.Contains(err.Error(), "lost the writes") {
			t.Errorf("a statement in flight on a held connection when the router cut it off: %v; want ErrMaybeCommitted saying the node lost the writes", err)
		}
	case <-time.After(10 * time.Second):
		t.Error("a statement in flight on a held connection on the old primary was not cut off")
	}
}

// TestFrozenPrimaryLosesTheWritesThenThaws: the primary freezes (SIGSTOP)
// with connections held on it, a standby is promoted and takes the writes
// while the primary's check fails, and the primary thaws, out of recovery
// still (nobody fenced it). The router cut an old primary's connections
// only at the moment it lost the writes, and only if its check answered
// then: these stayed open, and the acquired connection and the
// transaction committed on the fork once it thawed. Now the node carries
// that it lost the writes, and is cut at its first check that answers out
// of recovery while another node has them.
func TestFrozenPrimaryLosesTheWritesThenThaws(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(1))
	ctx := context.Background()
	old, promoted := topo.Primary, topo.Standbys[0]
	r := newRouter(t, patientHealth(topo.Artifact()))
	if _, err := r.Exec(ctx, "CREATE TABLE frozen_held (id int, via text)"); err != nil {
		t.Fatal(err)
	}
	held, tx, commit, inFlight := holdOnPrimary(t, r, "frozen_held")
	if err := old.Freeze(); err != nil {
		t.Fatal(err)
	}
	defer old.Thaw()
	eventually(t, 15*time.Second, "the frozen primary's check failed", func() bool { return !nodeStat(r, old.Name).Healthy })
	if err := promoted.Promote(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "writes on the promoted node", func() bool { return nodeStat(r, promoted.Name).Writer })
	if s := nodeStat(r, old.Name); s.Healthy {
		t.Fatalf("the frozen primary answered when the writes moved: %+v; the test no longer tests a primary whose check failed then", s)
	}
	if err := old.Thaw(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "the thawed primary seen as an old primary", func() bool {
		s := nodeStat(r, old.Name)
		return s.Healthy && s.ObservedRole == "primary" && s.SplitBrain != ""
	})
	noWriteOnOldPrimary(t, old, promoted, "frozen_held", held, tx, commit, inFlight)
}

// TestHeldConnectionsOnAReplacedServer: the application holds connections
// on the primary, a reload gives the primary a new server (its pool size
// changed, or the file renamed it), and then a standby is promoted. The
// router cut the old primary's connections of the server in force only:
// those held from before the reload, on the server it replaced (whose pools
// stay open while a connection of theirs is held), went on writing to the
// fork. Now every connection at the old primary's address is cut.
func TestHeldConnectionsOnAReplacedServer(t *testing.T) {
	for _, c := range []struct {
		name   string
		change func(*artifact.Topology)
	}{
		{"new settings", func(a *artifact.Topology) { a.Pool.MaxConns = 7 }},
		{"renamed", func(a *artifact.Topology) { a.Nodes[0].Name = "main" }},
	} {
		t.Run(c.name, func(t *testing.T) {
			topo := routertest.Start(t, routertest.WithStandbys(1))
			ctx := context.Background()
			old, promoted := topo.Primary, topo.Standbys[0]
			a := steadyHealth(topo.Artifact(), interval)
			r, path := openRouter(t, a, routerlib.WithWatch(0))
			if _, err := r.Exec(ctx, "CREATE TABLE replaced_held (id int, via text)"); err != nil {
				t.Fatal(err)
			}
			held, tx, commit, inFlight := holdOnPrimary(t, r, "replaced_held")
			c.change(&a)
			writeFile(t, path, a)
			if err := r.Reload(ctx); err != nil {
				t.Fatal(err)
			}
			eventually(t, 15*time.Second, "writes on the primary after the reload", func() bool { return nodeStat(r, a.Nodes[0].Name).Writer })
			if err := promoted.Promote(ctx); err != nil {
				t.Fatal(err)
			}
			eventually(t, 15*time.Second, "writes on the promoted node", func() bool { return nodeStat(r, promoted.Name).Writer })
			eventually(t, 15*time.Second, "the old primary seen as such", func() bool { return nodeStat(r, a.Nodes[0].Name).SplitBrain != "" })
			noWriteOnOldPrimary(t, old, promoted, "replaced_held", held, tx, commit, inFlight)
		})
	}
}

// TestHeldConnectionsOnADroppedOldPrimary: the application holds
// connections on the primary, a reload takes the primary out of the router
// file and declares a standby the primary, and then the standby is
// promoted. The old primary's server is out of the topology in force, its
// pools open while the connections are held, and it answers out of
// recovery still: no check of the topology in force sees it, and the held
// connections went on writing to the fork. Now the check that watches a
// server a reload dropped, while its connections drain, cuts them once
// another server has the writes.
func TestHeldConnectionsOnADroppedOldPrimary(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(1))
	ctx := context.Background()
	old, promoted := topo.Primary, topo.Standbys[0]
	a := steadyHealth(topo.Artifact(), interval)
	r, path := openRouter(t, a, routerlib.WithWatch(0))
	if _, err := r.Exec(ctx, "CREATE TABLE dropped_held (id int, via text)"); err != nil {
		t.Fatal(err)
	}
	held, tx, commit, inFlight := holdOnPrimary(t, r, "dropped_held")
	next := a
	next.Nodes = []artifact.Node{a.Nodes[1]}
	next.Nodes[0].Role = artifact.RolePrimary
	writeFile(t, path, next)
	if err := r.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if err := promoted.Promote(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "writes on the promoted node", func() bool { return nodeStat(r, promoted.Name).Writer })
	noWriteOnOldPrimary(t, old, promoted, "dropped_held", held, tx, commit, inFlight)
}
