package routerlib_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

const applyDelay = 500 * time.Millisecond

// delayedTopology starts a primary and two standbys that apply each commit
// applyDelay late (recovery_min_apply_delay).
func delayedTopology(t *testing.T) *routertest.Topology {
	topo := routertest.Start(t, routertest.WithStandbys(2))
	ctx := context.Background()
	for _, s := range topo.Standbys {
		if err := s.SetApplyDelay(ctx, applyDelay); err != nil {
			t.Fatal(err)
		}
	}
	return topo
}

func withMode(a artifact.Topology, mode string) artifact.Topology {
	a.Consistency = artifact.Consistency{Mode: mode, WaitTimeout: "1ms"}
	return a
}

// writeThenRead runs pairs write-then-read pairs on workers goroutines, each
// with its own Session, and returns how many reads missed their own write.
func writeThenRead(t *testing.T, topo *routertest.Topology, r *routerlib.Router, table string, pairs, workers int) (stale int64) {
	ctx := context.Background()
	if _, err := r.Exec(ctx, "CREATE TABLE "+table+" (id int PRIMARY KEY, v int)"); err != nil {
		t.Fatal(err)
	}
	waitReplayed(t, topo)
	var next, staleReads atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			sctx := routerlib.WithSession(ctx, &routerlib.Session{})
			for {
				id := next.Add(1)
				if id > int64(pairs) {
					return
				}
				if _, err := r.Exec(sctx, "INSERT INTO "+table+" (id, v) VALUES ($1, $2)", id, id*10); err != nil {
					errs <- err
					return
				}
				var v int64
				err := r.QueryRow(sctx, "SELECT v FROM "+table+" WHERE id = $1", id).Scan(&v)
				switch {
				case errors.Is(err, pgx.ErrNoRows):
					staleReads.Add(1)
				case err != nil:
					errs <- err
					return
				case v != id*10:
					errs <- fmt.Errorf("id %d: read %d, want %d", id, v, id*10)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return staleReads.Load()
}

// TestReadYourWrites: with standbys applying commits late, 1,000
// write-then-read pairs in read_your_writes mode each see their own write;
// the same workload in eventual mode reads stale data. Stickiness has no
// time window: once a replica replays the write, the session reads there.
func TestReadYourWrites(t *testing.T) {
	topo := delayedTopology(t)
	ctx := context.Background()

	rec := &recorder{}
	ryw := newRouter(t, withMode(topo.Artifact(), artifact.ModeReadYourWrites), routerlib.WithTracer(rec))
	if stale := writeThenRead(t, topo, ryw, "ryw_pairs", 1000, 8); stale != 0 {
		t.Errorf("read_your_writes: %d of 1000 reads missed their own write; want 0", stale)
	}
	reasons := map[routerlib.Reason]int{}
	for _, d := range rec.decisions {
		reasons[d.Reason]++
	}
	t.Logf("read_your_writes decisions: %v", reasons)

	eventual := newRouter(t, withMode(topo.Artifact(), artifact.ModeEventual))
	stale := writeThenRead(t, topo, eventual, "eventual_pairs", 1000, 8)
	t.Logf("eventual: %d of 1000 reads were stale", stale)
	if stale == 0 {
		t.Error("eventual mode read no stale data with standbys applying 500ms late; the test proves nothing")
	}

	// No fixed window: after the standbys replay the write, the session's
	// reads go to a replica again.
	s := &routerlib.Session{}
	sctx := routerlib.WithSession(ctx, s)
	if _, err := ryw.Exec(sctx, "INSERT INTO ryw_pairs VALUES (5000, 1)"); err != nil {
		t.Fatal(err)
	}
	if s.LSN() == 0 {
		t.Fatal("the write recorded no LSN in the session")
	}
	serverPort(t, sctx, ryw)
	if got := rec.last(t); got.Reason != routerlib.ReasonSticky || got.Node != "primary" {
		t.Errorf("read right after a write: %s on %s, want sticky on primary", got.Reason, got.Node)
	}
	eventually(t, 5*time.Second, "a replica serving the session after replay", func() bool {
		serverPort(t, sctx, ryw)
		got := rec.last(t)
		return got.Reason == routerlib.ReasonCaughtUp && got.Node != "primary"
	})

	// A transaction's Commit records the commit's LSN.
	before := s.LSN()
	tx, err := ryw.Begin(sctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "INSERT INTO ryw_pairs VALUES (5001, 1)"); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if s.LSN() <= before {
		t.Errorf("Commit left the session at %s, want past %s", s.LSN(), before)
	}
	var v int
	if err := ryw.QueryRow(sctx, "SELECT v FROM ryw_pairs WHERE id = 5001").Scan(&v); err != nil {
		t.Errorf("read after Commit: %v", err)
	}
	// INSERT … RETURNING through QueryRow records its LSN too.
	before = s.LSN()
	var id int
	if err := ryw.QueryRow(sctx, "INSERT INTO ryw_pairs VALUES ($1, 1) RETURNING id", 5002).Scan(&id); err != nil || id != 5002 {
		t.Fatalf("INSERT RETURNING: %d, %v", id, err)
	}
	if s.LSN() <= before {
		t.Errorf("INSERT … RETURNING left the session at %s, want past %s", s.LSN(), before)
	}
	// A failed write reports its error and the pipeline stays usable.
	if _, err := ryw.Exec(sctx, "INSERT INTO ryw_pairs VALUES ($1, 1)", 5002); err == nil {
		t.Error("duplicate key: no error")
	}
	if _, err := ryw.Exec(sctx, "INSERT INTO ryw_pairs VALUES ($1, 1)", 5003); err != nil {
		t.Errorf("write after a failed write: %v", err)
	}
}

// TestStrongMode sends every read to the primary.
func TestStrongMode(t *testing.T) {
	topo := routertest.Shared(t)
	r := newRouter(t, withMode(topo.Artifact(), artifact.ModeStrong))
	if p := serverPort(t, context.Background(), r); p != topo.Primary.Port {
		t.Errorf("strong read answered by %d, want the primary", p)
	}
}

// waitReplayed waits until every standby has replayed the primary's WAL.
func waitReplayed(t testing.TB, topo *routertest.Topology) {
	t.Helper()
	ctx := context.Background()
	lsn, err := topo.CurrentLSN(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range topo.Standbys {
		if err := s.WaitReplayed(ctx, lsn); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCaptureStaleStatements: the capture path keeps statements prepared
// on each primary connection; when the server no longer has them, or no
// longer accepts them, a write in a session still commits once and
// records its LSN, on every path: the wrapped DML (BEGIN … COMMIT in one
// message), the two-Sync pipeline (CALL), a transaction's Commit, and
// INSERT … RETURNING. One connection, so each step meets what the last
// left; each runs in a fresh session, so its LSN must come from that step.
func TestCaptureStaleStatements(t *testing.T) {
	topo := routertest.Shared(t)
	ctx := context.Background()
	a := withMode(topo.Artifact(), artifact.ModeReadYourWrites)
	a.Pool.MaxConns = 1
	r := newRouter(t, a)
	for _, q := range []string{
		"DROP TABLE IF EXISTS stale_t",
		"CREATE TABLE stale_t (id int PRIMARY KEY)",
		"CREATE OR REPLACE PROCEDURE stale_p(v int) LANGUAGE sql AS 'INSERT INTO stale_t VALUES (v)'",
	} {
		if _, err := r.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	check, err := pgx.Connect(ctx, topo.Primary.DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer check.Close(ctx)
	var id atomic.Int64
	writes := []struct {
		name  string
		write func(context.Context) error
	}{
		{"INSERT", func(sctx context.Context) error {
			_, err := r.Exec(sctx, "INSERT INTO stale_t VALUES ($1)", id.Add(1))
			return err
		}},
		{"CALL", func(sctx context.Context) error {
			_, err := r.Exec(sctx, "CALL stale_p($1)", id.Add(1))
			return err
		}},
		{"Commit", func(sctx context.Context) error {
			tx, err := r.Begin(sctx)
			if err != nil {
				return err
			}
			defer tx.Rollback(ctx)
			// No arguments, so pgx sends it unprepared: its own cache
			// would fail once after the drop, which is pgx's business.
			if _, err := tx.Exec(ctx, fmt.Sprintf("INSERT INTO stale_t VALUES (%d)", id.Add(1))); err != nil {
				return err
			}
			// Inside the transaction: the Commit must still commit.
			if _, err := tx.Exec(ctx, "DEALLOCATE ALL"); err != nil {
				return err
			}
			return tx.Commit(ctx)
		}},
		{"INSERT … RETURNING", func(sctx context.Context) error {
			var got int64
			return r.QueryRow(sctx, "INSERT INTO stale_t VALUES ($1) RETURNING id", id.Add(1)).Scan(&got)
		}},
	}
	for _, drop := range []string{"DISCARD ALL", "DEALLOCATE ALL"} {
		for _, w := range writes {
			// Once to prepare everything, then after the drop.
			if err := w.write(routerlib.WithSession(ctx, &routerlib.Session{})); err != nil {
				t.Fatalf("%s: %v", w.name, err)
			}
			if _, err := r.Exec(ctx, drop); err != nil {
				t.Fatal(err)
			}
			s := &routerlib.Session{}
			before := id.Load()
			if err := w.write(routerlib.WithSession(ctx, s)); err != nil {
				t.Errorf("%s after %s: %v", w.name, drop, err)
				continue
			}
			if s.LSN() == 0 {
				t.Errorf("%s after %s: no LSN recorded in the session", w.name, drop)
			}
			// Counted on a connection of its own: the Router's one has
			// lost pgx's prepared statements too, and pgx fails each
			// once before it prepares it again.
			var n int
			if err := check.QueryRow(ctx, "SELECT count(*) FROM stale_t WHERE id > $1", before).Scan(&n); err != nil || n != 1 {
				t.Errorf("%s after %s: %d rows written (%v), want exactly 1", w.name, drop, n, err)
			}
		}
	}
	// The application's own call of a SQL the capture path prepared is
	// not disturbed by what the capture path prepared and lost: pgx has
	// never seen this one, so it must succeed at once.
	if _, err := r.Exec(ctx, "DISCARD ALL"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Exec(ctx, "INSERT INTO stale_t VALUES ($1)", id.Add(1)); err != nil {
		t.Errorf("a plain Exec of a SQL the capture path had prepared, after DISCARD ALL: %v", err)
	}
}

// TestCaptureAfterSchemaChange: the capture path prepares its writes per
// connection; when a schema change alters the result columns of one
// (INSERT … RETURNING * after ADD COLUMN), PostgreSQL refuses the
// prepared statement with 0A000 "cached plan must not change result
// type"; the write is prepared afresh, sent once more, returns the new
// columns and records its LSN.
func TestCaptureAfterSchemaChange(t *testing.T) {
	topo := routertest.Shared(t)
	ctx := context.Background()
	a := withMode(topo.Artifact(), artifact.ModeReadYourWrites)
	a.Pool.MaxConns = 1 // one connection: the prepared statement is reused
	r := newRouter(t, a)
	if _, err := r.Exec(ctx, "DROP TABLE IF EXISTS schema_t; CREATE TABLE schema_t (id int)"); err != nil {
		t.Fatal(err)
	}
	insert := func(id int) (columns int, s *routerlib.Session, err error) {
		s = &routerlib.Session{}
		rows, err := r.Query(routerlib.WithSession(ctx, s), "INSERT INTO schema_t VALUES ($1) RETURNING *", id)
		if err != nil {
			return 0, s, err
		}
		for rows.Next() {
			vals, err := rows.Values()
			if err != nil {
				return 0, s, err
			}
			columns = len(vals)
		}
		rows.Close()
		return columns, s, rows.Err()
	}
	if n, _, err := insert(1); err != nil || n != 1 {
		t.Fatalf("first insert: %d columns, %v", n, err)
	}
	if _, err := r.Exec(ctx, "ALTER TABLE schema_t ADD COLUMN note text"); err != nil {
		t.Fatal(err)
	}
	n, s, err := insert(2)
	if err != nil {
		t.Fatalf("insert after the table changed: %v", err)
	}
	if n != 2 {
		t.Errorf("insert after the table changed returned %d columns, want 2", n)
	}
	if s.LSN() == 0 {
		t.Error("insert after the table changed: no LSN recorded in the session")
	}
	var rows int
	if err := r.QueryRow(routerlib.Primary(ctx), "SELECT count(*) FROM schema_t").Scan(&rows); err != nil || rows != 2 {
		t.Errorf("schema_t has %d rows (%v), want 2: the retry must not write twice", rows, err)
	}
}

// TestCaptureStatements: a write in a session records its LSN whichever
// way it is sent. DML is wrapped in BEGIN … COMMIT so that the LSN query
// follows the commit in the same message; statements that cannot run in a
// transaction block (VACUUM) or need not be (DDL) are not wrapped, and a
// failure at COMMIT (a deferred constraint) is the write's error.
func TestCaptureStatements(t *testing.T) {
	topo := routertest.Shared(t)
	ctx := context.Background()
	a := withMode(topo.Artifact(), artifact.ModeReadYourWrites)
	a.Pool.MaxConns = 1 // one connection: every step reuses what the last left
	r := newRouter(t, a)
	s := &routerlib.Session{}
	sctx := routerlib.WithSession(ctx, s)
	advanced := func(what string, before routerlib.LSN) {
		t.Helper()
		if s.LSN() <= before {
			t.Errorf("%s left the session at %s, want past %s", what, s.LSN(), before)
		}
	}

	before := s.LSN()
	if _, err := r.Exec(sctx, "DROP TABLE IF EXISTS capture_t"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Exec(sctx, "CREATE TABLE capture_t (id int, CONSTRAINT capture_t_id UNIQUE (id) DEFERRABLE INITIALLY DEFERRED)"); err != nil {
		t.Fatal(err)
	}
	advanced("CREATE TABLE", before)

	before = s.LSN()
	if _, err := r.Exec(sctx, "INSERT INTO capture_t VALUES ($1)", 1); err != nil {
		t.Fatal(err)
	}
	advanced("INSERT", before)

	// The unique check is deferred to COMMIT: the error must come back,
	// and nothing be committed.
	before = s.LSN()
	if _, err := r.Exec(sctx, "INSERT INTO capture_t VALUES ($1)", 1); err == nil {
		t.Error("deferred unique violation: no error")
	}
	if s.LSN() != before {
		t.Errorf("a failed write moved the session from %s to %s", before, s.LSN())
	}
	var n int
	if err := r.QueryRow(routerlib.Primary(ctx), "SELECT count(*) FROM capture_t").Scan(&n); err != nil || n != 1 {
		t.Errorf("rows after the failed write: %d, %v; want 1", n, err)
	}

	// VACUUM cannot run inside a transaction block.
	if _, err := r.Exec(sctx, "VACUUM capture_t"); err != nil {
		t.Errorf("VACUUM in a session: %v", err)
	}

	// A Scan error is the client's: the write committed, so its LSN counts.
	before = s.LSN()
	var wrong time.Time
	if err := r.QueryRow(sctx, "INSERT INTO capture_t VALUES ($1) RETURNING id", 2).Scan(&wrong); err == nil {
		t.Error("Scan of an int into a time.Time: no error")
	}
	advanced("INSERT … RETURNING whose Scan failed", before)

	// After all that the one connection is idle and usable.
	before = s.LSN()
	tx, err := r.Begin(sctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "INSERT INTO capture_t VALUES (3)"); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	advanced("Commit", before)

	// DEALLOCATE ALL drops what the capture path prepared on the one
	// connection: the next write prepares it again instead of failing.
	if _, err := r.Exec(ctx, "DEALLOCATE ALL"); err != nil {
		t.Fatal(err)
	}
	before = s.LSN()
	if _, err := r.Exec(sctx, "INSERT INTO capture_t VALUES ($1)", 4); err != nil {
		t.Errorf("write after DEALLOCATE ALL: %v", err)
	}
	advanced("INSERT after DEALLOCATE ALL", before)
}

// The capture path prepares each distinct write once per connection; an
// application that builds SQL strings dynamically must not make the
// server keep them all.
func TestCapturePreparedStatementsAreBounded(t *testing.T) {
	topo := routertest.Shared(t)
	ctx := context.Background()
	a := withMode(topo.Artifact(), artifact.ModeReadYourWrites)
	a.Pool.MaxConns = 1 // one connection, so pg_prepared_statements sees them all
	r := newRouter(t, a)
	sctx := routerlib.WithSession(ctx, &routerlib.Session{})
	if _, err := r.Exec(sctx, "CREATE TABLE IF NOT EXISTS capture_bounded (v int)"); err != nil {
		t.Fatal(err)
	}
	const distinct = 400 // more than the capture path keeps
	for i := range distinct {
		if _, err := r.Exec(sctx, fmt.Sprintf("INSERT INTO capture_bounded (v) VALUES ($1) -- statement %d", i), i); err != nil {
			t.Fatal(err)
		}
	}
	var kept, writes int
	err := r.QueryRow(routerlib.Primary(ctx), `
SELECT count(*), count(*) FILTER (WHERE statement LIKE 'INSERT INTO capture_bounded%')
FROM pg_prepared_statements`).Scan(&kept, &writes)
	if err != nil {
		t.Fatal(err)
	}
	if writes == 0 {
		t.Fatal("no capture statement is prepared on the connection: the check proves nothing")
	}
	if writes > 256 {
		t.Errorf("%d of %d distinct writes are still prepared on the connection (%d statements in all), want at most 256", writes, distinct, kept)
	}
	var rows int
	if err := r.QueryRow(routerlib.Primary(ctx), "SELECT count(*) FROM capture_bounded").Scan(&rows); err != nil || rows < distinct {
		t.Errorf("capture_bounded has %d rows (err %v), want at least %d: every write must still commit", rows, err, distinct)
	}
}

// TestSessionPositionAtAPageBoundary: when the last WAL record of a write
// ends exactly where a WAL page ends, pg_current_wal_insert_lsn() points
// past the next page's header (24 bytes on), where no record can end,
// while a standby that replayed that record reports the page boundary
// itself. A session that recorded the insert position as it is would then
// wait for every replica, and stick to the primary, until some other write
// moved the WAL on (on an idle primary, the next running-transactions
// record, up to 15s later). The write here is a non-transactional logical
// message sized to end at the next page boundary; an attempt that other
// WAL disturbed (autovacuum, a checkpoint) is made again.
func TestSessionPositionAtAPageBoundary(t *testing.T) {
	topo := routertest.Shared(t)
	ctx := context.Background()
	rec := &recorder{}
	a := topo.Artifact()
	// Long enough for a read to ask a replica how far it replayed.
	a.Consistency = artifact.Consistency{Mode: artifact.ModeReadYourWrites, WaitTimeout: "5s"}
	r := newRouter(t, a, routerlib.WithTracer(rec))
	primary, err := pgx.Connect(ctx, topo.Primary.DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer primary.Close(ctx)
	standby, err := pgx.Connect(ctx, topo.Standbys[0].DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer standby.Close(ctx)
	insertLSN := func() routerlib.LSN {
		t.Helper()
		var s string
		if err := primary.QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()::text").Scan(&s); err != nil {
			t.Fatal(err)
		}
		lsn, err := routerlib.ParseLSN(s)
		if err != nil {
			t.Fatal(err)
		}
		return lsn
	}
	const (
		page   = 8192
		prefix = "routerlib"
		// A logical message record: its header (24 bytes), a long
		// data header (5), xl_logical_message up to its text (24), the
		// prefix and its NUL, then the message.
		overhead = 24 + 5 + 24 + len(prefix) + 1
	)
	for attempt := 0; attempt < 20; attempt++ {
		start := insertLSN()
		if start%page < 24 {
			continue // not where a record starts; let the WAL move on
		}
		boundary := (start/page + 1) * page
		size := int(boundary-start) - overhead
		if size < 300 {
			// Too close to the page's end for one record: write past it.
			if _, err := primary.Exec(ctx, "SELECT pg_logical_emit_message(false, $1, repeat('x', 400))", prefix); err != nil {
				t.Fatal(err)
			}
			continue
		}
		s := &routerlib.Session{}
		sctx := routerlib.WithSession(ctx, s)
		if _, err := r.Exec(sctx, "SELECT pg_logical_emit_message(false, $1, repeat('x', $2))", prefix, size); err != nil {
			t.Fatal(err)
		}
		if insertLSN() != boundary+24 {
			t.Logf("attempt %d: the message did not end at page boundary %s alone (other WAL, or a message of another size): again", attempt, boundary)
			continue
		}
		// The standby replays the message (the WAL writer flushes it
		// within wal_writer_delay).
		var replayed routerlib.LSN
		deadline := time.Now().Add(10 * time.Second)
		for replayed < boundary && time.Now().Before(deadline) {
			var s string
			if err := standby.QueryRow(ctx, "SELECT pg_last_wal_replay_lsn()::text").Scan(&s); err != nil {
				t.Fatal(err)
			}
			if replayed, err = routerlib.ParseLSN(s); err != nil {
				t.Fatal(err)
			}
			time.Sleep(10 * time.Millisecond)
		}
		if insertLSN() != boundary+24 {
			t.Logf("attempt %d: other WAL came while the standby replayed: again", attempt)
			continue
		}
		if replayed != boundary {
			t.Fatalf("the standby replayed up to %s, want the page boundary %s where the message ended", replayed, boundary)
		}
		if s.LSN() > replayed {
			t.Errorf("the session recorded %s, past the end of the write's WAL at %s, where the standby that replayed everything the primary wrote stopped: its reads stick to the primary until other WAL comes", s.LSN(), replayed)
		}
		if s.LSN() < boundary {
			t.Errorf("the session recorded %s, below the end of the write's WAL at %s", s.LSN(), boundary)
		}
		rec.reset()
		serverPort(t, sctx, r)
		if got := rec.last(t); got.Reason != routerlib.ReasonCaughtUp {
			t.Errorf("a read in the session after every standby replayed its write: %s on %s, want %s on a replica", got.Reason, got.Node, routerlib.ReasonCaughtUp)
		}
		return
	}
	t.Fatal("no attempt wrote a message that ended at a page boundary with no other WAL after it")
}

// TestSessionPositionPastAsyncCommit: with synchronous_commit off a commit
// returns before its WAL is written, so the primary's write position may
// still be short of the commit record when the position is read. Every
// way a write records its position must still record one past the
// commit: once a standby has replayed up to the session's position, it
// has the row.
func TestSessionPositionPastAsyncCommit(t *testing.T) {
	topo := routertest.Shared(t)
	ctx := context.Background()
	r := newRouter(t, withMode(topo.Artifact(), artifact.ModeReadYourWrites), routerlib.WithPoolConfig(func(_ artifact.Node, cfg *pgxpool.Config) {
		cfg.ConnConfig.RuntimeParams["synchronous_commit"] = "off"
	}))
	for _, q := range []string{
		"DROP TABLE IF EXISTS async_t",
		"CREATE TABLE async_t (tag text)",
		"CREATE OR REPLACE PROCEDURE async_p(tag text) LANGUAGE sql AS 'INSERT INTO async_t VALUES (tag)'",
	} {
		if _, err := r.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	standby := topo.Standbys[0]
	for _, w := range writePaths(ctx, r, "async_t", "async_p") {
		s := &routerlib.Session{}
		if err := w.write(routerlib.WithSession(ctx, s)); err != nil {
			t.Fatalf("%s: %v", w.tag, err)
		}
		if s.LSN() == 0 {
			t.Errorf("%s: no position recorded", w.tag)
			continue
		}
		if err := standby.WaitReplayed(ctx, s.LSN().String()); err != nil {
			t.Fatal(err)
		}
		if n := tagged(t, ctx, standby, "async_t", w.tag); n != 1 {
			t.Errorf("%s: the standby replayed up to the session's %s and has %d rows of the write, want 1: the position is short of the commit", w.tag, s.LSN(), n)
		}
	}
}

// TestSharedSessionConcurrentWrites: one Session shared by goroutines
// that each write and then read their own row (a request fanning out work)
// only ever moves forward, and every read sees the row its goroutine wrote
// before it. Run with -race, it also shows the session's position is
// updated without a data race.
func TestSharedSessionConcurrentWrites(t *testing.T) {
	topo := routertest.Shared(t)
	ctx := context.Background()
	r := newRouter(t, withMode(topo.Artifact(), artifact.ModeReadYourWrites))
	if _, err := r.Exec(ctx, "DROP TABLE IF EXISTS shared_s; CREATE TABLE shared_s (id int PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	s := &routerlib.Session{}
	sctx := routerlib.WithSession(ctx, s)
	const workers, writes = 4, 50
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			last := routerlib.LSN(0)
			for i := range writes {
				id := w*writes + i
				if _, err := r.Exec(sctx, "INSERT INTO shared_s VALUES ($1)", id); err != nil {
					errs <- err
					return
				}
				lsn := s.LSN()
				if lsn < last {
					errs <- fmt.Errorf("the session went back from %s to %s", last, lsn)
					return
				}
				last = lsn
				var n int
				if err := r.QueryRow(sctx, "SELECT count(*) FROM shared_s WHERE id = $1", id).Scan(&n); err != nil || n != 1 {
					errs <- fmt.Errorf("row %d: read %d rows (%v) after writing it, want 1", id, n, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestSessionTxUsedAfterCommit: a statement on a transaction that
// committed fails with pgx.ErrTxClosed in read_your_writes mode as in
// eventual mode, and so do its large objects, got after Commit or opened
// before it (unguarded before: they ran in the other caller's
// transaction). The capture sends the COMMIT itself, so pgx's transaction
// never learnt it ended: its Exec and QueryRow ran on the connection back
// in the pool, here inside another caller's transaction (the same backend),
// where a write reported done would be rolled back with that caller's work.
// On a connection with a pgx query tracer of the application's the same
// holds, and the tracer sees the one COMMIT, not failed (before, there, a
// large object opened before Commit was written after it).
func TestSessionTxUsedAfterCommit(t *testing.T) {
	topo := routertest.Shared(t)
	ctx := context.Background()
	for _, c := range []struct {
		name, mode string
		traced     bool
	}{
		{artifact.ModeEventual, artifact.ModeEventual, false},
		{artifact.ModeReadYourWrites, artifact.ModeReadYourWrites, false},
		// With a pgx query tracer of the application's: the large object
		// opened before Commit was written after it, on the connection
		// back in the pool, where the other transaction ran.
		{"read_your_writes-traced", artifact.ModeReadYourWrites, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := withMode(topo.Artifact(), c.mode)
			a.Pool.MaxConns = 1 // the next caller gets the transaction's connection
			tracer := &commitTracer{}
			var opts []routerlib.Option
			if c.traced {
				opts = append(opts, routerlib.WithPoolConfig(func(_ artifact.Node, cfg *pgxpool.Config) {
					cfg.ConnConfig.Tracer = tracer
				}))
			}
			r := newRouter(t, a, opts...)
			s := &routerlib.Session{}
			sctx := routerlib.WithSession(ctx, s)
			tx, err := r.Begin(sctx)
			if err != nil {
				t.Fatal(err)
			}
			var pid int
			if err := tx.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
				t.Fatal(err)
			}
			los := tx.LargeObjects()
			oid, err := los.Create(ctx, 0)
			if err != nil {
				t.Fatal(err)
			}
			obj, err := los.Open(ctx, oid, pgx.LargeObjectModeWrite)
			if err != nil {
				t.Fatal(err)
			}
			if err := tx.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			if c.mode == artifact.ModeReadYourWrites && s.LSN() == 0 {
				t.Error("Commit recorded no position in the session")
			}
			if c.traced && (tracer.commits.Load() != 1 || tracer.failed.Load() != 0) {
				t.Errorf("the application's tracer saw %d commits, %d failed; want the one, not failed", tracer.commits.Load(), tracer.failed.Load())
			}
			other, err := r.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer other.Rollback(ctx)
			if _, err := tx.Exec(ctx, "SELECT 1"); !errors.Is(err, pgx.ErrTxClosed) {
				t.Errorf("Exec after Commit: %v, want ErrTxClosed", err)
			}
			var got int
			if err := tx.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&got); !errors.Is(err, pgx.ErrTxClosed) {
				t.Errorf("QueryRow after Commit: %v (backend %d, the transaction's was %d), want ErrTxClosed", err, got, pid)
			}
			if rows, err := tx.Query(ctx, "SELECT 1"); !errors.Is(err, pgx.ErrTxClosed) {
				t.Errorf("Query after Commit: %v, want ErrTxClosed", err)
				rows.Close()
			}
			if _, err := tx.Begin(ctx); !errors.Is(err, pgx.ErrTxClosed) {
				t.Errorf("Begin after Commit: %v, want ErrTxClosed", err)
			}
			after := tx.LargeObjects()
			if _, err := after.Create(ctx, 0); !errors.Is(err, pgx.ErrTxClosed) {
				t.Errorf("LargeObjects().Create after Commit: %v, want ErrTxClosed", err)
			}
			if _, err := obj.Write([]byte("after")); !errors.Is(err, pgx.ErrTxClosed) {
				t.Errorf("writing a large object opened before Commit, after it: %v, want ErrTxClosed", err)
			}
			if err := tx.Rollback(ctx); !errors.Is(err, pgx.ErrTxClosed) {
				t.Errorf("Rollback after Commit: %v, want ErrTxClosed", err)
			}
		})
	}
}

// commitTracer is a pgx query tracer of the application's that counts the
// COMMITs it sees, and those that failed.
type commitTracer struct{ commits, failed atomic.Int32 }

type commitKey struct{}

func (ct *commitTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	return context.WithValue(ctx, commitKey{}, strings.EqualFold(strings.TrimSpace(d.SQL), "commit"))
}

func (ct *commitTracer) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryEndData) {
	if commit, _ := ctx.Value(commitKey{}).(bool); commit {
		ct.commits.Add(1)
		if d.Err != nil {
			ct.failed.Add(1)
		}
	}
}

// TestSessionPrimaryReadThatWrites: in read_your_writes mode a SELECT of a
// user-defined function that writes, sent while the session reads from the
// primary (its earlier write not yet replayed), succeeds there as a read;
// what it wrote is recorded in the session all the same, so that the
// session's next read, once a standby has replayed the earlier write but
// not the function's, does not go to that standby and miss it. Before, only
// a call made with Primary was recorded (as a write): the sticky Exec,
// QueryRow and Query below read [k1] on the standby, not [k1 k2]; and
// until a batch of reads, a string of several statements, named
// arguments and exec modes were captured too, so did those; and until
// QueryResultFormatsByOID where the capture path prepares nothing (the
// call's Exec mode, a pool's DescribeExec or SimpleProtocol mode) and a string
// of several statements through Query in the simple protocol (the call's
// mode or the pool's) were, so did those five. A read
// there that writes nothing leaves the session where it was, or the
// session would stay on the primary while other sessions write.
func TestSessionPrimaryReadThatWrites(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(1))
	ctx := context.Background()
	if err := topo.Primary.Exec(ctx, `CREATE TABLE primary_read (id int);
		CREATE FUNCTION primary_read_add(i int) RETURNS int LANGUAGE sql AS $$ INSERT INTO primary_read VALUES (i) RETURNING i $$`); err != nil {
		t.Fatal(err)
	}
	waitReplayed(t, topo)
	if err := topo.Standbys[0].SetApplyDelay(ctx, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	a := withMode(topo.Artifact(), artifact.ModeReadYourWrites)
	a.Health.Interval = "100ms" // the router sees the standby's replay soon
	rec := &recorder{}
	r := newRouter(t, a, routerlib.WithTracer(rec))
	byOID := pgx.QueryResultFormatsByOID{pgtype.Int4OID: pgx.BinaryFormatCode}
	k := 0
	readsThatWrite(t, topo, r, rec, &k, []readThatWrites{
		{"Primary", func(sctx context.Context, id int) error {
			return r.QueryRow(routerlib.Primary(sctx), "SELECT primary_read_add($1)", id).Scan(new(int))
		}},
		{"QueryRow", func(sctx context.Context, id int) error {
			return r.QueryRow(sctx, "SELECT primary_read_add($1)", id).Scan(new(int))
		}},
		{"Exec", func(sctx context.Context, id int) error {
			_, err := r.Exec(sctx, "SELECT primary_read_add($1)", id)
			return err
		}},
		{"Exec-plain", func(sctx context.Context, id int) error {
			_, err := r.Exec(sctx, fmt.Sprintf("SELECT primary_read_add(%d)", id))
			return err
		}},
		{"Query", func(sctx context.Context, id int) error {
			rows, err := r.Query(sctx, "SELECT primary_read_add($1)", id)
			if err != nil {
				return err
			}
			rows.Close()
			return rows.Err()
		}},
		{"Batch", func(sctx context.Context, id int) error {
			b := &pgx.Batch{}
			b.Queue("SELECT 1")
			b.Queue("SELECT primary_read_add($1)", id)
			return r.SendBatch(sctx, b).Close()
		}},
		{"Exec-several", func(sctx context.Context, id int) error {
			tag, err := r.Exec(sctx, fmt.Sprintf("SELECT primary_read_add(%d); SELECT 1, 2 -- the last", id))
			if err == nil && tag.String() != "SELECT 1" {
				err = fmt.Errorf("the command tag is %q, want the last statement's, SELECT 1", tag)
			}
			return err
		}},
		{"NamedArgs", func(sctx context.Context, id int) error {
			return r.QueryRow(sctx, "SELECT primary_read_add(@id)", pgx.NamedArgs{"id": id}).Scan(new(int))
		}},
		{"ExecMode-Exec", func(sctx context.Context, id int) error {
			return r.QueryRow(sctx, "SELECT primary_read_add($1)", pgx.QueryExecModeExec, id).Scan(new(int))
		}},
		{"ExecMode-SimpleProtocol", func(sctx context.Context, id int) error {
			_, err := r.Exec(sctx, "SELECT primary_read_add($1)", pgx.QueryExecModeSimpleProtocol, id)
			return err
		}},
		{"ExecMode-DescribeExec", func(sctx context.Context, id int) error {
			return r.QueryRow(sctx, "SELECT primary_read_add($1)", pgx.QueryExecModeDescribeExec, id).Scan(new(int))
		}},
		{"ExecMode-Exec-FormatsByOID", func(sctx context.Context, id int) error {
			return r.QueryRow(sctx, "SELECT primary_read_add($1)", pgx.QueryExecModeExec, byOID, id).Scan(new(int))
		}},
		{"ExecMode-SimpleProtocol-Query-several", func(sctx context.Context, id int) error {
			return queryFirst(r.Query(sctx, fmt.Sprintf("SELECT primary_read_add(%d); SELECT 1", id), pgx.QueryExecModeSimpleProtocol))
		}},
	})
	// Pools set to another exec mode than pgx's default.
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeDescribeExec, pgx.QueryExecModeSimpleProtocol} {
		rec := &recorder{}
		r := newRouter(t, a, routerlib.WithTracer(rec), routerlib.WithPoolConfig(func(_ artifact.Node, cfg *pgxpool.Config) {
			cfg.ConnConfig.DefaultQueryExecMode = mode
		}))
		calls := []readThatWrites{
			{"pool-" + mode.String() + "-FormatsByOID", func(sctx context.Context, id int) error {
				return r.QueryRow(sctx, "SELECT primary_read_add($1)", byOID, id).Scan(new(int))
			}},
		}
		if mode == pgx.QueryExecModeSimpleProtocol {
			calls = append(calls, readThatWrites{"pool-" + mode.String() + "-Query-several", func(sctx context.Context, id int) error {
				return queryFirst(r.Query(sctx, fmt.Sprintf("SELECT primary_read_add(%d); SELECT 1", id)))
			}})
		}
		readsThatWrite(t, topo, r, rec, &k, calls)
		if mode != pgx.QueryExecModeSimpleProtocol {
			continue
		}
		// Several statements through Query that write nothing, sticky to
		// the primary (no replica has replayed the session's position, a
		// write the standby's apply delay holds back; not one past the
		// primary's, which the session would give up for the primary's):
		// the first statement's rows, and the session left where it was.
		if _, err := r.Exec(ctx, "CREATE TABLE IF NOT EXISTS primary_read_ahead (id int); INSERT INTO primary_read_ahead VALUES (1)"); err != nil {
			t.Fatal(err)
		}
		ahead := primaryLSN(t, r)
		s := routerlib.NewSession(ahead)
		rows, err := r.Query(routerlib.WithSession(ctx, s), "SELECT 7; SELECT 8, 9")
		if err != nil {
			t.Fatal(err)
		}
		got, err := pgx.CollectRows(rows, pgx.RowTo[int])
		if d := rec.last(t); err != nil || len(got) != 1 || got[0] != 7 || d.Reason != routerlib.ReasonSticky || s.LSN() != ahead {
			t.Errorf("several statements through Query, writing nothing: rows %v (%v), went %s, session at %s: want [7], sticky, the session unmoved at %s", got, err, d.Reason, s.LSN(), ahead)
		}
	}
}

// readThatWrites is a call of TestSessionPrimaryReadThatWrites: a read
// that calls primary_read_add(id).
type readThatWrites struct {
	name string
	call func(sctx context.Context, id int) error
}

// queryFirst reads the rows of a Query, which must hold one row, of one
// column.
func queryFirst(rows pgx.Rows, err error) error {
	if err != nil {
		return err
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		if err := rows.Scan(new(int)); err != nil {
			return err
		}
		n++
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if n != 1 {
		return fmt.Errorf("%d rows, want 1", n)
	}
	return nil
}

// readsThatWrite runs each call on r (traced by rec) in a session whose
// insert the standby has not replayed yet, as TestSessionPrimaryReadThatWrites
// says; *k numbers the ids, 10k+1 and 10k+2, across calls.
func readsThatWrite(t *testing.T, topo *routertest.Topology, r *routerlib.Router, rec *recorder, k *int, calls []readThatWrites) {
	t.Helper()
	ctx := context.Background()
	const delay = 2 * time.Second // the standby's apply delay
	standby := topo.Standbys[0]
	for _, call := range calls {
		*k++
		k := *k
		first, second := 10*k+1, 10*k+2
		s := &routerlib.Session{}
		sctx := routerlib.WithSession(ctx, s)
		if _, err := r.Exec(sctx, "INSERT INTO primary_read VALUES ($1)", first); err != nil {
			t.Fatal(err)
		}
		inserted := s.LSN()
		var n int
		if err := r.QueryRow(sctx, "SELECT count(*) FROM primary_read").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if d := rec.last(t); d.Reason != routerlib.ReasonSticky || s.LSN() != inserted {
			t.Errorf("%s: a read that writes nothing went %s and moved the session from %s to %s, want sticky and unmoved", call.name, d.Reason, inserted, s.LSN())
		}
		time.Sleep(delay / 2)
		if err := call.call(sctx, second); err != nil {
			t.Fatalf("%s: %v", call.name, err)
		}
		if s.LSN() <= inserted {
			t.Errorf("%s: the function's write left the session at %s, the insert's position", call.name, s.LSN())
		}
		for { // the standby replays the insert, a second before the function's write
			var replayed string
			if err := standby.QueryRow(ctx, "SELECT pg_last_wal_replay_lsn()::text").Scan(&replayed); err != nil {
				t.Fatal(err)
			}
			if l, err := routerlib.ParseLSN(replayed); err != nil {
				t.Fatal(err)
			} else if l >= inserted {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(300 * time.Millisecond) // and the router's checks see it
		rec.reset()
		var ids []int
		rows, err := r.Query(sctx, "SELECT id FROM primary_read WHERE id / 10 = $1 ORDER BY id", k)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var id int
			if err := rows.Scan(&id); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		if len(ids) != 2 {
			t.Errorf("%s: the session read %v (%+v), want [%d %d]", call.name, ids, rec.last(t), first, second)
		}
	}
}

// TestSessionPrimaryReadAfterDiscardAll: a DISCARD ALL through an acquired
// connection drops the statements the capture path prepared there, the
// one that asks whether a read on the primary wrote among them; the next
// read sticky to the primary on that connection prepares them afresh
// rather than fail (its transaction rolled back, after its rows).
func TestSessionPrimaryReadAfterDiscardAll(t *testing.T) {
	topo := routertest.Shared(t)
	ctx := context.Background()
	a := topo.Artifact()
	a.Consistency = artifact.Consistency{Mode: artifact.ModeReadYourWrites, WaitTimeout: "0s"}
	a.Pool.MaxConns = 1 // one primary connection: the DISCARD ALL's
	r := newRouter(t, a)
	sctx := routerlib.WithSession(ctx, routerlib.NewSession(routerlib.LSN(1)<<62)) // no replica has replayed it
	read := func() error {
		var n int
		return r.QueryRow(sctx, "SELECT 2").Scan(&n) // no arguments: sent unnamed
	}
	if err := read(); err != nil {
		t.Fatal(err)
	}
	c, err := r.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, "DISCARD ALL"); err != nil {
		t.Fatal(err)
	}
	c.Release()
	if err := read(); err != nil {
		t.Errorf("a sticky read after DISCARD ALL: %v", err)
	}
}

// TestCaptureReadInThePoolsExecMode: a read that read_your_writes sends on
// the primary's read-write session (the session's write not yet replayed:
// the standby applies 2 s late) goes in the pool's default exec mode when
// the call sets none, as pgx sends it: a pool set to CacheDescribe or
// DescribeExec has its columns described and returned in binary where pgx
// has a binary codec, so that a timestamptz reads under DateStyle
// 'SQL, DMY'. Each default mode against a direct pgx connection in that
// mode and DateStyle, with arguments and without: the read sees the write,
// and gives what pgx gives. Before, the capture sent the read unnamed with
// text results in every default mode but CacheStatement: in CacheDescribe
// and DescribeExec the read of the timestamptz failed ("invalid
// PostgreSQL date/time value") where pgx read it. Exec, SimpleProtocol
// and CacheStatement cannot fail so: the capture sent them as now (text
// results in the first two, as pgx's, under the server's ISO DateStyle,
// which pgx can read).
func TestCaptureReadInThePoolsExecMode(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(1))
	ctx := context.Background()
	if err := topo.Primary.Exec(ctx, `CREATE TABLE mode_read (id int, ts timestamptz, n numeric, f float8, b bytea, t text)`); err != nil {
		t.Fatal(err)
	}
	waitReplayed(t, topo)
	if err := topo.Standbys[0].SetApplyDelay(ctx, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	a := withMode(topo.Artifact(), artifact.ModeReadYourWrites)
	a.Health.Interval = "100ms"
	const dateStyle = "SQL, DMY"
	ts := time.Date(2026, 11, 29, 23, 30, 0, 123456000, time.UTC)
	modes := []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeCacheDescribe, pgx.QueryExecModeDescribeExec, pgx.QueryExecModeExec, pgx.QueryExecModeSimpleProtocol}
	for i, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			rec := &recorder{}
			// In Exec and SimpleProtocol pgx reads a timestamptz as
			// text, which it cannot parse under that DateStyle: those
			// modes keep the server's (ISO).
			dateStyle := dateStyle
			if mode == pgx.QueryExecModeExec || mode == pgx.QueryExecModeSimpleProtocol {
				dateStyle = "ISO, MDY"
			}
			r := newRouter(t, a, routerlib.WithTracer(rec), routerlib.WithPoolConfig(func(_ artifact.Node, cfg *pgxpool.Config) {
				cfg.ConnConfig.DefaultQueryExecMode = mode
				cfg.ConnConfig.RuntimeParams["DateStyle"] = dateStyle
			}))
			cfg, err := pgx.ParseConfig(topo.Primary.DSN())
			if err != nil {
				t.Fatal(err)
			}
			cfg.DefaultQueryExecMode = mode
			cfg.RuntimeParams["DateStyle"] = dateStyle
			direct, err := pgx.ConnectConfig(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer direct.Close(ctx)

			id := i + 1
			sctx := routerlib.WithSession(ctx, &routerlib.Session{})
			if _, err := r.Exec(sctx, "INSERT INTO mode_read VALUES ($1, $2, $3, $4, $5, $6)", id, ts, 12.5, 0.1, []byte{0, 1, 0xfe}, "t'ext"); err != nil {
				t.Fatal(err)
			}
			type read struct {
				name, sql string
				args      []any
				dest      func() []any
			}
			all := func() []any {
				return []any{new(int32), new(time.Time), new(float64), new(float64), new([]byte), new(string)}
			}
			noDate := func() []any { return []any{new(int32), new(float64), new(float64), new([]byte), new(string)} }
			for _, rd := range []read{
				{"args", "SELECT id, ts, n, f, b, t FROM mode_read WHERE id = $1 AND t = $2", []any{id, "t'ext"}, all},
				{"no-args", fmt.Sprintf("SELECT id, ts, n, f, b, t FROM mode_read WHERE id = %d", id), nil, all},
				{"args-no-date", "SELECT id, n, f, b, t FROM mode_read WHERE id = $1 AND t = $2 AND b = $3 AND f = $4", []any{id, "t'ext", []byte{0, 1, 0xfe}, 0.1}, noDate},
			} {
				want, got := rd.dest(), rd.dest()
				wantErr := direct.QueryRow(ctx, rd.sql, rd.args...).Scan(want...)
				rec.reset()
				gotErr := r.QueryRow(sctx, rd.sql, rd.args...).Scan(got...)
				if d := rec.last(t); d.Reason != routerlib.ReasonSticky {
					t.Fatalf("%s: the read went %s, want sticky to the primary (the standby has not replayed the write)", rd.name, d.Reason)
				}
				w, g := deref(want), deref(got)
				t.Logf("%s: pgx: %v %v; routerlib: %v %v", rd.name, w, wantErr, g, gotErr)
				switch {
				case wantErr == nil && gotErr != nil:
					t.Errorf("%s: the read after the write failed: %v; pgx in mode %s read %v", rd.name, gotErr, mode, w)
				case wantErr != nil && gotErr == nil:
					t.Errorf("%s: the read gave %v; pgx in mode %s fails: %v", rd.name, g, mode, wantErr)
				case wantErr == nil && fmt.Sprint(w) != fmt.Sprint(g):
					t.Errorf("%s: the read gave %v, pgx in mode %s %v", rd.name, g, mode, w)
				}
				if rd.name == "args-no-date" && gotErr != nil {
					t.Errorf("%s: the read after the write failed: %v", rd.name, gotErr)
				}
			}
		})
	}
}

// deref returns the values dest's pointers point to.
func deref(dest []any) []any {
	v := make([]any, len(dest))
	for i, d := range dest {
		switch d := d.(type) {
		case *int32:
			v[i] = *d
		case *time.Time:
			v[i] = d.UTC()
		case *float64:
			v[i] = *d
		case *[]byte:
			v[i] = *d
		case *string:
			v[i] = *d
		}
	}
	return v
}
