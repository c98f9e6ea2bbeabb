package routerlib_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// TestReview6CaptureCutMidReplyLeavesNoReply: a captured Exec write whose
// context ends at any point of its reply (the write sleeps a random few
// milliseconds, the deadline is random too) must leave its connection
// closed or fully read: every later call on the same pool gets its own
// answer. In each exec mode, with pgconn's cancel-request context handler,
// and through PgBouncer in transaction mode.
func TestReview6CaptureCutMidReplyLeavesNoReply(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name string
		cfg  func(*pgxpool.Config)
	}{
		{"default", nil},
		{"cancel-request", func(cfg *pgxpool.Config) {
			cfg.ConnConfig.BuildContextWatcherHandler = func(pc *pgconn.PgConn) ctxwatch.Handler {
				return &pgconn.CancelRequestContextWatcherHandler{Conn: pc, CancelRequestDelay: 0, DeadlineDelay: time.Second}
			}
		}},
		{"exec", func(cfg *pgxpool.Config) { cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeExec }},
		{"simple", func(cfg *pgxpool.Config) { cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol }},
		{"describe", func(cfg *pgxpool.Config) { cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeDescribeExec }},
		{"cache-describe", func(cfg *pgxpool.Config) { cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeCacheDescribe }},
	} {
		t.Run(c.name, func(t *testing.T) {
			cutMidReply(t, routertest.Shared(t), "review6_cut_"+strings.ReplaceAll(c.name, "-", "_"), c.cfg)
		})
	}
	t.Run("pgbouncer", func(t *testing.T) {
		topo := routertest.Start(t, routertest.WithPgBouncer(), routertest.WithStandbys(1))
		cutMidReply(t, topo, "review6_cut_bouncer", func(cfg *pgxpool.Config) { cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeExec })
	})
	_ = ctx
}

// rywRouter is a router on topo in read_your_writes mode, its pools
// configured by cfg.
func rywRouter(t *testing.T, topo *routertest.Topology, cfg func(*pgxpool.Config)) *routerlib.Router {
	t.Helper()
	a := topo.Artifact()
	a.Consistency.Mode = artifact.ModeReadYourWrites
	return newRouter(t, a, routerlib.WithPoolConfig(func(_ artifact.Node, c *pgxpool.Config) { cfg(c) }))
}

func cutMidReply(t *testing.T, topo *routertest.Topology, table string, cfg func(*pgxpool.Config)) {
	ctx := context.Background()
	r := rywRouter(t, topo, func(c *pgxpool.Config) {
		c.MaxConns = 2
		if cfg != nil {
			cfg(c)
		}
	})
	if _, err := r.Exec(ctx, "CREATE TABLE "+table+" (id int)"); err != nil {
		t.Fatal(err)
	}
	defer r.Exec(ctx, "DROP TABLE "+table)
	rng := rand.New(rand.NewSource(1))
	var cut, ok int
	for i := 0; i < 120; i++ {
		s := &routerlib.Session{}
		sctx := routerlib.WithSession(ctx, s)
		wctx, cancel := context.WithTimeout(sctx, time.Duration(rng.Intn(4000))*time.Microsecond)
		var err error
		if i%3 == 0 {
			_, err = r.Exec(wctx, fmt.Sprintf("INSERT INTO %s SELECT %d FROM pg_sleep(%g)", table, i, float64(rng.Intn(3000))/1e6))
		} else {
			_, err = r.Exec(wctx, "INSERT INTO "+table+" SELECT $1 FROM pg_sleep($2)", i, float64(rng.Intn(3000))/1e6)
		}
		cancel()
		if err != nil {
			cut++
		} else {
			ok++
		}
		var got int
		want := 1000000 + i
		if err := r.QueryRow(ctx, "INSERT INTO "+table+" VALUES ($1) RETURNING id", want).Scan(&got); err != nil {
			t.Fatalf("call %d after the write (%v): %v", i, err, err)
		}
		if got != want {
			t.Fatalf("call %d after a cut write got %d, want %d", i, got, want)
		}
		if tag, err := r.Exec(routerlib.WithSession(ctx, s), "UPDATE "+table+" SET id = id WHERE id = $1", want); err != nil || tag.RowsAffected() != 1 {
			t.Fatalf("call %d: a captured write after the cut one: %v %v", i, tag, err)
		}
	}
	t.Logf("%d writes cut, %d done", cut, ok)
}

