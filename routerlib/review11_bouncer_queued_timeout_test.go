package routerlib_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// TestReview11BouncerQueryTimeoutWhileQueued: PgBouncer's query_timeout
// also ends a client still waiting for a server connection (the pool is
// full), with FATAL 08P01 "query_timeout" (1.18 and its source today),
// not "query timeout": its call never reached the server. The router took
// it for a failure after the write went out: "node failed during a write,
// which may have committed", a write that never ran and never will (0
// rows a second later).
func TestReview11BouncerQueryTimeoutWhileQueued(t *testing.T) {
	withPgBouncerSettings(t, "query_timeout = 1", "default_pool_size = 1")
	topo := routertest.Start(t, routertest.WithStandbys(0), routertest.WithPgBouncer())
	ctx := context.Background()
	if err := topo.Primary.Exec(ctx, "CREATE TABLE review11_q (id int)"); err != nil {
		t.Fatal(err)
	}
	r := newRouter(t, steadyHealth(topo.Artifact(), 200*time.Millisecond), throughPgBouncer)
	eventually(t, 10*time.Second, "primary writer", func() bool { return nodeStat(r, topo.Primary.Name).Writer })
	// A client holds the pool's only server connection in a transaction,
	// and keeps its own query_timeout from running out with a query every
	// 200 ms.
	holder, err := pgx.Connect(ctx, topo.Primary.BouncerDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close(ctx)
	if _, err := holder.Exec(ctx, "BEGIN"); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
				if _, err := holder.Exec(ctx, "SELECT 1"); err != nil {
					t.Logf("holder: %v", err)
					return
				}
			}
		}
	}()
	_, err = r.Exec(ctx, "INSERT INTO review11_q VALUES (1)")
	close(stop)
	<-done
	t.Logf("queued write: %v", err)
	time.Sleep(time.Second)
	var n int
	if err := topo.Primary.QueryRow(ctx, "SELECT count(*) FROM review11_q").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if err == nil || n != 0 {
		t.Fatalf("the queued write: %v, %d rows; want PgBouncer's query_timeout and no row", err, n)
	}
	if errors.Is(err, routerlib.ErrMaybeCommitted) {
		t.Errorf("a write PgBouncer ended while it waited for a server connection: %v; want it not to say it may have committed (it never ran: %d rows)", err, n)
	}
}
