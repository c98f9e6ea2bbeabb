package routerlib_test

import (
	"context"
	"testing"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// TestLagKnownAtStart: a standby whose replay stopped (pg_wal_replay_pause,
// a replay stuck on a lock, recovery_min_apply_delay) while the primary
// went on committing is far behind in time when a Router starts (an
// application deployed or restarted). Its last replayed transaction is
// seconds old while the primary has newer ones: that is lag, and with
// max_lag 1s it must take no read from the start. The lag used to be
// capped by how long the monitor had seen the standby behind, which a
// Router just started has not: the standby was admitted at lag 0 and
// served reads missing every row written since its replay stopped, until
// max_lag had passed again from the Router's start. Likewise a standby that
// answers again after it did not (it hung while its replay was stopped):
// the monitor saw it caught up before, not since.
func TestLagKnownAtStart(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(1))
	ctx := context.Background()
	standby := topo.Standbys[0]
	if err := topo.Primary.Exec(ctx, "CREATE TABLE lag_at_start (id int)"); err != nil {
		t.Fatal(err)
	}
	waitReplayed(t, topo)
	if err := standby.PauseReplay(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = standby.ResumeReplay(context.Background()) })
	if err := topo.Primary.Exec(ctx, "INSERT INTO lag_at_start VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second) // the standby is now 3 s behind

	a := steadyHealth(topo.Artifact(), 100*time.Millisecond)
	a.Nodes[1].MaxLag = "1s"
	rec := &recorder{}
	r := newRouter(t, a, routerlib.WithTracer(rec))
	var stale int
	for i := range 10 {
		var n int
		if err := r.QueryRow(ctx, "SELECT count(*) FROM lag_at_start").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			stale++
			if d := rec.last(t); stale == 1 {
				t.Logf("read %d went to %s (%s) and missed the row committed 3 s before; %s: %+v", i, d.Node, d.Reason, standby.Name, nodeStat(r, standby.Name))
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if stale > 0 {
		t.Errorf("%d of 10 reads in the first 0.5 s missed a row committed 3 s before, with max_lag 1s", stale)
	}
	if s := nodeStat(r, standby.Name); s.Readable || s.Ejected != routerlib.EjectLagTime {
		t.Errorf("%s, 3 s behind with max_lag 1s: %+v", standby.Name, s)
	}
	// Replay resumes: the standby catches up and comes back.
	if err := standby.ResumeReplay(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the standby back in rotation once caught up", func() bool { return nodeStat(r, standby.Name).Readable })

	// The same once the standby answers again after it did not: its replay
	// stops, it hangs (a frozen VM) while the primary commits, and it
	// answers again 3 s behind. It was caught up when last seen, but what
	// it replayed while it did not answer is unknown.
	if err := standby.PauseReplay(ctx); err != nil {
		t.Fatal(err)
	}
	if err := standby.Freeze(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = standby.Thaw() })
	eventually(t, 10*time.Second, "the frozen standby out of rotation", func() bool { return !nodeStat(r, standby.Name).Readable })
	if err := topo.Primary.Exec(ctx, "INSERT INTO lag_at_start VALUES (2)"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	if err := standby.Thaw(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the thawed standby answering", func() bool { return nodeStat(r, standby.Name).Healthy })
	stale = 0
	for range 10 {
		var n int
		if err := r.QueryRow(ctx, "SELECT count(*) FROM lag_at_start").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n < 2 {
			stale++
		}
		time.Sleep(50 * time.Millisecond)
	}
	if stale > 0 {
		t.Errorf("%d of 10 reads in the first 0.5 s after the standby answered again missed a row committed 3 s before, with max_lag 1s: %+v", stale, nodeStat(r, standby.Name))
	}
}
