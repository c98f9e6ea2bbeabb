package routerlib_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// TestRoomfaultPrimaryReadTerminated: a read that runs on the primary only
// because the policy sends every read there (consistency strong), or
// because the caller asked (Primary, in a read_your_writes session: the
// call goes through the capture path, which runs writes), has its
// session ended by pg_terminate_backend mid-statement. The statement is
// a read the classifier knows (a SELECT of no primary-only function): it
// must fail as a read does, naming the node, never as a write that may
// have committed (ErrMaybeCommitted). Exec, Query (before and after a
// row), QueryRow and SendBatch each.
func TestRoomfaultPrimaryReadTerminated(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(1))
	for _, mode := range []struct {
		name string
		mode string
		ctx  func(context.Context) context.Context
	}{
		{"Strong", artifact.ModeStrong, func(ctx context.Context) context.Context { return ctx }},
		{"RYWPrimary", artifact.ModeReadYourWrites, func(ctx context.Context) context.Context {
			return routerlib.Primary(routerlib.WithSession(ctx, routerlib.NewSession(0)))
		}},
	} {
		a := steadyHealth(topo.Artifact(), 200*time.Millisecond)
		a.Consistency.Mode = mode.mode
		r := newRouter(t, a)
		for _, call := range []struct {
			name     string
			afterRow bool // the statement sends a row before it sleeps
			run      func(ctx context.Context, sql string) error
		}{
			{"Exec", false, func(ctx context.Context, sql string) error {
				_, err := r.Exec(ctx, sql)
				return err
			}},
			{"Query", false, queryAll(r)},
			{"QueryAfterRow", true, queryAll(r)},
			{"SendBatch", false, func(ctx context.Context, sql string) error {
				b := &pgx.Batch{}
				b.Queue(sql)
				br := r.SendBatch(ctx, b)
				_, err := br.Exec()
				if cerr := br.Close(); err == nil {
					err = cerr
				}
				return err
			}},
			{"QueryRow", false, func(ctx context.Context, sql string) error {

				var v int
				return r.QueryRow(ctx, sql).Scan(&v)
			}},
		} {
			t.Run(mode.name+"/"+call.name, func(t *testing.T) {
				marker := "rf_cut_" + strings.ToLower(mode.name+"_"+call.name)
				sql := "SELECT 1 FROM pg_sleep(5) /* " + marker + " */"
				if call.afterRow {
					sql = "SELECT 1 UNION ALL SELECT 1 FROM pg_sleep(5) /* " + marker + " */"
				}
				done := make(chan error, 1)
				go func() { done <- call.run(mode.ctx(context.Background()), sql) }()
				// Ended while it sleeps (wait_event PgSleep): the statement
				// runs. Its text is in pg_stat_activity from pgx's round
				// trip that prepares it (SendBatch's, the statement not
				// cached yet), and a session ended then had sent none of
				// the batch, which the router rightly sends again: it ran
				// the whole sleep and succeeded (Strong/SendBatch, 1 of 28
				// runs under load).
				terminated := false
				for deadline := time.Now().Add(4 * time.Second); !terminated && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
					if err := topo.Primary.QueryRow(context.Background(),
						"SELECT count(pg_terminate_backend(pid)) > 0 FROM pg_catalog.pg_stat_activity WHERE query LIKE '%"+marker+"%' AND state = 'active' AND wait_event = 'PgSleep' AND pid <> pg_backend_pid()").Scan(&terminated); err != nil {
						t.Fatal(err)
					}
				}
				if !terminated {
					t.Fatal("the read never ran on the primary")
				}
				err := <-done
				t.Logf("%v", err)
				if err == nil {
					t.Fatal("the read succeeded although its session was terminated")
				}
				if errors.Is(err, routerlib.ErrMaybeCommitted) || strings.Contains(err.Error(), "may have committed") {
					t.Errorf("a read says it may have committed: %v", err)
				}
				if !strings.Contains(err.Error(), topo.Primary.Name) {
					t.Errorf("the error does not name the node %q: %v", topo.Primary.Name, err)
				}
			})
		}
	}
}

// queryAll reads every row of sql through r.Query.
func queryAll(r *routerlib.Router) func(ctx context.Context, sql string) error {
	return func(ctx context.Context, sql string) error {
		rows, err := r.Query(ctx, sql)
		if err != nil {
			return err
		}
		for rows.Next() {
		}
		rows.Close()
		return rows.Err()
	}
}
