package routerlib_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// keptWritesTable creates a table of its own for a test's writes on the
// shared topology's primary, and drops it after.
func keptWritesTable(t *testing.T, topo *routertest.Topology) string {
	t.Helper()
	table := fmt.Sprintf("kept_writes_%d", time.Now().UnixNano())
	ctx := context.Background()
	if err := topo.Primary.Exec(ctx, "CREATE TABLE "+table+" (id serial PRIMARY KEY, pid int)"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = topo.Primary.Exec(context.Background(), "DROP TABLE "+table) })
	return table
}

// TestKeptWriterSkipsPgxpool: read-your-writes writes one after another,
// and plain writes, take the connection the primary kept from the last
// one, not pgxpool's, and Stat counts the kept connection idle, as it is.
// The writes run on one backend, and each still moves its session's
// position past its commit.
func TestKeptWriterSkipsPgxpool(t *testing.T) {
	topo := routertest.Shared(t)
	a := oneReplica(topo, 4)
	a.Consistency.Mode = artifact.ModeReadYourWrites
	r := newRouter(t, a)
	table := keptWritesTable(t, topo)
	primary := a.Nodes[0].Name
	ctx := context.Background()
	insert := "INSERT INTO " + table + " (pid) VALUES (pg_backend_pid())"
	s := &routerlib.Session{}
	sctx := routerlib.WithSession(ctx, s)
	if _, err := r.Exec(sctx, insert); err != nil {
		t.Fatal(err)
	}
	before, _ := r.NodeStat(primary)
	const writes = 50
	for i := range writes {
		last := s.LSN()
		ctx := ctx
		if i%2 == 0 {
			ctx = sctx
		}
		if _, err := r.Exec(ctx, insert); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		if i%2 == 0 && s.LSN() <= last {
			t.Fatalf("write %d: the session's position stayed at %v", i, last)
		}
	}
	after, _ := r.NodeStat(primary)
	// A connection goes back to pgxpool every readConnsTick, so a slow
	// machine sees a few acquires; one a write is what pgxpool alone does.
	if n := after.Pool.AcquireCount - before.Pool.AcquireCount; n >= writes/2 {
		t.Errorf("%d writes acquired %d connections from pgxpool, want the kept one reused", writes, n)
	}
	if k := r.KeptWritesForTest(primary); k != 1 {
		t.Errorf("after the writes the primary keeps %d connections, want 1", k)
	}
	if after.Pool.AcquiredConns != 0 || after.Pool.IdleConns < 1 {
		t.Errorf("Stat after the writes: %d acquired, %d idle; want 0 acquired (the kept connection is idle)", after.Pool.AcquiredConns, after.Pool.IdleConns)
	}
	var pids int
	if err := topo.Primary.QueryRow(ctx, "SELECT count(DISTINCT pid) FROM "+table).Scan(&pids); err != nil {
		t.Fatal(err)
	}
	if pids > writes/4 {
		t.Errorf("%d writes ran on %d backends, want the kept one's mostly", writes+1, pids)
	}
	awaitKeptGoneBack(t, r, primary, r.KeptWritesForTest)
}

// TestKeptWriterServesOtherCalls: with one connection per node, the one
// the primary keeps between writes is the one every other call on the
// primary takes (a transaction, a batch, Acquire, a write returning rows,
// a read-your-writes write and a plain one): nothing waits in pgxpool for
// the connection kept, whichever call comes first, alone or from several
// goroutines at once.
func TestKeptWriterServesOtherCalls(t *testing.T) {
	topo := routertest.Shared(t)
	a := oneReplica(topo, 1)
	a.Consistency.Mode = artifact.ModeReadYourWrites
	// Nothing gives a kept connection back on a timer: only the calls do.
	r := newRouter(t, a, routerlib.WithKeptTickForTest(time.Hour))
	table := keptWritesTable(t, topo)
	insert := "INSERT INTO " + table + " (pid) VALUES (pg_backend_pid())"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sctx := routerlib.WithSession(ctx, &routerlib.Session{})
	calls := []func() error{
		func() error { _, err := r.Exec(sctx, insert); return err },
		func() error { _, err := r.Exec(ctx, insert); return err },
		func() error {
			tx, err := r.BeginTx(sctx, pgx.TxOptions{})
			if err != nil {
				return err
			}
			if _, err := tx.Exec(sctx, insert); err != nil {
				return err
			}
			return tx.Commit(sctx)
		},
		func() error {
			b := &pgx.Batch{}
			b.Queue(insert)
			b.Queue(insert)
			return r.SendBatch(ctx, b).Close()
		},
		func() error {
			c, err := r.Acquire(ctx)
			if err != nil {
				return err
			}
			defer c.Release()
			_, err = c.Exec(ctx, insert)
			return err
		},
		func() error {
			var id int
			return r.QueryRow(sctx, insert+" RETURNING id").Scan(&id)
		},
		func() error {
			var id int
			return r.QueryRow(routerlib.Primary(ctx), "SELECT 1").Scan(&id)
		},
	}
	afterKeptAndTogether(t, calls, "a kept write")
}

