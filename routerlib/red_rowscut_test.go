package routerlib_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// TestReadCutAfterItsRowsSaysWhy: a read whose replica failed after the
// caller had some of its rows cannot run again, and its error must say
// which node failed and why, not pgx's bare "use of closed network
// connection" (the router cut the frozen replica's connections) or
// FATAL (its session was ended).
func TestReadCutAfterItsRowsSaysWhy(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(1))
	a, _ := hungHealth(topo.Artifact())
	replica := topo.Standbys[0]
	cut := func(t *testing.T, r *routerlib.Router, doCut func(pid int)) error {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		rows, err := r.Query(ctx, "SELECT pg_backend_pid(), inet_server_port(), g, repeat('x', 100) FROM generate_series(1, 50000000) g")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		if !rows.Next() {
			t.Fatalf("no first row: %v", rows.Err())
		}
		var pid, port, g int
		var x string
		if err := rows.Scan(&pid, &port, &g, &x); err != nil {
			t.Fatal(err)
		}
		if port != replica.Port {
			t.Fatalf("the read ran on port %d, want the replica's %d", port, replica.Port)
		}
		doCut(pid)
		n := 0
		for rows.Next() {
			n++
		}
		if ctx.Err() != nil {
			t.Fatalf("the rows did not end within 60 s (%d more rows)", n)
		}
		return rows.Err()
	}
	t.Run("session ended", func(t *testing.T) {
		r := newRouter(t, a)
		err := cut(t, r, func(pid int) {
			if err := replica.Exec(context.Background(), "SELECT pg_terminate_backend($1)", pid); err != nil {
				t.Fatal(err)
			}
		})
		t.Logf("%v", err)
		if err == nil || !strings.Contains(err.Error(), `node "replica-1"`) || !strings.Contains(err.Error(), "not run again") {
			t.Errorf("the read's error is %v, want it to name node \"replica-1\" and say the read was not run again", err)
		}
	})
	t.Run("node frozen", func(t *testing.T) {
		r := newRouter(t, a)
		t.Cleanup(func() { _ = replica.Thaw() })
		err := cut(t, r, func(int) {
			if err := replica.Freeze(); err != nil {
				t.Fatal(err)
			}
		})
		t.Logf("%v", err)
		if err == nil || !strings.Contains(err.Error(), `node "replica-1"`) || !strings.Contains(err.Error(), "stopped answering") {
			t.Errorf("the read's error is %v, want it to name node \"replica-1\" and say it stopped answering", err)
		}
		if errors.Is(err, routerlib.ErrMaybeCommitted) {
			t.Errorf("a read's error matches ErrMaybeCommitted: %v", err)
		}
	})
}

// TestReadOnReadWriteSessionCutSaysWhy: a read on the primary's read-write
// session (sticky in read_your_writes: no replica has replayed the
// session's writes) is not run again when its connection fails after it
// went out, and when the failure is the router's cut of a primary that
// stopped answering, its error says so and names the node (howFailed),
// rather than pgx's bare deadline or "conn closed".
func TestReadOnReadWriteSessionCutSaysWhy(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(1))
	a, bound := hungHealth(topo.Artifact())
	a.Consistency = artifact.Consistency{Mode: artifact.ModeReadYourWrites, WaitTimeout: "0s"}
	a.ReadPolicy.Fallback = artifact.FallbackError
	r := newRouter(t, a)
	sctx := routerlib.WithSession(context.Background(), routerlib.NewSession(routerlib.LSN(1)<<62)) // past any replica
	var port int
	if err := r.QueryRow(sctx, "SELECT inet_server_port()").Scan(&port); err != nil {
		t.Fatal(err)
	}
	if port != topo.Primary.Port {
		t.Fatalf("the sticky read ran on port %d, want the primary's %d", port, topo.Primary.Port)
	}
	t.Cleanup(func() { _ = topo.Primary.Thaw() })
	ctx, cancel := context.WithTimeout(sctx, 60*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		var one int
		done <- r.QueryRow(ctx, "SELECT 1 FROM pg_sleep(30)").Scan(&one) // still running at the freeze, however slow Freeze is
	}()
	time.Sleep(300 * time.Millisecond) // the read is in flight
	if err := topo.Primary.Freeze(); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	var err error
	select {
	case err = <-done:
	case <-time.After(bound + 10*time.Second):
		t.Fatalf("the read on the frozen primary did not end within %v", bound+10*time.Second)
	}
	t.Logf("after %v: %v", time.Since(began).Round(time.Millisecond), err)
	for _, want := range []string{`node "primary" stopped answering`, "during a read on its read-write session", "not run again"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("the read's error is %v, want it to say %q", err, want)
		}
	}
	if errors.Is(err, routerlib.ErrMaybeCommitted) {
		t.Errorf("a read's error matches ErrMaybeCommitted: %v", err)
	}
}
