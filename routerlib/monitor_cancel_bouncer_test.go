package routerlib_test

import (
	"context"
	"testing"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// TestMonitorCancelKeepsPgBouncerUp: a node frozen behind PgBouncer for
// 20 s, longer than pgx waits for a cancel request (15 s), the router's
// health checks timing out on it all along (each closes its connection,
// and pgx sends a cancel first). PgBouncer 1.18 exits when a cancel's
// client hangs up before the server answered it (pgbouncer#801): the
// pools' cancels linger for that (cancelDials); this is the monitor's
// side, which no test froze a node this long for. The PgBouncer stays up,
// and the node takes the writes again after the thaw.
func TestMonitorCancelKeepsPgBouncerUp(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(0), routertest.WithPgBouncer())
	a, _ := hungHealth(topo.Artifact())
	r := newRouter(t, a, throughPgBouncer)
	ctx := context.Background()
	if _, err := r.Exec(ctx, "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	freeze(t, topo.Primary)
	time.Sleep(20 * time.Second)
	if err := topo.Primary.Thaw(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "the primary back", func() bool { return nodeStat(r, topo.Primary.Name).Writer })
	time.Sleep(2 * time.Second)
	if n := topo.Primary.BouncerCrashes(); n != 0 {
		t.Errorf("the primary's PgBouncer exited %d times (see the log above)", n)
	}
}