// TestKeptWriterRunsPoolHooks: an application's pgxpool PrepareConn (the
// caller's tenant set per acquire) runs for every write, captured or
// not, as with pgxpool alone: a write must never run under the previous
// caller's setting.
func TestKeptWriterRunsPoolHooks(t *testing.T) {
	topo := routertest.Shared(t)
	a := oneReplica(topo, 4)
	a.Consistency.Mode = artifact.ModeReadYourWrites
	r := newRouter(t, a, routerlib.WithPoolConfig(func(_ artifact.Node, cfg *pgxpool.Config) {
		cfg.PrepareConn = func(ctx context.Context, c *pgx.Conn) (bool, error) {
			tenant, _ := ctx.Value(tenantKey{}).(string)
			_, err := c.Exec(ctx, "SELECT set_config('app.tenant', $1, false)", tenant)
			return err == nil, err
		}
	}))
	table := keptWritesTable(t, topo)
	if err := topo.Primary.Exec(context.Background(), "ALTER TABLE "+table+" ADD COLUMN tenant text"); err != nil {
		t.Fatal(err)
	}
	for i, tenant := range []string{"alice", "bob", "carol", "dave", "erin", "frank"} {
		ctx := context.WithValue(context.Background(), tenantKey{}, tenant)
		if i%2 == 0 {
			ctx = routerlib.WithSession(ctx, &routerlib.Session{})
		}
		var got string
		if err := r.QueryRow(ctx, "INSERT INTO "+table+" (tenant) VALUES (current_setting('app.tenant', true)) RETURNING tenant").Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != tenant {
			t.Errorf("write %d (RETURNING) for tenant %q ran as tenant %q", i, tenant, got)
		}
		if _, err := r.Exec(ctx, "INSERT INTO "+table+" (tenant, pid) VALUES (current_setting('app.tenant', true), $1)", i); err != nil {
			t.Fatal(err)
		}
		if err := topo.Primary.QueryRow(context.Background(), "SELECT tenant FROM "+table+" WHERE pid = $1", i).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != tenant {
			t.Errorf("write %d (Exec) for tenant %q ran as tenant %q", i, tenant, got)
		}
	}
}

// TestKeptWriterGoesBackWhenCutOff: the connection the primary keeps
// between writes goes back to pgxpool when the frozen primary is cut off
// (a dead VM, a partition), with nothing else to give it back (the tick
// is an hour): its socket is closed then, and the first write after the
// primary thaws runs on a backend of its own, not on the one kept before
// the freeze.
func TestKeptWriterGoesBackWhenCutOff(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(1))
	a, bound := hungHealth(topo.Artifact())
	a.Pool.MaxConns = 1
	r := newRouter(t, a, routerlib.WithKeptTickForTest(time.Hour))
	table := keptWritesTable(t, topo)
	insert := "INSERT INTO " + table + " (pid) VALUES (pg_backend_pid())"
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := r.Exec(ctx, insert); err != nil {
		t.Fatal(err)
	}
	if kept := r.KeptWritesForTest("primary"); kept != 1 {
		t.Fatalf("after a write the primary keeps %d connections, want 1", kept)
	}
	var before int
	if err := topo.Primary.QueryRow(ctx, "SELECT pid FROM "+table).Scan(&before); err != nil {
		t.Fatal(err)
	}
	if err := topo.Primary.Freeze(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = topo.Primary.Thaw() })
	eventually(t, bound+10*time.Second, "the frozen primary loses the writes", func() bool { return !nodeStat(r, "primary").Writer })
	// The cut-off comes with the ejection, in the same check's answer.
	eventually(t, 2*time.Second, "the cut-off primary keeps no connection between writes", func() bool {
		return r.KeptWritesForTest("primary") == 0
	})
	if err := topo.Primary.Thaw(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "the thawed primary takes the writes again", func() bool { return nodeStat(r, "primary").Writer })
	var after int
	if err := r.QueryRow(ctx, insert+" RETURNING pid").Scan(&after); err != nil {
		t.Fatalf("the first write after the primary thawed: %v", err)
	}
	if after == before {
		t.Errorf("the first write after the primary thawed ran on backend %d, the one kept before the freeze", after)
	}
	if kept := r.KeptWritesForTest("primary"); kept != 1 {
		t.Errorf("after the write the primary keeps %d connections, want 1 again", kept)
	}
}
