package routerlib

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// Fault drills for the read-your-writes write paths: Exec's direct one
// (BEGIN, the write, COMMIT and the position before one Sync), the
// two-Sync path (a write that cannot go inside
// BEGIN … COMMIT: a CALL, through Exec and through Query) and Query's
// capture of a DML write that returns rows (pgconn's batch). Each write
// is cut by its context at a random point of its reply, by a cancel
// request, by a notice handler of the application's that panics (the
// application recovers), or by pg_terminate_backend (57P01). After each:
// the row is there at most once; if it committed, the session's next
// read sees it (the standby's replay is paused, so a session that
// recorded nothing reads there, without the row); and the pool's next
// call (one connection) gets its own answer.

// rywpathDrillWrites are the calls of the drills, each sending a write
// of id that sleeps pause seconds first and raises a notice.
var rywpathDrillWrites = []struct {
	name string
	call func(ctx context.Context, r *Router, id int, pause float64) error
}{
	{"exec-direct", func(ctx context.Context, r *Router, id int, pause float64) error {
		_, err := r.Exec(ctx, "INSERT INTO rywpath_d SELECT $1 FROM pg_sleep($2)", id, pause)
		return err
	}},
	{"exec-two-sync", func(ctx context.Context, r *Router, id int, pause float64) error {
		_, err := r.Exec(ctx, "CALL rywpath_call($1, $2)", id, pause)
		return err
	}},
	{"query-two-sync", func(ctx context.Context, r *Router, id int, pause float64) error {
		return drainRows(r.Query(ctx, "CALL rywpath_callrow($1, $2, NULL)", id, pause))
	}},
	{"query-tx", func(ctx context.Context, r *Router, id int, pause float64) error {
		return drainRows(r.Query(ctx, "INSERT INTO rywpath_d SELECT $1 FROM pg_sleep($2) RETURNING id", id, pause))
	}},
}

// drainRows reads rows to the end, as an application does (its Close
// deferred, so that it runs after a panic too), and returns their error.
func drainRows(rows interface {
	Next() bool
	Close()
	Err() error
}, err error) error {
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
	}
	rows.Close()
	return rows.Err()
}

func TestRywpathCaptureDrills(t *testing.T) {
	ctx := context.Background()
	topo := pausedTopology(t,
		"CREATE TABLE rywpath_d (id int)",
		`CREATE FUNCTION rywpath_d_notice() RETURNS trigger LANGUAGE plpgsql AS $$
		 BEGIN RAISE NOTICE 'rywpath notice'; RETURN NEW; END $$`,
		"CREATE TRIGGER rywpath_d_notice AFTER INSERT ON rywpath_d FOR EACH ROW EXECUTE FUNCTION rywpath_d_notice()",
		`CREATE PROCEDURE rywpath_call(id int, pause float8) LANGUAGE plpgsql AS $$
		 BEGIN PERFORM pg_sleep(pause); INSERT INTO rywpath_d VALUES (id); END $$`,
		`CREATE PROCEDURE rywpath_callrow(id int, pause float8, INOUT got int) LANGUAGE plpgsql AS $$
		 BEGIN PERFORM pg_sleep(pause); INSERT INTO rywpath_d VALUES (id); got := id; END $$`,
	)
	type drill struct {
		name string
		cfg  func(*pgxpool.Config)
		// fault returns the context of one call, and what to run once
		// it returned.
		fault func(t *testing.T, rng *rand.Rand) (context.Context, func())
	}
	deadline := func(t *testing.T, rng *rand.Rand) (context.Context, func()) {
		return context.WithTimeout(ctx, time.Duration(rng.Intn(5000))*time.Microsecond)
	}
	cancelLater := func(t *testing.T, rng *rand.Rand) (context.Context, func()) {
		c, cancel := context.WithCancel(ctx)
		tm := time.AfterFunc(time.Duration(rng.Intn(5000))*time.Microsecond, cancel)
		return c, func() { tm.Stop(); cancel() }
	}
	drills := []drill{
		{name: "deadline", fault: deadline},
		{name: "cancel", fault: cancelLater},
		{name: "cancel-request", cfg: func(c *pgxpool.Config) {
			c.ConnConfig.BuildContextWatcherHandler = func(pc *pgconn.PgConn) ctxwatch.Handler {
				return &pgconn.CancelRequestContextWatcherHandler{Conn: pc, CancelRequestDelay: 0, DeadlineDelay: time.Second}
			}
		}, fault: cancelLater},
		{name: "panic", cfg: func(c *pgxpool.Config) {
			c.ConnConfig.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
				if n.Message == "rywpath notice" {
					panic("rywpath: the application's notice handler failed")
				}
			}
		}, fault: func(*testing.T, *rand.Rand) (context.Context, func()) { return ctx, func() {} }},
		{name: "terminated", cfg: func(c *pgxpool.Config) {
			c.ConnConfig.RuntimeParams["application_name"] = "rywpath_drill"
		}, fault: func(t *testing.T, rng *rand.Rand) (context.Context, func()) {
			done := make(chan struct{})
			pause := time.Duration(rng.Intn(5000)) * time.Microsecond
			go func() {
				defer close(done)
				time.Sleep(pause)
				_ = topo.Primary.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'rywpath_drill' AND state = 'active'")
			}()
			return ctx, func() { <-done }
		}},
	}
	id := 0
	for _, d := range drills {
		for _, w := range rywpathDrillWrites {
			t.Run(d.name+"/"+w.name, func(t *testing.T) {
				r := rywpathRouter(t, topo, time.Minute, d.cfg)
				rng := rand.New(rand.NewSource(int64(len(d.name) + len(w.name))))
				failed := map[string]int{}
				for i := 0; i < 40; i++ {
					id++
					s := &Session{}
					fctx, after := d.fault(t, rng)
					var err error
					func() {
						defer func() {
							if p := recover(); p != nil {
								err = fmt.Errorf("panic: %v", p)
							}
						}()
						err = w.call(WithSession(fctx, s), r, id, float64(rng.Intn(3000))/1e6)
					}()
					after()
					if err != nil {
						failed[strings.SplitN(err.Error(), ":", 2)[0]]++
					}
					n := rowsOf(topo.Primary, "rywpath_d", id)
					if n > 1 || err == nil && n != 1 {
						t.Fatalf("write %d (%v): %d rows", id, err, n)
					}
					if n == 1 {
						var seen int
						if rerr := r.QueryRow(WithSession(ctx, s), "SELECT count(*) FROM rywpath_d WHERE id = $1", id).Scan(&seen); rerr != nil || seen != 1 {
							t.Errorf("write %d committed (its call returned %v), but the session's next read saw it %d times (%v): position %s, %d unsettled", id, err, seen, rerr, s.LSN(), s.unsettled())
						}
					}
					nextCallWorks(t, r, fmt.Sprintf("write %d (%v)", id, err))
				}
				t.Logf("failures: %v", failed)
			})
		}
	}
}

