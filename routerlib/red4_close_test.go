package routerlib_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// TestRed4CloseEndsCallsWaiting: calls waiting when Close is called must
// return once it has: a call waiting for a connection of a pool that the
// application holds to its max_conns (an Acquire'd connection, rows not
// closed), a read_your_writes read waiting wait_timeout for a replica that
// does not replay (TestCloseEndsReadYourWritesWait). Before, both waited
// until the application let go: puddle's waiters wait for a slot under
// their own context alone, which pgxpool.Pool.Close does not end. Each
// pool now keeps a slot that Close frees (nodeConns.reserveSlot): the
// waits end with ErrClosed when Close cuts the connections, health.timeout
// (1s) after it began. doc.go says Close returns within health.timeout and
// a second, and that what the application still holds fails at its next
// use.
func TestRed4CloseEndsCallsWaiting(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(1))
	ctx := context.Background()
	if err := topo.Primary.Exec(ctx, "CREATE TABLE close_waiting (id int)"); err != nil {
		t.Fatal(err)
	}
	a := steadyHealth(topo.Artifact(), interval)
	a.Pool.MaxConns = 1
	a.Consistency = artifact.Consistency{Mode: "read_your_writes", WaitTimeout: "30s"}
	r, err := routerlib.New(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	held, err := r.Acquire(ctx) // the primary's one connection
	if err != nil {
		t.Fatal(err)
	}
	defer held.Release()
	rows, err := r.Query(ctx, "SELECT generate_series(1, 100000)") // the replica's one connection, not closed
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()

	type result struct {
		what string
		err  error
		took time.Duration
	}
	results := make(chan result, 4)
	start := time.Now()
	go func() {
		_, err := r.Exec(ctx, "INSERT INTO close_waiting VALUES (1)")
		results <- result{"a write waiting for the primary's pool", err, time.Since(start)}
	}()
	go func() {
		err := r.QueryRow(ctx, "SELECT 1").Scan(new(int))
		results <- result{"a read waiting for the replica's pool", err, time.Since(start)}
	}()
	time.Sleep(500 * time.Millisecond)
	closeStart := time.Now()
	r.Close()
	t.Logf("Close took %v", time.Since(closeStart))
	limit := time.After(3 * time.Second)
	for got := 0; got < 2; {
		select {
		case res := <-results:
			got++
			t.Logf("%s returned %v after it began: %v", res.what, res.took, res.err)
			if !errors.Is(res.err, routerlib.ErrClosed) {
				t.Errorf("%s: %v, want ErrClosed", res.what, res.err)
			}
		case <-limit:
			t.Errorf("%d of 2 calls waiting for a pool's connection still wait 3 s after Close returned", 2-got)
			// Now the application lets go of what it held.
			held.Release()
			rows.Close()
			t.Log("the held connection released, the rows closed")
			limit = time.After(10 * time.Second)
		}
	}
}
