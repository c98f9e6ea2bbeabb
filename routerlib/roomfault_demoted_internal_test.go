package routerlib

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// TestRoomfaultDemotedWriterNoWait: the declared primary is restarted as
// a standby, and no check has seen it yet (interval 1 min): the router
// still writes to it, and its role has no session left there (CONNECTION
// LIMIT, SQLSTATE 53300). A write through Exec, a Begin, a CopyFrom and
// an Acquire wait for room there (awaitRoom, connect_timeout 20 s). Then
// a check sees it in recovery. Promoted: the standby was promoted first,
// and the old primary follows it; the calls, not sent, must stop waiting
// and run on the promoted node. NotPromoted: the old primary follows the
// standby, and no node takes the writes; the calls must stop waiting and
// fail with ErrNoPrimary. Before, each waited all of connect_timeout on
// the old primary and failed with 53300 (the Begin failed at once with
// 53300, without waiting for room at all: pgxpool's BeginTx).
//
// The check is asked once every call has been refused and tries again
// (a dial of awaitRoom on the old primary, seen by a BeforeConnect that
// the application set): a fixed pause of 500 ms before it, on a loaded
// machine, could ask it before a call had reached the wait, and the test
// then did not exercise the wait it is about.
func TestRoomfaultDemotedWriterNoWait(t *testing.T) {
	t.Run("Promoted", func(t *testing.T) { demotedWriterNoWait(t, true) })
	t.Run("NotPromoted", func(t *testing.T) { demotedWriterNoWait(t, false) })
}

