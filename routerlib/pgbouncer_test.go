package routerlib_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// The tests in this file run routing, health, failover, the 25006 retry and
// read-your-writes through a PgBouncer 1.18 in transaction pooling mode in
// front of every node (routertest.WithPgBouncer), with the one setting an
// application needs there: pgx's QueryExecModeExec, since that PgBouncer
// keeps no prepared statement from one transaction to the next.

// throughPgBouncer is the pool setting for PgBouncer in transaction mode.
var throughPgBouncer = routerlib.WithPoolConfig(func(_ artifact.Node, cfg *pgxpool.Config) {
	cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeExec
})

func bouncedTopology(t *testing.T) *routertest.Topology {
	t.Helper()
	topo := routertest.Start(t, routertest.WithStandbys(2), routertest.WithPgBouncer())
	for _, n := range topo.Nodes() {
		if n.BouncerPort == 0 || n.BouncerPort == n.Port {
			t.Fatalf("%s has no PgBouncer of its own", n.Name)
		}
	}
	return topo
}

// TestPgBouncerRouting: through PgBouncer, reads reach both standbys and
// writes the primary, as the servers themselves report; a function that
// writes is rejected by a standby (25006) and runs on the primary.
func TestPgBouncerRouting(t *testing.T) {
	topo := bouncedTopology(t)
	ctx := context.Background()
	rec := &recorder{}
	r := newRouter(t, topo.Artifact(), throughPgBouncer, routerlib.WithTracer(rec))

	seen := map[int]int{}
	for range 10 {
		seen[serverPort(t, ctx, r)]++
	}
	if seen[topo.Standbys[0].Port] == 0 || seen[topo.Standbys[1].Port] == 0 || len(seen) != 2 {
		t.Errorf("10 reads through PgBouncer ran on ports %v, want both standbys (%d, %d)", seen, topo.Standbys[0].Port, topo.Standbys[1].Port)
	}
	for _, q := range []string{
		"CREATE TABLE bounced (id int PRIMARY KEY, port int DEFAULT inet_server_port())",
		"CREATE FUNCTION bounced_write() RETURNS int LANGUAGE sql AS $$ INSERT INTO bounced (id) VALUES (-1); SELECT inet_server_port() $$",
	} {
		if _, err := r.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 20 {
		if _, err := r.Exec(ctx, "INSERT INTO bounced (id) VALUES ($1)", i); err != nil {
			t.Fatal(err)
		}
	}
	var elsewhere int
	if err := topo.Primary.QueryRow(ctx, "SELECT count(*) FROM bounced WHERE port <> $1", topo.Primary.Port).Scan(&elsewhere); err != nil {
		t.Fatal(err)
	}
	if elsewhere != 0 {
		t.Errorf("%d writes through PgBouncer ran elsewhere than on the primary", elsewhere)
	}
	waitReplayed(t, topo)
	rec.reset()
	var p int
	if err := r.QueryRow(ctx, "SELECT bounced_write()").Scan(&p); err != nil {
		t.Fatal(err)
	}
	if p != topo.Primary.Port {
		t.Errorf("the writing read ran on %d, want the primary's %d", p, topo.Primary.Port)
	}
	if d := rec.last(t); d.Reason != routerlib.ReasonReadOnlyRetry {
		t.Errorf("the writing read's last decision: %s, want the read-only retry", d.Reason)
	}
	// A batch that begins a read-only transaction runs on a standby, its
	// own BEGIN making it read only (not the statement a read pool through
	// PgBouncer puts first, which would have dropped pgx's transaction),
	// and its transaction keeps its server connection.
	b := &pgx.Batch{}
	b.BeginTx(pgx.TxOptions{AccessMode: pgx.ReadOnly})
	b.Queue("SELECT inet_server_port(), pg_backend_pid()")
	br := r.SendBatch(ctx, b)
	rotx := br.Tx()
	defer rotx.Rollback(ctx)
	var roPort, roPid, roPid2 int
	if _, err := br.Exec(); err != nil {
		t.Fatal(err)
	}
	if err := br.QueryRow().Scan(&roPort, &roPid); err != nil {
		t.Fatal(err)
	}
	if err := br.Close(); err != nil {
		t.Fatal(err)
	}
	if roPort == topo.Primary.Port {
		t.Errorf("a batch beginning a read-only transaction through PgBouncer ran on the primary")
	}
	if err := rotx.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&roPid2); err != nil {
		t.Fatal(err)
	}
	if roPid != roPid2 {
		t.Errorf("the batch's read-only transaction ran on backends %d and %d", roPid, roPid2)
	}
	if err := rotx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	// A transaction keeps its one server connection through PgBouncer.
	tx, err := r.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	var pid1, pid2 int
	if err := tx.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid1); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "INSERT INTO bounced (id) VALUES (1000)"); err != nil {
		t.Fatal(err)
	}
	if err := tx.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid2); err != nil {
		t.Fatal(err)
	}
	if pid1 != pid2 {
		t.Errorf("a transaction ran on backends %d and %d", pid1, pid2)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestPgBouncerReadYourWrites: with standbys applying commits late, 1,000
// write-then-read pairs through PgBouncer each see their own write, which
// needs every capture (the write, its COMMIT and the position query in
// one round trip) to work there; so do a transaction's Commit, INSERT …
// RETURNING and DDL.
func TestPgBouncerReadYourWrites(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(2), routertest.WithPgBouncer())
	ctx := context.Background()
	for _, s := range topo.Standbys {
		if err := s.SetApplyDelay(ctx, applyDelay); err != nil {
			t.Fatal(err)
		}
	}
	r := newRouter(t, withMode(topo.Artifact(), artifact.ModeReadYourWrites), throughPgBouncer)
	if stale := writeThenRead(t, topo, r, "bounced_pairs", 1000, 8); stale != 0 {
		t.Errorf("read_your_writes through PgBouncer: %d of 1000 reads missed their own write; want 0", stale)
	}

	s := &routerlib.Session{}
	sctx := routerlib.WithSession(ctx, s)
	steps := []struct {
		name string
		run  func() error
	}{
		{"Commit", func() error {
			tx, err := r.Begin(sctx)
			if err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, "INSERT INTO bounced_pairs VALUES (5001, 1)"); err != nil {
				return err
			}
			return tx.Commit(ctx)
		}},
		{"RETURNING", func() error {
			var id int
			return r.QueryRow(sctx, "INSERT INTO bounced_pairs VALUES ($1, 1) RETURNING id", 5002).Scan(&id)
		}},
		{"DDL", func() error {
			_, err := r.Exec(sctx, "CREATE TABLE bounced_ddl (id int)")
			return err
		}},
		{"DDL with arguments", func() error {
			_, err := r.Exec(sctx, "CREATE TABLE bounced_ddl2 AS SELECT $1::int AS id", 7)
			return err
		}},
	}
	for _, step := range steps {
		before := s.LSN()
		if err := step.run(); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if s.LSN() <= before {
			t.Errorf("%s left the session at %s, want past %s", step.name, s.LSN(), before)
		}
	}
	var n int
	if err := r.QueryRow(sctx, "SELECT count(*) FROM bounced_ddl2").Scan(&n); err != nil || n != 1 {
		t.Errorf("read after the last write: %d rows, %v", n, err)
	}
}

