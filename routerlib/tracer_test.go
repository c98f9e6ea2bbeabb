package routerlib_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// TestDecisionSQL: every decision names what it routed, also for the calls
// that carry no single statement.
func TestDecisionSQL(t *testing.T) {
	topo := routertest.Shared(t)
	ctx := context.Background()
	rec := &recorder{}
	r := newRouter(t, topo.Artifact(), routerlib.WithTracer(rec))
	if _, err := r.Exec(ctx, "CREATE TABLE IF NOT EXISTS traced (v text)"); err != nil {
		t.Fatal(err)
	}
	want := func(t *testing.T, op routerlib.Op, sql string) {
		t.Helper()
		if d := rec.last(t); d.Op != op || d.SQL != sql {
			t.Errorf("traced %s %q, want %s %q", d.Op, d.SQL, op, sql)
		}
	}
	b := &pgx.Batch{}
	b.Queue("SELECT 1")
	b.Queue("INSERT INTO traced VALUES ('b')")
	if err := r.SendBatch(ctx, b).Close(); err != nil {
		t.Fatal(err)
	}
	want(t, routerlib.OpSendBatch, "SELECT 1")
	if _, err := r.CopyFrom(ctx, pgx.Identifier{"public", "traced"}, []string{"v"}, pgx.CopyFromRows([][]any{{"c"}})); err != nil {
		t.Fatal(err)
	}
	want(t, routerlib.OpCopyFrom, `COPY "public"."traced"`)
	tx, err := r.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want(t, routerlib.OpBegin, "BEGIN")
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Exec(ctx, "DROP TABLE traced"); err != nil {
		t.Fatal(err)
	}
}

// TestReadOnlySerializable: a hot standby refuses serializable
// transactions (0A000), so read-only serializable ones, deferrable or not,
// run on the primary; other read-only ones still run on a replica.
func TestReadOnlySerializable(t *testing.T) {
	topo := routertest.Shared(t)
	ctx := context.Background()
	rec := &recorder{}
	r := newRouter(t, topo.Artifact(), routerlib.WithTracer(rec))
	replicasInRotation(t, r, topo)
	for _, c := range []struct {
		opts    pgx.TxOptions
		primary bool
	}{
		{pgx.TxOptions{AccessMode: pgx.ReadOnly, IsoLevel: pgx.Serializable}, true},
		{pgx.TxOptions{AccessMode: pgx.ReadOnly, IsoLevel: pgx.Serializable, DeferrableMode: pgx.Deferrable}, true},
		{pgx.TxOptions{AccessMode: pgx.ReadOnly, IsoLevel: pgx.RepeatableRead}, false},
		{pgx.TxOptions{AccessMode: pgx.ReadOnly}, false},
	} {
		tx, err := r.BeginTx(ctx, c.opts)
		if err != nil {
			t.Errorf("BeginTx(%+v): %v", c.opts, err)
			continue
		}
		var port int
		var iso string
		if err := tx.QueryRow(ctx, "SELECT inet_server_port(), current_setting('transaction_isolation')").Scan(&port, &iso); err != nil {
			t.Errorf("BeginTx(%+v): first statement: %v", c.opts, err)
		}
		if err := tx.Commit(ctx); err != nil {
			t.Errorf("BeginTx(%+v): commit: %v", c.opts, err)
		}
		if (port == topo.Primary.Port) != c.primary {
			t.Errorf("BeginTx(%+v) ran on port %d (%s); want primary=%v", c.opts, port, iso, c.primary)
		}
		if d := rec.last(t); c.primary && d.Reason != routerlib.ReasonInTransaction {
			t.Errorf("BeginTx(%+v) traced %s, want in transaction", c.opts, d.Reason)
		}
	}
}

// TestNodeStatByName: one node's state by its name, whatever the file's
// order; false for a name the file does not have.
func TestNodeStatByName(t *testing.T) {
	topo := routertest.Shared(t)
	a := topo.Artifact()
	a.Nodes[1], a.Nodes[2] = a.Nodes[2], a.Nodes[1]
	r := newRouter(t, a)
	for _, name := range []string{"primary", "replica-1", "replica-2"} {
		s, ok := r.NodeStat(name)
		if !ok || s.Name != name {
			t.Errorf("NodeStat(%q) = %q, %v", name, s.Name, ok)
		}
	}
	if s, _ := r.NodeStat("primary"); s.DeclaredRole != "primary" || !s.Writer {
		t.Errorf("NodeStat(primary) = %+v, want the declared primary taking writes", s)
	}
	if _, ok := r.NodeStat("replica-9"); ok {
		t.Error("NodeStat(replica-9) found a node the file does not have")
	}
}

// TestPrimaryCallsTraced: the calls that need the primary itself (Ping,
// Acquire, MigrationConn, and the session middleware's query of the
// primary's position) are routing decisions like the others: each is
// traced once, on the primary, as forced primary, with the caller's own
// context.
func TestPrimaryCallsTraced(t *testing.T) {
	topo := routertest.Shared(t)
	type traced struct {
		ctx context.Context
		d   routerlib.Decision
	}
	var got []traced
	r := newRouter(t, topo.Artifact(), routerlib.WithTracer(routerlib.TracerFunc(func(ctx context.Context, d routerlib.Decision) {
		got = append(got, traced{ctx, d})
	})))
	m, err := routerlib.NewSessionMiddleware(r, routerlib.SessionConfig{Keys: [][]byte{[]byte("0123456789abcdef0123456789abcdef")}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	calls := []struct {
		op   routerlib.Op
		call func() error
	}{
		{routerlib.OpPing, func() error { return r.Ping(ctx) }},
		{routerlib.OpAcquire, func() error {
			c, err := r.Acquire(ctx)
			if err == nil {
				c.Release()
			}
			return err
		}},
		{routerlib.OpMigrate, func() error {
			c, err := r.MigrationConn(ctx)
			if err == nil {
				c.Release()
			}
			return err
		}},
		{routerlib.OpVerifySession, func() error {
			// An LSN beyond every position the router has seen: the
			// middleware asks the primary, and refuses it.
			if lsn, ok := m.Verify(ctx, m.Sign(1<<62)); ok {
				return fmt.Errorf("Verify honoured LSN %s, far ahead of the primary", lsn)
			}
			return nil
		}},
	}
	for _, c := range calls {
		got = got[:0]
		if err := c.call(); err != nil {
			t.Fatalf("%s: %v", c.op, err)
		}
		if len(got) != 1 {
			t.Errorf("%s: %d decisions traced, want 1", c.op, len(got))
			continue
		}
		if d := got[0].d; d.Op != c.op || d.Node != "primary" || d.Reason != routerlib.ReasonForcedPrimary || d.SQL != "" {
			t.Errorf("%s traced %+v, want op %s on the primary, forced primary", c.op, d, c.op)
		}
		if got[0].ctx != ctx {
			t.Errorf("%s: the tracer got another context than the caller's", c.op)
		}
	}
}
