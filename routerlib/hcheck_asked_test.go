package routerlib_test

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// TestCheckAskedForWhileOneRuns: a check asked for while one is in flight
// runs once that one ends, and what the query that asked for it saw counts
// until a check begun after it is applied. A primary shut down fast ends
// a write's session with 57P01, which asks for a check; the check in
// flight then began before and had answered "up" (its answer held here in
// the tracer, as a loaded machine holds it between the answer and its
// use). The writes must leave the primary at the check asked for, which
// is refused, not at the next scheduled one, a minute on: the flake of
// TestPrimaryCallsAfterAFastPrimaryRestart (2 runs in 6 under load), where
// the request was dropped, the answer from before the shutdown cleared the
// session's end, and the writes were lost for 30 s.
//
// The check in flight answers in time, or past its deadline
// (health.timeout), whose failure, applied at the deadline, cleared what
// the query saw as well: a check asked for that then ran would have been
// refused with the node's failures forgotten, one failure of three.
func TestCheckAskedForWhileOneRuns(t *testing.T) {
	for _, c := range []struct {
		name    string
		timeout time.Duration
		late    bool // the check in flight answers past its deadline
	}{
		{"the check in flight answers in time", 30 * time.Second, false},
		{"the check in flight answers past its deadline", 2 * time.Second, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			topo := routertest.Start(t, routertest.WithStandbys(0))
			ctx := context.Background()
			a := steadyHealth(topo.Artifact(), time.Minute)
			a.Health.Timeout = artifact.Duration(c.timeout.String())
			events := &syncBuffer{}
			hold := newCheckHold()
			r := newRouter(t, a, routerlib.WithLogger(slog.New(slog.NewTextHandler(events, &slog.HandlerOptions{Level: slog.LevelDebug}))),
				routerlib.WithPoolConfig(func(n artifact.Node, cfg *pgxpool.Config) {
					if n.Name == topo.Primary.Name {
						cfg.ConnConfig.Tracer = hold
					}
				}))
			t.Cleanup(hold.free) // before r.Close, which waits for the check
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("the router's log:\n%s", events.String())
				}
			})
			primary := topo.Primary.Name

			// Two writes in flight: the first one's end asks for the
			// check that is held, the second one's for the check that
			// must follow it.
			first, second := inFlight(t, r, topo.Primary, 60), inFlight(t, r, topo.Primary, 61)
			if c.late {
				// The second write's end must not count as an answer
				// within health.timeout, which would excuse the
				// deadline (see watchNode).
				time.Sleep(c.timeout + 500*time.Millisecond)
			}
			hold.arm()
			first.terminate(t)
			select {
			case <-hold.held:
			case <-time.After(10 * time.Second):
				t.Fatal("no check of the primary began after a write's session ended (57P01)")
			}
			second.terminate(t)
			if c.late {
				eventually(t, 2*c.timeout+5*time.Second, "the check's deadline", func() bool {
					return strings.Contains(events.String(), "no answer within health.timeout")
				})
				log := events.String()
				if strings.LastIndex(log, "checking the node now") > strings.Index(log, "no answer within health.timeout") {
					t.Fatal("the check's deadline passed before the second write's session ended: the case proves nothing")
				}
			} else {
				eventually(t, 10*time.Second, "the request taken by the monitor", func() bool { return !r.CheckAskedForTest(primary) })
			}
			if err := topo.Primary.Stop(ctx); err != nil {
				t.Fatal(err)
			}
			hold.free() // the check in flight answers "up": it began before the shutdown
			began := time.Now()
			eventually(t, 10*time.Second, "the writes lost", func() bool {
				s, _ := r.NodeStat(primary)
				return !s.Writer
			})
			t.Logf("the writes left the primary %v after the check in flight answered", time.Since(began).Round(time.Millisecond))
		})
	}
}

// TestWriterConnectionRefusedAsksForACheck: a write that finds the primary
// refusing connections asks for a check now, which takes the writes from
// it, rather than leaving them there until the next scheduled check (a
// minute here), every write failing meanwhile.
func TestWriterConnectionRefusedAsksForACheck(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(0))
	ctx := context.Background()
	a := steadyHealth(topo.Artifact(), time.Minute)
	r := newRouter(t, a)
	if err := topo.Primary.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	_, err := r.Exec(ctx, "CREATE TABLE hcheck_refused (id int)")
	var pgErr *pgconn.PgError
	if err == nil || errors.As(err, &pgErr) {
		t.Fatalf("the write with the primary stopped: %v; want a connection failure", err)
	}
	t.Logf("the write with the primary stopped: %v", err)
	eventually(t, 10*time.Second, "the writes lost", func() bool {
		s, _ := r.NodeStat(topo.Primary.Name)
		return !s.Writer
	})
}

// checkHold holds, once armed, the next health check of the node whose
// pool configuration it traces, once its query has answered and before
// the check returns: a pgx tracer, whose TraceQueryEnd runs after the
// answer was read.
type checkHold struct {
	mu      sync.Mutex
	armed   bool
	held    chan struct{} // a check is held
	release chan struct{}
	once    sync.Once
}

func newCheckHold() *checkHold {
	return &checkHold{held: make(chan struct{}, 1), release: make(chan struct{})}
}

func (h *checkHold) arm() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.armed = true
}

// free lets the check held go on, and any later one.
func (h *checkHold) free() { h.once.Do(func() { close(h.release) }) }

type checkQueryKey struct{}

func (h *checkHold) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	if strings.HasPrefix(data.SQL, "SELECT pg_is_in_recovery(),") { // the health check's query
		return context.WithValue(ctx, checkQueryKey{}, true)
	}
	return ctx
}

func (h *checkHold) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryEndData) {
	if ctx.Value(checkQueryKey{}) == nil || data.Err != nil {
		return
	}
	h.mu.Lock()
	armed := h.armed
	h.armed = false
	h.mu.Unlock()
	if armed {
		h.held <- struct{}{}
		<-h.release
	}
}

// aWrite is a write sent through the router that runs on the primary
// until its session is terminated.
type aWrite struct {
	primary *routertest.Node
	sql     string
	done    chan error
}

// inFlight sends, through r, a write that sleeps for seconds on primary,
// and returns once the primary runs it.
func inFlight(t *testing.T, r *routerlib.Router, primary *routertest.Node, seconds int) *aWrite {
	t.Helper()
	w := &aWrite{primary: primary, sql: "DO $$BEGIN PERFORM pg_sleep(" + strconv.Itoa(seconds) + "); END$$", done: make(chan error, 1)}
	go func() {
		_, err := r.Exec(context.Background(), w.sql)
		w.done <- err
	}()
	eventually(t, 10*time.Second, "the write in flight", func() bool {
		var n int
		err := primary.QueryRow(context.Background(), "SELECT count(*) FROM pg_stat_activity WHERE query = $1", w.sql).Scan(&n)
		return err == nil && n > 0
	})
	return w
}

// terminate ends the write's session (pg_terminate_backend: FATAL 57P01)
// and returns once the router's call failed with it.
func (w *aWrite) terminate(t *testing.T) {
	t.Helper()
	if err := w.primary.Exec(context.Background(), "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = $1", w.sql); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-w.done:
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "57P01" {
			t.Fatalf("the write whose session was terminated: %v; want 57P01", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the write whose session was terminated did not return")
	}
}