// TestPgBouncerStandbyStoppedUnderLoad stops a standby behind its PgBouncer
// while readers use the router: the bouncer stays up and answers with its
// own errors, the health check sees it and no read fails.
func TestPgBouncerStandbyStoppedUnderLoad(t *testing.T) {
	topo := bouncedTopology(t)
	ctx := context.Background()
	r := newRouter(t, fastHealth(topo.Artifact(), interval), throughPgBouncer)
	stop := make(chan struct{})
	wait := readLoad(t, r, 4, stop)
	time.Sleep(300 * time.Millisecond)

	victim := topo.Standbys[0]
	if err := victim.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "ejection", func() bool { return !nodeStat(r, victim.Name).Readable })
	time.Sleep(3 * interval)
	if err := victim.Start(ctx); err != nil {
		t.Fatal(err)
	}
	took := eventually(t, 10*time.Second, "readmission", func() bool { return nodeStat(r, victim.Name).Readable })
	t.Logf("readmitted %v after restart", took)
	before := nodeStat(r, victim.Name).Reads
	time.Sleep(3 * interval)
	close(stop)
	reads, failed := wait()
	if failed != 0 {
		t.Errorf("%d of %d reads failed while a standby stopped behind PgBouncer; want 0", failed, reads)
	}
	if after := nodeStat(r, victim.Name).Reads; after == before {
		t.Errorf("the restarted standby served no reads after readmission")
	}
	t.Logf("%d reads, %d failed", reads, failed)
}

