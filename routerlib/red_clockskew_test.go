package routerlib_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// libfaketime is where Debian's libfaketime package puts the library.
const libfaketime = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"

// TestRedLagWithSlowStandbyClock: a standby whose clock runs 60 s behind the
// primary's (a VM without NTP), its replay paused while the primary commits
// every 100 ms, max_lag 1s. The replay age is the standby's clock minus the
// primary's commit time, so the skew comes off it: at 4 s behind the
// standby showed Lag -55 s, stayed readable, and 10 of 10 reads missed rows
// committed seconds before (with no skew it is ejected, "lagging time",
// Lag 4.2 s). The fix belongs in health.go (the age measured against the
// primary's clock, or each node's clock offset seen by the monitor taken
// off); until then the skewed case is a known fault and runs only with
// ROUTERLIB_KNOWN_FAULTS=1. It needs libfaketime (Debian's libfaketime
// package), which CI does not install.
func TestRedLagWithSlowStandbyClock(t *testing.T) {
	if _, err := os.Stat(libfaketime); err != nil {
		t.Skip("needs libfaketime (apt-get install libfaketime)")
	}
	for _, skew := range []string{"0", "-60"} {
		t.Run("skew"+skew, func(t *testing.T) {
			if skew != "0" && os.Getenv("ROUTERLIB_KNOWN_FAULTS") != "1" {
				t.Skip("known fault: the replay age takes the standby's clock skew (see the test's comment); ROUTERLIB_KNOWN_FAULTS=1 runs it")
			}
			topo := routertest.Start(t, routertest.WithStandbys(1))
			ctx := context.Background()
			standby := topo.Standbys[0]
			if skew != "0" {
				if err := standby.Stop(ctx); err != nil {
					t.Fatal(err)
				}
				t.Setenv("LD_PRELOAD", libfaketime)
				t.Setenv("FAKETIME", skew)
				if err := standby.Start(ctx); err != nil {
					t.Fatal(err)
				}
				os.Unsetenv("LD_PRELOAD")
				os.Unsetenv("FAKETIME")
			}
			var d float64
			if err := standby.QueryRow(ctx, "SELECT extract(epoch FROM clock_timestamp())").Scan(&d); err != nil {
				t.Fatal(err)
			}
			t.Logf("standby clock - ours: %.1fs", d-float64(time.Now().UnixNano())/1e9)
			if err := topo.Primary.Exec(ctx, "CREATE TABLE skew_t (id int)"); err != nil {
				t.Fatal(err)
			}
			waitReplayed(t, topo)
			a := steadyHealth(topo.Artifact(), 100*time.Millisecond)
			a.Nodes[1].MaxLag = "1s"
			r := newRouter(t, a)
			time.Sleep(500 * time.Millisecond)
			if err := standby.PauseReplay(ctx); err != nil {
				t.Fatal(err)
			}
			defer standby.ResumeReplay(context.Background())
			for i := range 40 {
				if err := topo.Primary.Exec(ctx, "INSERT INTO skew_t VALUES ($1)", i); err != nil {
					t.Fatal(err)
				}
				time.Sleep(100 * time.Millisecond)
			}
			// The standby is now 4 s behind; max_lag is 1 s.
			stale := 0
			for range 10 {
				var n int
				if err := r.QueryRow(ctx, "SELECT count(*) FROM skew_t").Scan(&n); err != nil {
					t.Fatal(err)
				}
				if n < 30 {
					stale++
				}
			}
			t.Logf("%s: %+v", standby.Name, nodeStat(r, standby.Name))
			if stale > 0 {
				t.Errorf("clock skew %ss: %d of 10 reads missed rows committed more than 1 s before, with max_lag 1s", skew, stale)
			}
		})
	}
}
