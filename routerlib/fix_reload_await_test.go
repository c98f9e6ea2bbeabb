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

// TestWriterAwaitedAcrossAReload: a call that waits for a primary
// restarted fast (see TestWritesAfterAFastPrimaryRestart) when a reload
// puts a new topology in force goes on waiting on that one, and takes the
// primary when a check of it sees the primary back, instead of failing
// with ErrNoPrimary at the reload. The wait keeps its bound: a primary
// down for good fails it health.timeout after it began, however late in
// it the reload came.
func TestWriterAwaitedAcrossAReload(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(1))
	ctx := context.Background()
	if err := topo.Primary.Exec(ctx, "CREATE TABLE fix_reload_await (id int)"); err != nil {
		t.Fatal(err)
	}
	const timeout = 5 * time.Second // the wait's bound: room for a reload and a start inside it
	a := steadyHealth(topo.Artifact(), 30*time.Second)
	a.Health.Timeout = artifact.Duration(timeout.String())
	r, path := openRouter(t, a, routerlib.WithWatch(0))
	reload := func(route string) {
		t.Helper()
		a.Routes = []artifact.Route{{Name: route, Nodes: []string{topo.Standbys[0].Name}}}
		writeFile(t, path, a)
		if err := r.Reload(ctx); err != nil {
			t.Fatal(err)
		}
	}
	type result struct {
		what string
		err  error
		took time.Duration
	}
	waiting := func(what string, call func(context.Context) error) <-chan result {
		done := make(chan result, 1)
		go func() {
			began := time.Now()
			err := call(ctx)
			done <- result{what, err, time.Since(began)}
		}()
		return done
	}
	exec := func(ctx context.Context) error {
		_, err := r.Exec(ctx, "INSERT INTO fix_reload_await VALUES (1)")
		return err
	}
	acquire := func(ctx context.Context) error {
		c, err := r.Acquire(ctx)
		if err == nil {
			c.Release()
		}
		return err
	}

	// The primary back after the reload.
	loseWrites(t, r, topo.Primary)
	calls := []<-chan result{waiting("Exec", exec), waiting("Acquire", acquire)}
	time.Sleep(500 * time.Millisecond)
	reload("after-the-restart")
	time.Sleep(200 * time.Millisecond)
	if err := topo.Primary.Start(ctx); err != nil {
		t.Fatal(err)
	}
	for _, c := range calls {
		res := <-c
		t.Logf("%s, reloaded in its wait, the primary back after: %v after %v", res.what, res.err, res.took)
		if res.err != nil {
			t.Errorf("%s, reloaded in its wait, the primary back after: %v; want it to wait on the new topology and succeed", res.what, res.err)
		}
	}

	// Down for good: the reload, late in the wait, does not extend it.
	loseWrites(t, r, topo.Primary)
	late := timerLateness()
	call := waiting("Exec", exec)
	time.Sleep(timeout / 2)
	reload("down-for-good")
	res := <-call
	limit := timeout + 500*time.Millisecond + late()
	t.Logf("Exec, reloaded in its wait, the primary down: %v after %v", res.err, res.took)
	if !errors.Is(res.err, routerlib.ErrNoPrimary) || res.took > limit {
		t.Errorf("Exec, reloaded in its wait, the primary down: %v after %v; want ErrNoPrimary within %v", res.err, res.took, limit)
	}
	if res.took < timeout/2+100*time.Millisecond {
		t.Errorf("Exec, reloaded in its wait, the primary down: it returned %v after it began, at the reload; want it to wait on the new topology until health.timeout", res.took)
	}
}
