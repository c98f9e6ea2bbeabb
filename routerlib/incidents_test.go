package routerlib_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/promcollector"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// serverVersionNum is the node's server_version_num (170002 for 17.2).
func serverVersionNum(t *testing.T, n *routertest.Node) int {
	t.Helper()
	var v int
	if err := n.QueryRow(context.Background(), "SELECT current_setting('server_version_num')::int").Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestTransactionTimeoutIsTheCallers: PostgreSQL 17's transaction_timeout
// ends the session of a statement that runs too long with FATAL 25P04. That
// is the statement's fault, as statement_timeout's ERROR 57014 is: the
// caller gets the server's error at once, the read is not run again on
// every other node (where it would only time out again), no node leaves
// rotation or stops taking writes, and a write's error does not say it may
// have committed (the server rolled it back).
func TestTransactionTimeoutIsTheCallers(t *testing.T) {
	topo := routertest.Shared(t)
	if v := serverVersionNum(t, topo.Primary); v < 170000 {
		t.Skipf("transaction_timeout is PostgreSQL 17's; the server is %d", v)
	}
	ctx := context.Background()
	if err := topo.Primary.Exec(ctx, "CREATE TABLE IF NOT EXISTS timed_out (x int)"); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	logs := &syncBuffer{}
	a := topo.Artifact()
	a.ReadPolicy = artifact.ReadPolicy{Fallback: artifact.FallbackPrimary}
	r := newRouter(t, steadyHealth(a, interval), routerlib.WithTracer(rec), // a slow check would log "does not answer"
		routerlib.WithLogger(slog.New(slog.NewTextHandler(logs, nil))),
		routerlib.WithPoolConfig(func(_ artifact.Node, cfg *pgxpool.Config) {
			cfg.ConnConfig.RuntimeParams["transaction_timeout"] = "300ms"
		}))
	for i, call := range []struct {
		name string
		ctx  context.Context
		sql  string
	}{
		{"read", ctx, "SELECT 1 FROM pg_sleep(1)"},
		{"read on the primary", routerlib.Primary(ctx), "SELECT 1 FROM pg_sleep(1)"},
		{"write", ctx, "INSERT INTO timed_out SELECT 1 FROM pg_sleep(1)"},
	} {
		rec.reset()
		start := time.Now()
		_, err := r.Exec(call.ctx, call.sql)
		took := time.Since(start)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "25P04" {
			t.Fatalf("%s past transaction_timeout: %v, want the server's FATAL 25P04", call.name, err)
		}
		if len(rec.decisions) != 1 {
			t.Errorf("%s: %d routing decisions %+v, want 1: the statement's own timeout is not run again elsewhere", call.name, len(rec.decisions), rec.decisions)
		}
		if strings.Contains(err.Error(), "may have committed") {
			t.Errorf("%s: %v: the server rolled the transaction back", call.name, err)
		}
		t.Logf("%d %s: %v after %v", i, call.name, err, took)
	}
	var rows int
	if err := topo.Primary.QueryRow(ctx, "SELECT count(*) FROM timed_out").Scan(&rows); err != nil || rows != 0 {
		t.Errorf("the timed-out INSERT left %d rows (%v)", rows, err)
	}
	if out := logs.String(); strings.Contains(out, "out of rotation") || strings.Contains(out, "does not answer") {
		t.Errorf("a statement's transaction_timeout was taken for a node fault:\n%s", out)
	}
	time.Sleep(2 * interval)
	for _, s := range r.Stat() {
		if !s.Healthy {
			t.Errorf("%s unhealthy after statements hit transaction_timeout: %s", s.Name, s.LastError)
		}
		if s.DeclaredRole == "replica" && !s.Readable {
			t.Errorf("replica %s out of rotation (%s) after statements hit transaction_timeout", s.Name, s.Ejected)
		}
		if s.DeclaredRole == "primary" && !s.Writer {
			t.Errorf("the primary no longer takes writes after statements hit transaction_timeout")
		}
	}
}

// TestReplicaPostmasterPausedUnderLoad pauses a replica's postmaster
// (SIGSTOP) for 5 s under 8 readers: its sessions keep serving, a new
// connection waits until connect_timeout. The monitor's own session keeps
// answering too, so a check on it says nothing of the new connections the
// pools need (they replace theirs every 300ms here, max_conn_lifetime):
// the replica used to come back into rotation after each good check and
// leave it again each time a read waited connect_timeout for a connection.
// After a pool failed to connect, a check connects anew; so the replica
// stays out for the whole pause, readmitted only after readmit_after good
// checks, and comes back when the postmaster resumes. No read fails.
func TestReplicaPostmasterPausedUnderLoad(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(2))
	a := topo.Artifact()
	a.Pool.MaxConnLifetime = "300ms"
	a.Health = artifact.Health{Interval: "250ms", Timeout: "500ms", ConnectTimeout: "1s", EjectAfter: 2, ReadmitAfter: 2}
	clock := &logClock{}
	r := newRouter(t, a, routerlib.WithLogger(slog.New(clock)))
	victim := topo.Standbys[0]
	stop := make(chan struct{})
	wait := readLoad(t, r, 8, stop)
	time.Sleep(time.Second)
	resume := pausePostmaster(t, victim)
	paused := time.Now()
	took := eventually(t, 5*time.Second, "ejection of the paused replica", func() bool { return !nodeStat(r, victim.Name).Readable })
	t.Logf("out of rotation %v into the pause", took)
	out := time.Now()
	time.Sleep(5*time.Second - time.Since(paused))
	back, readmitted := clock.after("routerlib: replica in rotation", victim.Name, out)
	resume()
	if readmitted {
		t.Errorf("%s readmitted %v into the pause, while a new connection to it waits", victim.Name, back.Sub(paused))
	}
	took = eventually(t, 10*time.Second, "readmission after the pause", func() bool { return nodeStat(r, victim.Name).Readable })
	t.Logf("readmitted %v after the postmaster resumed", took)
	close(stop)
	reads, failed := wait()
	t.Logf("%d reads, %d failed", reads, failed)
	if failed != 0 {
		t.Errorf("%d of %d reads failed", failed, reads)
	}
}

