package routerlib_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// TestPrimaryCallsAfterAFastPrimaryRestart: the calls that need the
// primary itself (Acquire, MigrationConn, and the session middleware's
// reads of the primary's position: Verify, and the settling of a session
// whose work's position Release could not read) wait for a check after a
// fast restart, as Exec does (TestWritesAfterAFastPrimaryRestart), instead
// of failing with ErrNoPrimary until the next scheduled check. Each case
// opens the window afresh: the primary is stopped, the router sees the
// writes lost, and the primary is started again; the scheduled checks are
// 30 s apart, so none sees it back before the call. While the primary
// stays down, Acquire still fails with ErrNoPrimary within its context's
// deadline, or health.timeout without one.
func TestPrimaryCallsAfterAFastPrimaryRestart(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(1))
	ctx := context.Background()
	if err := topo.Primary.Exec(ctx, "CREATE TABLE fix_restart_acquire (id int)"); err != nil {
		t.Fatal(err)
	}
	a := steadyHealth(topo.Artifact(), 30*time.Second)
	a.Consistency.Mode = artifact.ModeReadYourWrites
	// The router's health events, shown if the test fails.
	events := &syncBuffer{}
	r := newRouter(t, a, routerlib.WithLogger(slog.New(slog.NewTextHandler(events, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the router's log:\n%s", events.String())
		}
	})
	m, value := signedAtPrimary(t, r, topo.Primary)
	acquired := func(op func(context.Context) (*routerlib.Conn, error)) func() error {
		return func() error {
			c, err := op(ctx)
			if err != nil {
				return err
			}
			defer c.Release()
			_, err = c.Exec(ctx, "INSERT INTO fix_restart_acquire VALUES (1)")
			return err
		}
	}
	for _, c := range []struct {
		name string
		call func(*testing.T) error // opens the window itself
	}{
		{"Acquire", inWriterWindow(r, topo.Primary, acquired(r.Acquire))},
		{"MigrationConn", inWriterWindow(r, topo.Primary, acquired(r.MigrationConn))},
		{"SessionMiddleware.Verify", inWriterWindow(r, topo.Primary, func() error {
			if _, ok := m.Verify(ctx, value); !ok {
				return errors.New("the value was not honoured")
			}
			return nil
		})},
		{"SessionMiddleware's value after a Release that could not read the position", func(t *testing.T) error {
			return settledAfterRestart(t, r, m, topo.Primary)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := c.call(t); err != nil {
				t.Errorf("%s after the primary was up again: %v; want it to wait for a check and succeed", c.name, err)
			}
		})
	}

	// Down for good: the wait is bounded by the context, or by
	// health.timeout (1s).
	if err := topo.Primary.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "no primary", func() bool {
		_, err := r.Exec(ctx, "INSERT INTO fix_restart_acquire VALUES (0)")
		return errors.Is(err, routerlib.ErrNoPrimary)
	})
	noPrimaryWithinBounds(t, "Acquire", func(ctx context.Context) error {
		c, err := r.Acquire(ctx)
		if c != nil {
			c.Release()
		}
		return err
	})
}

// noPrimaryWithinBounds calls call, which needs the primary, while the
// primary is down for good, and fails t unless it fails with ErrNoPrimary
// within a 200ms context's deadline, or health.timeout (steadyHealth's 1s)
// without one.
func noPrimaryWithinBounds(t *testing.T, what string, call func(context.Context) error) {
	t.Helper()
	for _, c := range []struct {
		name  string
		limit time.Duration
		max   time.Duration
	}{{"a 200ms context", 200 * time.Millisecond, 900 * time.Millisecond}, {"no deadline", 0, 2500 * time.Millisecond}} {
		ctx, cancel := context.Background(), context.CancelFunc(func() {})
		if c.limit > 0 {
			ctx, cancel = context.WithTimeout(ctx, c.limit)
		}
		began := time.Now()
		err := call(ctx)
		took := time.Since(began)
		cancel()
		t.Logf("%s, %s, primary down: %v after %v", what, c.name, err, took)
		if !errors.Is(err, routerlib.ErrNoPrimary) || took > c.max {
			t.Errorf("%s, %s, primary down: %v after %v; want ErrNoPrimary within %v", what, c.name, err, took, c.max)
		}
	}
}

