package provider

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// autoConfCases are values as a setting can hold them, each written to
// postgresql.auto.conf by ALTER SYSTEM on a real server. ALTER SYSTEM
// writes a value between single quotes, a quote and a backslash doubled
// (escape_single_quotes_ascii); '#' inside the quotes is no comment, and
// non-ASCII bytes are written as they are.
var autoConfCases = []struct {
	name, value string
	escaped     bool // holds a quote or a backslash, which ALTER SYSTEM doubles
}{
	{"token", "0123456789abcdef0123456789abcdef", false},
	{"hash", "a # not a comment", false},
	{"hash_first", "#0123", false},
	{"non_ascii", "ünïcødé ✓ 東京", false},
	{"equals", "k=v = w", false},
	{"spaces", "  padded  ", false},
	{"quote", "it's", true},
	{"quote_last", "x'", true},
	{"quote_first", "'x", true},
	{"backslash", `back\slash`, true},
	{"backslash_quote", `a\'b`, true},
	{"all", `mix '#\ ü`, true},
}

// autoConfSetting is the custom setting a case writes.
func autoConfSetting(name string) string { return "pgreplication_subtests.v_" + name }

// writeAutoConfCases writes every case with ALTER SYSTEM on n (a custom
// setting is set in the session first, as PostgreSQL 15 and 16 need for
// ALTER SYSTEM of one), reloads, and waits until the server runs with each
// value exactly: the file is then as the server read it.
func writeAutoConfCases(t *testing.T, n *routertest.Node) {
	t.Helper()
	ctx := context.Background()
	conn, err := n.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, c := range autoConfCases {
		literal := "'" + strings.ReplaceAll(c.value, "'", "''") + "'" // standard_conforming_strings: a backslash is itself
		for _, sql := range []string{`SELECT set_config('` + autoConfSetting(c.name) + `', ` + literal + `, false)`,
			`ALTER SYSTEM SET ` + autoConfSetting(c.name) + ` = ` + literal} {
			if _, err := conn.Exec(ctx, sql); err != nil {
				t.Fatalf("%s: %v", sql, err)
			}
		}
	}
	execSQL(t, n, "postgres", `SELECT pg_reload_conf()`)
	for _, c := range autoConfCases {
		waitFor(t, 10*time.Second, autoConfSetting(c.name)+" in effect", func() bool {
			return queryValue[string](t, n, "postgres", `SELECT coalesce(current_setting($1, true), '')`, autoConfSetting(c.name)) == c.value
		})
	}
}

// autoConfValue reads back, from the postgresql.auto.conf that ALTER
// SYSTEM wrote on a real server, the value it wrote, for the values
// without a quote or a backslash: the owner tokens (hexadecimal) and the
// values where '#', '=', spaces or non-ASCII bytes could fool a reader.
func TestAccSubtestsAutoConfValueRoundTrip(t *testing.T) {
	t.Parallel()
	testAccPreCheck(t)
	n := routertest.Start(t, routertest.WithStandbys(0)).Primary // ALTER SYSTEM: not the shared one
	writeAutoConfCases(t, n)
	text := queryValue[string](t, n, "postgres", `SELECT pg_read_file('postgresql.auto.conf')`)
	for _, c := range autoConfCases {
		if c.escaped {
			continue // TestAccSubtestsAutoConfValueEscapes
		}
		if got := autoConfValue(text, autoConfSetting(c.name)); got != c.value {
			t.Errorf("autoConfValue(%s) = %q, want %q, as ALTER SYSTEM wrote it", autoConfSetting(c.name), got, c.value)
		}
	}
	if t.Failed() {
		t.Logf("postgresql.auto.conf:\n%s", text)
	}
}

// TestAccSubtestsAutoConfValueEscapes: autoConfValue undoes ALTER SYSTEM's
// escaping, so a value with a quote or a backslash reads back as the server
// reads it ("it's", not with its quote doubled; "x'", not "x"), and
// fileOwner's two ways to read the file (pg_read_file through
// autoConfValue, a superuser's; pg_file_settings, a role granted it) agree.
func TestAccSubtestsAutoConfValueEscapes(t *testing.T) {
	t.Parallel()
	testAccPreCheck(t)
	n := routertest.Start(t, routertest.WithStandbys(0)).Primary
	writeAutoConfCases(t, n)
	text := queryValue[string](t, n, "postgres", `SELECT pg_read_file('postgresql.auto.conf')`)
	// The two readers of fileOwner: the file as a superuser reads it, and
	// pg_file_settings as a role granted only that (the provider's
	// pendingSettingsPrivilegeList) reads it.
	role := "subtests_file_settings"
	execSQL(t, n, "postgres", `CREATE ROLE `+role+` LOGIN`)
	for _, p := range pendingSettingsPrivilegeList {
		execSQL(t, n, "postgres", fmt.Sprintf(p.grant, role))
	}
	ctx := context.Background()
	readers := map[string]*server{
		"pg_read_file":     newServer(connSettings{Host: n.Host, Port: int64(n.Port), Database: "postgres", Username: "postgres", SSLMode: "disable"}),
		"pg_file_settings": newServer(connSettings{Host: n.Host, Port: int64(n.Port), Database: "postgres", Username: role, SSLMode: "disable"}),
	}
	for how, s := range readers {
		pool, err := s.Pool(ctx, "postgres")
		if err != nil {
			t.Fatal(err)
		}
		defer closeTestPool(pool)
		for _, c := range autoConfCases {
			got, ok := s.fileOwner(ctx, pool, autoConfSetting(c.name))
			if !ok || got != c.value {
				t.Errorf("fileOwner(%s) through %s = %q (read: %t), want %q as the server has it", autoConfSetting(c.name), how, got, ok, c.value)
			}
		}
	}
	for _, c := range autoConfCases {
		if got := autoConfValue(text, autoConfSetting(c.name)); got != c.value {
			t.Errorf("autoConfValue(%s) = %q, want %q", autoConfSetting(c.name), got, c.value)
		}
	}
	if t.Failed() {
		t.Logf("postgresql.auto.conf:\n%s", text)
	}
}
