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
	held, err := r.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Release()
	tx, err := r.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "INSERT INTO held_t VALUES (0, 'transaction, before the promotion')"); err != nil {
		t.Fatal(err)
	}
	// A statement in flight on a held connection when the router cuts it
	// off may have committed: ErrMaybeCommitted, never advice to run it
	// again as is.
	inFlight, err := r.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer inFlight.Release()
	errInFlight := make(chan error, 1)
	go func() {
		_, err := inFlight.Exec(ctx, "SELECT pg_sleep(30)")
		errInFlight <- err
	}()
	promoted := topo.Standbys[0]
	if err := promoted.Promote(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "writes on the promoted node", func() bool { return nodeStat(r, promoted.Name).Writer })
	// The application comes back to its connections later, after the
	// old primary's next checks.
	time.Sleep(time.Second)
	_, errHeld := held.Exec(ctx, "INSERT INTO held_t VALUES (1, 'acquired connection')")
	_, errTx := tx.Exec(ctx, "INSERT INTO held_t VALUES (2, 'transaction')")
	errCommit := tx.Commit(ctx)
	t.Logf("acquired connection: %v\ntransaction: %v\ncommit: %v", errHeld, errTx, errCommit)
	var n int
	if err := topo.Primary.QueryRow(ctx, "SELECT count(*) FROM held_t").Scan(&n); err != nil {
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
	case err := <-errInFlight:
		if !errors.Is(err, routerlib.ErrMaybeCommitted) || !strings.Contains(err.Error(), "lost the writes") {
			t.Errorf("a statement in flight on a held connection when the router cut it off: %v; want ErrMaybeCommitted saying the node lost the writes", err)
		}
	case <-time.After(10 * time.Second):
		t.Error("a statement in flight on a held connection on the old primary was not cut off")
	}
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
