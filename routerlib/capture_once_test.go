package routerlib_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// TestCaptureNeverRunsAWriteTwice: the capture path sends a write once
// more only when the server refused one of the statements it prepared
// itself (26000 naming it, or a plan that must be prepared again). A
// procedure or DO block that commits and then fails with the same
// SQLSTATE for its own reasons has written already: running it again
// would write twice.
func TestCaptureNeverRunsAWriteTwice(t *testing.T) {
	topo := routertest.Shared(t)
	ctx := context.Background()
	r := newRouter(t, withMode(topo.Artifact(), artifact.ModeReadYourWrites))
	for _, q := range []string{
		"DROP TABLE IF EXISTS once_t",
		"CREATE TABLE once_t (tag text)",
		// Commits its row, then fails with SQLSTATE code.
		`CREATE OR REPLACE PROCEDURE once_p(tag text, code text) LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO once_t VALUES (tag);
	COMMIT;
	RAISE EXCEPTION 'failing after the commit' USING ERRCODE = code;
END $$`,
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
	for _, c := range []struct {
		name, tag string // tag: the row the write inserts
		sql       string
		args      []any
	}{
		// Prepared (arguments): 0A000 and 26000 are both retried for a
		// prepared write.
		{"CALL prepared 0A000", "call-0A000", "CALL once_p($1, '0A000')", []any{"call-0A000"}},
		{"CALL prepared 26000", "call-26000", "CALL once_p($1, '26000')", []any{"call-26000"}},
		// Unprepared (no arguments): 26000 is retried.
		{"DO 26000", "do-26000", "DO $$BEGIN INSERT INTO once_t VALUES ('do-26000'); COMMIT; RAISE EXCEPTION 'x' USING ERRCODE = '26000'; END$$", nil},
		{"CALL unprepared 26000", "call-plain-26000", "CALL once_p('call-plain-26000', '26000')", nil},
	} {
		s := &routerlib.Session{}
		if _, err := r.Exec(routerlib.WithSession(ctx, s), c.sql, c.args...); err == nil {
			t.Errorf("%s: no error, want the procedure's", c.name)
		}
		if n := tagged(t, ctx, check, "once_t", c.tag); n != 1 {
			t.Errorf("%s: the write ran %d times, want once", c.name, n)
		}
	}
}

// TestCaptureNeverRunsAWriteTwiceServerRaised: as
// TestCaptureNeverRunsAWriteTwice, but the SQLSTATE after the commit comes
// from the very functions staleStatement trusts: a procedure that
// deallocates a statement that does not exist (26000 from
// FetchPreparedStatement) or executes one of its own whose result changed
// (0A000 from RevalidateCachedQuery). The server raised them inside the
// procedure, not at the Bind of the capture path's statement, and the
// procedure's row committed first: the CALL must not run again.
func TestCaptureNeverRunsAWriteTwiceServerRaised(t *testing.T) {
	topo := routertest.Shared(t)
	ctx := context.Background()
	r := newRouter(t, withMode(topo.Artifact(), artifact.ModeReadYourWrites))
	for _, q := range []string{
		"DROP TABLE IF EXISTS once_raised_t",
		"CREATE TABLE once_raised_t (tag text)",
		`CREATE OR REPLACE PROCEDURE once_raised_p(tag text, code text) LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO once_raised_t VALUES (tag);
	COMMIT;
	IF code = '26000' THEN
		EXECUTE 'DEALLOCATE once_no_such_statement';
	ELSE
		EXECUTE format('CREATE TABLE %I (a int)', 'once_shape_' || tag);
		EXECUTE format('PREPARE %I AS SELECT * FROM %I', 'once_s_' || tag, 'once_shape_' || tag);
		EXECUTE format('ALTER TABLE %I ADD COLUMN b int', 'once_shape_' || tag);
		EXECUTE format('EXECUTE %I', 'once_s_' || tag);
	END IF;
END $$`,
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
	for i, code := range []string{"26000", "0A000"} {
		tag := fmt.Sprintf("raised_%d", i)
		_, err := r.Exec(routerlib.WithSession(ctx, &routerlib.Session{}), "CALL once_raised_p($1, $2)", tag, code)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != code {
			t.Errorf("CALL raising %s: %v, want the server's %s", code, err, code)
		}
		if n := tagged(t, ctx, check, "once_raised_t", tag); n != 1 {
			t.Errorf("CALL raising %s (%v): the write ran %d times, want once", code, err, n)
		}
	}
}

// TestCaptureRecordsAPartialCommit: a write can commit part of its work
// and then fail: a procedure or DO block that commits and then raises, a
// string of several statements with a COMMIT among them, a batch with one.
// The caller gets the error, and the session must still record a position
// past that commit, or a read in the session may miss a row that is there.
// Each write reports, in its error, the primary's WAL insert position read
// after its commit; the session must be at least there.
func TestCaptureRecordsAPartialCommit(t *testing.T) {
	topo := routertest.Shared(t)
	ctx := context.Background()
	r := newRouter(t, withMode(topo.Artifact(), artifact.ModeReadYourWrites))
	for _, q := range []string{
		"DROP TABLE IF EXISTS partial_t",
		"CREATE TABLE partial_t (tag text)",
		`CREATE OR REPLACE FUNCTION partial_fail() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'committed up to %', pg_current_wal_insert_lsn();
END $$`,
		`CREATE OR REPLACE PROCEDURE partial_p(tag text) LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO partial_t VALUES (tag);
	COMMIT;
	PERFORM partial_fail();
END $$`,
	} {
		if _, err := r.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	batch := func(sctx context.Context) error {
		b := &pgx.Batch{}
		b.Queue("INSERT INTO partial_t VALUES ('batch')")
		b.Queue("COMMIT")
		b.Queue("SELECT partial_fail()")
		return r.SendBatch(sctx, b).Close()
	}
	exec := func(sql string, args ...any) func(context.Context) error { return routedExec(r, sql, args...) }
	for _, w := range []struct {
		name  string
		write func(context.Context) error
	}{
		{"CALL prepared", exec("CALL partial_p($1)", "call")},
		{"CALL unprepared", exec("CALL partial_p('call-plain')")},
		{"DO", exec("DO $$BEGIN INSERT INTO partial_t VALUES ('do'); COMMIT; PERFORM partial_fail(); END$$")},
		{"several statements", exec("INSERT INTO partial_t VALUES ('multi'); COMMIT; SELECT partial_fail()")},
		{"Query of a CALL", func(sctx context.Context) error {
			rows, err := r.Query(sctx, "CALL partial_p($1)", "query")
			if err != nil {
				return err
			}
			rows.Close()
			return rows.Err()
		}},
		{"SendBatch", batch},
	} {
		s := &routerlib.Session{}
		err := w.write(routerlib.WithSession(ctx, s))
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) {
			t.Errorf("%s: %v, want the server's error after the commit", w.name, err)
			continue
		}
		committed, perr := routerlib.ParseLSN(strings.TrimPrefix(pgErr.Message, "committed up to "))
		if perr != nil {
			t.Errorf("%s: %v, want the server's error after the commit", w.name, err)
			continue
		}
		if s.LSN() < committed {
			t.Errorf("%s committed a row and failed: the session is at %s, below the commit's %s, so a read in it may miss the row", w.name, s.LSN(), committed)
		}
	}
}

// TestCaptureCommittedPositionUnread: a write that committed but whose
// position could not be read after it (here the LSN function is not the
// router user's to execute: a role set on every primary connection lacks
// the right) succeeds, since it did: an error would invite the caller to
// run it again. The session's next read asks the primary for its
// position, and goes to the primary when that cannot be read either, so it
// sees the write although the replica has replayed nothing.
func TestCaptureCommittedPositionUnread(t *testing.T) {
	topo, r := pausedReplica(t, "50ms", routerlib.WithPoolConfig(func(n artifact.Node, cfg *pgxpool.Config) {
		if n.Role == artifact.RolePrimary {
			cfg.AfterConnect = func(ctx context.Context, c *pgx.Conn) error {
				_, err := c.Exec(ctx, "SET ROLE unread_lsn")
				return err
			}
		}
	}))
	ctx := context.Background()
	for _, q := range []string{
		"CREATE ROLE unread_lsn",
		"CREATE TABLE unread_t (tag text)",
		"GRANT SELECT, INSERT ON unread_t TO unread_lsn",
		"CREATE PROCEDURE unread_p(tag text) LANGUAGE sql AS 'INSERT INTO unread_t VALUES (tag)'",
		"REVOKE EXECUTE ON FUNCTION pg_current_wal_insert_lsn() FROM PUBLIC",
	} {
		if err := topo.Primary.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	for _, w := range writePaths(ctx, r, "unread_t", "unread_p") {
		sctx := routerlib.WithSession(ctx, &routerlib.Session{})
		if err := w.write(sctx); err != nil {
			t.Errorf("%s: %v, want no error: the write committed", w.tag, err)
		}
		checkWrittenOnceAndSeen(t, ctx, sctx, topo, r, "unread_t", w.tag)
	}
}

// TestCaptureConnectionLostAfterCommit: a write whose session the server
// ends after it committed (here a procedure that commits and then has the
// server end its own session) fails, saying it may have committed; its
// session must still see it. The server's FATAL reaches the client, so the
// position is read after it on another connection (writeFailed); a
// connection lost without a word from the server is
// TestCaptureAnswerLostAfterCommit's.
func TestCaptureConnectionLostAfterCommit(t *testing.T) {
	topo, r := pausedReplica(t, "50ms")
	ctx := context.Background()
	for _, q := range []string{
		"CREATE TABLE lost_t (tag text)",
		`CREATE PROCEDURE lost_p(tag text) LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO lost_t VALUES (tag);
	COMMIT;
	PERFORM pg_terminate_backend(pg_backend_pid());
	PERFORM pg_sleep(5);
END $$`,
	} {
		if err := topo.Primary.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	for _, w := range []struct{ tag, sql string }{
		{"call", "CALL lost_p($1)"},
		{"call-plain", "CALL lost_p('call-plain')"},
		{"do", "DO $$BEGIN INSERT INTO lost_t VALUES ('do'); COMMIT; PERFORM pg_terminate_backend(pg_backend_pid()); PERFORM pg_sleep(5); END$$"},
		{"several", "INSERT INTO lost_t VALUES ('several'); COMMIT; SELECT pg_terminate_backend(pg_backend_pid()), pg_sleep(5)"},
	} {
		sctx := routerlib.WithSession(ctx, &routerlib.Session{})
		var args []any
		if strings.Contains(w.sql, "$1") {
			args = []any{w.tag}
		}
		if _, err := r.Exec(sctx, w.sql, args...); err == nil {
			t.Errorf("%s: no error, want the session's end", w.tag)
		}
		checkWrittenOnceAndSeen(t, ctx, sctx, topo, r, "lost_t", w.tag)
	}
}

// TestCaptureCommitFailsAtSync: a statement the capture path does not wrap
// in BEGIN … COMMIT commits at its Sync, where a deferred constraint can
// still fail it. That is the write's failure, not a committed write whose
// position could not be read: the caller gets the server's error, and
// nothing is written.
func TestCaptureCommitFailsAtSync(t *testing.T) {
	topo := routertest.Shared(t)
	ctx := context.Background()
	r := newRouter(t, withMode(topo.Artifact(), artifact.ModeReadYourWrites))
	for _, q := range []string{
		"DROP TABLE IF EXISTS deferred_t",
		"CREATE TABLE deferred_t (id int, CONSTRAINT deferred_t_id UNIQUE (id) DEFERRABLE INITIALLY DEFERRED)",
		"CREATE OR REPLACE PROCEDURE deferred_p(v int) LANGUAGE sql AS 'INSERT INTO deferred_t VALUES (v)'",
		"INSERT INTO deferred_t VALUES (1)",
	} {
		if _, err := r.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	for _, sql := range []string{"CALL deferred_p($1)", "CALL deferred_p(1)"} {
		var args []any
		if strings.Contains(sql, "$1") {
			args = []any{1}
		}
		s := &routerlib.Session{}
		_, err := r.Exec(routerlib.WithSession(ctx, s), sql, args...)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "23505" || strings.Contains(err.Error(), "committed") {
			t.Errorf("%s, whose commit fails on a deferred unique constraint: %v, want the server's 23505 alone", sql, err)
		}
		if s.LSN() != 0 {
			t.Errorf("%s failed, yet the session moved to %s", sql, s.LSN())
		}
	}
	var n int
	if err := r.QueryRow(routerlib.Primary(ctx), "SELECT count(*) FROM deferred_t").Scan(&n); err != nil || n != 1 {
		t.Errorf("deferred_t has %d rows (%v), want 1", n, err)
	}
}

// TestCapturePositionIgnoresSearchPath: a connection whose search_path puts
// a schema of the application's before pg_catalog, where a function of the
// same name as the position function returns what it likes, must not
// change the position the session records.
func TestCapturePositionIgnoresSearchPath(t *testing.T) {
	topo := routertest.Shared(t)
	ctx := context.Background()
	a := withMode(topo.Artifact(), artifact.ModeReadYourWrites)
	a.Pool.MaxConns = 1 // one connection, which keeps the SET
	r := newRouter(t, a)
	t.Cleanup(func() {
		_ = topo.Primary.Exec(context.Background(), "DROP SCHEMA IF EXISTS shadow CASCADE")
	})
	for _, q := range []string{
		"DROP SCHEMA IF EXISTS shadow CASCADE",
		"CREATE SCHEMA shadow",
		"CREATE FUNCTION shadow.pg_current_wal_insert_lsn() RETURNS pg_lsn LANGUAGE sql AS $$SELECT '0/1'::pg_lsn$$",
		"CREATE TABLE shadow.t (id int)",
		"SET search_path = shadow, pg_catalog",
	} {
		if _, err := r.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	s := &routerlib.Session{}
	if _, err := r.Exec(routerlib.WithSession(ctx, s), "INSERT INTO shadow.t VALUES ($1)", 1); err != nil {
		t.Fatal(err)
	}
	if s.LSN() <= 1 {
		t.Errorf("the session recorded %s, what a function of the application's returned", s.LSN())
	}
}

// routedExec is a write through r.Exec, for the tables of write paths below.
func routedExec(r *routerlib.Router, sql string, args ...any) func(context.Context) error {
	return func(sctx context.Context) error {
		_, err := r.Exec(sctx, sql, args...)
		return err
	}
}

// writePath is one way a write reaches the primary through a Router; write
// inserts one row whose tag is the path's name.
type writePath struct {
	tag   string
	write func(sctx context.Context) error
}

// writePaths are the ways a write reaches the primary through r, each
// inserting into table (tag text) a row tagged with its name, proc being a
// procedure of table's that inserts its argument: prepared and unprepared
// statements, a CALL, several statements in one string, a RETURNING read, an
// explicit transaction, a batch, COPY and an acquired connection. The
// transaction's and the acquired connection's statements are made with ctx,
// which holds no session: they must record in the one Begin or Acquire
// was given.
func writePaths(ctx context.Context, r *routerlib.Router, table, proc string) []writePath {
	insert := "INSERT INTO " + table + " VALUES "
	return []writePath{
		{"insert", routedExec(r, insert+"($1)", "insert")},
		{"insert-plain", routedExec(r, insert+"('insert-plain')")},
		{"call", routedExec(r, "CALL "+proc+"($1)", "call")},
		{"several", routedExec(r, insert+"('x'); "+insert+"('several')")},
		{"returning", func(sctx context.Context) error {
			var tag string
			return r.QueryRow(sctx, insert+"($1) RETURNING tag", "returning").Scan(&tag)
		}},
		{"commit", func(sctx context.Context) error {
			tx, err := r.Begin(sctx)
			if err != nil {
				return err
			}
			defer tx.Rollback(ctx)
			if _, err := tx.Exec(ctx, insert+"('commit')"); err != nil {
				return err
			}
			return tx.Commit(ctx)
		}},
		{"batch", func(sctx context.Context) error {
			b := &pgx.Batch{}
			b.Queue(insert+"($1)", "batch")
			return r.SendBatch(sctx, b).Close()
		}},
		{"copy", func(sctx context.Context) error {
			_, err := r.CopyFrom(sctx, pgx.Identifier{table}, []string{"tag"}, pgx.CopyFromRows([][]any{{"copy"}}))
			return err
		}},
		{"acquire", func(sctx context.Context) error {
			c, err := r.Acquire(sctx)
			if err != nil {
				return err
			}
			defer c.Release()
			_, err = c.Exec(ctx, insert+"('acquire')")
			return err
		}},
	}
}

// tagged counts the rows of table (tag text) tagged tag, on q.
func tagged(t *testing.T, ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, table, tag string) int {
	t.Helper()
	var n int
	if err := q.QueryRow(ctx, "SELECT count(*) FROM "+table+" WHERE tag = $1", tag).Scan(&n); err != nil {
		t.Fatalf("counting %s's rows tagged %s: %v", table, tag, err)
	}
	return n
}

// checkWrittenOnceAndSeen: the primary has the row of table tagged tag
// once, and a read in the write's session sctx sees it.
func checkWrittenOnceAndSeen(t *testing.T, ctx, sctx context.Context, topo *routertest.Topology, r *routerlib.Router, table, tag string) {
	t.Helper()
	if n := tagged(t, ctx, topo.Primary, table, tag); n != 1 {
		t.Fatalf("%s: %d rows on the primary, want 1", tag, n)
	}
	var n int
	if err := r.QueryRow(sctx, "SELECT count(*) FROM "+table+" WHERE tag = $1", tag).Scan(&n); err != nil || n != 1 {
		t.Errorf("%s: a read in the session after the write saw %d rows (%v), want 1", tag, n, err)
	}
}
