package routerlib_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// lockedBuffer is a log destination safe for the router's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestLoggedSQLHasNoLiteral: the one log line that carries SQL (a replica
// rejecting a hidden write, retried on the primary) masks every string
// constant, numeric constant and comment, also behind the traps issue 9
// found: a backslash at the end of a standard string, a quote in a --
// comment, a quote in a quoted identifier, and secrets in E-strings,
// dollar quotes, comments and numbers.
func TestLoggedSQLHasNoLiteral(t *testing.T) {
	topo := routertest.Shared(t)
	ctx := context.Background()
	for _, sql := range []string{
		"CREATE TABLE IF NOT EXISTS rs_secret_log (a text, b text)",
		"CREATE OR REPLACE FUNCTION rs_secret_write(a text, b text) RETURNS int LANGUAGE sql AS $$ INSERT INTO rs_secret_log VALUES (a, b); SELECT 1 $$",
	} {
		if err := topo.Primary.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	waitReplayed(t, topo)
	logs := &lockedBuffer{}
	r := newRouter(t, topo.Artifact(), routerlib.WithLogger(slog.New(slog.NewTextHandler(logs, nil))))
	statements := []string{
		`SELECT rs_secret_write('C:\', 'topsecret-1')`,
		"SELECT -- it's a comment\n rs_secret_write('x', 'topsecret-2')",
		`SELECT rs_secret_write(t."it's", 'topsecret-3') FROM (SELECT 'x' AS "it's") t`,
		`SELECT rs_secret_write(E'it\'s', E'topsecret-4\\')`,
		`SELECT rs_secret_write($$x$$, $tag$topsecret-5 $$ $tag$)`,
		"SELECT rs_secret_write('x', 'y') /* token=topsecret-6 */",
		"SELECT rs_secret_write('x', 'y') -- topsecret-7",
		"SELECT rs_secret_write('x', 982451653::text)",
	}
	for _, sql := range statements {
		if _, err := r.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	out := logs.String()
	if n := strings.Count(out, "a replica rejected a statement as a write"); n != len(statements) {
		t.Fatalf("%d retries logged, want %d (every statement is a hidden write):\n%s", n, len(statements), out)
	}
	if strings.Contains(out, "topsecret") || strings.Contains(out, "982451653") {
		t.Errorf("a literal reached the log:\n%s", out)
	}
	if !strings.Contains(out, `rs_secret_write('?', '?')`) {
		t.Errorf("the log does not show the statement with its constants masked:\n%s", out)
	}
}
