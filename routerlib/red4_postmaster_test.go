package routerlib_test

import (
	"testing"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// TestRed4PrimaryPostmasterPausedUnderWrites: the primary's postmaster
// alone stops (SIGSTOP) for 4 s under four writers whose pool recycles
// its connections (max_conn_lifetime 300ms), so that writes need new
// sessions, which wait; the backends already connected keep serving. No
// write said done is lost, none said failed committed, none is written
// twice, none waits past connect_timeout + timeout and a second, and
// writes are taken again once it resumes.
func TestRed4PrimaryPostmasterPausedUnderWrites(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(1))
	a := topo.Artifact()
	a.Pool.MaxConnLifetime = "300ms"
	a.Health = artifact.Health{Interval: "250ms", Timeout: "500ms", ConnectTimeout: "1s", EjectAfter: 2, ReadmitAfter: 2}
	r := newRouter(t, a)
	var resumed time.Time
	o := underWrites(t, topo, r, "postmaster_paused", func() {
		resume := pausePostmaster(t, topo.Primary)
		time.Sleep(4 * time.Second)
		resume()
		resumed = time.Now()
		time.Sleep(3 * time.Second)
	})
	if o.slowest > 2500*time.Millisecond {
		t.Errorf("a write took %v, over connect_timeout + timeout and a second", o.slowest)
	}
	if o.lastOK.Before(resumed) {
		t.Errorf("no write done in the 3 s after the postmaster resumed: %+v", nodeStat(r, topo.Primary.Name))
	}
	t.Logf("last write done %v after the resume", o.lastOK.Sub(resumed))
}
