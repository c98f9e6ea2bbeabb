package routerlib_test

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// TestRedLagWithSlowStandbyClock: a standby whose clock runs 60 s behind the
// primary's (a VM without NTP; libfaketime preloaded in its postgres), its
// replay paused while the primary commits every 100 ms, max_lag 1s. The
// replay age PostgreSQL gives is the standby's clock minus the primary's
// commit time, so the skew came off it: at 4 s behind the standby showed
// Lag -55 s, stayed readable, and 10 of 10 reads missed rows committed
// seconds before. The monitor now takes each clock's offset from the
// router's, seen at its checks, off (node.lag); with no skew the same run
// ejects it too ("lagging time", Lag 4.2 s). libfaketime comes from
// tools/faketime/install.sh, which make test runs ($ROUTERTEST_FAKETIME);
// without it the skewed case is skipped, except under CI=true.
func TestRedLagWithSlowStandbyClock(t *testing.T) {
	for _, skew := range []string{"0", "-60"} {
		t.Run("skew"+skew, func(t *testing.T) {
			libfaketime := os.Getenv("ROUTERTEST_FAKETIME")
			if skew != "0" && libfaketime == "" {
				if os.Getenv("CI") == "true" {
					t.Fatal("ROUTERTEST_FAKETIME is not set: make test sets it (tools/faketime/install.sh)")
				}
				t.Skip("ROUTERTEST_FAKETIME is not set: tools/faketime/install.sh installs libfaketime and prints its path")
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
			offset := d - float64(time.Now().UnixNano())/1e9
			t.Logf("standby clock - ours: %.1fs", offset)
			if want, _ := strconv.ParseFloat(skew, 64); offset < want-5 || offset > want+5 {
				t.Fatalf("the standby's clock is %.1f s from ours, want %s s: libfaketime did not take", offset, skew)
			}
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
