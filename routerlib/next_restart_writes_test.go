package routerlib_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// TestWritesAfterAFastPrimaryRestart: pg_ctl restart (fast) ends every
// session (57P01), the check that asks at once is refused, and no node
// takes writes; once the postmaster is up again, a write that finds no
// primary asks for a check now and waits for it (at most health.timeout,
// and never past its context), instead of failing with ErrNoPrimary until
// the next scheduled check, an interval later, sees the primary back.
// While the primary stays down, a write still fails with ErrNoPrimary,
// within its context's deadline, or health.timeout without one.
func TestWritesAfterAFastPrimaryRestart(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(1))
	ctx := context.Background()
	if err := topo.Primary.Exec(ctx, "CREATE TABLE next_restart (id int)"); err != nil {
		t.Fatal(err)
	}
	// Scheduled checks far apart: before, writes failed until the next.
	r := newRouter(t, steadyHealth(topo.Artifact(), 4*time.Second))
	var up atomic.Bool // the restart returned: the postmaster takes connections
	var mu sync.Mutex
	var afterUp, noPrimaryAfterUp, noPrimaryDuring, total int
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				started := up.Load()
				wctx, cancel := context.WithTimeout(ctx, 3*time.Second)
				_, err := r.Exec(wctx, "INSERT INTO next_restart VALUES ($1)", w*100000+i)
				cancel()
				mu.Lock()
				total++
				if started {
					afterUp++
				}
				if errors.Is(err, routerlib.ErrNoPrimary) {
					if started {
						noPrimaryAfterUp++
						t.Logf("a write begun after the restart returned: %v", err)
					} else {
						noPrimaryDuring++
					}
				}
				mu.Unlock()
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
	time.Sleep(300 * time.Millisecond)
	if err := topo.Primary.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	up.Store(true)
	time.Sleep(1500 * time.Millisecond) // well within the next scheduled check
	close(stop)
	wg.Wait()
	t.Logf("%d writes, %d begun after the restart returned: %d of those failed with ErrNoPrimary (%d during the restart)", total, afterUp, noPrimaryAfterUp, noPrimaryDuring)
	if afterUp == 0 {
		t.Fatal("no write began after the restart: the test proves nothing")
	}
	if noPrimaryAfterUp > 0 {
		t.Errorf("%d writes begun after the primary was up again failed with ErrNoPrimary; want a check asked for at once, and the writes to wait for it", noPrimaryAfterUp)
	}

	// Down for good: the wait is bounded by the context, or by
	// health.timeout (1s).
	if err := topo.Primary.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "no primary", func() bool {
		_, err := r.Exec(ctx, "INSERT INTO next_restart VALUES (0)")
		return errors.Is(err, routerlib.ErrNoPrimary)
	})
	for _, c := range []struct {
		name  string
		limit time.Duration
		max   time.Duration
	}{{"a 200ms context", 200 * time.Millisecond, 900 * time.Millisecond}, {"no deadline", 0, 2500 * time.Millisecond}} {
		wctx, cancel := ctx, context.CancelFunc(func() {})
		if c.limit > 0 {
			wctx, cancel = context.WithTimeout(ctx, c.limit)
		}
		began := time.Now()
		_, err := r.Exec(wctx, "INSERT INTO next_restart VALUES (0)")
		took := time.Since(began)
		cancel()
		t.Logf("%s, primary down: %v after %v", c.name, err, took)
		if !errors.Is(err, routerlib.ErrNoPrimary) || took > c.max {
			t.Errorf("%s, primary down: %v after %v; want ErrNoPrimary within %v", c.name, err, took, c.max)
		}
	}
}
