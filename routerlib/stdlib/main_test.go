package stdlib_test

import (
	"context"
	"database/sql"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	pgxstdlib "github.com/jackc/pgx/v5/stdlib"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/stdlib"
)

func TestMain(m *testing.M) { os.Exit(routertest.Main(m, routertest.WithStandbys(2))) }

// openDB makes a Router for a and a *sql.DB on it, both closed when the
// test ends.
func openDB(tb testing.TB, a artifact.Topology, opts ...routerlib.Option) (*sql.DB, *routerlib.Router) {
	tb.Helper()
	r, err := routerlib.New(context.Background(), a, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(r.Close)
	db := sql.OpenDB(stdlib.NewConnector(r))
	tb.Cleanup(func() { db.Close() })
	return db, r
}

// pgxStdlibDB opens a *sql.DB on n through pgx's own database/sql driver,
// to compare with; it is closed when the test ends.
func pgxStdlibDB(tb testing.TB, n *routertest.Node, mode ...pgx.QueryExecMode) *sql.DB {
	tb.Helper()
	cfg, err := pgx.ParseConfig(n.DSN())
	if err != nil {
		tb.Fatal(err)
	}
	for _, m := range mode {
		cfg.DefaultQueryExecMode = m
	}
	db := pgxstdlib.OpenDB(*cfg)
	tb.Cleanup(func() { db.Close() })
	return db
}

// fastHealth makes the monitor act on the first failed check.
func fastHealth(a artifact.Topology, interval time.Duration) artifact.Topology {
	a.Health = artifact.Health{
		Interval:     artifact.Duration(interval.String()),
		Timeout:      artifact.Duration((2 * interval).String()),
		EjectAfter:   1,
		ReadmitAfter: 1,
	}
	return a
}

// port says which server ran a query: every routertest node has its own.
func port(tb testing.TB, ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, query string, args ...any) int {
	tb.Helper()
	var p int
	if err := q.QueryRowContext(ctx, query, args...).Scan(&p); err != nil {
		tb.Fatalf("%s: %v", query, err)
	}
	return p
}

func ports(nodes ...*routertest.Node) map[int]string {
	m := map[int]string{}
	for _, n := range nodes {
		m[n.Port] = n.Name
	}
	return m
}

// waitReplayed waits until every standby has replayed the primary's
// current position.
func waitReplayed(tb testing.TB, topo *routertest.Topology) {
	tb.Helper()
	if err := topo.WaitReplayed(context.Background()); err != nil {
		tb.Fatal(err)
	}
}

// recorder is a Tracer that keeps every decision.
type recorder struct {
	mu        sync.Mutex
	decisions []routerlib.Decision
}

func (rec *recorder) TraceRoute(_ context.Context, d routerlib.Decision) {
	rec.mu.Lock()
	rec.decisions = append(rec.decisions, d)
	rec.mu.Unlock()
}

func (rec *recorder) take() []routerlib.Decision {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	d := rec.decisions
	rec.decisions = nil
	return d
}