// TestReview6CaptureServerMessagesMidReply: notices, notifications and
// parameter changes that arrive in the middle of a captured write's reply
// reach the connection's handlers and state as pgx would deliver them, and
// errors of each statement come back as the server's with the connection
// left idle.
func TestReview6CaptureServerMessagesMidReply(t *testing.T) {
	topo := routertest.Shared(t)
	ctx := context.Background()
	var notices, notifications atomic.Int64
	r := rywRouter(t, topo, func(cfg *pgxpool.Config) {
		cfg.MaxConns = 1
		cfg.ConnConfig.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
			if n.Message == "review6 notice" {
				notices.Add(1)
			}
		}
		cfg.ConnConfig.OnNotification = func(_ *pgconn.PgConn, n *pgconn.Notification) {
			if n.Channel == "review6" {
				notifications.Add(1)
			}
		}
	})
	setup := []string{
		"CREATE TABLE review6_msg (id int PRIMARY KEY, d int UNIQUE DEFERRABLE INITIALLY DEFERRED)",
		`CREATE FUNCTION review6_msg_trg() RETURNS trigger LANGUAGE plpgsql AS $$
		 BEGIN RAISE NOTICE 'review6 notice'; PERFORM pg_notify('review6', NEW.id::text); RETURN NEW; END $$`,
		"CREATE TRIGGER review6_msg_trg BEFORE INSERT ON review6_msg FOR EACH ROW EXECUTE FUNCTION review6_msg_trg()",
	}
	for _, q := range setup {
		if _, err := r.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	defer r.Exec(ctx, "DROP FUNCTION review6_msg_trg() CASCADE")
	defer r.Exec(ctx, "DROP TABLE review6_msg")
	s := &routerlib.Session{}
	sctx := routerlib.WithSession(ctx, s)
	if _, err := r.Exec(sctx, "LISTEN review6"); err != nil {
		t.Fatal(err)
	}
	k := 100
	check := func(step string) {
		t.Helper()
		k++
		var got int
		if err := r.QueryRow(ctx, "INSERT INTO review6_msg VALUES ($1, $1) RETURNING id", k).Scan(&got); err != nil || got != k {
			t.Fatalf("%s: the next call got %d, %v", step, got, err)
		}
	}
	if tag, err := r.Exec(sctx, "INSERT INTO review6_msg VALUES ($1, $2)", 1, 1); err != nil || tag.RowsAffected() != 1 {
		t.Fatalf("insert: %v %v", tag, err)
	}
	if notices.Load() != 1 {
		t.Errorf("notices: %d, want 1", notices.Load())
	}
	check("insert")
	// the write fails: primary key
	_, err := r.Exec(sctx, "INSERT INTO review6_msg VALUES ($1, $2)", 1, 2)
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "23505" {
		t.Fatalf("duplicate key: %v", err)
	}
	check("duplicate key")
	// the COMMIT fails: deferred unique
	_, err = r.Exec(sctx, "INSERT INTO review6_msg VALUES ($1, $2)", 2, 1)
	if !errors.As(err, &pgErr) || pgErr.Code != "23505" {
		t.Fatalf("deferred: %v", err)
	}
	check("deferred")
	// a write that changes a reported parameter
	if _, err := r.Exec(sctx, "UPDATE review6_msg SET d = d WHERE id = $1 AND set_config('application_name', 'review6app', false) IS NOT NULL", 1); err != nil {
		t.Fatal(err)
	}
	check("set_config")
	var app string
	if err := r.QueryRow(sctx, "SELECT current_setting('application_name')").Scan(&app); err != nil {
		t.Fatal(err)
	}
	if app != "review6app" {
		t.Logf("application_name %q (another connection)", app)
	}
	// the write is terminated in the middle
	go func() {
		time.Sleep(300 * time.Millisecond)
		_ = topo.Primary.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'INSERT INTO review6_msg SELECT%'")
	}()
	_, err = r.Exec(sctx, "INSERT INTO review6_msg SELECT $1, $1 FROM pg_sleep(3)", 5)
	if err == nil {
		t.Fatal("the terminated write succeeded")
	}
	t.Logf("terminated: %v", err)
	check("terminated")
	time.Sleep(100 * time.Millisecond)
	if notifications.Load() < 1 {
		t.Errorf("notifications: %d", notifications.Load())
	}
}