// TestPgBouncerFailover stops the primary behind its PgBouncer: writes fail
// with ErrNoPrimary, and go to the promoted standby through its PgBouncer.
// On failure it logs each node's Stat over time, the writes' errors, the
// router's log and the bouncers' logs: under load (-race beside another
// suite) it failed with the writes kept off the promoted standby for good,
// the stopped primary's role unknown from PgBouncer's refusals taken for
// its answers (see TestPgBouncerRefusalIsNoAnswer).
func TestPgBouncerFailover(t *testing.T) {
	topo := bouncedTopology(t)
	logs := &syncBuffer{}
	r := newRouter(t, steadyHealth(topo.Artifact(), interval), throughPgBouncer, routerlib.WithLogger(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	ctx := context.Background()
	if _, err := r.Exec(ctx, "CREATE TABLE bounced_failover (id int)"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var mu sync.Mutex
	var trail []string
	note := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		trail = append(trail, fmt.Sprintf("%6.2fs ", time.Since(start).Seconds())+fmt.Sprintf(format, args...))
	}
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			for _, n := range topo.Nodes() {
				s := nodeStat(r, n.Name)
				note("%s role=%q writer=%v healthy=%v timeline=%d err=%q", n.Name, s.ObservedRole, s.Writer, s.Healthy, s.Timeline, s.LastError)
			}
		}
	}()
	defer func() {
		close(stop)
		<-done
		if t.Failed() {
			t.Logf("Stat and writes from the stop on:\n%s", strings.Join(trail, "\n"))
			t.Logf("router log:\n%s", logs.String())
			for _, n := range topo.Nodes() {
				b, _ := os.ReadFile(filepath.Join(topo.Dir, n.Name+"-pgbouncer", "pgbouncer.log"))
				t.Logf("%s pgbouncer.log:\n%s", n.Name, b)
			}
		}
	}()
	write := func(id int) error {
		_, err := r.Exec(ctx, "INSERT INTO bounced_failover VALUES ($1)", id)
		if err != nil {
			note("write: %v", err)
		}
		return err
	}
	if err := topo.Primary.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	took := eventually(t, 10*time.Second, "ErrNoPrimary", func() bool { return errors.Is(write(1), routerlib.ErrNoPrimary) })
	t.Logf("ErrNoPrimary %v after the stop", took)
	promoted := topo.Standbys[0]
	if err := promoted.Promote(ctx); err != nil {
		t.Fatal(err)
	}
	note("promoted %s", promoted.Name)
	took = eventually(t, 10*time.Second, "writes after promotion", func() bool { return write(2) == nil })
	t.Logf("writes resumed %v after promotion", took)
	if p := serverPort(t, routerlib.Primary(ctx), r); p != promoted.Port {
		t.Errorf("writes go to port %d, want the promoted %d", p, promoted.Port)
	}
}

// TestPgBouncerWrongDatabase: PgBouncer reports a database the server does
// not have with its own SQLSTATE 08P01, so New, which refuses the file's
// mistakes by the server's SQLSTATE (3D000 here, directly), cannot tell it
// from an outage and opens (doc.go says so); a write then fails with
// ErrNoPrimary carrying PgBouncer's message, which names the cause.
func TestPgBouncerWrongDatabase(t *testing.T) {
	topo := bouncedTopology(t)
	ctx := context.Background()
	a := topo.Artifact()
	for i := range a.Nodes {
		a.Nodes[i].Database = "no_such_db"
	}
	r := newRouter(t, a, throughPgBouncer)
	_, err := r.Exec(ctx, "CREATE TABLE never (id int)")
	if !errors.Is(err, routerlib.ErrNoPrimary) || !strings.Contains(err.Error(), `database "no_such_db" does not exist`) {
		t.Errorf("a write through PgBouncer to a database that does not exist: %v; want ErrNoPrimary naming the database", err)
	}
	if s := nodeStat(r, topo.Primary.Name); !strings.Contains(s.LastError, "no_such_db") {
		t.Errorf("Stat's last error for the primary: %q, want the missing database named", s.LastError)
	}
}

