package routerlib_test

import (
	"context"
	"testing"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// answerLost returns a topology whose standby has replayed the table
// lost_t (tag text) and then paused, and a read_your_writes Router that
// reaches the primary through a proxy that can lose the server's answer
// to a statement (routertest.Proxy), the standby in rotation.
func answerLost(t *testing.T, mode string, opts ...routerlib.Option) (*routertest.Topology, *routertest.Proxy, *routerlib.Router) {
	t.Helper()
	topo := routertest.Start(t, routertest.WithStandbys(1))
	ctx := context.Background()
	if err := topo.Primary.Exec(ctx, "CREATE TABLE lost_t (tag text)"); err != nil {
		t.Fatal(err)
	}
	waitReplayed(t, topo)
	proxy := topo.Primary.NewProxy(t)
	a := steadyHealth(topo.Artifact(), 100*time.Millisecond)
	a.Nodes[0].Port = proxy.Port()
	a.Consistency = artifact.Consistency{Mode: mode, WaitTimeout: "50ms"}
	r := newRouter(t, a, opts...)
	eventually(t, 10*time.Second, "replica-1 in rotation", func() bool { return nodeStat(r, "replica-1").Readable })
	if err := topo.Standbys[0].PauseReplay(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = topo.Standbys[0].ResumeReplay(context.Background()) })
	return topo, proxy, r
}

// TestCaptureAnswerLostAfterCommit: a read_your_writes write whose answer
// is lost after it committed (the connection closes; no error from the
// server) fails, saying it may have committed, and leaves its position
// unknown: the session is marked (Session.markLost), so its next read
// asks the primary for its position first and waits for, or goes
// around, the standby that has not replayed the write. Unmarked, that
// read went to the paused standby and saw nothing of the write (each
// path below failed so with markLost emptied; TestCaptureConnectionLost-
// AfterCommit does not show it: there the server's own FATAL reaches the
// client, and the position is read after it on another connection).
func TestCaptureAnswerLostAfterCommit(t *testing.T) {
	topo, proxy, r := answerLost(t, artifact.ModeReadYourWrites)
	ctx := context.Background()
	for _, w := range []struct{ tag, sql string }{
		// BEGIN, the write, COMMIT and the position query in one flush.
		{"insert", "INSERT INTO lost_t VALUES ('insert')"},
		// The write, a Sync that commits it, then the position query.
		{"several", "INSERT INTO lost_t VALUES ('x'); INSERT INTO lost_t VALUES ('several')"},
		{"do", "DO $$BEGIN INSERT INTO lost_t VALUES ('do'); END$$"},
	} {
		sctx := routerlib.WithSession(ctx, &routerlib.Session{})
		proxy.LoseAnswerTo(w.sql)
		before := proxy.Lost()
		if _, err := r.Exec(sctx, w.sql); err == nil {
			t.Fatalf("%s: no error, though the answer was lost", w.tag)
		}
		if proxy.Lost() != before+1 {
			t.Fatalf("%s: the proxy lost %d answers, want 1", w.tag, proxy.Lost()-before)
		}
		eventually(t, 10*time.Second, "the primary taking writes again", func() bool { return nodeStat(r, "primary").Writer })
		checkWrittenOnceAndSeen(t, ctx, sctx, topo, r, "lost_t", w.tag)
	}
}