// TestReadmitAfterConnectionFailure: a replica that a read found unable to
// connect, while its checks kept passing, leaves rotation at once and
// returns after readmit_after good checks, not at the next one: the good
// checks before the failure used to count.
func TestReadmitAfterConnectionFailure(t *testing.T) {
	topo := routertest.Shared(t)
	victim := topo.Standbys[0]
	const readmit = 3
	a := fastHealth(topo.Artifact(), interval)
	a.Health.ReadmitAfter = readmit
	a.Health.EjectAfter = 3
	var refuse atomic.Bool
	clock := &logClock{}
	r := newRouter(t, a, routerlib.WithLogger(slog.New(clock)),
		routerlib.WithPoolConfig(func(n artifact.Node, cfg *pgxpool.Config) {
			if n.Name != victim.Name {
				return
			}
			dial := cfg.ConnConfig.DialFunc
			cfg.ConnConfig.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
				if refuse.CompareAndSwap(true, false) {
					return nil, &net.OpError{Op: "dial", Net: network, Err: syscall.ECONNREFUSED}
				}
				return dial(ctx, network, addr)
			}
		}))
	time.Sleep(5 * interval) // good checks in a row, more than readmit_after
	refuse.Store(true)       // the victim's pool has no connection yet: the next read there dials
	start := time.Now()
	for range 4 {
		serverPort(t, context.Background(), r)
	}
	out, ok := clock.after("routerlib: replica out of rotation", victim.Name, start)
	if !ok {
		t.Fatalf("%s did not leave rotation after a read could not connect to it", victim.Name)
	}
	eventually(t, 5*time.Second, "readmission", func() bool { return nodeStat(r, victim.Name).Readable })
	back, _ := clock.after("routerlib: replica in rotation", victim.Name, out)
	t.Logf("readmitted %v after it left rotation", back.Sub(out))
	if min := (readmit - 1) * interval; back.Sub(out) < min*3/4 {
		t.Errorf("readmitted %v after a read could not connect, want readmit_after (%d) good checks: at least %v", back.Sub(out), readmit, min)
	}
}

