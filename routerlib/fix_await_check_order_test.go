package routerlib_test

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// TestWriterAwaitedWhileItsCheckApplies: a call waiting for a primary
// restarted fast (see TestWritesAfterAFastPrimaryRestart) takes it when
// the check that sees it back has chosen it, and does not fail in between.
// A check applies the node's state (reachable, out of recovery) and then
// chooses the writer; a wait that looked between the two saw a node that
// answers, out of recovery, and no writer, and failed with ErrNoPrimary a
// moment before the writer came: TestWriterAwaitedAcrossAReload's Acquire
// did, under load, 15 ms before its Exec succeeded. So could Exec,
// MigrationConn, Ping and the session middleware's Verify, which wait
// the same way (awaitWriter). The router's logger
// holds that moment open here: it blocks on the log line that the check
// writes between the two ("node answers again").
func TestWriterAwaitedWhileItsCheckApplies(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(1))
	ctx := context.Background()
	if err := topo.Primary.Exec(ctx, "CREATE TABLE fix_await_check_order (id int)"); err != nil {
		t.Fatal(err)
	}
	h := &holdAtLine{line: "routerlib: node answers again", node: topo.Primary.Name, hold: 300 * time.Millisecond}
	a := steadyHealth(topo.Artifact(), 30*time.Second)
	a.Health.Timeout = "5s" // the wait's bound: room for a start inside it
	a.Consistency.Mode = artifact.ModeReadYourWrites
	r, path := openRouter(t, a, routerlib.WithWatch(0), routerlib.WithLogger(slog.New(h)))
	m, value := signedAtPrimary(t, r, topo.Primary)

	calls := map[string]func(context.Context) error{
		"Exec": func(ctx context.Context) error {
			_, err := r.Exec(ctx, "INSERT INTO fix_await_check_order VALUES (1)")
			return err
		},
		"Acquire": func(ctx context.Context) error {
			c, err := r.Acquire(ctx)
			if err == nil {
				c.Release()
			}
			return err
		},
		"MigrationConn": func(ctx context.Context) error {
			c, err := r.MigrationConn(ctx)
			if err == nil {
				c.Release()
			}
			return err
		},
		"Ping": r.Ping,
		"SessionMiddleware.Verify": func(ctx context.Context) error {
			if _, ok := m.Verify(ctx, value); !ok {
				return errors.New("the value was not honoured")
			}
			return nil
		},
	}
	type result struct {
		what string
		err  error
		took time.Duration
	}
	loseWrites(t, r, topo.Primary)
	h.armed.Store(true)
	done := make(chan result, len(calls))
	for what, call := range calls {
		go func() {
			began := time.Now()
			err := call(ctx)
			done <- result{what, err, time.Since(began)}
		}()
	}
	time.Sleep(200 * time.Millisecond) // every call waiting
	// As in TestWriterAwaitedAcrossAReload: the calls go on waiting on the
	// new topology, whose check sees the primary back.
	a.Routes = []artifact.Route{{Name: "during-the-wait", Nodes: []string{topo.Standbys[0].Name}}}
	writeFile(t, path, a)
	if err := r.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if err := topo.Primary.Start(ctx); err != nil {
		t.Fatal(err)
	}
	for range calls {
		res := <-done
		t.Logf("%s, the primary back: %v after %v", res.what, res.err, res.took)
		if res.err != nil {
			t.Errorf("%s, waiting while the check that sees the primary back chooses it: %v; want it to take the primary", res.what, res.err)
		}
	}
	if h.held.Load() == 0 {
		t.Fatalf("the check that saw the primary back never logged %q: the test held nothing open", h.line)
	}
}

// holdAtLine is a slog.Handler that, once armed, blocks for hold the first
// time the router logs line for node: the router's thread stays where it
// logs it.
type holdAtLine struct {
	line, node string
	hold       time.Duration
	armed      atomic.Bool
	held       atomic.Int32
}

func (h *holdAtLine) Enabled(context.Context, slog.Level) bool { return true }
func (h *holdAtLine) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *holdAtLine) WithGroup(string) slog.Handler            { return h }

func (h *holdAtLine) Handle(_ context.Context, rec slog.Record) error {
	if !h.armed.Load() || rec.Message != h.line {
		return nil
	}
	node := ""
	rec.Attrs(func(a slog.Attr) bool {
		if a.Key == "node" {
			node = a.Value.String()
		}
		return true
	})
	if node == h.node && h.held.Add(1) == 1 {
		time.Sleep(h.hold)
	}
	return nil
}
