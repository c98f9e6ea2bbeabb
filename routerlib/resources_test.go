package routerlib_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// TestNotCheckedBeforeFirstCheck: when New's context ends before the first
// check, every node says so in Stat, writes say so in their error, and the
// monitor's first check puts the nodes to work.
func TestNotCheckedBeforeFirstCheck(t *testing.T) {
	topo := routertest.Shared(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := newRouterCtx(t, ctx, fastHealth(topo.Artifact(), interval))
	for _, s := range r.Stat() {
		if s.Readable || s.Ejected != routerlib.EjectNotChecked || s.Writer {
			t.Errorf("before any check, Stat of %s: readable=%v ejected=%q writer=%v; want not checked", s.Name, s.Readable, s.Ejected, s.Writer)
		}
	}
	_, err := r.Exec(context.Background(), "SELECT pg_advisory_unlock_all()")
	if !errors.Is(err, routerlib.ErrNoPrimary) || !strings.Contains(err.Error(), "not been checked") {
		t.Errorf("a write before any check: %v; want ErrNoPrimary saying the primary has not been checked", err)
	}
	eventually(t, 5*time.Second, "the first check", func() bool {
		return nodeStat(r, topo.Standbys[0].Name).Readable && nodeStat(r, topo.Primary.Name).Writer
	})
	if s := nodeStat(r, topo.Primary.Name); s.Ejected != routerlib.EjectNotInRecovery {
		t.Errorf("after the first check the primary is out of rotation for %q, want not in recovery", s.Ejected)
	}
}

func newRouterCtx(tb testing.TB, ctx context.Context, a artifact.Topology) *routerlib.Router {
	tb.Helper()
	r, err := routerlib.New(ctx, a)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(r.Close)
	return r
}

// replayQueries counts, per node, the queries that ask how far a standby
// has replayed (not the health checks, which ask more).
type replayQueries struct {
	mu          sync.Mutex
	counts      map[string]int
	inFlight    map[string]int
	maxInFlight map[string]int
}

type replayTracer struct {
	q    *replayQueries
	node string
}

func (tr replayTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	if strings.Contains(d.SQL, "pg_last_wal_replay_lsn") && !strings.Contains(d.SQL, "pg_is_in_recovery") {
		tr.q.mu.Lock()
		tr.q.counts[tr.node]++
		tr.q.inFlight[tr.node]++
		tr.q.maxInFlight[tr.node] = max(tr.q.maxInFlight[tr.node], tr.q.inFlight[tr.node])
		tr.q.mu.Unlock()
		return context.WithValue(ctx, replayTracer{}, true)
	}
	return ctx
}

func (tr replayTracer) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryEndData) {
	if ctx.Value(replayTracer{}) != nil {
		tr.q.mu.Lock()
		tr.q.inFlight[tr.node]--
		tr.q.mu.Unlock()
	}
}

// TestWaitingReadsSharePolls: 100 reads wait at once for the standbys to
// replay their session's write. They share one replay query per node per
// poll period (5 ms) instead of polling each on its own, and every read is
// served by a standby once replay resumes.
func TestWaitingReadsSharePolls(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(2))
	ctx := context.Background()
	q := &replayQueries{counts: map[string]int{}, inFlight: map[string]int{}, maxInFlight: map[string]int{}}
	a := fastHealth(topo.Artifact(), time.Second) // the monitor stays out of the way
	a.Consistency = artifact.Consistency{Mode: artifact.ModeReadYourWrites, WaitTimeout: "10s"}
	r := newRouter(t, a, routerlib.WithPoolConfig(func(n artifact.Node, cfg *pgxpool.Config) {
		cfg.ConnConfig.Tracer = replayTracer{q: q, node: n.Name}
	}))
	if _, err := r.Exec(ctx, "CREATE TABLE poll_t (id int)"); err != nil {
		t.Fatal(err)
	}
	waitReplayed(t, topo)
	for _, s := range topo.Standbys {
		if err := s.PauseReplay(ctx); err != nil {
			t.Fatal(err)
		}
	}
	session := &routerlib.Session{}
	sctx := routerlib.WithSession(ctx, session)
	if _, err := r.Exec(sctx, "INSERT INTO poll_t VALUES (1)"); err != nil {
		t.Fatal(err)
	}

	const readers = 100
	start := time.Now()
	var wg sync.WaitGroup
	var onPrimary, failed atomic.Int64
	for range readers {
		wg.Go(func() {
			var port int
			if err := r.QueryRow(sctx, "SELECT inet_server_port() FROM poll_t").Scan(&port); err != nil {
				failed.Add(1)
				t.Error(err)
				return
			}
			if port == topo.Primary.Port {
				onPrimary.Add(1)
			}
		})
	}
	time.Sleep(300 * time.Millisecond) // every read waits, polling
	for _, s := range topo.Standbys {
		if err := s.ResumeReplay(ctx); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	elapsed := time.Since(start)

	q.mu.Lock()
	defer q.mu.Unlock()
	// One query per period, plus the one at the start.
	limit := int(elapsed/(5*time.Millisecond)) + 1
	for _, s := range topo.Standbys {
		got := q.counts[s.Name]
		t.Logf("%s: %d replay queries in %v for %d waiting reads (limit %d)", s.Name, got, elapsed.Round(time.Millisecond), readers, limit)
		if got > limit {
			t.Errorf("%s: %d replay queries in %v; want at most one per 5 ms (%d)", s.Name, got, elapsed, limit)
		}
		if m := q.maxInFlight[s.Name]; m != 1 {
			t.Errorf("%s: %d replay queries in flight at once; want 1", s.Name, m)
		}
		if got == 0 {
			t.Errorf("%s: no replay query: the reads did not wait on it", s.Name)
		}
	}
	if failed.Load() != 0 || onPrimary.Load() != 0 {
		t.Errorf("%d reads failed, %d went to the primary; want every read on a standby once replay resumed", failed.Load(), onPrimary.Load())
	}
}
