package routerlib_test

import (
	"testing"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
)

// TestClassify is the classifier's table: every class of statement and the
// lexing traps (strings, comments, dollar quotes, quoted identifiers).
func TestClassify(t *testing.T) {
	reads := []string{
		"SELECT 1",
		"select * from books where author = $1",
		"  \n\tSELECT 1;",
		"(SELECT 1) UNION (SELECT 2)",
		"VALUES (1), (2)",
		"TABLE books",
		"SHOW server_version",
		"EXPLAIN SELECT * FROM books",
		"EXPLAIN (ANALYZE, BUFFERS) SELECT * FROM books",
		"WITH a AS (SELECT 1) SELECT * FROM a",
		"WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n+1 FROM r WHERE n < 5) SELECT * FROM r",
		"SELECT 'DELETE FROM books'",
		"SELECT E'it\\'s an INSERT'",
		"SELECT 'it''s an UPDATE'",
		"SELECT $$ DELETE $$, $tag$ UPDATE $ nested $$ $tag$",
		`SELECT "update" FROM "insert"`,
		"SELECT 1 -- DELETE FROM books",
		"SELECT /* outer /* nested DELETE */ still comment INSERT */ 1",
		"SELECT last_update, updated_at, deleted FROM books",
		"SELECT count(*) FROM books WHERE title LIKE 'for update%'",
		"SELECT $1::int",
		"SELECT 1; SELECT 2",
		"SELECT pg_last_wal_replay_lsn()",
		"SELECT lower(title) FROM books",
		"SELECT random(), clock_timestamp(), pg_is_in_recovery()",
		`SELECT "SETVAL"(1)`, // quoted: not pg_catalog's setval
		"SELECT setval_history FROM t",
		"SELECT 'set_config(' FROM t",
		"SELECT * FROM books TABLESAMPLE SYSTEM (10)",
		"SELECT count(*) FROM books TABLESAMPLE bernoulli (5) REPEATABLE (42)",
		"SELECT * FROM books TABLESAMPLE system_rows (10)",
	}
	writes := []string{
		"INSERT INTO books (title) VALUES ($1)",
		"INSERT INTO books (title) VALUES ($1) RETURNING id",
		"UPDATE books SET title = $1",
		"DELETE FROM books",
		"MERGE INTO books b USING src s ON b.id = s.id WHEN MATCHED THEN DELETE",
		"TRUNCATE books",
		"CREATE TABLE t (id int)",
		"ALTER TABLE t ADD COLUMN c int",
		"DROP TABLE t",
		"COPY books FROM STDIN",
		"BEGIN",
		"SET search_path = x",
		"CALL proc()",
		"DO $$ BEGIN END $$",
		"LOCK TABLE books",
		"VACUUM books",
		"NOTIFY ch",
		"LISTEN ch",
		"SELECT * FROM books FOR UPDATE",
		"SELECT * FROM books FOR NO KEY UPDATE",
		"SELECT * FROM books FOR SHARE",
		"SELECT * FROM books FOR KEY SHARE SKIP LOCKED",
		"SELECT nextval('books_id_seq')",
		"SELECT NEXTVAL('books_id_seq')",
		"SELECT pg_catalog.setval('s', 1)",
		"SELECT pg_advisory_lock(1)",
		"SELECT pg_try_advisory_xact_lock(1)",
		"SELECT txid_current()",
		"SELECT pg_current_xact_id()",
		"SELECT pg_current_wal_lsn()",
		"SELECT lo_create(0)",
		"SELECT dblink_exec('x', 'DELETE FROM t')",
		"SELECT * FROM dblink('x', 'SELECT 1') AS t(a int)",
		"SELECT DBLINK_CONNECT('c', 'x')",
		"SELECT dblink_connect_u('c', 'x')",
		"SELECT dblink_open('c', 'cur', 'SELECT 1')",
		"SELECT dblink_send_query('c', 'SELECT 1')",
		"SELECT public.dblink_disconnect('c')",
		"SELECT pg_notify('c', 'x')",
		"SELECT set_config('search_path', 'x', false)",
		"SELECT PG_CATALOG.SET_CONFIG('search_path', 'x', true)",
		`SELECT "setval"('s', 1)`,
		`SELECT U&"\0073etval"('s', 1)`,
		`SELECT "RI_FKey_check_ins"()`,
		"SELECT pg_create_physical_replication_slot('s', true)",
		"SELECT * FROM pg_drop_replication_slot('s')",
		"SELECT pg_wal_replay_pause()",
		"SELECT pg_terminate_backend(pid) FROM pg_stat_activity",
		"SELECT pg_reload_conf()",
		"SELECT pg_stat_reset_shared('io')",
		"VALUES (nextval('s'))",
		"EXPLAIN SELECT setseed(0.5)",
		"SELECT * INTO new_books FROM books",
		"WITH d AS (DELETE FROM books RETURNING *) SELECT * FROM d",
		"WITH u AS (UPDATE books SET t = 1 RETURNING *) SELECT count(*) FROM u",
		"WITH a AS (SELECT 1) INSERT INTO t SELECT * FROM a",
		"EXPLAIN ANALYZE DELETE FROM books",
		"EXPLAIN INSERT INTO books VALUES (1)",
		"SELECT 1; DELETE FROM books",
		"SELECT 1; SELECT 2; UPDATE t SET a = 1",
		"",
		"   ",
		"-- only a comment",
		"/* unterminated",
		"SELECT 'unterminated",
		"PREPARE p AS SELECT 1",
		"EXECUTE p",
		"DECLARE c CURSOR FOR SELECT 1",
		"unknown statement",
	}
	for _, sql := range reads {
		if routerlib.ClassifyForTest(sql) {
			t.Errorf("classified as a write, want read: %q", sql)
		}
	}
	for _, sql := range writes {
		if !routerlib.ClassifyForTest(sql) {
			t.Errorf("classified as a read, want write: %q", sql)
		}
	}
}

// FuzzClassify checks the lexer never panics or hangs on any input.
func FuzzClassify(f *testing.F) {
	for _, s := range []string{"SELECT 1", "$a$", "E'\\", "/* /*", `"x""`, "$1$", "SELECT $$"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, sql string) { routerlib.ClassifyForTest(sql) })
}