// TestPasswordNeverShown puts a canary in every password the router gets
// (password_env, then one the server no longer accepts, and a password_env
// that holds a password by mistake) and makes every error path it has fire:
// Open refused, pools that cannot authenticate after a rotation, sessions
// terminated under load, a standby down, a rejected reload. No error
// returned, log record (at debug level), Stat field or Prometheus metric
// shows any part of it.
func TestPasswordNeverShown(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(1))
	ctx := context.Background()
	const role, canary = "router_canary", "Canary7f3a"
	password := "pw-" + canary + "-ok"
	if err := topo.Primary.Exec(ctx, "SET password_encryption = 'scram-sha-256'; CREATE ROLE "+role+" LOGIN SUPERUSER PASSWORD '"+password+"'"); err != nil {
		t.Fatal(err)
	}
	waitReplayed(t, topo)
	for _, n := range topo.Nodes() {
		if err := n.RequirePassword(ctx, role); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PGPASSWORD", "")
	t.Setenv("PGPASSFILE", os.DevNull)
	logs := &syncBuffer{}
	var shown []string
	seen := func(what string, err error) {
		if err != nil {
			shown = append(shown, what+": "+err.Error())
		}
	}
	opts := []routerlib.Option{
		routerlib.WithLogger(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))),
		routerlib.WithOnReloadError(func(err error) { seen("reload error", err) }),
		routerlib.WithWatch(0),
	}
	a := topo.Artifact()
	a.Health = artifact.Health{Interval: "200ms", Timeout: "1s", EjectAfter: 2, ReadmitAfter: 1}
	for i := range a.Nodes {
		a.Nodes[i].User = role
		a.Nodes[i].PasswordEnv = "ROUTERLIB_CANARY_PW"
	}

	t.Setenv("ROUTERLIB_CANARY_PW", "pw-"+canary+"-wrong")
	_, err := routerlib.New(ctx, a, opts...)
	if err == nil {
		t.Fatal("Open accepted a wrong password")
	}
	seen("Open with a wrong password", err)

	t.Setenv("ROUTERLIB_CANARY_PW", password)
	r, path := openRouter(t, a, opts...)
	stop := make(chan struct{})
	wait := readLoad(t, r, 4, stop)
	// The server stops accepting the password, and every session goes:
	// the pools must connect again, and cannot.
	if err := topo.Primary.Exec(ctx, "ALTER ROLE "+role+" PASSWORD 'rotated-"+canary+"'"); err != nil {
		t.Fatal(err)
	}
	waitReplayed(t, topo)
	for _, n := range topo.Nodes() {
		terminateSessions(t, n, "routerlib")
	}
	time.Sleep(time.Second)
	_, err = r.Exec(ctx, "CREATE TABLE IF NOT EXISTS canary_t (x int)")
	seen("write after the rotation", err)
	seen("read after the rotation", r.QueryRow(ctx, "SELECT 1").Scan(new(int)))
	if err := topo.Standbys[0].Stop(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	seen("read with the standby down", r.QueryRow(ctx, "SELECT 1").Scan(new(int)))
	// A password written into password_env by mistake.
	data, err := artifact.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	data = bytes.Replace(data, []byte(`"ROUTERLIB_CANARY_PW"`), []byte(`"pw-`+canary+`!"`), 1)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	seen("reload of a file with a password in password_env", r.Reload(ctx))
	close(stop)
	wait()

	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(promcollector.New(r))
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var metrics strings.Builder
	for _, f := range families {
		metrics.WriteString(f.String())
	}
	stat := fmt.Sprintf("%+v", r.Stat())
	for what, out := range map[string]string{"errors": strings.Join(shown, "\n"), "logs": logs.String(), "Stat": stat, "metrics": metrics.String()} {
		if strings.Contains(out, canary) {
			t.Errorf("the password shows in the %s:\n%s", what, out)
		}
	}
	if len(shown) < 4 || !strings.Contains(logs.String(), "28P01") {
		t.Errorf("the error paths did not all fire: %d errors, logs:\n%s", len(shown), logs.String())
	}
	t.Logf("%d errors checked:\n%s\nlogs:\n%s", len(shown), strings.Join(shown, "\n"), logs.String())
}

