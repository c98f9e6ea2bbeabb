package routerlib_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

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
		var n int
		if err := check.QueryRow(ctx, "SELECT count(*) FROM once_t WHERE tag = $1", c.tag).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 1 {
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
		var n int
		if err := check.QueryRow(ctx, "SELECT count(*) FROM once_raised_t WHERE tag = $1", tag).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 1 {
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
	exec := func(sql string, args ...any) func(context.Context) error {
		return func(sctx context.Context) error {
			_, err := r.Exec(sctx, sql, args...)
			return err
		}
	}
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