// TestPgBouncerRefusalIsNotSent: the primary's server refuses PgBouncer's
// logins (its database no longer allows connections, and the server
// sessions PgBouncer held are ended), so PgBouncer ends the client's
// session before it forwards the write ("server login has been failing",
// or query_wait_timeout for the first to wait): the write was never sent,
// and the error says so instead of "may have committed" (old code). The
// health interval is long, so the first write meets PgBouncer's refusal
// rather than a router that already saw the node fail; the check that
// refusal asks for may fail before a later write, which then finds no
// primary (clean-clone CI on e0a075b: write 2 did).
func TestPgBouncerRefusalIsNotSent(t *testing.T) {
	topo := bouncedTopology(t)
	ctx := context.Background()
	a := steadyHealth(topo.Artifact(), time.Minute)
	a.Health.Timeout = "10s"
	r := newRouter(t, a, throughPgBouncer)
	if _, err := r.Exec(ctx, "CREATE TABLE refused (id int)"); err != nil {
		t.Fatal(err)
	}
	admin, err := pgx.Connect(ctx, topo.Primary.DSNFor("template1"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "ALTER DATABASE postgres ALLOW_CONNECTIONS false"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = admin.Exec(ctx, "ALTER DATABASE postgres ALLOW_CONNECTIONS true") })
	if _, err := admin.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'postgres'"); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		_, err := r.Exec(ctx, "INSERT INTO refused VALUES ($1)", i)
		// The first write meets PgBouncer's refusal. A refusal asks for
		// a check of the node at once (markDown: PgBouncer's FATAL 08P01
		// is no answer of the node), and the check, through the same
		// PgBouncer, fails too: once it has, a later write finds no
		// primary (ErrNoPrimary), also not sent.
		notSent := err != nil && (strings.Contains(err.Error(), "the write was not sent") || i > 0 && errors.Is(err, routerlib.ErrNoPrimary))
		if !notSent || errors.Is(err, routerlib.ErrMaybeCommitted) || strings.Contains(err.Error(), "may have committed") {
			t.Errorf("write %d refused by PgBouncer before it was forwarded: %v; want \"the write was not sent\" or ErrNoPrimary", i, err)
		}
		if i == 0 {
			t.Logf("the first write: %v", err)
		}
	}
	if _, err := admin.Exec(ctx, "ALTER DATABASE postgres ALLOW_CONNECTIONS true"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := topo.Primary.QueryRow(ctx, "SELECT count(*) FROM refused").Scan(&n); err != nil || n != 0 {
		t.Errorf("%d refused writes are in the table (%v)", n, err)
	}
}