// TestPromotionDuringReload: a reload that gives every node new pools (the
// pool size changed) is checking a node that hangs (a standby added to the
// file, its postmaster stopped) when a standby is promoted, and the old
// primary, not fenced yet, still runs on its old timeline. The monitor sees
// the promotion and moves the writes; the reload, swapping in a moment
// later, must not move them back on the strength of its own check of the
// promoted node, made before the promotion.
func TestPromotionDuringReload(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(2))
	ctx := context.Background()
	old, promoted, added := topo.Primary, topo.Standbys[0], topo.Standbys[1]
	full := fastHealth(topo.Artifact(), 100*time.Millisecond)
	full.Health.ConnectTimeout = "2s"
	a := full
	a.Nodes = a.Nodes[:2] // without the standby the reload adds
	r, path := openRouter(t, a, routerlib.WithWatch(0))
	if _, err := r.Exec(ctx, "CREATE TABLE reload_promote_t (id serial, phase int)"); err != nil {
		t.Fatal(err)
	}
	var phase atomic.Int32
	stop := make(chan struct{})
	wait := writeLoad(r, "reload_promote_t", &phase, stop)
	time.Sleep(300 * time.Millisecond)

	pausePostmaster(t, added) // the reload's check of it waits connect_timeout
	full.Pool.MaxConns = 7    // every node gets new pools, and a check before the swap
	writeFile(t, path, full)
	reloaded := make(chan error, 1)
	go func() { reloaded <- r.Reload(ctx) }()
	time.Sleep(500 * time.Millisecond) // the checks of the nodes it keeps are done

	phase.Store(1)
	if err := promoted.Promote(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "writes moved to the promoted node", func() bool { return nodeStat(r, promoted.Name).Writer })
	phase.Store(2) // from here on the router knows: a row on the old primary is a lost write
	select {
	case err := <-reloaded:
		t.Logf("the reload ended before the promotion was seen (%v): the test proves nothing this time", err)
	default:
	}
	var wrong []string
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		for _, s := range r.Stat() {
			if s.Writer && s.Name != promoted.Name {
				wrong = append(wrong, fmt.Sprintf("%s at %s", s.Name, time.Now().Format("15:04:05.000")))
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := <-reloaded; err != nil {
		t.Fatal(err)
	}
	close(stop)
	ok, failed := wait()
	forked := rowsFrom(t, old, "reload_promote_t", 2)
	t.Logf("%d writes, %d failed; %d on the old primary after the promotion was seen", ok, failed, forked)
	if len(wrong) > 0 {
		t.Errorf("writes went back to the old primary after the reload: %v", wrong[:min(len(wrong), 5)])
	}
	if forked != 0 {
		t.Errorf("%d writes landed on the old primary after the router saw the promotion", forked)
	}
}

// TestStandbyLeftOnOldTimeline: a standby stops receiving WAL (it misses
// the last writes), the primary's machine dies, and that standby is
// promoted. The other standby, not yet pointed at the new primary, stays on
// the old timeline, ahead of the point where the new one forked: its replay
// position, compared with the new primary's, says it is caught up, but it
// holds writes the new primary lost and lacks every write made since. It
// must serve no read: not a read-your-writes session's (it would miss the session's write), nor any
// other (it shows lost rows). A standby that follows the new primary
// serves reads again.
func TestStandbyLeftOnOldTimeline(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(3))
	ctx := context.Background()
	promoted, left, follower := topo.Standbys[0], topo.Standbys[1], topo.Standbys[2]
	a := withMode(fastHealth(topo.Artifact(), interval), artifact.ModeReadYourWrites)
	a.Consistency.WaitTimeout = "0s"
	r := newRouter(t, a)
	if _, err := r.Exec(ctx, "CREATE TABLE forked_t (id serial, phase text)"); err != nil {
		t.Fatal(err)
	}
	waitReplayed(t, topo)

	// The standby to be promoted stops receiving WAL, and so does the one
	// that will follow it: what the primary writes now, they never have.
	forkWAL(t, topo, "forked_t", left, promoted, follower)
	if err := promoted.Promote(ctx); err != nil {
		t.Fatal(err)
	}
	var onPromoted int
	if err := promoted.QueryRow(ctx, "SELECT count(*) FROM forked_t WHERE phase = 'lost'").Scan(&onPromoted); err != nil || onPromoted != 0 {
		t.Fatalf("the promoted node has %d of the lost rows (%v): the timelines did not fork", onPromoted, err)
	}
	eventually(t, 10*time.Second, "writes on the promoted node", func() bool { return nodeStat(r, promoted.Name).Writer })
	time.Sleep(2 * interval) // every node checked since
	for _, n := range []*routertest.Node{left, follower} {
		if s := nodeStat(r, n.Name); s.Readable || s.Ejected != routerlib.EjectOldTimeline {
			t.Errorf("%s, on the old timeline, after the writes moved: %+v", n.Name, s)
		}
	}
	if err := follower.Follow(ctx, promoted); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the standby that follows the new primary back in rotation", func() bool { return nodeStat(r, follower.Name).Readable })
	time.Sleep(3 * interval)

	before := nodeStat(r, follower.Name).Reads
	stale, lost := readsAfterFork(t, r, "forked_t")
	if stale > 0 {
		t.Errorf("%d of 20 sessions did not read their own write", stale)
	}
	if lost > 0 {
		t.Errorf("%d of 20 reads saw rows the new primary does not have (from %s, on the old timeline)", lost, left.Name)
	}
	if s := nodeStat(r, left.Name); s.Readable || s.Ejected != routerlib.EjectOldTimeline {
		t.Errorf("%s, on the old timeline: %+v", left.Name, s)
	}
	if reads := nodeStat(r, follower.Name).Reads - before; reads == 0 {
		t.Errorf("no read went to %s, which follows the new primary", follower.Name)
	}
}