// TestRywpathCommittedThenTerminated: a CALL of a procedure that commits
// a row and then has its own session ended (FATAL 57P01) goes the
// two-Sync path, whose failure after the server's error reads the
// primary's position on a connection of its own: with a pool of one
// connection, the call's own had to be released first, or it waited for
// itself until its context ended (forever with none). Through Exec and
// Query; the committed row is then read back through the session.
func TestRywpathCommittedThenTerminated(t *testing.T) {
	ctx := context.Background()
	topo := pausedTopology(t,
		"CREATE TABLE rywpath_t (id int)",
		`CREATE PROCEDURE rywpath_t(id int, INOUT got int DEFAULT NULL) LANGUAGE plpgsql AS $$
		 BEGIN INSERT INTO rywpath_t VALUES (id); COMMIT; PERFORM pg_terminate_backend(pg_backend_pid()); PERFORM pg_sleep(5); got := id; END $$`,
	)
	r := rywpathRouter(t, topo, time.Minute, nil)
	for id, call := range map[int]func(context.Context) error{
		1: func(ctx context.Context) error { _, err := r.Exec(ctx, "CALL rywpath_t($1)", 1); return err },
		2: func(ctx context.Context) error { return drainRows(r.Query(ctx, "CALL rywpath_t($1)", 2)) },
	} {
		s := &Session{}
		cctx, cancel := context.WithTimeout(WithSession(ctx, s), 20*time.Second)
		start := time.Now()
		err := call(cctx)
		cancel()
		if took := time.Since(start); took > 10*time.Second {
			t.Errorf("call %d took %s (%v): it waited for its own connection", id, took.Round(time.Second), err)
		}
		if !errors.Is(err, ErrMaybeCommitted) {
			t.Errorf("call %d: %v, want ErrMaybeCommitted (its session ended under it)", id, err)
		}
		var seen int
		if err := r.QueryRow(WithSession(ctx, s), "SELECT count(*) FROM rywpath_t WHERE id = $1", id).Scan(&seen); err != nil || seen != 1 {
			t.Errorf("call %d committed its row, but the session's next read saw it %d times (%v): position %s, %d unsettled", id, seen, err, s.LSN(), s.unsettled())
		}
		nextCallWorks(t, r, fmt.Sprintf("call %d", id))
	}
}

