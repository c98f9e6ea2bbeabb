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
	} {
		if got := endsTx(c.sql); got != c.want {
			t.Errorf("endsTx(%q) = %v, want %v", c.sql, got, c.want)
		}
	}
}
