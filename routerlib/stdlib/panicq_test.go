package stdlib_test

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// TestPanicqHandlerPanics: through database/sql, a notice handler of the
// application's panics while a call reads its reply, and the application
// recovers. With the Router's pools of one connection, the same node's
// next call (on a replica, on the primary) must get its answer within
// 10 s: a call that left its pooled connection behind makes every later
// one wait forever. database/sql keeps the driver connection the panic
// passed as busy for good, so the next call opens another. (Not a
// transaction: a panic out of Tx.QueryContext leaves database/sql's own
// lock of the Tx held, and the deferred Rollback waits for it forever,
// with pgx's driver as well.)
func TestPanicqHandlerPanics(t *testing.T) {
	topo := routertest.Shared(t)
	ctx := context.Background()
	if err := topo.Primary.Exec(ctx, `CREATE OR REPLACE FUNCTION panicq_notice() RETURNS int LANGUAGE plpgsql AS $$
		BEGIN RAISE NOTICE 'panicq notice'; RETURN inet_server_port(); END $$`); err != nil {
		t.Fatal(err)
	}
	if err := topo.WaitReplayed(ctx); err != nil {
		t.Fatal(err)
	}
	calls := []struct {
		name string
		call func(ctx context.Context, db *sql.DB) error
	}{
		{"QueryContext", func(ctx context.Context, db *sql.DB) error {
			rows, err := db.QueryContext(ctx, "SELECT panicq_notice()")
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
			}
			return rows.Err()
		}},
		{"QueryRowContext", func(ctx context.Context, db *sql.DB) error {
			var n int
			return db.QueryRowContext(ctx, "SELECT panicq_notice() + $1::int", 1).Scan(&n)
		}},
		{"ExecContext", func(ctx context.Context, db *sql.DB) error {
			_, err := db.ExecContext(ctx, "SELECT panicq_notice() + $1::int", 1)
			return err
		}},
	}
	for _, where := range []string{"replica", "primary"} {
		for _, c := range calls {
			t.Run(where+"/"+c.name, func(t *testing.T) {
				db, _ := openDB(t, topo.Artifact(), routerlib.WithPoolConfig(func(_ artifact.Node, cfg *pgxpool.Config) {
					cfg.MaxConns = 1
					cfg.ConnConfig.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
						if n.Message == "panicq notice" {
							panic("panicq: the application's notice handler failed")
						}
					}
				}))
				ctx := context.Background()
				if where == "primary" {
					ctx = routerlib.Primary(ctx)
				}
				for i := 0; i < 3; i++ {
					panicked := false
					err := func() error {
						defer func() {
							if p := recover(); p != nil {
								panicked = true
							}
						}()
						cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
						defer cancel()
						return c.call(cctx, db)
					}()
					if !panicked {
						t.Fatalf("call %d: no panic (%v)", i, err)
					}
					cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
					var got int
					err = db.QueryRowContext(cctx, "SELECT $1::int", 7).Scan(&got)
					cancel()
					if err != nil || got != 7 {
						t.Fatalf("the %s's next call after a handler's panic %d: %d (%v), want 7 within 10 s", where, i, got, err)
					}
				}
			})
		}
	}
}