// pausedTopology starts a primary and a standby, runs ddl on the primary,
// and pauses the standby's replay once it has the ddl: a session that
// recorded nothing of a write reads there, without it.
func pausedTopology(t *testing.T, ddl ...string) *routertest.Topology {
	t.Helper()
	topo := routertest.Start(t, routertest.WithStandbys(1))
	ctx := context.Background()
	for _, q := range ddl {
		if err := topo.Primary.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	if err := topo.WaitReplayed(ctx); err != nil {
		t.Fatal(err)
	}
	if err := topo.Standbys[0].PauseReplay(ctx); err != nil {
		t.Fatal(err)
	}
	return topo
}

// TestRywpathPanicMidRows: a notice handler of the application's panics
// while a captured write's rows stream (a SELECT … FOR UPDATE calling a
// function that raises a notice per row), and again while its deferred
// Close reads the rest: the call's connection is still released (the
// capture's finish runs all the same) and the session asks the primary
// first. Before, finish never ran, and with a pool of one connection the
// next call waited for it forever.
func TestRywpathPanicMidRows(t *testing.T) {
	topo := routertest.Shared(t)
	ctx := context.Background()
	for _, q := range []string{
		"CREATE TABLE rywpath_rows AS SELECT g AS id FROM generate_series(1, 50) g",
		`CREATE FUNCTION rywpath_rownotice(id int) RETURNS int LANGUAGE plpgsql AS $$
		 BEGIN RAISE NOTICE 'rywpath row notice'; RETURN id; END $$`,
	} {
		if err := topo.Primary.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { _ = topo.Primary.Exec(ctx, "DROP TABLE rywpath_rows; DROP FUNCTION rywpath_rownotice(int)") })
	var notices atomic.Int64
	r := rywpathRouter(t, topo, time.Minute, func(c *pgxpool.Config) {
		c.ConnConfig.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
			if n.Message == "rywpath row notice" && notices.Add(1)%20 == 10 {
				panic("rywpath: the application's notice handler failed")
			}
		}
	})
	for i := 0; i < 3; i++ {
		s := &Session{}
		var read int
		func() {
			defer func() { _ = recover() }()
			rows, err := r.Query(WithSession(ctx, s), "SELECT rywpath_rownotice(id) FROM rywpath_rows FOR UPDATE")
			if err != nil {
				return
			}
			defer rows.Close()
			for rows.Next() {
				read++
			}
		}()
		t.Logf("call %d: a panic after %d rows", i, read)
		if s.unsettled() == 0 {
			t.Errorf("call %d: a panic unwound it after %d rows, but its session does not ask the primary first", i, read)
		}
		cctx, cancel := context.WithTimeout(Primary(ctx), 10*time.Second)
		var got int
		err := r.QueryRow(cctx, "SELECT $1::int", 7).Scan(&got)
		cancel()
		if err != nil || got != 7 {
			t.Fatalf("the call after call %d (a panic after %d rows): %d (%v), want 7", i, read, got, err)
		}
	}
}

// TestRywpathPanicInCommit: a notice handler of the application's panics
// while a read_your_writes transaction's Commit reads its reply (a
// deferred constraint trigger raises the notice at the COMMIT). The
// server commits all the same: the session must ask the primary before
// its next read, which must see the row (the standby's replay is paused).
// The pool's next call works.
func TestRywpathPanicInCommit(t *testing.T) {
	ctx := context.Background()
	topo := pausedTopology(t,
		"CREATE TABLE rywpath_c (id int)",
		`CREATE FUNCTION rywpath_c_notice() RETURNS trigger LANGUAGE plpgsql AS $$
		 BEGIN RAISE NOTICE 'rywpath commit notice'; RETURN NULL; END $$`,
		`CREATE CONSTRAINT TRIGGER rywpath_c_notice AFTER INSERT ON rywpath_c DEFERRABLE INITIALLY DEFERRED
		 FOR EACH ROW EXECUTE FUNCTION rywpath_c_notice()`,
	)
	r := rywpathRouter(t, topo, time.Minute, func(c *pgxpool.Config) {
		c.ConnConfig.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
			if n.Message == "rywpath commit notice" {
				panic("rywpath: the application's notice handler failed")
			}
		}
	})
	for id := 1; id <= 3; id++ {
		s := &Session{}
		sctx := WithSession(ctx, s)
		tx, err := r.Begin(sctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(sctx, "INSERT INTO rywpath_c VALUES ($1)", id); err != nil {
			t.Fatal(err)
		}
		func() {
			defer func() { _ = recover() }()
			_ = tx.Commit(sctx)
		}()
		// The notice comes from a deferred trigger, before the commit
		// record: the server finishes the COMMIT after the panic closed
		// the connection, a moment later (0 rows 3 times in 8 runs when
		// counted at once).
		n := rowsOf(topo.Primary, "rywpath_c", id)
		for wait := time.Now().Add(5 * time.Second); n != 1 && time.Now().Before(wait); n = rowsOf(topo.Primary, "rywpath_c", id) {
			time.Sleep(10 * time.Millisecond)
		}
		if n != 1 {
			t.Fatalf("transaction %d: %d rows committed after 5 s, want 1", id, n)
		}
		var seen int
		if err := r.QueryRow(sctx, "SELECT count(*) FROM rywpath_c WHERE id = $1", id).Scan(&seen); err != nil || seen != 1 {
			t.Errorf("transaction %d committed, but the session's next read saw it %d times (%v): position %s, %d unsettled", id, seen, err, s.LSN(), s.unsettled())
		}
		nextCallWorks(t, r, fmt.Sprintf("transaction %d", id))
	}
}
