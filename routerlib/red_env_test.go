package routerlib_test

import (
	"context"
	"testing"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// TestTargetSessionAttrsInTheEnvironment: an application that connected
// with libpq's multi-host failover may still have $PGTARGETSESSIONATTRS
// set when it moves to the router, and pgx reads it for every connection
// it makes. "read-write" or "primary" refused each standby's connections
// ("ValidateConnect failed: read only connection"): the replicas were
// never in rotation and every read went to the primary; "standby" refused
// the primary's, and no write was taken ("declared primary is
// unreachable"). The router learns each node's role from the server, so
// reads go to the replicas and writes to the primary whatever it says.
func TestTargetSessionAttrsInTheEnvironment(t *testing.T) {
	topo := routertest.Shared(t)
	ctx := context.Background()
	for _, attrs := range []string{"read-write", "primary", "standby", "read-only", "prefer-standby"} {
		t.Run(attrs, func(t *testing.T) {
			t.Setenv("PGTARGETSESSIONATTRS", attrs)
			r := newRouter(t, steadyHealth(topo.Artifact(), 100*time.Millisecond))
			got := map[int]int{}
			for range 6 {
				got[serverPort(t, ctx, r)]++
			}
			if got[topo.Standbys[0].Port] != 3 || got[topo.Standbys[1].Port] != 3 {
				t.Errorf("reads answered by ports %v, want 3 by each replica (%d, %d); the primary is %d", got, topo.Standbys[0].Port, topo.Standbys[1].Port, topo.Primary.Port)
			}
			var port int
			if err := r.QueryRow(ctx, "SELECT inet_server_port() FROM (SELECT pg_advisory_unlock_all()) s").Scan(&port); err != nil {
				t.Errorf("write: %v", err)
			} else if port != topo.Primary.Port {
				t.Errorf("write answered by port %d, want the primary's %d", port, topo.Primary.Port)
			}
			for _, s := range r.Stat() {
				if !s.Healthy {
					t.Errorf("%s: %s", s.Name, s.LastError)
				}
			}
		})
	}
}