// forkWAL prepares two timelines: the standbys cut stop receiving WAL,
// the primary writes 20,000 rows (phase 'lost') into table, which has
// columns phase and a default for the others, and once keep has replayed
// them the primary's machine dies (frozen until the test ends). A standby
// of cut promoted then starts a timeline without those rows, and keep, on
// the old one, is ahead of the fork.
func forkWAL(t *testing.T, topo *routertest.Topology, table string, keep *routertest.Node, cut ...*routertest.Node) {
	t.Helper()
	ctx := context.Background()
	for _, n := range cut {
		stopReceiving(t, n)
	}
	if err := topo.Primary.Exec(ctx, "INSERT INTO "+table+" (phase) SELECT 'lost' FROM generate_series(1, 20000)"); err != nil {
		t.Fatal(err)
	}
	lsn, err := topo.CurrentLSN(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := keep.WaitReplayed(ctx, lsn); err != nil {
		t.Fatal(err)
	}
	if err := topo.Primary.Freeze(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = topo.Primary.Thaw() })
}

// TestPrimaryKilledUnderLoad kills the primary's machine (every process,
// SIGKILL) under a writer and four readers: no read fails, every write
// fails fast (none waits for a timeout), those in flight say they may
// have committed, and from then on writes fail with ErrNoPrimary naming
// the primary.
func TestPrimaryKilledUnderLoad(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(1))
	ctx := context.Background()
	r := newRouter(t, fastHealth(topo.Artifact(), interval))
	if _, err := r.Exec(ctx, "CREATE TABLE killed_t (id serial)"); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	wait := readLoad(t, r, 4, stop)
	var slowest time.Duration
	var failed, noPrimary int
	var last error
	done := make(chan struct{})
	killed := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			start := time.Now()
			_, err := r.Exec(ctx, "INSERT INTO killed_t DEFAULT VALUES")
			select {
			case <-killed:
				slowest = max(slowest, time.Since(start))
			default:
			}
			if err != nil {
				failed++
				if errors.Is(err, routerlib.ErrNoPrimary) {
					noPrimary++
				}
				last = err
				time.Sleep(time.Millisecond)
			}
		}
	}()
	time.Sleep(500 * time.Millisecond)
	killNode(t, topo.Primary)
	close(killed)
	time.Sleep(2 * time.Second)
	close(stop)
	<-done
	reads, readsFailed := wait()
	t.Logf("%d reads, %d failed; %d writes failed, %d with ErrNoPrimary; slowest write after the kill %v; last error: %v", reads, readsFailed, failed, noPrimary, slowest, last)
	if readsFailed != 0 {
		t.Errorf("%d of %d reads failed with the primary killed", readsFailed, reads)
	}
	if slowest > time.Second {
		t.Errorf("a write took %v after the primary was killed, want it to fail fast", slowest)
	}
	if !errors.Is(last, routerlib.ErrNoPrimary) || !strings.Contains(last.Error(), `"primary"`) {
		t.Errorf("the last write: %v, want ErrNoPrimary naming the primary", last)
	}
}

