package routerlib

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// panicqCalls are the Router's calls, each running panicq_notice(),
// which raises the notice the application's handler panics on before
// its row is sent.
var panicqCalls = []struct {
	name string
	call func(ctx context.Context, r *Router) error
}{
	{"Query", func(ctx context.Context, r *Router) error {
		rows, err := r.Query(ctx, "SELECT panicq_notice()")
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
		}
		return rows.Err()
	}},
	{"QueryRows", func(ctx context.Context, r *Router) error {
		// A notice per row: the application's deferred Close reads the
		// rest of the reply, and the handler panics there again.
		rows, err := r.Query(ctx, "SELECT panicq_notice() FROM generate_series(1, 3)")
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
		}
		return rows.Err()
	}},
	{"QueryClose", func(ctx context.Context, r *Router) error {
		// The handler panics on the rows after the first, which the
		// application leaves to Close.
		rows, err := r.Query(ctx, "SELECT CASE WHEN g > 1 THEN panicq_notice() END FROM generate_series(1, 3) g")
		if err != nil {
			return err
		}
		defer rows.Close()
		rows.Next()
		return nil
	}},
	{"QueryRow", func(ctx context.Context, r *Router) error {
		var n int
		return r.QueryRow(ctx, "SELECT panicq_notice()").Scan(&n)
	}},
	{"Exec", func(ctx context.Context, r *Router) error {
		_, err := r.Exec(ctx, "SELECT panicq_notice()")
		return err
	}},
	{"ExecArgs", func(ctx context.Context, r *Router) error {
		_, err := r.Exec(ctx, "SELECT panicq_notice() + $1::int", 1)
		return err
	}},
	{"SendBatch", func(ctx context.Context, r *Router) error {
		b := &pgx.Batch{}
		b.Queue("SELECT panicq_notice()")
		br := r.SendBatch(ctx, b)
		defer br.Close()
		_, err := br.Exec()
		return err
	}},
	{"ReadOnlyTx", func(ctx context.Context, r *Router) error {
		tx, err := r.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
		if err != nil {
			return err
		}
		defer func() { _ = tx.Rollback(ctx) }()
		var n int
		return tx.QueryRow(ctx, "SELECT panicq_notice()").Scan(&n)
	}},
	{"Acquire", func(ctx context.Context, r *Router) error {
		c, err := r.Acquire(ctx)
		if err != nil {
			return err
		}
		defer c.Release()
		var n int
		return c.QueryRow(ctx, "SELECT panicq_notice()").Scan(&n)
	}},
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

// panicqRouter is a Router in mode mode on topo whose pools hold one
// connection each and whose notice handler panics on panicq_notice()'s
// notice.
func panicqRouter(t *testing.T, topo *routertest.Topology, mode string) *Router {
	t.Helper()
	a := topo.Artifact()
	a.Consistency.Mode = mode
	r, err := New(context.Background(), a, WithPoolConfig(func(_ artifact.Node, c *pgxpool.Config) {
		c.MaxConns = 1
		c.ConnConfig.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
			if n.Message == "panicq notice" {
				panic("panicq: the application's notice handler failed")
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
					r := panicqRouter(t, topo, mode)
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
						cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
						var got int
						err = r.QueryRow(cctx, "SELECT $1::int", 7).Scan(&got)
						cancel()
						if err != nil || got != 7 {
							t.Fatalf("the %s's next call after a handler's panic %d: %d (%v), want 7 within 10 s", where, i, got, err)
						}
					}
				})
			}
		}
	}
}
