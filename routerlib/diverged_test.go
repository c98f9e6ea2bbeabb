package routerlib_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// TestOldPrimaryRestartedWithoutRewind: two standbys stop receiving WAL,
// the primary commits rows they never get (the lost tail) and stops, one
// standby is promoted and the other follows it. Then the old primary is
// started again as a standby of the promoted node without pg_rewind: it
// fetches the new timeline's history file but cannot follow it (it
// replayed its own timeline past the fork), and serves its diverged data
// read-only, with a replay position ahead of the new primary's. The
// router's user has pg_monitor only. The diverged node must serve no read:
// neither plain reads (they would see the lost rows) nor a
// read-your-writes session's (its position passes the session's check,
// and it lacks the session's write); Stat and the log say why. Once it is
// cloned again from the primary it serves reads again. Twice: with the
// fork in the segment the old primary last wrote (its WAL receiver then
// streams the old timeline up to the fork, and shows where it ends), and
// with the fork segments behind (its upstream refuses to stream at all).
//
// A third time with the old primary repaired by a real pg_rewind instead
// of a clone, on PostgreSQL 15 (Debian's, which has pg_rewind) with the
// settings pg_rewind needs (routertest.WithRewind): it comes back into
// rotation once rewound, without the rows the promotion lost.
func TestOldPrimaryRestartedWithoutRewind(t *testing.T) {
	for _, c := range []struct {
		name     string
		segments int // WAL segments the lost tail spans past the fork's
		rewind   bool
	}{
		{"fork in the last segment", 0, false},
		{"fork segments behind", 2, false},
		{"repaired by pg_rewind", 1, true},
	} {
		t.Run(c.name, func(t *testing.T) { testOldPrimaryRestartedWithoutRewind(t, c.segments, c.rewind) })
	}
}

func testOldPrimaryRestartedWithoutRewind(t *testing.T, segments int, rewind bool) {
	opts := []routertest.Option{routertest.WithStandbys(2)}
	if rewind {
		opts = append(opts, routertest.WithVersion(15), routertest.WithRewind())
	}
	topo := routertest.Start(t, opts...)
	ctx := context.Background()
	old, promoted, follower := topo.Primary, topo.Standbys[0], topo.Standbys[1]
	if err := old.Exec(ctx, `CREATE ROLE dv_monitor LOGIN IN ROLE pg_monitor;
		CREATE TABLE diverged_t (id serial, phase text);
		GRANT SELECT, INSERT ON diverged_t TO dv_monitor; GRANT USAGE ON SEQUENCE diverged_t_id_seq TO dv_monitor`); err != nil {
		t.Fatal(err)
	}
	a := withMode(steadyHealth(topo.Artifact(), interval), artifact.ModeReadYourWrites)
	a.Consistency.WaitTimeout = "0s"
	for i := range a.Nodes {
		a.Nodes[i].User = "dv_monitor"
	}
	waitReplayed(t, topo) // the role, on every node
	logs := &syncBuffer{}
	r := newRouter(t, a, routerlib.WithLogger(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))))

	for _, n := range []*routertest.Node{promoted, follower} {
		stopReceiving(t, n)
	}
	if err := old.Exec(ctx, "INSERT INTO diverged_t (phase) SELECT 'lost' FROM generate_series(1, 2000)"); err != nil {
		t.Fatal(err)
	}
	for range segments {
		if err := old.Exec(ctx, "SELECT pg_switch_wal(); INSERT INTO diverged_t (phase) VALUES ('lost')"); err != nil {
			t.Fatal(err)
		}
	}
	failOver(t, old, promoted, follower)
	eventually(t, 10*time.Second, "writes on the promoted node", func() bool { return nodeStat(r, promoted.Name).Writer })

	if err := old.RestartAsStandby(ctx, promoted); err != nil {
		t.Fatal(err)
	}
	var lostThere int
	if err := old.QueryRow(ctx, "SELECT count(*) FROM diverged_t WHERE phase = 'lost'").Scan(&lostThere); err != nil || lostThere == 0 {
		t.Fatalf("the old primary, restarted as a standby, shows %d lost rows (%v): it did not diverge", lostThere, err)
	}
	eventually(t, 10*time.Second, "the old primary checked in recovery", func() bool { return nodeStat(r, old.Name).ObservedRole == "replica" })
	time.Sleep(3 * interval) // readmit_after 1: on the old code it is back in rotation by now
	if s := nodeStat(r, old.Name); s.Readable || s.Ejected != routerlib.EjectDiverged {
		t.Errorf("%s, diverged from the new primary: %+v", old.Name, s)
	}

	stale, lost := readsAfterFork(t, r, "diverged_t")
	if stale > 0 {
		t.Errorf("%d of 20 read-your-writes sessions did not read their own write", stale)
	}
	if lost > 0 {
		t.Errorf("%d of 20 reads saw rows the new primary does not have (from %s, diverged)", lost, old.Name)
	}
	if out := logs.String(); !strings.Contains(out, "level=ERROR msg=\"routerlib: standby diverged") || !strings.Contains(out, "node="+old.Name) {
		t.Errorf("no error-level log record of the divergence; logged:\n%s", out)
	}
	t.Logf("logged:\n%s", logs.String())

	repair, repaired := old.Reclone, "cloned again"
	if rewind {
		repair, repaired = old.Rewind, "rewound"
	}
	if err := repair(ctx, promoted); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the old primary, "+repaired+", back in rotation", func() bool { return nodeStat(r, old.Name).Readable })
	before := nodeStat(r, old.Name).Reads
	if stale, lost := readsAfterFork(t, r, "diverged_t"); stale > 0 || lost > 0 {
		t.Errorf("after %s was %s: %d of 20 sessions missed their write, %d of 20 reads saw lost rows", old.Name, repaired, stale, lost)
	}
	if reads := nodeStat(r, old.Name).Reads - before; reads == 0 {
		t.Errorf("no read went to %s, %s from the new primary", old.Name, repaired)
	}
}

