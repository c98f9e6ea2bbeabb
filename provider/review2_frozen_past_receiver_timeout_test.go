package provider

import (
	"context"
	"testing"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/pgsql"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// 89d8293 refuses reset_on_destroy while the standby's primary is frozen
// (it accepts the probe's connection and does not answer): it comes back,
// and its synchronous_standby_names may need the standby. That holds only
// while the standby still streams: resetBlocksCommits asks nothing of a
// standby whose WAL receiver does not stream ("cut off from nothing"), and
// a primary frozen for longer than the standby's wal_receiver_timeout (60 s
// by default) has ended the WAL receiver's stream by then. The destroy then
// resets primary_conninfo with no warning at all, and once the primary
// thaws every commit there waits for a standby that will never connect
// again. A primary that crashed or is restarting does the same: its
// standby stops streaming at once. (Shown with wal_receiver_timeout 2s.)
func TestReview2StandbyResetPrimaryFrozenPastReceiverTimeout(t *testing.T) {
	testAccPreCheck(t)
	topo := routertest.Start(t, routertest.WithStandbys(1))
	primary, standby := topo.Primary, topo.Standbys[0]
	ctx := context.Background()
	t.Cleanup(func() {
		_ = primary.Thaw()
		for _, sql := range []string{`ALTER SYSTEM RESET synchronous_standby_names`, `SELECT pg_reload_conf()`} {
			_ = primary.Exec(ctx, sql)
		}
	})
	execSQL(t, standby, "postgres", `ALTER SYSTEM SET wal_receiver_timeout = '2s'`)
	execSQL(t, standby, "postgres", `SELECT pg_reload_conf()`)
	execSQL(t, primary, "postgres", `ALTER SYSTEM SET synchronous_standby_names = `+pgsql.Literal(pgsql.Ident(standby.Name)))
	execSQL(t, primary, "postgres", `SELECT pg_reload_conf()`)
	r := &standbyResource{server: newServer(connSettings{Host: standby.Host, Port: int64(standby.Port), Database: "postgres", Username: "postgres", SSLMode: "disable"})}
	pool, err := r.server.Pool(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeTestPool(pool) })
	waitFor(t, 30*time.Second, standby.Name+" to stream", func() bool {
		return queryValue[string](t, standby, "postgres", `SELECT coalesce((SELECT status FROM pg_stat_wal_receiver), 'none')`) == "streaming"
	})
	if look := r.resetBlocksCommits(ctx, pool); !look.refuses() {
		t.Fatalf("the primary needs the standby and answers: want the refusal, got %q", look.summary)
	}

	if err := primary.Freeze(); err != nil {
		t.Fatal(err)
	}
	var status string
	waitFor(t, 30*time.Second, standby.Name+"'s WAL receiver to give the frozen primary up", func() bool {
		status = queryValue[string](t, standby, "postgres", `SELECT coalesce((SELECT status FROM pg_stat_wal_receiver), 'none')`)
		return status != "streaming"
	})
	t.Logf("WAL receiver status with the primary frozen: %s", status)
	look := r.resetBlocksCommits(ctx, pool)
	if !look.refuses() {
		t.Errorf("the primary is frozen (it comes back needing the standby): want the reset refused, got %q (unchecked %v, silent %v) %s",
			look.summary, look.unchecked, look.silent, look.detail)
	}
	t.Logf("%s: %s", look.summary, look.detail)
}
