package routerlib_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

type tenantKey struct{}

// TestKeptConnsRunPoolHooks: an application's pgxpool PrepareConn (set per
// acquire from the caller's context, the usual row-level-security tenant
// pattern) and AfterRelease run for every read, as they do with pgxpool
// alone: a read must never run under the previous caller's setting.
func TestKeptConnsRunPoolHooks(t *testing.T) {
	topo := routertest.Shared(t)
	var prepared, released atomic.Int64
	r := newRouter(t, oneReplica(topo, 4), routerlib.WithPoolConfig(func(_ artifact.Node, cfg *pgxpool.Config) {
		cfg.PrepareConn = func(ctx context.Context, c *pgx.Conn) (bool, error) {
			prepared.Add(1)
			tenant, _ := ctx.Value(tenantKey{}).(string)
			_, err := c.Exec(ctx, "SELECT set_config('app.tenant', $1, false)", tenant)
			return err == nil, err
		}
		cfg.AfterRelease = func(c *pgx.Conn) bool {
			released.Add(1)
			return true
		}
	}))
	for i, tenant := range []string{"alice", "bob", "carol", "dave"} {
		ctx := context.WithValue(context.Background(), tenantKey{}, tenant)
		var got string
		if err := r.QueryRow(ctx, "SELECT current_setting('app.tenant', true)").Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != tenant {
			t.Errorf("read %d for tenant %q ran as tenant %q (PrepareConn ran %d times, AfterRelease %d, for %d reads)", i, tenant, got, prepared.Load(), released.Load(), i+1)
		}
	}
}