// signedAtPrimary makes a session middleware for r and a value it signed
// at primary's WAL position now: with no writer to compare it with,
// Verify asks the primary its position (and waits for a primary
// restarted fast, as writes do).
func signedAtPrimary(t *testing.T, r *routerlib.Router, primary *routertest.Node) (*routerlib.SessionMiddleware, string) {
	t.Helper()
	m, err := routerlib.NewSessionMiddleware(r, routerlib.SessionConfig{Keys: [][]byte{bytes.Repeat([]byte("k"), routerlib.MinSessionKeyLen)}})
	if err != nil {
		t.Fatal(err)
	}
	var pos string
	if err := primary.QueryRow(context.Background(), "SELECT pg_current_wal_lsn()::text").Scan(&pos); err != nil {
		t.Fatal(err)
	}
	lsn, err := routerlib.ParseLSN(pos)
	if err != nil {
		t.Fatal(err)
	}
	return m, m.Sign(lsn)
}

// inWriterWindow returns call, run once openWriterWindow opened the window.
func inWriterWindow(r *routerlib.Router, primary *routertest.Node, call func() error) func(*testing.T) error {
	return func(t *testing.T) error {
		openWriterWindow(t, r, primary)
		return call()
	}
}

// openWriterWindow opens the window of a fast restart, which stays open
// until a check sees the primary back: the primary is stopped
// (loseWrites) and started again. A scheduled check that saw it back
// before the call (the tests' are 30 s apart) would close the window: it
// is opened again then, up to 3 times.
func openWriterWindow(t *testing.T, r *routerlib.Router, primary *routertest.Node) {
	t.Helper()
	for range 3 {
		loseWrites(t, r, primary)
		if err := primary.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		if s, _ := r.NodeStat(primary.Name); !s.Writer {
			return
		}
		t.Log("a scheduled check saw the primary back before the call: the window is opened again")
	}
	t.Fatal("a scheduled check saw the primary back before the call, 3 times: the case proves nothing")
}

// loseWrites stops primary (fast) under a write in flight, whose session
// ends with 57P01, so that the check it asks for at once is refused, and
// returns once r's checks took the writes from it: the window of a fast
// restart opens.
func loseWrites(t *testing.T, r *routerlib.Router, primary *routertest.Node) {
	t.Helper()
	write := inFlight(t, r, primary, 30)
	if err := primary.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Logf("the write in flight when the primary stopped: %v", <-write.done)
	defer func() {
		if t.Failed() {
			s, _ := r.NodeStat(primary.Name)
			t.Logf("the primary's NodeStat: %+v", s)
		}
	}()
	eventually(t, 10*time.Second, "the writes lost", func() bool {
		s, _ := r.NodeStat(primary.Name)
		return !s.Writer
	})
}

// settledAfterRestart serves one request through m.Cookie whose handler
// acquires a connection and releases it under a cancelled context (its
// WAL position cannot be read: the session is unsettled), then opens the
// writer window (openWriterWindow) before the response is written, when
// the middleware asks the primary its position to sign the value. It
// returns an error when the response carries no session value.
func settledAfterRestart(t *testing.T, r *routerlib.Router, m *routerlib.SessionMiddleware, primary *routertest.Node) error {
	// Ping waits for a check that sees the primary back, if the window
	// of an earlier case is open still.
	if err := r.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	h := m.Cookie(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		actx, cancel := context.WithCancel(req.Context())
		c, err := r.Acquire(actx)
		if err != nil {
			t.Error(err)
			cancel()
			return
		}
		if _, err := c.Exec(actx, "INSERT INTO fix_restart_acquire VALUES (2)"); err != nil {
			t.Error(err)
		}
		cancel()
		c.Release()
		openWriterWindow(t, r, primary)
		w.WriteHeader(http.StatusNoContent)
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", nil))
	for _, c := range rec.Result().Cookies() {
		if c.Name == routerlib.SessionCookie && c.Value != "" {
			return nil
		}
	}
	return errors.New("the response carries no session value: the primary's position was not read")
}
