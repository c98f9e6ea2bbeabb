package routerlib

import "testing"

// TestEndsTx: a statement, or a batch's, that holds a COMMIT in any of its
// statements may commit the transaction it runs in.
func TestEndsTx(t *testing.T) {
	for _, c := range []struct {
		sql  string
		want bool
	}{
		{"COMMIT", true},
		{"commit and chain", true},
		{"END", true},
		{"PREPARE TRANSACTION 'x'", true},
		{"INSERT INTO t VALUES (1); COMMIT", true},
		{";; /* c */ commit", true},
		{"PREPARE; COMMIT", true},
		{"INSERT INTO t VALUES ('commit')", false},
		{"SELECT 'x; commit'", false},
		{"PREPARE p AS SELECT 1", false},
		{"ROLLBACK", false},
		{"", false},
		// A SQL-standard function body's END ends no transaction.
		{"CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END", false},
		{"CREATE PROCEDURE p() LANGUAGE sql BEGIN ATOMIC INSERT INTO t VALUES (1); SELECT CASE WHEN true THEN 1 END; END; COMMIT", true},
		{"CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END; END", true},
	} {
		if got := endsTx(c.sql); got != c.want {
			t.Errorf("endsTx(%q) = %v, want %v", c.sql, got, c.want)
		}
	}
}

func TestReadOnlyBegin(t *testing.T) {
	for _, c := range []struct {
		sql  string
		want bool
	}{
		{"begin read only", true},
		{"begin isolation level repeatable read read only", true},
		{"BEGIN ISOLATION LEVEL READ COMMITTED, READ ONLY;", true},
		{"START TRANSACTION READ ONLY", true},
		{"begin isolation level serializable read only", false},
		{"begin read only deferrable isolation level serializable", false},
		{"begin read write", false},
		{"begin isolation level repeatable read", false},
		{"begin", false},
		{"begin read only; insert into t values (1)", false},
		{"start read only", false},
		{"select 'begin read only'", false},
		{"begin read /* only */ write", false},
	} {
		if got := readOnlyBegin(c.sql); got != c.want {
			t.Errorf("readOnlyBegin(%q) = %v, want %v", c.sql, got, c.want)
		}
	}
}

func TestEndsReadOnlyTx(t *testing.T) {
	for _, c := range []struct {
		sql  string
		want bool
	}{
		{"COMMIT", true},
		{"end;", true},
		{"rollback", true},
		{"ABORT", true},
		{"commit and chain", true},
		{"COMMIT PREPARED 'x'", false},
		{"ROLLBACK PREPARED 'x'", false},
		{"ROLLBACK TO SAVEPOINT s", false},
		{"COMMIT; INSERT INTO t VALUES (1)", false},
		{"INSERT INTO t VALUES (1)", false},
	} {
		if got := endsReadOnlyTx(c.sql); got != c.want {
			t.Errorf("endsReadOnlyTx(%q) = %v, want %v", c.sql, got, c.want)
		}
	}
}