func demotedWriterNoWait(t *testing.T, promote bool) {
	ctx := context.Background()
	topo := routertest.Start(t, routertest.WithStandbys(1))
	old, promoted := topo.Primary, topo.Standbys[0]
	const role = "rf_dem"
	if err := old.Exec(ctx, "CREATE ROLE "+role+" LOGIN CONNECTION LIMIT 4; CREATE TABLE rf_dem_t (v int); GRANT SELECT, INSERT ON rf_dem_t TO "+role); err != nil {
		t.Fatal(err)
	}
	if err := topo.WaitReplayed(ctx); err != nil {
		t.Fatal(err)
	}
	a := topo.Artifact()
	// connect_timeout bounds each call's wait for room: long, so that all
	// four wait when the check comes, however slow the machine.
	a.Health = artifact.Health{Interval: "1m", Timeout: "1s", EjectAfter: 3, ReadmitAfter: 1, ConnectTimeout: "20s"}
	for i := range a.Nodes {
		a.Nodes[i].User = role
	}
	a.Pool.MinConns = 0
	// The monitor connects as postgres: its checks see the demotion
	// while the role has no session left.
	// The tries of each call (its name in its context, callKey) again for
	// room on the old primary (awaitRoom's dials), seen by a BeforeConnect
	// of the application's, which the router runs after its own
	// (refuseInRecovery): when each call first tried again, and how many
	// of its tries dialled once a check had seen the server in recovery.
	var (
		oldServer       atomic.Pointer[server]
		waitMu          sync.Mutex
		waitingSince    = map[string]time.Time{}
		triesInRecovery = map[string]int{}
	)
	waiting := make(chan string, 16) // a name for each call, once
	seeWaiting := WithPoolConfig(func(n artifact.Node, cfg *pgxpool.Config) {
		if n.Name != old.Name {
			return
		}
		cfg.BeforeConnect = func(ctx context.Context, _ *pgx.ConnConfig) error {
			name, ok := ctx.Value(callKey{}).(string)
			if !ok || ctx.Value(roomWaitKey{}) == nil {
				return nil
			}
			waitMu.Lock()
			defer waitMu.Unlock()
			if s := oldServer.Load(); s != nil && s.recovery.Load() {
				triesInRecovery[name]++
			}
			if _, seen := waitingSince[name]; !seen {
				waitingSince[name] = time.Now()
				waiting <- name
			}
			return nil
		}
	})
	r, err := New(ctx, a, seeWaiting, WithMonitorConfig(func(_ artifact.Node, cfg *pgx.ConnConfig) { cfg.User = "postgres" }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	if promote {
		if err := promoted.Promote(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := old.RestartAsStandby(ctx, promoted); err != nil {
		t.Fatal(err)
	}
	tt, err := r.enter()
	if err != nil {
		t.Fatal(err)
	}
	nodes := tt.nodes
	for _, n := range nodes {
		if n.name == old.Name {
			oldServer.Store(n.server)
		}
	}
	if w := tt.writer.Load(); w == nil || w.name != old.Name {
		t.Fatalf("the writer before any check saw the demotion: %v, want %s", w, old.Name)
	}
	tt.leave()
	// Every session the role has left on the old primary, a standby now.
	cfg, err := pgx.ParseConfig(old.DSN())
	if err != nil {
		t.Fatal(err)
	}
	cfg.User = role
	for {
		c, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) || pgErr.Code != "53300" {
				t.Fatal(err)
			}
			break
		}
		t.Cleanup(func() { c.Close(context.Background()) })
	}
	calls := map[string]func(ctx context.Context) error{
		"Exec": func(ctx context.Context) error {
			_, err := r.Exec(ctx, "INSERT INTO rf_dem_t VALUES (1)")
			return err
		},
		"Begin": func(ctx context.Context) error {
			tx, err := r.Begin(ctx)
			if err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, "INSERT INTO rf_dem_t VALUES (2)"); err != nil {
				tx.Rollback(ctx)
				return err
			}
			return tx.Commit(ctx)
		},
		"CopyFrom": func(ctx context.Context) error {
			_, err := r.CopyFrom(ctx, pgx.Identifier{"rf_dem_t"}, []string{"v"}, pgx.CopyFromRows([][]any{{3}}))
			return err
		},
		"SendBatch": func(ctx context.Context) error {
			b := &pgx.Batch{}
			b.Queue("INSERT INTO rf_dem_t VALUES (5)")
			b.Queue("INSERT INTO rf_dem_t VALUES (6)")
			return r.SendBatch(ctx, b).Close()
		},
		"SendBatchTx": func(ctx context.Context) error {
			b := &pgx.Batch{}
			b.Queue("BEGIN")
			b.Queue("INSERT INTO rf_dem_t VALUES (7)")
			b.Queue("COMMIT")
			return r.SendBatch(ctx, b).Close()
		},
		"Acquire": func(ctx context.Context) error {
			c, err := r.Acquire(ctx)
			if err != nil {
				return err
			}
			defer c.Release()
			_, err = c.Exec(ctx, "INSERT INTO rf_dem_t VALUES (4)")
			return err
		},
	}
	type result struct {
		name string
		err  error
		at   time.Time
	}
	done := make(chan result, len(calls))
	for name, call := range calls {
		go func() {
			err := call(context.WithValue(ctx, callKey{}, name))
			done <- result{name, err, time.Now()}
		}()
	}
	// Each waits for room on the old primary (awaitRoom) within
	// connect_timeout.
	for range calls {
		select {
		case <-waiting:
		case res := <-done:
			t.Fatalf("%s returned before every call waited for room on the old primary: %v", res.name, res.err)
		}
	}
	checked := time.Now()
	for _, n := range nodes {
		n.askCheck()
	}
	for range calls {
		res := <-done
		waitMu.Lock()
		waited, tries := res.at.Sub(waitingSince[res.name]), triesInRecovery[res.name]
		waitMu.Unlock()
		t.Logf("%s returned %v after the check (%v after its first try again; %d tries dialled once the server was seen in recovery): %v",
			res.name, res.at.Sub(checked), waited, tries, res.err)
		// A call that waits on tries again every 200 ms until
		// connect_timeout, and its router then finds no primary either:
		// its tries, not the time it took, tell it from one the check
		// ended. At most one dials after the check: the one that passed
		// refuseInRecovery just before the check's result came.
		switch {
		case tries > 1:
			t.Errorf("%s went on waiting for room on a node seen in recovery: %d of its tries dialled after the check saw it (took %v): %v",
				res.name, tries, waited, res.err)
		case promote && res.err != nil:
			t.Errorf("%s failed after a check saw the old primary in recovery and the promoted node taking the writes: %v", res.name, res.err)
		case !promote && !errors.Is(res.err, ErrNoPrimary):
			t.Errorf("%s, with no node taking the writes, did not fail with ErrNoPrimary: %v", res.name, res.err)
		}
	}
	if promote {
		// Each value once: nothing waited for room on the old primary ran
		// there too, nor twice on the promoted node.
		var got []int
		if err := promoted.QueryRow(ctx, "SELECT coalesce(array_agg(v ORDER BY v), '{}') FROM rf_dem_t").Scan(&got); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != "[1 2 3 4 5 6 7]" {
			t.Errorf("rows on the promoted node: %v, want [1 2 3 4 5 6 7]", got)
		}
	}
	if st, _ := r.NodeStat(promoted.Name); st.Writer != promote {
		t.Errorf("the standby (promoted: %v) takes the writes: %v", promote, st.Writer)
	}
}

// callKey is the name of a call of demotedWriterNoWait, in its context.
type callKey struct{}
