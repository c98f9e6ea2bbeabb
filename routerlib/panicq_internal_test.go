package routerlib

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// A panicqCall is one of the Router's calls, running sql (with args),
// whose statement runs panicq_notice(): the notice the application's
// handler acts on is raised before the call's row is sent.
type panicqCall struct {
	name string
	sql  string
	args []any
	run  func(ctx context.Context, r *Router, sql string, args []any) error
}

func (c panicqCall) call(ctx context.Context, r *Router) error { return c.run(ctx, r, c.sql, c.args) }

// The ways of running a panicqCall's statement.
var (
	queryAll = func(ctx context.Context, r *Router, sql string, args []any) error {
		return drainRows(r.Query(ctx, sql, args...)) // rywpath_drills_internal_test.go
	}
	queryFirst = func(ctx context.Context, r *Router, sql string, args []any) error {
		// The rows after the first are left to Close.
		rows, err := r.Query(ctx, sql, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		rows.Next()
		return nil
	}
	queryRow = func(ctx context.Context, r *Router, sql string, args []any) error {
		var n int
		return r.QueryRow(ctx, sql, args...).Scan(&n)
	}
	execCall = func(ctx context.Context, r *Router, sql string, args []any) error {
		_, err := r.Exec(ctx, sql, args...)
		return err
	}
	sendBatch = func(ctx context.Context, r *Router, sql string, args []any) error {
		b := &pgx.Batch{}
		b.Queue(sql, args...)
		br := r.SendBatch(ctx, b)
		defer br.Close()
		_, err := br.Exec()
		return err
	}
	readOnlyTx = func(ctx context.Context, r *Router, sql string, args []any) error {
		tx, err := r.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
		if err != nil {
			return err
		}
		defer func() { _ = tx.Rollback(ctx) }()
		var n int
		return tx.QueryRow(ctx, sql, args...).Scan(&n)
	}
	acquired = func(ctx context.Context, r *Router, sql string, args []any) error {
		c, err := r.Acquire(ctx)
		if err != nil {
			return err
		}
		defer c.Release()
		var n int
		return c.QueryRow(ctx, sql, args...).Scan(&n)
	}
)

// panicqCalls are the Router's calls, each reading panicq_notice(). The
// first four are the Query and QueryRow ones.
var panicqCalls = []panicqCall{
	{"Query", "SELECT panicq_notice()", nil, queryAll},
	// A notice per row: the application's deferred Close reads the rest
	// of the reply, and the handler panics there again.
	{"QueryRows", "SELECT panicq_notice() FROM generate_series(1, 3)", nil, queryAll},
	// The handler panics on the rows after the first, which the
	// application leaves to Close.
	{"QueryClose", "SELECT CASE WHEN g > 1 THEN panicq_notice() END FROM generate_series(1, 3) g", nil, queryFirst},
	{"QueryRow", "SELECT panicq_notice()", nil, queryRow},
	{"Exec", "SELECT panicq_notice()", nil, execCall},
	{"ExecArgs", "SELECT panicq_notice() + $1::int", []any{1}, execCall},
	{"SendBatch", "SELECT panicq_notice()", nil, sendBatch},
	{"ReadOnlyTx", "SELECT panicq_notice()", nil, readOnlyTx},
	{"Acquire", "SELECT panicq_notice()", nil, acquired},
}

// answersNext returns nil when the next call on ctx's side (a replica,
// or the primary) gets its answer within 10 s: a call that left its
// connection behind, in pools of one connection, makes it wait forever.
func answersNext(ctx context.Context, r *Router) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var got int
	if err := r.QueryRow(ctx, "SELECT $1::int", 7).Scan(&got); err != nil {
		return err
	}
	if got != 7 {
		return fmt.Errorf("%d, want 7", got)
	}
	return nil
}

// panicqTopology is the shared topology with panicq_notice() on every
// node.
func panicqTopology(t *testing.T) *routertest.Topology {
	t.Helper()
	topo := routertest.Shared(t)
	ctx := context.Background()
	if err := topo.Primary.Exec(ctx, `CREATE OR REPLACE FUNCTION panicq_notice() RETURNS int LANGUAGE plpgsql AS $$
		BEGIN RAISE NOTICE 'panicq notice'; RETURN inet_server_port(); END $$`); err != nil {
		t.Fatal(err)
	}
	if err := topo.WaitReplayed(ctx); err != nil {
		t.Fatal(err)
	}
	return topo
}

// panicPanicq is panicqRouter's handler that panics.
func panicPanicq() { panic("panicq: the application's notice handler failed") }

// panicqRouter is a Router on topo, in mode mode ("" for the file's),
// whose pools hold one connection each and whose notice handler runs
// handler on panicq_notice()'s notice.
func panicqRouter(t *testing.T, topo *routertest.Topology, mode string, handler func()) *Router {
	t.Helper()
	a := topo.Artifact()
	if mode != "" {
		a.Consistency.Mode = mode
	}
	r, err := New(context.Background(), a, WithPoolConfig(func(_ artifact.Node, c *pgxpool.Config) {
		c.MaxConns = 1
		c.ConnConfig.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
			if n.Message == "panicq notice" {
				handler()
			}
		}
	}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

// TestPanicqHandlerPanics: a notice handler of the application's panics
// while a call reads its reply, and the application recovers. With pools
// of one connection, the same node's next call (on a replica, on the
// primary) must get a connection and its answer within 10 s: a call that
// left its connection behind makes every later one wait forever.
func TestPanicqHandlerPanics(t *testing.T) {
	topo := panicqTopology(t)
	for _, mode := range []string{artifact.ModeEventual} {
		for _, where := range []string{"replica", "primary"} {
			for _, c := range panicqCalls {
				t.Run(mode+"/"+where+"/"+c.name, func(t *testing.T) {
					r := panicqRouter(t, topo, mode, panicPanicq)
					ctx := context.Background()
					if where == "primary" {
						ctx = Primary(ctx)
					}
					for i := 0; i < 3; i++ {
						panicked := false
						err := func() (err error) {
							defer func() {
								if p := recover(); p != nil {
									panicked = true
								}
							}()
							cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
							defer cancel()
							return c.call(cctx, r)
						}()
						if !panicked {
							t.Fatalf("call %d: no panic (%v)", i, err)
						}
						if err := answersNext(ctx, r); err != nil {
							t.Fatalf("the %s's next call after a handler's panic %d: %v, want 7 within 10 s", where, i, err)
						}
					}
				})
			}
		}
	}
}