// TestStandbyFollowsFromArchiveStays: a standby that replays only from a
// WAL archive (restore_command, no WAL receiver) follows a promotion
// through the archive: it finds the new timeline's history file there and
// restores its segments, which PostgreSQL keeps in pg_wal under their
// names. The router's user has pg_monitor: the standby serves reads, with
// the promoted node's rows, never taken for one that diverged.
func TestStandbyFollowsFromArchiveStays(t *testing.T) {
	// The data directories are siblings: ../archive is one archive for all.
	topo := routertest.Start(t, routertest.WithStandbys(2),
		routertest.WithSetting("archive_mode", "on"),
		routertest.WithSetting("archive_command", "cp %p ../archive/%f"))
	ctx := context.Background()
	old, promoted, archived := topo.Primary, topo.Standbys[0], topo.Standbys[1]
	dir := filepath.Join(topo.Dir, "archive")
	if err := os.Mkdir(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil { // the server user writes it
		t.Fatal(err)
	}
	if err := old.Exec(ctx, "CREATE ROLE ar_monitor LOGIN IN ROLE pg_monitor; CREATE TABLE archived_t (phase text); GRANT SELECT ON archived_t TO ar_monitor"); err != nil {
		t.Fatal(err)
	}
	waitReplayed(t, topo)
	if err := archived.Exec(ctx, "ALTER SYSTEM SET restore_command = 'cp ../archive/%f %p'"); err != nil {
		t.Fatal(err)
	}
	stopReceiving(t, archived)
	for _, sql := range []string{"ALTER SYSTEM SET primary_conninfo = ''", "SELECT pg_reload_conf()"} {
		if err := archived.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	if err := old.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := promoted.Promote(ctx); err != nil {
		t.Fatal(err)
	}
	if err := promoted.Exec(ctx, "INSERT INTO archived_t VALUES ('promoted')"); err != nil {
		t.Fatal(err)
	}
	var lsn string // the end of the segment holding the row, which is archived once complete
	if err := promoted.QueryRow(ctx, "SELECT pg_switch_wal()::text").Scan(&lsn); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := archived.WaitReplayed(wctx, lsn); err != nil {
		t.Fatal(err)
	}
	var receivers int
	if err := archived.QueryRow(ctx, "SELECT count(*) FROM pg_stat_wal_receiver").Scan(&receivers); err != nil || receivers != 0 {
		t.Fatalf("the standby has %d WAL receivers (%v): it does not replay from the archive alone", receivers, err)
	}

	a := steadyHealth(topo.Artifact(), interval)
	for i := range a.Nodes {
		a.Nodes[i].User = "ar_monitor"
	}
	r := newRouter(t, a)
	eventually(t, 10*time.Second, "the standby that replays from the archive in rotation", func() bool { return nodeStat(r, archived.Name).Readable })
	neverForTimeline(t, r, archived.Name, "replaying from the archive", 5*interval)
	eventually(t, 10*time.Second, "the standby that replays from the archive in rotation", func() bool { return nodeStat(r, archived.Name).Readable })
	var n, port int
	if err := r.QueryRow(ctx, "SELECT count(*), inet_server_port() FROM archived_t WHERE phase = 'promoted'").Scan(&n, &port); err != nil || n != 1 || port != archived.Port {
		t.Errorf("a read saw %d of the promoted node's rows on port %d (%v), want 1 on %d", n, port, err, archived.Port)
	}
}

// neverForTimeline fails the test if, within d, the router takes node out
// of rotation for its timeline (EjectOldTimeline or EjectDiverged), and
// logs how often it was out for another reason: under load a health check
// may time out (steadyHealth ejects after 3), which is not this rule.
func neverForTimeline(t *testing.T, r *routerlib.Router, node, what string, d time.Duration) {
	t.Helper()
	var samples, out int
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		s := nodeStat(r, node)
		if s.Ejected == routerlib.EjectOldTimeline || s.Ejected == routerlib.EjectDiverged {
			t.Fatalf("%s: %s taken out of rotation for its timeline: %+v", what, node, s)
		}
		samples++
		if !s.Readable {
			out++
		}
	}
	t.Logf("%s: %s out of rotation in %d of %d samples, never for its timeline", what, node, out, samples)
}

// readsAfterFork runs 20 read-your-writes sessions, each writing a row to
// table (id serial, phase text) and reading it back, and 20 reads of the
// rows of phase 'lost' outside any session, and returns how many sessions
// missed their write and how many reads saw lost rows.
func readsAfterFork(t *testing.T, r *routerlib.Router, table string) (stale, lost int) {
	t.Helper()
	ctx := context.Background()
	for i := range 20 {
		sctx := routerlib.WithSession(ctx, &routerlib.Session{})
		phase := fmt.Sprint("after-", time.Now().UnixNano(), "-", i)
		if _, err := r.Exec(sctx, "INSERT INTO "+table+" (phase) VALUES ($1)", phase); err != nil {
			t.Fatal(err)
		}
		var mine int
		if err := r.QueryRow(sctx, "SELECT count(*) FROM "+table+" WHERE phase = $1", phase).Scan(&mine); err != nil {
			t.Fatal(err)
		}
		if mine != 1 {
			stale++
		}
		var n int
		if err := r.QueryRow(ctx, "SELECT count(*) FROM "+table+" WHERE phase = 'lost'").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			lost++
		}
	}
	return stale, lost
}

