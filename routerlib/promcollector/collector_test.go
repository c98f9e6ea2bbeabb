package promcollector_test

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/promcollector"
)

type fakeStats []routerlib.NodeStat

func (f fakeStats) Stat() []routerlib.NodeStat { return f }

// TestCollector checks the metrics a Stat turns into, without a database:
// the collector only reads Stat.
func TestCollector(t *testing.T) {
	src := fakeStats{
		{Name: "primary", DeclaredRole: "primary", ObservedRole: "primary", Writer: true, Healthy: true,
			Ejected: routerlib.EjectNotInRecovery, Writes: 7, Pool: routerlib.PoolStat{MaxConns: 10, TotalConns: 2}},
		{Name: "replica-1", DeclaredRole: "replica", ObservedRole: "replica", Healthy: true, Readable: true,
			Reads: 40, LagBytes: 128, Lag: 1500 * time.Millisecond},
		{Name: "replica-2", DeclaredRole: "replica", Ejected: routerlib.EjectUnreachable, Errors: 3},
	}
	c := promcollector.New(src)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	want := `
# HELP routerlib_node_ejected 1 with the reason the node is out of read rotation.
# TYPE routerlib_node_ejected gauge
routerlib_node_ejected{node="primary",reason="not in recovery"} 1
routerlib_node_ejected{node="replica-2",reason="unreachable"} 1
# HELP routerlib_reads_total Calls routed to the node as reads.
# TYPE routerlib_reads_total counter
routerlib_reads_total{node="primary"} 0
routerlib_reads_total{node="replica-1"} 40
routerlib_reads_total{node="replica-2"} 0
# HELP routerlib_replication_lag_seconds How far behind the primary the node's replay is.
# TYPE routerlib_replication_lag_seconds gauge
routerlib_replication_lag_seconds{node="primary"} 0
routerlib_replication_lag_seconds{node="replica-1"} 1.5
routerlib_replication_lag_seconds{node="replica-2"} 0
# HELP routerlib_node_up 1 when the node's last health check succeeded.
# TYPE routerlib_node_up gauge
routerlib_node_up{declared_role="primary",node="primary"} 1
routerlib_node_up{declared_role="replica",node="replica-1"} 1
routerlib_node_up{declared_role="replica",node="replica-2"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"routerlib_node_ejected", "routerlib_reads_total", "routerlib_replication_lag_seconds", "routerlib_node_up"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(c); n != 3*17-1 {
		t.Errorf("%d samples, want %d (17 metrics for 3 nodes, no ejected sample for the readable replica)", n, 3*17-1)
	}
}
