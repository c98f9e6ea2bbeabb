package routerlib_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
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

// steadyHealth checks every interval, as fastHealth does, but a node leaves
// rotation (or the writes) only after 3 failed checks of a second each: for
// tests whose subject is not ejection. On a busy 2-core machine (-race,
// another suite beside) one check of a healthy node takes longer than
// fastHealth's 2 × interval now and then, and with eject_after 1 that cut
// the node off and failed the test for a reason not its own. A node a
// query finds refusing or broken still leaves at once.
func steadyHealth(a artifact.Topology, interval time.Duration) artifact.Topology {
	a = fastHealth(a, interval)
	a.Health.Timeout, a.Health.EjectAfter = "1s", 3
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

// logClock is a slog.Handler that keeps when the router logged each
// message for each node: the instant of a decision (a failed check, an
// ejection), which a test that polls Stat sees only at its next poll, and
// on a busy machine later still.
type logClock struct {
	mu        sync.Mutex
	times     map[[2]string][]time.Time // [message, node] → the records' times
	rotations map[string][]string       // node → its read rotation records, "was → reason"
}

func (c *logClock) Enabled(context.Context, slog.Level) bool { return true }
func (c *logClock) WithAttrs([]slog.Attr) slog.Handler       { return c }
func (c *logClock) WithGroup(string) slog.Handler            { return c }

func (c *logClock) Handle(_ context.Context, r slog.Record) error {
	node, reason, was := rotationAttrs(r)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.times == nil {
		c.times, c.rotations = map[[2]string][]time.Time{}, map[string][]string{}
	}
	k := [2]string{r.Message, node}
	c.times[k] = append(c.times[k], r.Time)
	switch r.Message {
	case "routerlib: replica in rotation":
		reason = "in rotation"
		fallthrough
	case "routerlib: replica out of rotation":
		c.rotations[node] = append(c.rotations[node], was+" → "+reason)
	}
	return nil
}

// rotationAttrs returns the node a record is about, and for a record of
// read rotation the reason and what the node was before.
func rotationAttrs(r slog.Record) (node, reason, was string) {
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "node":
			node = a.Value.String()
		case "reason":
			reason = a.Value.String()
		case "was":
			was = a.Value.String()
		}
		return true
	})
	return node, reason, was
}

// rotation returns node's read rotation records so far, each "was →
// reason".
func (c *logClock) rotation(node string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.rotations[node])
}

// records returns every message logged for node, with its time, for a
// test's failure diagnosis.
func (c *logClock) records(node string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for k, times := range c.times {
		if k[1] == node {
			for _, at := range times {
				out = append(out, at.Format("15:04:05.000")+" "+k[0])
			}
		}
	}
	slices.Sort(out)
	return out
}

// after returns when msg was first logged for node after t0, and whether
// it was.
func (c *logClock) after(msg, node string, t0 time.Time) (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, at := range c.times[[2]string{msg, node}] {
		if at.After(t0) {
			return at, true
		}
	}
	return time.Time{}, false
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

// timerLateness measures, from now until the returned function is called,
// the most a 5 ms sleep of this process overran: how late the machine lets
// the router's timers fire. A timing bound that the router promises holds
// on its timers; on a 2-core machine with another suite beside (load 25
// was seen) they fire late, and a test adds what it measured here for each
// timer its bound waits on instead of a fixed allowance.
func timerLateness() func() time.Duration {
	stop := make(chan struct{})
	most := make(chan time.Duration, 1)
	go func() {
		var late time.Duration
		for {
			select {
			case <-stop:
				most <- late
				return
			default:
			}
			start := time.Now()
			time.Sleep(5 * time.Millisecond)
			late = max(late, time.Since(start)-5*time.Millisecond)
		}
	}()
	return func() time.Duration { close(stop); return <-most }
}

func nodeStat(r *routerlib.Router, name string) routerlib.NodeStat {
	s, _ := r.NodeStat(name)
	return s
}
