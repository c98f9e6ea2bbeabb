package routerlib_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// TestReadOnPrimaryNotRunTwice: a read the primary serves (fallback, or
// sticky in read_your_writes) runs on its read-write session, so a function
// the classifier cannot see into may write there. When the connection then
// fails after the statement went out, the read is not run again: here
// every call would otherwise advance the sequence (which no rollback
// undoes) once per attempt.
func TestReadOnPrimaryNotRunTwice(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(1))
	ctx := context.Background()
	if err := topo.Primary.Exec(ctx, `CREATE SEQUENCE orders_seq;
		CREATE FUNCTION place_order() RETURNS int LANGUAGE plpgsql AS $f$ BEGIN
		PERFORM nextval('orders_seq');
		PERFORM pg_terminate_backend(pg_backend_pid());
		RETURN 1; END $f$`); err != nil {
		t.Fatal(err)
	}
	a := steadyHealth(topo.Artifact(), 100*time.Millisecond) // the stopped replica is refused at once
	a.ReadPolicy.Fallback = artifact.FallbackPrimary
	fallback := newRouter(t, a)
	rywArt := a
	rywArt.ReadPolicy.Fallback = artifact.FallbackError
	rywArt.Consistency = artifact.Consistency{Mode: artifact.ModeReadYourWrites, WaitTimeout: "0s"}
	ryw := newRouter(t, rywArt)
	sctx := routerlib.WithSession(ctx, &routerlib.Session{})
	if _, err := ryw.Exec(sctx, "SELECT nextval('orders_seq')"); err != nil {
		t.Fatal(err)
	}
	if err := topo.Standbys[0].Stop(ctx); err != nil {
		t.Fatal(err)
	}
	for _, r := range []*routerlib.Router{fallback, ryw} {
		eventually(t, 10*time.Second, "replica-1 out of rotation", func() bool { return !nodeStat(r, "replica-1").Readable })
	}
	orders := func() int64 {
		var n int64
		if err := topo.Primary.QueryRow(ctx, "SELECT last_value FROM orders_seq").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	const q = "SELECT place_order()"
	calls := []struct {
		name string
		call func() error
	}{
		{"fallback Exec", func() error { _, err := fallback.Exec(ctx, q); return err }},
		{"fallback QueryRow", func() error { var one int; return fallback.QueryRow(ctx, q).Scan(&one) }},
		{"fallback Query", func() error {
			rows, err := fallback.Query(ctx, q)
			if err != nil {
				return err
			}
			for rows.Next() {
			}
			rows.Close()
			return rows.Err()
		}},
		{"sticky Exec", func() error { _, err := ryw.Exec(sctx, q); return err }},
		{"sticky QueryRow", func() error { var one int; return ryw.QueryRow(sctx, q).Scan(&one) }},
	}
	for _, c := range calls {
		before := orders()
		err := c.call()
		if err == nil {
			t.Errorf("%s: no error although the primary ended the connection", c.name)
		} else if !strings.Contains(err.Error(), "not run again") {
			t.Errorf("%s: %v; want the error to say the read was not run again", c.name, err)
		}
		if n := orders() - before; n != 1 {
			t.Errorf("%s: one call placed %d orders, want 1", c.name, n)
		}
	}
}