// TestReview6CaptureCommitEndedBySyncRepWait: a captured write whose
// COMMIT waits for a synchronous standby, and whose session the server
// ends while it waits (pg_terminate_backend: "canceling the wait for
// synchronous replication and terminating connection ... The transaction
// has already committed locally"), has committed: the server's FATAL is
// no proof that it did not. Its session must still see it.
func TestReview6CaptureCommitEndedBySyncRepWait(t *testing.T) {
	topo, r := pausedReplica(t, "50ms")
	ctx := context.Background()
	if err := topo.Primary.Exec(ctx, "CREATE TABLE review6_sync (tag text)"); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"ALTER SYSTEM SET synchronous_standby_names = 'review6_nobody'", "SELECT pg_reload_conf()"} {
		if err := topo.Primary.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		_ = topo.Primary.Exec(ctx, "ALTER SYSTEM RESET synchronous_standby_names")
		_ = topo.Primary.Exec(ctx, "SELECT pg_reload_conf()")
	})
	time.Sleep(200 * time.Millisecond)
	for _, w := range []struct {
		tag  string
		args bool
	}{{"plain", false}, {"args", true}} {
		sctx := routerlib.WithSession(ctx, &routerlib.Session{})
		go func() {
			for i := 0; i < 100; i++ {
				time.Sleep(50 * time.Millisecond)
				var n int
				_ = topo.Primary.QueryRow(ctx, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE wait_event = 'SyncRep'").Scan(&n)
				if n > 0 {
					return
				}
			}
		}()
		var err error
		if w.args {
			_, err = r.Exec(sctx, "INSERT INTO review6_sync VALUES ($1)", w.tag)
		} else {
			_, err = r.Exec(sctx, "INSERT INTO review6_sync VALUES ('"+w.tag+"')")
		}
		t.Logf("%s: %v", w.tag, err)
		checkWrittenOnceAndSeen(t, ctx, sctx, topo, r, "review6_sync", w.tag)
	}
}

