package routerlib

import (
	"strings"
	"testing"
)

func TestRedactSQL(t *testing.T) {
	for in, want := range map[string]string{
		"SELECT set_token('s3cret')":                    "SELECT set_token('?')",
		"SELECT f('it''s s3cret', $1)":                  "SELECT f('?', $1)",
		`SELECT f(E'a\'s3cret')`:                        "SELECT f(E'?')",
		"SELECT f($$s3cret$$)":                          "SELECT f('?')",
		"SELECT f($tag$s3cret $$ still$tag$) FROM t":    "SELECT f('?') FROM t",
		"SELECT $1, $2 FROM t WHERE a = 'x' AND b = $3": "SELECT $1, $2 FROM t WHERE a = '?' AND b = $3",
		"SELECT 'unterminated s3cret":                   "SELECT '?'",
		"SELECT $q$unterminated s3cret":                 "SELECT '?'",
		`SELECT "quoted ident" FROM t`:                  `SELECT "quoted ident" FROM t`,
	} {
		got := redactSQL(in)
		if got != want {
			t.Errorf("redactSQL(%q) = %q, want %q", in, got, want)
		}
		if strings.Contains(got, "s3cret") {
			t.Errorf("redactSQL(%q) leaks the literal: %q", in, got)
		}
	}
}
