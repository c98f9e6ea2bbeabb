package routerlib_test

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

func TestMain(m *testing.M) { os.Exit(routertest.Main(m, routertest.WithStandbys(2))) }

// fastHealth makes the monitor check every interval and act on the first
// failure, so tests about health run in a second or two.
func fastHealth(a artifact.Topology, interval time.Duration) artifact.Topology {
	a.Health = artifact.Health{
		Interval:     artifact.Duration(interval.String()),
		Timeout:      artifact.Duration((2 * interval).String()),
		EjectAfter:   1,
		ReadmitAfter: 1,
	}
	return a
}

// newRouter makes a Router for a and closes it when the test ends.
func newRouter(tb testing.TB, a artifact.Topology, opts ...routerlib.Option) *routerlib.Router {
	tb.Helper()
	r, err := routerlib.New(context.Background(), a, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(r.Close)
	return r
}

// openRouter writes a to a router file and opens it.
func openRouter(tb testing.TB, a artifact.Topology, opts ...routerlib.Option) (*routerlib.Router, string) {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "router.json")
	writeFile(tb, path, a)
	r, err := routerlib.Open(context.Background(), path, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(r.Close)
	return r, path
}

func writeFile(tb testing.TB, path string, a artifact.Topology) {
	tb.Helper()
	data, err := artifact.Marshal(a)
	if err != nil {
		tb.Fatal(err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o640); err != nil {
		tb.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		tb.Fatal(err)
	}
}

// recorder is a Tracer that keeps every decision.
type recorder struct {
	mu        sync.Mutex
	decisions []routerlib.Decision
}

func (rec *recorder) TraceRoute(_ context.Context, d routerlib.Decision) {
	rec.mu.Lock()
	rec.decisions = append(rec.decisions, d)
	rec.mu.Unlock()
}

func (rec *recorder) last(tb testing.TB) routerlib.Decision {
	tb.Helper()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.decisions) == 0 {
		tb.Fatal("no routing decision traced")
	}
	return rec.decisions[len(rec.decisions)-1]
}

func (rec *recorder) reset() {
	rec.mu.Lock()
	rec.decisions = nil
	rec.mu.Unlock()
}

// serverPort says which server answered: every routertest node listens on
// its own port.
func serverPort(tb testing.TB, ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}) int {
	tb.Helper()
	var port int
	if err := q.QueryRow(ctx, "SELECT inet_server_port()").Scan(&port); err != nil {
		tb.Fatal(err)
	}
	return port
}

// eventually polls cond every 20ms until it holds or d passes.
func eventually(tb testing.TB, d time.Duration, what string, cond func() bool) time.Duration {
	tb.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			tb.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

func nodeStat(r *routerlib.Router, name string) routerlib.NodeStat {
	s, _ := r.NodeStat(name)
	return s
}