// TestReview6CaptureFrozenPrimary: a captured write to a primary that
// stopped answering (SIGSTOP) ends at its deadline, whether it was cut
// while its bytes went out (an argument larger than the socket buffers)
// or while waiting for the reply; after the primary resumes, every call
// on the pool gets its own answer, and the cut writes ran at most once.
// Concurrent writers, with -race.
func TestReview6CaptureFrozenPrimary(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(1))
	ctx := context.Background()
	r := rywRouter(t, topo, func(c *pgxpool.Config) { c.MaxConns = 4 })
	if _, err := r.Exec(ctx, "CREATE TABLE review6_frozen (id int, v text)"); err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("x", 8<<20)
	// Warm the pool's connections.
	for i := 0; i < 4; i++ {
		if _, err := r.Exec(routerlib.WithSession(ctx, &routerlib.Session{}), "INSERT INTO review6_frozen VALUES ($1, $2)", -1, "w"); err != nil {
			t.Fatal(err)
		}
	}
	if err := topo.Primary.Freeze(); err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 8)
	began := time.Now()
	for w := 0; w < 8; w++ {
		go func(w int) {
			wctx, cancel := context.WithTimeout(routerlib.WithSession(ctx, &routerlib.Session{}), 700*time.Millisecond)
			defer cancel()
			v := "small"
			if w%2 == 0 {
				v = big
			}
			_, err := r.Exec(wctx, "INSERT INTO review6_frozen VALUES ($1, $2)", w, v)
			errs <- err
		}(w)
	}
	for w := 0; w < 8; w++ {
		if err := <-errs; err == nil {
			t.Errorf("a write to the frozen primary succeeded")
		}
	}
	if d := time.Since(began); d > 5*time.Second {
		t.Errorf("the writes to the frozen primary ended after %v, their deadline was 700ms", d)
	}
	if err := topo.Primary.Thaw(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 40; i++ {
		want := 5000 + i
		var got int
		if err := r.QueryRow(ctx, "INSERT INTO review6_frozen VALUES ($1, 'after') RETURNING id", want).Scan(&got); err != nil || got != want {
			t.Fatalf("call %d after the thaw got %d (%v), want %d", i, got, err, want)
		}
		if tag, err := r.Exec(routerlib.WithSession(ctx, &routerlib.Session{}), "UPDATE review6_frozen SET v = 'again' WHERE id = $1", want); err != nil || tag.RowsAffected() != 1 {
			t.Fatalf("captured write %d after the thaw: %v %v", i, tag, err)
		}
	}
	var n int
	if err := topo.Primary.QueryRow(ctx, "SELECT count(*) FROM (SELECT id FROM review6_frozen WHERE id BETWEEN 0 AND 7 GROUP BY id HAVING count(*) > 1) d").Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d cut writes ran more than once (%v)", n, err)
	}
}

// TestReview6CaptureConcurrentTerminations: writers in read-your-writes
// sessions, with random deadlines, while their backends on the primary are
// terminated at random: every write that succeeded is there once, every
// session sees its own successful writes, and calls after it all get their
// own answers. With -race.
func TestReview6CaptureConcurrentTerminations(t *testing.T) {
	topo := routertest.Shared(t)
	ctx := context.Background()
	r := rywRouter(t, topo, func(c *pgxpool.Config) { c.MaxConns = 4 })
	if _, err := r.Exec(ctx, "CREATE TABLE review6_conc (w int, i int)"); err != nil {
		t.Fatal(err)
	}
	defer r.Exec(ctx, "DROP TABLE review6_conc")
	stop := make(chan struct{})
	killed := make(chan int)
	go func() {
		n := 0
		defer func() { killed <- n }()
		for {
			select {
			case <-stop:
				return
			case <-time.After(15 * time.Millisecond):
			}
			var k int
			_ = topo.Primary.QueryRow(ctx, "SELECT count(pg_terminate_backend(pid)) FROM (SELECT pid FROM pg_stat_activity WHERE query LIKE 'INSERT INTO review6_conc%' AND pid <> pg_backend_pid() ORDER BY random() LIMIT 1) p").Scan(&k)
			n += k
		}
	}()
	const writers, each = 6, 60
	type result struct{ w, ok int }
	results := make(chan result, writers)
	for w := 0; w < writers; w++ {
		go func(w int) {
			rng := rand.New(rand.NewSource(int64(w)))
			ok := 0
			s := &routerlib.Session{}
			sctx := routerlib.WithSession(ctx, s)
			for i := 0; i < each; i++ {
				wctx, cancel := context.WithTimeout(sctx, time.Duration(3+rng.Intn(40))*time.Millisecond)
				_, err := r.Exec(wctx, "INSERT INTO review6_conc SELECT $1, $2 FROM pg_sleep($3)", w, i, float64(rng.Intn(10000))/1e6)
				cancel()
				if err == nil {
					ok++
					var n int
					if err := r.QueryRow(sctx, "SELECT count(*) FROM review6_conc WHERE w = $1 AND i = $2", w, i).Scan(&n); err != nil || n != 1 {
						t.Errorf("writer %d: its write %d, which succeeded, read back %d times (%v)", w, i, n, err)
					}
				}
			}
			results <- result{w, ok}
		}(w)
	}
	total := 0
	for w := 0; w < writers; w++ {
		total += (<-results).ok
	}
	close(stop)
	t.Logf("%d of %d writes succeeded, %d backends terminated", total, writers*each, <-killed)
	var dup int
	if err := topo.Primary.QueryRow(ctx, "SELECT count(*) FROM (SELECT 1 FROM review6_conc GROUP BY w, i HAVING count(*) > 1) d").Scan(&dup); err != nil || dup != 0 {
		t.Fatalf("%d writes ran twice (%v)", dup, err)
	}
	for i := 0; i < 20; i++ {
		var got int
		if err := r.QueryRow(ctx, "INSERT INTO review6_conc VALUES (-1, $1) RETURNING i", 9000+i).Scan(&got); err != nil || got != 9000+i {
			t.Fatalf("call %d after: %d (%v)", i, got, err)
		}
	}
}