// TestReloadDropsFrozenReplica: a replica freezes (a dead VM) under
// readers with no deadline, and the router file is rewritten without it
// before the monitor ejected it. The reads stuck on it must still end
// within the ejection bound and run elsewhere: once the file drops the
// node, no watcher checks it, and nothing else would cut them off.
func TestReloadDropsFrozenReplica(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(2))
	a, bound := hungHealth(topo.Artifact())
	r, path := openRouter(t, a, routerlib.WithWatch(0))
	victim := topo.Standbys[0]
	eventually(t, 10*time.Second, "the replicas in rotation", func() bool {
		return nodeStat(r, victim.Name).Readable && nodeStat(r, topo.Standbys[1].Name).Readable
	})
	stop := make(chan struct{})
	wait := readLoad(t, r, 8, stop)
	time.Sleep(200 * time.Millisecond)
	if err := victim.Freeze(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // reads are stuck on it now
	dropped := a
	dropped.Nodes = append([]artifact.Node{a.Nodes[0]}, a.Nodes[2:]...)
	writeFile(t, path, dropped)
	if err := r.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(bound)
	close(stop)
	finished := make(chan [2]int64, 1)
	go func() { reads, failed := wait(); finished <- [2]int64{reads, failed} }()
	select {
	case res := <-finished:
		t.Logf("%d reads, %d failed", res[0], res[1])
		if res[1] != 0 {
			t.Errorf("%d of %d reads failed", res[1], res[0])
		}
	case <-time.After(bound + 5*time.Second):
		_ = victim.Thaw() // let the stuck reads end, so the test can
		<-finished
		t.Fatalf("reads stuck on the frozen replica the file dropped still hang %v after the reload", 2*bound+5*time.Second)
	}
}