// TestPgBouncerReadOnlyAfterPromotion: PgBouncer drops the replica pools'
// default_transaction_read_only, so a replica promoted by someone else
// (the router's next check a minute away) took, through its read pool, a
// write sent as a read: SELECT of a function that inserts, which landed on
// a node the router does not call primary (old code: about half of 20
// such calls through QueryRow, and Exec and SendBatch likewise; each SQL
// string new so the 25006 retry cannot learn it). The
// router sees at connect that the parameter did not stick and sends each
// read there in a read-only transaction: the promoted node refuses the
// write (25006), which runs on the primary.
func TestPgBouncerReadOnlyAfterPromotion(t *testing.T) {
	topo := bouncedTopology(t)
	ctx := context.Background()
	a := steadyHealth(topo.Artifact(), time.Minute)
	a.Health.Timeout = "10s"
	logs := &syncBuffer{}
	r := newRouter(t, a, throughPgBouncer, routerlib.WithLogger(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))))
	for _, q := range []string{
		"CREATE TABLE ro_t (port int)",
		"CREATE FUNCTION ro_write() RETURNS int LANGUAGE sql AS $$ INSERT INTO ro_t VALUES (inet_server_port()); SELECT inet_server_port() $$",
	} {
		if _, err := r.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	waitReplayed(t, topo)
	for range 4 {
		serverPort(t, ctx, r) // the read pools connect
	}
	promoted := topo.Standbys[0]
	if err := promoted.Promote(ctx); err != nil {
		t.Fatal(err)
	}
	landed := 0
	for i := range 20 {
		var port int
		if err := r.QueryRow(ctx, fmt.Sprintf("SELECT ro_write() -- %d", i)).Scan(&port); err != nil {
			t.Fatal(err)
		}
		if port == promoted.Port {
			landed++
		}
	}
	for i := range 10 {
		if _, err := r.Exec(ctx, fmt.Sprintf("SELECT ro_write() -- exec %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 6 {
		b := &pgx.Batch{}
		b.Queue(fmt.Sprintf("SELECT ro_write() -- batch %d", i))
		_ = r.SendBatch(ctx, b).Close() // not retried: a replica refuses it
	}
	var there int
	if err := promoted.QueryRow(ctx, "SELECT count(*) FROM ro_t").Scan(&there); err != nil {
		t.Fatal(err)
	}
	if landed > 0 || there > 0 {
		t.Errorf("%d of 20 writes sent as reads (QueryRow) ran on %s, promoted behind the router's back; %d rows there, of QueryRow, Exec and SendBatch", landed, promoted.Name, there)
	}
	if out := logs.String(); !strings.Contains(out, "dropped the startup parameter") {
		t.Errorf("no record that the read sessions lost default_transaction_read_only; logged:\n%s", out)
	}
	if s := nodeStat(r, topo.Standbys[1].Name); s.Reads == 0 {
		t.Errorf("no read ran on %s: %+v", topo.Standbys[1].Name, s)
	}
}

// TestPgBouncerTerminatedBackends: pg_terminate_backend() passes over every
// server session behind the only replica's PgBouncer, under six readers.
// A session ended while PgBouncer set a client's parameters on it, before
// the call, reaches the router as PgBouncer's FATAL 08P01 "invalid server
// parameter", not the server's 57P01: it is the same ending, the node
// stays in rotation and the read runs again. (Before, it was taken for the
// node failing: the replica left rotation, and with no fallback the reads
// failed until it came back, 4,195 of 6,372 in one run.)
func TestPgBouncerTerminatedBackends(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(1), routertest.WithPgBouncer())
	replica := topo.Standbys[0]
	a := steadyHealth(topo.Artifact(), interval)
	a.ReadPolicy.Fallback = artifact.FallbackError
	r := newRouter(t, a, throughPgBouncer)
	stop := make(chan struct{})
	wait := readLoad(t, r, 6, stop)
	eventually(t, 5*time.Second, "the replica serving reads", func() bool { return nodeStat(r, replica.Name).Reads > 0 })
	left := watchStat(r, func(s routerlib.NodeStat) bool { return s.Name == replica.Name && !s.Readable })
	terminated := 0
	for range 10 {
		var ended int
		// Every server session of the bouncer (and of the router's
		// health check through it), not this one.
		if err := replica.QueryRow(context.Background(), "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()").Scan(&ended); err != nil {
			t.Fatal(err)
		}
		terminated += ended
		time.Sleep(300 * time.Millisecond)
	}
	close(stop)
	reads, failed := wait()
	out := left()
	t.Logf("%d server sessions terminated, %d reads, %d failed", terminated, reads, failed)
	if terminated == 0 {
		t.Fatal("no server session terminated: the test tested nothing")
	}
	if out != nil {
		t.Errorf("the replica left rotation when its server sessions behind PgBouncer were terminated: %+v", *out)
	}
	if failed != 0 {
		t.Errorf("%d of %d reads failed; want 0", failed, reads)
	}
}