// TestReview6CaptureReadOnlyPrimary: a captured write that the server
// refuses as read-only (SQLSTATE 25006: here the primary's sessions
// default to read-only transactions, as on a primary being demoted) fails
// with the server's error and leaves the connection serving its next call.
func TestReview6CaptureReadOnlyPrimary(t *testing.T) {
	topo := routertest.Shared(t)
	ctx := context.Background()
	if err := topo.Primary.Exec(ctx, "CREATE TABLE review6_ro (id int)"); err != nil {
		t.Fatal(err)
	}
	defer topo.Primary.Exec(ctx, "DROP TABLE review6_ro")
	r := rywRouter(t, topo, func(c *pgxpool.Config) {
		c.MaxConns = 1
		c.ConnConfig.RuntimeParams["default_transaction_read_only"] = "on"
	})
	for i := 0; i < 3; i++ {
		_, err := r.Exec(routerlib.WithSession(ctx, &routerlib.Session{}), "INSERT INTO review6_ro VALUES ($1)", i)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "25006" {
			t.Fatalf("write %d on a read-only primary: %v, want 25006", i, err)
		}
		var got int
		if err := r.QueryRow(ctx, "SELECT $1::int", 77+i).Scan(&got); err != nil || got != 77+i {
			t.Fatalf("call after write %d: %d (%v)", i, got, err)
		}
	}
}

// TestReview6CaptureSerializationFailures: captured writes in serializable
// transactions that conflict fail with 40001 (at the write or at the
// COMMIT) and nothing else, and every call after gets its own answer.
func TestReview6CaptureSerializationFailures(t *testing.T) {
	topo := routertest.Shared(t)
	ctx := context.Background()
	if err := topo.Primary.Exec(ctx, "CREATE TABLE review6_ser (id int PRIMARY KEY, v int); INSERT INTO review6_ser SELECT g, 0 FROM generate_series(1, 4) g"); err != nil {
		t.Fatal(err)
	}
	defer topo.Primary.Exec(ctx, "DROP TABLE review6_ser")
	r := rywRouter(t, topo, func(c *pgxpool.Config) {
		c.MaxConns = 4
		c.ConnConfig.RuntimeParams["default_transaction_isolation"] = "serializable"
	})
	var failures atomic.Int64
	errs := make(chan error, 4)
	for w := 1; w <= 4; w++ {
		go func(w int) {
			for i := 0; i < 40; i++ {
				_, err := r.Exec(routerlib.WithSession(ctx, &routerlib.Session{}), "UPDATE review6_ser SET v = (SELECT sum(v) + 1 FROM review6_ser WHERE pg_sleep(0.001) IS NOT NULL) WHERE id = $1", w)
				var pgErr *pgconn.PgError
				switch {
				case err == nil:
				case errors.As(err, &pgErr) && pgErr.Code == "40001":
					failures.Add(1)
				default:
					errs <- fmt.Errorf("writer %d: %w", w, err)
					return
				}
			}
			errs <- nil
		}(w)
	}
	for w := 0; w < 4; w++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d serialization failures", failures.Load())
	for i := 0; i < 10; i++ {
		var got int
		if err := r.QueryRow(ctx, "UPDATE review6_ser SET v = $1 WHERE id = 1 RETURNING v", 500+i).Scan(&got); err != nil || got != 500+i {
			t.Fatalf("call %d after: %d (%v)", i, got, err)
		}
	}
}