// TestFollowerCutFromPromotedPrimaryStays: after a failover, the standby
// that follows the promoted node (timeline 2) loses its upstream for a few
// seconds: first while the primary still takes writes (its WAL receiver
// cannot connect), then with the primary stopped. It has no WAL receiver
// then, but WAL of the primary's timeline in pg_wal: it is never taken
// out of rotation for its timeline, and serves reads after each phase.
func TestFollowerCutFromPromotedPrimaryStays(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(2))
	ctx := context.Background()
	old, promoted, follower := topo.Primary, topo.Standbys[0], topo.Standbys[1]
	if err := old.Exec(ctx, "CREATE ROLE fc_monitor LOGIN IN ROLE pg_monitor"); err != nil {
		t.Fatal(err)
	}
	waitReplayed(t, topo)
	failOver(t, old, promoted, follower)
	a := steadyHealth(topo.Artifact(), interval)
	for i := range a.Nodes {
		a.Nodes[i].User = "fc_monitor"
	}
	r := newRouter(t, a)
	eventually(t, 10*time.Second, "the follower in rotation", func() bool { return nodeStat(r, follower.Name).Readable })

	stays := func(what string, d time.Duration) {
		t.Helper()
		neverForTimeline(t, r, follower.Name, what, d)
		eventually(t, 10*time.Second, what+": the follower in rotation", func() bool { return nodeStat(r, follower.Name).Readable })
		var port int
		if err := r.QueryRow(ctx, "SELECT inet_server_port()").Scan(&port); err != nil || port != follower.Port {
			t.Fatalf("%s: a read went to port %d (%v), want the follower's %d", what, port, err, follower.Port)
		}
	}
	stopReceiving(t, follower)
	stays("its WAL receiver cut off, the primary up", 3*time.Second)
	if err := follower.Follow(ctx, promoted); err != nil {
		t.Fatal(err)
	}
	if err := promoted.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	stays("the primary stopped", 3*time.Second)
	if err := promoted.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := follower.WaitStreaming(ctx); err != nil {
		t.Fatal(err)
	}
	stays("the primary back", time.Second)
}

// stopReceiving points a standby's WAL receiver at a port nobody listens
// on and returns once it no longer streams: what its primary writes now,
// it never has.
func stopReceiving(t *testing.T, n *routertest.Node) {
	t.Helper()
	ctx := context.Background()
	if err := n.Exec(ctx, "ALTER SYSTEM SET primary_conninfo = 'host=127.0.0.1 port=1'"); err != nil {
		t.Fatal(err)
	}
	if err := n.Exec(ctx, "SELECT pg_reload_conf()"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, n.Name+"'s WAL receiver disconnected", func() bool {
		var streaming bool
		err := n.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_stat_wal_receiver WHERE status = 'streaming')").Scan(&streaming)
		return err == nil && !streaming
	})
}

