package routerlib_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// serverVersionNum is the node's server_version_num (170002 for 17.2).
func serverVersionNum(t *testing.T, n *routertest.Node) int {
	t.Helper()
	var v int
	if err := n.QueryRow(context.Background(), "SELECT current_setting('server_version_num')::int").Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestTransactionTimeoutIsTheCallers: PostgreSQL 17's transaction_timeout
// ends the session of a statement that runs too long with FATAL 25P04. That
// is the statement's fault, as statement_timeout's ERROR 57014 is: the
// caller gets the server's error at once, the read is not run again on
// every other node (where it would only time out again), no node leaves
// rotation or stops taking writes, and a write's error does not say it may
// have committed (the server rolled it back).
func TestTransactionTimeoutIsTheCallers(t *testing.T) {
	topo := routertest.Shared(t)
	if v := serverVersionNum(t, topo.Primary); v < 170000 {
		t.Skipf("transaction_timeout is PostgreSQL 17's; the server is %d", v)
	}
	ctx := context.Background()
	if err := topo.Primary.Exec(ctx, "CREATE TABLE IF NOT EXISTS timed_out (x int)"); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	logs := &syncBuffer{}
	a := topo.Artifact()
	a.ReadPolicy = artifact.ReadPolicy{Fallback: artifact.FallbackPrimary}
	r := newRouter(t, fastHealth(a, interval), routerlib.WithTracer(rec),
		routerlib.WithLogger(slog.New(slog.NewTextHandler(logs, nil))),
		routerlib.WithPoolConfig(func(_ artifact.Node, cfg *pgxpool.Config) {
			cfg.ConnConfig.RuntimeParams["transaction_timeout"] = "300ms"
		}))
	for i, call := range []struct {
		name string
		ctx  context.Context
		sql  string
	}{
		{"read", ctx, "SELECT 1 FROM pg_sleep(1)"},
		{"read on the primary", routerlib.Primary(ctx), "SELECT 1 FROM pg_sleep(1)"},
		{"write", ctx, "INSERT INTO timed_out SELECT 1 FROM pg_sleep(1)"},
	} {
		rec.reset()
		start := time.Now()
		_, err := r.Exec(call.ctx, call.sql)
		took := time.Since(start)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "25P04" {
			t.Fatalf("%s past transaction_timeout: %v, want the server's FATAL 25P04", call.name, err)
		}
		if len(rec.decisions) != 1 {
			t.Errorf("%s: %d routing decisions %+v, want 1: the statement's own timeout is not run again elsewhere", call.name, len(rec.decisions), rec.decisions)
		}
		if strings.Contains(err.Error(), "may have committed") {
			t.Errorf("%s: %v: the server rolled the transaction back", call.name, err)
		}
		t.Logf("%d %s: %v after %v", i, call.name, err, took)
	}
	var rows int
	if err := topo.Primary.QueryRow(ctx, "SELECT count(*) FROM timed_out").Scan(&rows); err != nil || rows != 0 {
		t.Errorf("the timed-out INSERT left %d rows (%v)", rows, err)
	}
	if out := logs.String(); strings.Contains(out, "out of rotation") || strings.Contains(out, "does not answer") {
		t.Errorf("a statement's transaction_timeout was taken for a node fault:\n%s", out)
	}
	time.Sleep(2 * interval)
	for _, s := range r.Stat() {
		if !s.Healthy {
			t.Errorf("%s unhealthy after statements hit transaction_timeout: %s", s.Name, s.LastError)
		}
		if s.DeclaredRole == "replica" && !s.Readable {
			t.Errorf("replica %s out of rotation (%s) after statements hit transaction_timeout", s.Name, s.Ejected)
		}
		if s.DeclaredRole == "primary" && !s.Writer {
			t.Errorf("the primary no longer takes writes after statements hit transaction_timeout")
		}
	}
}