// TestFallbackExcludesFailedPrimary: a read whose connection to the
// fallback primary failed before anything was sent is retried, but not on
// the primary that just failed.
func TestFallbackExcludesFailedPrimary(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(1))
	ctx := context.Background()
	a := topo.Artifact()
	// Checks too rare to see the stops below: only the read's own
	// failures take the nodes out.
	a.Health = artifact.Health{Interval: "1m", Timeout: "5s", EjectAfter: 1, ReadmitAfter: 1}
	a.ReadPolicy.Fallback = artifact.FallbackPrimary
	rec := &recorder{}
	r := newRouter(t, a, routerlib.WithTracer(rec))
	if !nodeStat(r, "replica-1").Readable {
		t.Fatal("replica-1 is not in rotation after New")
	}
	if err := topo.Standbys[0].Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := topo.Primary.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	rec.reset()
	var one int
	err := r.QueryRow(ctx, "SELECT 1").Scan(&one)
	// The primary's refused connection may also have taken it out as the
	// writer (markDown) before the retry looks for a fallback: then the
	// error says the fallback primary is down. Either way the primary is
	// tried once (the attempts below).
	if !errors.Is(err, routerlib.ErrNoReplica) || !strings.Contains(err.Error(), `fallback primary "primary" failed under this read`) &&
		!strings.Contains(err.Error(), `the fallback primary is down`) {
		t.Errorf("read with both nodes stopped: %v; want ErrNoReplica saying the fallback primary failed or is down", err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var nodes []string
	for _, d := range rec.decisions {
		nodes = append(nodes, d.Node+" ("+d.Reason.String()+")")
	}
	if len(nodes) != 2 || rec.decisions[0].Node != "replica-1" || rec.decisions[1].Node != "primary" {
		t.Errorf("attempts: %v; want replica-1 then the primary once", nodes)
	}
}

// TestMultiStatementAfterReadOnlyRetry: a multi-statement string that a
// replica rejected as a write (SQLSTATE 25006) is remembered as a write
// and still as several statements, so that in read_your_writes mode the
// capture never sends it through the extended protocol, where the server
// refuses it (42601): not on the call that retried, nor on any later one.
func TestMultiStatementAfterReadOnlyRetry(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(1))
	ctx := context.Background()
	if err := topo.Primary.Exec(ctx, `CREATE TABLE zz (id int);
		CREATE FUNCTION zz_bump() RETURNS int LANGUAGE sql AS 'INSERT INTO zz VALUES (1) RETURNING 1'`); err != nil {
		t.Fatal(err)
	}
	if err := topo.WaitReplayed(ctx); err != nil {
		t.Fatal(err)
	}
	a := topo.Artifact()
	a.Consistency.Mode = artifact.ModeReadYourWrites
	a.ReadPolicy.Fallback = artifact.FallbackError
	const q = "SELECT 1; SELECT zz_bump()"
	t.Run("Exec", func(t *testing.T) {
		r := newRouter(t, a)
		replicasInRotation(t, r, topo)
		sctx := routerlib.WithSession(ctx, &routerlib.Session{})
		for i := range 3 {
			if _, err := r.Exec(sctx, q); err != nil {
				t.Errorf("Exec %d: %v", i, err)
			}
		}
	})
	t.Run("Query with the simple protocol", func(t *testing.T) {
		r := newRouter(t, a, routerlib.WithPoolConfig(func(_ artifact.Node, cfg *pgxpool.Config) {
			cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
		}))
		replicasInRotation(t, r, topo)
		sctx := routerlib.WithSession(ctx, &routerlib.Session{})
		// The write comes first: the replica's rows fail before the
		// first, so the query runs again on the primary.
		const q = "SELECT zz_bump(); SELECT 1"
		for i := range 3 {
			rows, err := r.Query(sctx, q)
			if err == nil {
				for rows.Next() {
				}
				rows.Close()
				err = rows.Err()
			}
			if err != nil {
				t.Errorf("Query %d: %v", i, err)
			}
		}
	})
	var n int
	if err := topo.Primary.QueryRow(ctx, "SELECT count(*) FROM zz").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 6 {
		t.Errorf("zz has %d rows after 6 calls, want 6", n)
	}
}

// TestMultiStatementWriteAfterRows: when the write of a multi-statement
// string comes after a read, the replica rejects it (25006) only after the
// read's rows went to the caller, so that call cannot be run again and
// fails; the string is remembered as a write, and the next calls run on the
// primary.
func TestMultiStatementWriteAfterRows(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(1))
	ctx := context.Background()
	if err := topo.Primary.Exec(ctx, `CREATE TABLE zz_after (id int);
		CREATE FUNCTION zz_after_bump() RETURNS int LANGUAGE sql AS 'INSERT INTO zz_after VALUES (1) RETURNING 1'`); err != nil {
		t.Fatal(err)
	}
	if err := topo.WaitReplayed(ctx); err != nil {
		t.Fatal(err)
	}
	a := topo.Artifact()
	a.ReadPolicy.Fallback = artifact.FallbackError
	r := newRouter(t, a, routerlib.WithPoolConfig(func(_ artifact.Node, cfg *pgxpool.Config) {
		cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	}))
	replicasInRotation(t, r, topo)
	const q = "SELECT 1; SELECT zz_after_bump()"
	var errs []error
	for range 3 {
		rows, err := r.Query(ctx, q)
		if err == nil {
			for rows.Next() {
			}
			rows.Close()
			err = rows.Err()
		}
		errs = append(errs, err)
	}
	var pgErr *pgconn.PgError
	if !errors.As(errs[0], &pgErr) || pgErr.Code != "25006" {
		t.Errorf("the first call returned %v, want the replica's 25006 (its first rows were delivered)", errs[0])
	}
	for i, err := range errs[1:] {
		if err != nil {
			t.Errorf("call %d after the 25006: %v, want it run on the primary", i+2, err)
		}
	}
	var n int
	if err := topo.Primary.QueryRow(ctx, "SELECT count(*) FROM zz_after").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("zz_after has %d rows, want 2 (the two calls after the first)", n)
	}
}