// TestRecoveryConflictIsTheCallers: a read on a replica cancelled because
// the replay of the primary's VACUUM conflicts with it (ERROR 40001,
// "canceling statement due to conflict with recovery") is the caller's:
// returned as the server sent it, not run again, and the replica stays in
// rotation.
func TestRecoveryConflictIsTheCallers(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(1))
	ctx := context.Background()
	replica := topo.Standbys[0]
	if err := replica.Exec(ctx, "ALTER SYSTEM SET max_standby_streaming_delay = '100ms'"); err != nil {
		t.Fatal(err)
	}
	if err := replica.Exec(ctx, "SELECT pg_reload_conf()"); err != nil {
		t.Fatal(err)
	}
	if err := topo.Primary.Exec(ctx, "CREATE TABLE conflict_t AS SELECT g AS id FROM generate_series(1, 1000) g"); err != nil {
		t.Fatal(err)
	}
	waitReplayed(t, topo)
	rec := &recorder{}
	a := fastHealth(topo.Artifact(), interval)
	a.ReadPolicy = artifact.ReadPolicy{Fallback: artifact.FallbackError}
	r := newRouter(t, a, routerlib.WithTracer(rec))
	done := make(chan error, 1)
	go func() {
		var n int
		done <- r.QueryRow(ctx, "SELECT count(*) FROM conflict_t, pg_sleep(5)").Scan(&n)
	}()
	time.Sleep(500 * time.Millisecond) // the read holds its snapshot on the replica
	if err := topo.Primary.Exec(ctx, "DELETE FROM conflict_t"); err != nil {
		t.Fatal(err)
	}
	if err := topo.Primary.Exec(ctx, "VACUUM conflict_t"); err != nil {
		t.Fatal(err)
	}
	err := <-done
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "40001" {
		t.Fatalf("the read the replay conflicted with: %v, want the server's 40001", err)
	}
	if len(rec.decisions) != 1 {
		t.Errorf("%d routing decisions %+v, want 1", len(rec.decisions), rec.decisions)
	}
	time.Sleep(2 * interval)
	if s := nodeStat(r, replica.Name); !s.Readable || !s.Healthy {
		t.Errorf("the replica after a recovery conflict: %+v", s)
	}
	if p := serverPort(t, ctx, r); p != replica.Port {
		t.Errorf("the next read went to port %d, not the replica", p)
	}
}

// delayProxy forwards 127.0.0.1 connections to target, holding each chunk
// the server sends for the delay in force when it arrives: a network
// whose latency spikes.
type delayProxy struct {
	ln    net.Listener
	delay atomic.Int64 // nanoseconds
}

func newDelayProxy(t *testing.T, target string) *delayProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &delayProxy{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			go func() { _, _ = io.Copy(s, c); s.Close() }()
			go func() {
				defer c.Close()
				buf := make([]byte, 32<<10)
				for {
					n, err := s.Read(buf)
					if n > 0 {
						time.Sleep(time.Duration(p.delay.Load()))
						if _, err := c.Write(buf[:n]); err != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	return p
}

func (p *delayProxy) port() int { return p.ln.Addr().(*net.TCPAddr).Port }

// TestSlowReplicaStaysOut: a replica whose answers take 800ms (a network
// latency spike) for 5 s, with health.timeout 500ms, is ejected and stays
// out while it is slow. Its checks answer late, but within the time a check
// may run (eject_after × interval + timeout = 1s), and each late answer
// used to readmit it (readmit_after 1), for reads to wait on it until the
// next deadline ejected it again. No read fails; it comes back once the
// latency is gone.
func TestSlowReplicaStaysOut(t *testing.T) {
	topo := routertest.Shared(t)
	a, bound := hungHealth(topo.Artifact())
	victim := topo.Standbys[0]
	proxy := newDelayProxy(t, fmt.Sprintf("127.0.0.1:%d", victim.Port))
	a.Nodes[1].Port = proxy.port()
	clock := &logClock{}
	r := newRouter(t, a, routerlib.WithLogger(slog.New(clock)))
	eventually(t, 10*time.Second, "the replicas in rotation", func() bool { return nodeStat(r, victim.Name).Readable })
	stop := make(chan struct{})
	wait := readLoad(t, r, 4, stop)
	time.Sleep(300 * time.Millisecond)
	proxy.delay.Store(int64(800 * time.Millisecond))
	slow := time.Now()
	eventually(t, bound+2*time.Second, "ejection of the slow replica", func() bool { return !nodeStat(r, victim.Name).Readable })
	out := time.Now()
	time.Sleep(5*time.Second - time.Since(slow))
	back, readmitted := clock.after("routerlib: replica in rotation", victim.Name, out)
	proxy.delay.Store(0)
	if readmitted {
		t.Errorf("%s readmitted %v into the latency spike, while it answers in 800ms", victim.Name, back.Sub(slow))
	}
	eventually(t, 10*time.Second, "readmission after the spike", func() bool { return nodeStat(r, victim.Name).Readable })
	close(stop)
	reads, failed := wait()
	t.Logf("%d reads, %d failed", reads, failed)
	if failed != 0 {
		t.Errorf("%d of %d reads failed", failed, reads)
	}
}