// failOver stops old (a clean shutdown), promotes promoted and points
// follower at it, as an operator's failover does.
func failOver(t *testing.T, old, promoted, follower *routertest.Node) {
	t.Helper()
	ctx := context.Background()
	if err := old.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := promoted.Promote(ctx); err != nil {
		t.Fatal(err)
	}
	if err := follower.Follow(ctx, promoted); err != nil {
		t.Fatal(err)
	}
}

// TestStandbyCutBeforeForkIsOld: a standby loses its primary, which writes
// on; another standby is promoted at the primary's end of WAL (the fork).
// The first is pointed at the promoted node through a slow network (a
// proxy that holds each chunk 300 ms) and streams the old timeline
// towards the fork; then it loses that upstream too, short of the fork.
// It has the new timeline's history file, no WAL of it and no WAL
// receiver: what a standby that diverged shows (old code: "diverged",
// with an error telling to rewind or clone it). It is only old, and the
// router, which saw where the fork is while it streamed, says so
// (EjectOldTimeline, no error); pointed at the promoted node again it
// follows and serves reads. The router's user has pg_monitor only.
func TestStandbyCutBeforeForkIsOld(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(2))
	ctx := context.Background()
	old, promoted, cut := topo.Primary, topo.Standbys[0], topo.Standbys[1]
	if err := old.Exec(ctx, "CREATE ROLE cf_monitor LOGIN IN ROLE pg_monitor; CREATE TABLE cf (id int, pad text)"); err != nil {
		t.Fatal(err)
	}
	waitReplayed(t, topo)
	stopReceiving(t, cut)
	// WAL the cut standby lacks, several chunks long.
	if err := old.Exec(ctx, "INSERT INTO cf SELECT i, repeat('x', 200) FROM generate_series(1, 20000) i"); err != nil {
		t.Fatal(err)
	}
	var written string // the fork is past it: the shutdown checkpoint follows
	if err := old.QueryRow(ctx, "SELECT pg_current_wal_lsn()::text").Scan(&written); err != nil {
		t.Fatal(err)
	}
	if err := old.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := promoted.Promote(ctx); err != nil {
		t.Fatal(err)
	}
	a := steadyHealth(topo.Artifact(), interval)
	for i := range a.Nodes {
		a.Nodes[i].User = "cf_monitor"
	}
	logs := &syncBuffer{}
	r := newRouter(t, a, routerlib.WithLogger(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))))
	eventually(t, 10*time.Second, "writes on the promoted node", func() bool { return nodeStat(r, promoted.Name).Writer })

	proxy := newDelayProxy(t, fmt.Sprintf("127.0.0.1:%d", promoted.Port))
	proxy.delay.Store(int64(300 * time.Millisecond))
	for _, sql := range []string{
		fmt.Sprintf("ALTER SYSTEM SET primary_conninfo = 'host=127.0.0.1 port=%d user=postgres sslmode=disable'", proxy.port()),
		"SELECT pg_reload_conf()",
	} {
		if err := cut.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	var fork string
	eventually(t, 20*time.Second, "the cut standby streaming the old timeline towards the fork", func() bool {
		var tli int
		err := cut.QueryRow(ctx, "SELECT received_tli, latest_end_lsn::text FROM pg_stat_wal_receiver WHERE sender_port = $1 AND latest_end_lsn >= $2::pg_lsn",
			proxy.port(), written).Scan(&tli, &fork)
		return err == nil && tli == 1
	})
	time.Sleep(3 * interval) // a check sees it
	if s := nodeStat(r, cut.Name); s.Ejected != routerlib.EjectOldTimeline {
		t.Fatalf("streaming the old timeline towards the fork: %+v", s)
	}
	stopReceiving(t, cut)
	var short bool
	if err := cut.QueryRow(ctx, "SELECT pg_last_wal_replay_lsn() < $1::pg_lsn", fork).Scan(&short); err != nil || !short {
		t.Fatalf("the standby reached the fork %s before it was cut (%v): the test shows nothing", fork, err)
	}
	var receivers int
	if err := cut.QueryRow(ctx, "SELECT count(*) FROM pg_stat_wal_receiver").Scan(&receivers); err != nil || receivers != 0 {
		t.Fatalf("the standby has %d WAL receivers (%v)", receivers, err)
	}
	for end := time.Now().Add(5 * interval); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if s := nodeStat(r, cut.Name); s.Ejected != routerlib.EjectOldTimeline {
			t.Fatalf("cut short of the fork %s: %+v, want %q", fork, s, routerlib.EjectOldTimeline)
		}
	}
	if out := logs.String(); strings.Contains(out, "diverged") {
		t.Errorf("a standby only old was logged as diverged:\n%s", out)
	}
	if err := cut.Follow(ctx, promoted); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "the standby, following the promoted node, in rotation", func() bool { return nodeStat(r, cut.Name).Readable })
}
