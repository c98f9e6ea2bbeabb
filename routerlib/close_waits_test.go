package routerlib_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// endedByClose runs call while Close is called 300ms after it began, and
// fails t unless call returns an error matching ErrClosed, before Close
// has returned or within 500ms after.
func endedByClose(t *testing.T, r *routerlib.Router, what string, call func() error) {
	t.Helper()
	done := make(chan error, 1)
	began := time.Now()
	go func() { done <- call() }()
	time.Sleep(300 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("%s returned before Close, after %v: %v; the case proves nothing", what, time.Since(began), err)
	default:
	}
	closeBegan := time.Now()
	r.Close()
	t.Logf("Close took %v", time.Since(closeBegan))
	select {
	case err := <-done:
		t.Logf("%s returned %v after Close began: %v", what, time.Since(closeBegan), err)
		if !errors.Is(err, routerlib.ErrClosed) {
			t.Errorf("%s ended by Close: %v; want ErrClosed", what, err)
		}
	case <-time.After(500 * time.Millisecond):
		t.Errorf("%s still waits 500ms after Close returned", what)
		<-done
	}
}

// TestCloseEndsPingOnAFrozenPrimary: a Ping waiting for a primary that
// does not answer (frozen) ends when Close cuts the connections, with
// ErrClosed: the application's shutdown learns that the Router closed
// under it, not that the primary failed.
func TestCloseEndsPingOnAFrozenPrimary(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(1))
	ctx := context.Background()
	r, err := routerlib.New(ctx, steadyHealth(topo.Artifact(), 30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if err := topo.Primary.Freeze(); err != nil {
		t.Fatal(err)
	}
	endedByClose(t, r, "a Ping of the frozen primary", func() error { return r.Ping(ctx) })
}

// TestCloseEndsReadYourWritesWait: a read_your_writes read waiting
// (wait_timeout 30s) for a replica whose replay is paused, whose query of
// the replica's position waits for the replica pool's one connection
// (held by rows the application has not closed), ends with ErrClosed when
// Close cuts the connections, and is not sent to the primary after.
func TestCloseEndsReadYourWritesWait(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(1))
	ctx := context.Background()
	if err := topo.Primary.Exec(ctx, "CREATE TABLE close_ryw (id int)"); err != nil {
		t.Fatal(err)
	}
	a := steadyHealth(topo.Artifact(), 30*time.Second)
	a.Pool.MaxConns = 1
	a.Consistency = artifact.Consistency{Mode: artifact.ModeReadYourWrites, WaitTimeout: "30s"}
	r, err := routerlib.New(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := topo.Standbys[0].PauseReplay(ctx); err != nil {
		t.Fatal(err)
	}
	rows, err := r.Query(ctx, "SELECT generate_series(1, 100000)") // the replica's one connection, not closed
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	sctx := routerlib.WithSession(ctx, routerlib.NewSession(0))
	if _, err := r.Exec(sctx, "INSERT INTO close_ryw VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	endedByClose(t, r, "a read waiting for the replica to replay the session's write", func() error {
		var n int
		return r.QueryRow(sctx, "SELECT count(*) FROM close_ryw").Scan(&n)
	})
}

// TestCloseEndsAWriteWaitingForThePrimary: a write waiting for a primary
// that may only be restarting (awaitWriter; health.timeout 10s bounds the
// wait) ends with ErrClosed when Close begins, not with ErrNoPrimary,
// which says the primary is down.
func TestCloseEndsAWriteWaitingForThePrimary(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(1))
	ctx := context.Background()
	if err := topo.Primary.Exec(ctx, "CREATE TABLE close_writer (id int)"); err != nil {
		t.Fatal(err)
	}
	a := steadyHealth(topo.Artifact(), 30*time.Second)
	a.Health.Timeout = "10s"
	r, err := routerlib.New(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	loseWrites(t, r, topo.Primary) // and it stays down
	endedByClose(t, r, "a write waiting for the primary", func() error {
		_, err := r.Exec(ctx, "INSERT INTO close_writer VALUES (1)")
		return err
	})
}