// TestReplayWaitBoundedByWaitTimeout: a read-your-writes read whose
// replica does not answer (frozen: the connection is accepted, nothing
// more) waits wait_timeout for its replay position, not until the
// connection gives up, and then goes to the primary.
func TestReplayWaitBoundedByWaitTimeout(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(1))
	a := topo.Artifact()
	// No check during the test: only the read meets the frozen replica.
	a.Health = artifact.Health{Interval: "1m", Timeout: "5s", ConnectTimeout: "30s", EjectAfter: 1, ReadmitAfter: 1}
	const wait = 300 * time.Millisecond
	a.Consistency = artifact.Consistency{Mode: artifact.ModeReadYourWrites, WaitTimeout: artifact.Duration(wait.String())}
	rec := &recorder{}
	r := newRouter(t, a, routerlib.WithTracer(rec))
	if !nodeStat(r, "replica-1").Readable {
		t.Fatal("replica-1 is not in rotation after New")
	}
	victim := topo.Standbys[0]
	if err := victim.Freeze(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = victim.Thaw() }) // before the Router's Close
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	sctx := routerlib.WithSession(ctx, &routerlib.Session{})
	if _, err := r.Exec(sctx, "SELECT pg_current_wal_insert_lsn(), txid_current()"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var port int
	err := r.QueryRow(sctx, "SELECT inet_server_port()").Scan(&port)
	took := time.Since(start)
	if err != nil {
		t.Fatalf("read after %v: %v", took, err)
	}
	// The wait, and a margin for a loaded machine far below the 30s
	// connect timeout the read would otherwise wait for.
	if took > wait+2*time.Second {
		t.Errorf("the read took %v with wait_timeout %v", took, wait)
	}
	if d := rec.last(t); d.Node != "primary" || d.Reason != routerlib.ReasonSticky || port != topo.Primary.Port {
		t.Errorf("the read went to %s (%s), port %d; want the primary (sticky)", d.Node, d.Reason, port)
	}
	t.Logf("read served after %v", took)
}

// TestWriteNotSentIsNotMaybeCommitted: a write whose connection to the
// primary could not even be made (the primary stopped, and no check has
// seen it yet) reached no server: its error names the node and the
// failure to connect, not a write that may have committed, which tells
// the caller to go and look for it.
func TestWriteNotSentIsNotMaybeCommitted(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(1))
	ctx := context.Background()
	if err := topo.Primary.Exec(ctx, "CREATE TABLE not_sent (id int)"); err != nil {
		t.Fatal(err)
	}
	a := topo.Artifact()
	a.Health.Interval = "1m" // no check sees the stop: the write meets it
	r := newRouter(t, a)     // its pools connect lazily: none is open yet
	if err := topo.Primary.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	_, err := r.Exec(ctx, "INSERT INTO not_sent VALUES (1)")
	var connectErr *pgconn.ConnectError
	if !errors.As(err, &connectErr) {
		t.Fatalf("the first write after the stop: %v, want a failure to connect", err)
	}
	if strings.Contains(err.Error(), "may have committed") || !strings.Contains(err.Error(), `"primary"`) {
		t.Errorf("a write that could not connect: %v; want the node named and no 'may have committed'", err)
	}
}

// TestQueryRowTerminatedAfterItsRow: the server ends a replica read's
// session after its row went out and before the statement's end (the
// row waits in the backend's buffer and reaches the client just before
// the FATAL 57P01, as when a fast shutdown's signal comes between a
// Result node's row and its end). QueryRow's caller has nothing of the
// call but dest, so the read runs again (retryRow.Scan) and succeeds;
// without it Scan returned the bare 57P01, as database/sql's
// QueryRowContext through routerlib/stdlib still does.
func TestQueryRowTerminatedAfterItsRow(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(1))
	ctx := context.Background()
	var retries atomic.Int64
	tracer := routerlib.TracerFunc(func(_ context.Context, d routerlib.Decision) {
		if d.Reason == routerlib.ReasonConnRetry {
			retries.Add(1)
		}
	})
	r := newRouter(t, steadyHealth(topo.Artifact(), 100*time.Millisecond), routerlib.WithTracer(tracer))
	// The first branch's row is sent to the buffer, then the second
	// branch sleeps: the terminated session answers the row, then FATAL.
	const q = "SELECT 1 AS x UNION ALL SELECT 2 FROM pg_sleep(2) WHERE random() < 0 -- row then end"
	ended := make(chan int, 1)
	go func() {
		var n int
		for range 100 {
			time.Sleep(50 * time.Millisecond)
			if err := topo.Standbys[0].QueryRow(ctx, "SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity WHERE state = 'active' AND query LIKE '%-- row then end' AND clock_timestamp() - query_start > interval '300 ms'").Scan(&n); err != nil || n > 0 {
				break
			}
		}
		ended <- n
	}()
	var x int
	err := r.QueryRow(ctx, q).Scan(&x)
	if n := <-ended; n != 1 {
		t.Fatalf("%d sessions terminated during the read, want 1: the test did not end the session after the row", n)
	}
	if err != nil || x != 1 {
		t.Errorf("QueryRow whose session ended after its row: x=%d, %v; want 1 and no error (the read runs again)", x, err)
	}
	if retries.Load() != 1 {
		t.Errorf("%d retries, want 1", retries.Load())
	}
}