// TestReview6CaptureCutInLargeRows: a captured Exec of a write returning
// megabytes of rows it does not read, cut at a random point of them:
// the calls after on the pool get their own answers.
func TestReview6CaptureCutInLargeRows(t *testing.T) {
	topo := routertest.Shared(t)
	ctx := context.Background()
	if err := topo.Primary.Exec(ctx, "CREATE TABLE review6_big (id int, v text); INSERT INTO review6_big SELECT g, repeat('x', 1 << 20) FROM generate_series(1, 16) g"); err != nil {
		t.Fatal(err)
	}
	defer topo.Primary.Exec(ctx, "DROP TABLE review6_big")
	r := rywRouter(t, topo, func(c *pgxpool.Config) { c.MaxConns = 2 })
	rng := rand.New(rand.NewSource(2))
	cut := 0
	for i := 0; i < 40; i++ {
		wctx, cancel := context.WithTimeout(routerlib.WithSession(ctx, &routerlib.Session{}), time.Duration(rng.Intn(300))*time.Millisecond)
		_, err := r.Exec(wctx, "UPDATE review6_big SET id = id WHERE id > $1 RETURNING v, v", 0)
		cancel()
		if err != nil {
			cut++
		}
		var got int
		if err := r.QueryRow(ctx, "UPDATE review6_big SET id = id WHERE id = $1 RETURNING id", 1+i%16).Scan(&got); err != nil || got != 1+i%16 {
			t.Fatalf("call %d after: %d (%v)", i, got, err)
		}
	}
	t.Logf("%d of 40 cut", cut)
}

