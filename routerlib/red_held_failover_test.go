package routerlib_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// TestHeldConnectionsLeaveAnOldPrimary: a standby is promoted while the
// primary keeps running (nobody fenced it), and the router moves the
// writes to the promoted node. A connection the application holds on the
// old primary, from Acquire or a transaction begun before, used to go on
// writing there: three rows committed on the fork the promotion left
// behind, all lost. Now the router closes the old primary's connections
// when it takes the writes from it: the held connection and the
// transaction fail, their errors name the node and why, and
// nothing more reaches the old primary. A new Acquire reaches the
// promoted node.
func TestHeldConnectionsLeaveAnOldPrimary(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(2))
	ctx := context.Background()
	r := newRouter(t, steadyHealth(topo.Artifact(), 200*time.Millisecond))
	if _, err := r.Exec(ctx, "CREATE TABLE held_t (id int, via text)"); err != nil {
		t.Fatal(err)
	}
	// A statement in flight on a held connection when the router cuts it
	// off may have committed: ErrMaybeCommitted, never advice to run it
	// again as is.
	held, tx, commit, inFlight := holdOnPrimary(t, r, "held_t")
	promoted := topo.Standbys[0]
	if err := promoted.Promote(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "writes on the promoted node", func() bool { return nodeStat(r, promoted.Name).Writer })
	noWriteOnOldPrimary(t, topo.Primary, promoted, "held_t", held, tx, commit, inFlight)
	again, err := r.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Release()
	var port int
	if err := again.QueryRow(ctx, "SELECT inet_server_port()").Scan(&port); err != nil || port != promoted.Port {
		t.Errorf("a new Acquire: port %d, %v; want the promoted node's %d", port, err, promoted.Port)
	}
}

// TestAcquiredConnectionAfterClose: Close cuts a connection the
// application still holds (it returns within health.timeout and a second
// whatever is held), and the connection's next use failed with pgx's bare
// "conn closed". It is ErrClosed now, naming the node.
func TestAcquiredConnectionAfterClose(t *testing.T) {
	a := steadyHealth(routertest.Shared(t).Artifact(), 200*time.Millisecond)
	r, err := routerlib.New(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	held, err := r.Acquire(ctx)
	if err != nil {
		r.Close()
		t.Fatal(err)
	}
	defer held.Release()
	r.Close()
	_, err = held.Exec(ctx, "SELECT 1")
	if !errors.Is(err, routerlib.ErrClosed) || !strings.Contains(err.Error(), `"`+a.Nodes[0].Name+`"`) {
		t.Errorf("the held connection after Close: %v; want ErrClosed naming node %q", err, a.Nodes[0].Name)
	}
}