// TestReview6CaptureOnPgErrorClosesMidReply: an application's OnPgError
// that closes the connection on an error in the middle of a captured
// write's reply (here the write's unique violation) gets the server's
// error back, and the pool replaces the connection.
func TestReview6CaptureOnPgErrorClosesMidReply(t *testing.T) {
	topo := routertest.Shared(t)
	ctx := context.Background()
	if err := topo.Primary.Exec(ctx, "CREATE TABLE review6_onerr (id int PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	defer topo.Primary.Exec(ctx, "DROP TABLE review6_onerr")
	var called atomic.Int64
	r := rywRouter(t, topo, func(c *pgxpool.Config) {
		c.MaxConns = 1
		c.ConnConfig.OnPgError = func(_ *pgconn.PgConn, e *pgconn.PgError) bool {
			if e.Code == "23505" {
				called.Add(1)
				return false
			}
			return e.Severity != "FATAL"
		}
	})
	for i := 0; i < 4; i++ {
		_, err := r.Exec(routerlib.WithSession(ctx, &routerlib.Session{}), "INSERT INTO review6_onerr VALUES ($1)", 1)
		var pgErr *pgconn.PgError
		if i > 0 && (!errors.As(err, &pgErr) || pgErr.Code != "23505") {
			t.Fatalf("write %d: %v, want 23505", i, err)
		}
		var got int
		if err := r.QueryRow(ctx, "INSERT INTO review6_onerr VALUES ($1) RETURNING id", 100+i).Scan(&got); err != nil || got != 100+i {
			t.Fatalf("call after write %d: %d (%v)", i, got, err)
		}
	}
	if called.Load() != 3 {
		t.Errorf("OnPgError called %d times, want 3", called.Load())
	}
}

// TestReview6CaptureServerRestart: captured writes while the primary
// restarts: each fails or succeeds once, and the calls after get their own
// answers.
func TestReview6CaptureServerRestart(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(1))
	ctx := context.Background()
	if err := topo.Primary.Exec(ctx, "CREATE TABLE review6_restart (id int)"); err != nil {
		t.Fatal(err)
	}
	r := rywRouter(t, topo, func(c *pgxpool.Config) { c.MaxConns = 3 })
	done := make(chan int)
	for w := 0; w < 3; w++ {
		go func(w int) {
			ok := 0
			for i := 0; i < 300; i++ {
				wctx, cancel := context.WithTimeout(routerlib.WithSession(ctx, &routerlib.Session{}), 2*time.Second)
				if _, err := r.Exec(wctx, "INSERT INTO review6_restart SELECT $1 FROM pg_sleep(0.002)", w*1000+i); err == nil {
					ok++
				}
				cancel()
			}
			done <- ok
		}(w)
	}
	time.Sleep(200 * time.Millisecond)
	if err := topo.Primary.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	ok := <-done + <-done + <-done
	t.Logf("%d of 900 writes succeeded", ok)
	var dup int
	if err := topo.Primary.QueryRow(ctx, "SELECT count(*) FROM (SELECT 1 FROM review6_restart GROUP BY id HAVING count(*) > 1) d").Scan(&dup); err != nil || dup != 0 {
		t.Fatalf("%d writes ran twice (%v)", dup, err)
	}
	for i := 0; i < 10; i++ {
		var got int
		err := r.QueryRow(ctx, "INSERT INTO review6_restart VALUES ($1) RETURNING id", 90000+i).Scan(&got)
		if err != nil || got != 90000+i {
			t.Fatalf("call %d after: %d (%v)", i, got, err)
		}
	}
}

// TestReview6CaptureHandlerPanicMidReply: an application's notice handler
// that panics in the middle of a captured write's reply (a trigger's
// RAISE NOTICE), recovered by the application as net/http recovers a
// handler's panic, must not leave the rest of that reply on a connection
// the pool hands out again: with pgx's own readers the connection is busy
// until the reply is read, and the pool drops it.
func TestReview6CaptureHandlerPanicMidReply(t *testing.T) {
	topo := routertest.Shared(t)
	ctx := context.Background()
	for _, q := range []string{
		"CREATE TABLE review6_panic (id int)",
		`CREATE FUNCTION review6_panic_trg() RETURNS trigger LANGUAGE plpgsql AS $$
		 BEGIN RAISE NOTICE 'review6 panic'; RETURN NEW; END $$`,
		"CREATE TRIGGER review6_panic_trg BEFORE INSERT ON review6_panic FOR EACH ROW EXECUTE FUNCTION review6_panic_trg()",
	} {
		if err := topo.Primary.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	defer topo.Primary.Exec(ctx, "DROP TABLE review6_panic; DROP FUNCTION review6_panic_trg()")
	r := rywRouter(t, topo, func(c *pgxpool.Config) {
		c.MaxConns = 1
		c.ConnConfig.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
			if n.Message == "review6 panic" {
				panic("review6: the application's notice handler failed")
			}
		}
	})
	for i := 0; i < 3; i++ {
		func() {
			defer func() { _ = recover() }()
			_, _ = r.Exec(routerlib.WithSession(ctx, &routerlib.Session{}), "INSERT INTO review6_panic VALUES ($1)", i)
		}()
		for j := 0; j < 3; j++ {
			want := 100*i + j
			var n int
			if err := r.QueryRow(ctx, "WITH u AS (UPDATE review6_panic SET id = id WHERE false) SELECT $1::int", want).Scan(&n); err != nil || n != want {
				t.Fatalf("call %d after the panic %d got %d (%v), want %d", j, i, n, err, want)
			}
		}
	}
}
