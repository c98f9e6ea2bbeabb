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

// TestBatchBeginTxRoutingFailed: a batch that begins a transaction
// ([pgx.Batch.BeginTx]) and cannot be sent (here the Router is closed)
// gives, as pgx promises, a closed transaction from Tx, so the usual
// deferred Rollback neither panics on a nil Tx nor touches a connection,
// and every method reports why.
func TestBatchBeginTxRoutingFailed(t *testing.T) {
	topo := routertest.Shared(t)
	ctx := context.Background()
	r := newRouter(t, topo.Artifact())
	r.Close()
	b := &pgx.Batch{}
	b.BeginTx(pgx.TxOptions{})
	b.Queue("SELECT 1")
	br := r.SendBatch(ctx, b)
	tx := br.Tx()
	if tx == nil {
		t.Fatal("Tx of a failed batch that began a transaction is nil: a deferred br.Tx().Rollback(ctx) panics")
	}
	if _, err := br.Exec(); !errors.Is(err, routerlib.ErrClosed) {
		t.Errorf("Exec: %v, want ErrClosed", err)
	}
	if err := br.Close(); !errors.Is(err, routerlib.ErrClosed) {
		t.Errorf("Close: %v, want ErrClosed", err)
	}
	if err := tx.Rollback(ctx); !errors.Is(err, pgx.ErrTxClosed) {
		t.Errorf("Rollback: %v, want pgx.ErrTxClosed", err)
	}
	if err := tx.Commit(ctx); !errors.Is(err, pgx.ErrTxClosed) {
		t.Errorf("Commit: %v, want pgx.ErrTxClosed", err)
	}
}

// TestBatchBeginTxReadWrite: a batch that begins a read-write transaction
// and queues only reads runs on the primary, so that the transaction's
// later write through the batch's Tx succeeds and commits there; a
// replica would refuse the write (25006).
func TestBatchBeginTxReadWrite(t *testing.T) {
	topo := routertest.Shared(t)
	ctx := context.Background()
	r := newRouter(t, topo.Artifact())
	if _, err := r.Exec(ctx, "CREATE TABLE IF NOT EXISTS batchtx_t (tag text)"); err != nil {
		t.Fatal(err)
	}
	b := &pgx.Batch{}
	b.BeginTx(pgx.TxOptions{})
	b.Queue("SELECT inet_server_port()")
	br := r.SendBatch(ctx, b)
	tx := br.Tx()
	defer tx.Rollback(ctx)
	if _, err := br.Exec(); err != nil { // the BEGIN
		t.Fatal(err)
	}
	var port int
	if err := br.QueryRow().Scan(&port); err != nil {
		t.Fatal(err)
	}
	if err := br.Close(); err != nil {
		t.Fatal(err)
	}
	if port != topo.Primary.Port {
		t.Errorf("a batch beginning a read-write transaction ran on port %d, want the primary's %d", port, topo.Primary.Port)
	}
	if _, err := tx.Exec(ctx, "INSERT INTO batchtx_t VALUES ('rw')"); err != nil {
		t.Fatalf("a write in the batch's transaction: %v", err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if n := tagged(t, ctx, topo.Primary, "batchtx_t", "rw"); n < 1 {
		t.Errorf("the batch's transaction committed no row on the primary")
	}
}

// TestBatchBeginTxCommitAnswerLost: the transaction a batch began
// ([pgx.Batch.BeginTx]) is the Router's transaction: a Commit whose
// answer was lost after the server committed fails with
// ErrMaybeCommitted naming the node, in eventual and read_your_writes mode
// alike, as a transaction from Router.BeginTx does (TestTxCommitAnswerLost);
// before, it was pgx's own Tx, whose bare "conn closed" said nothing of
// the commit (and in read_your_writes mode, with one connection, the
// batch's Close waited forever for a second one to read the position).
func TestBatchBeginTxCommitAnswerLost(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct{ mode, commit string }{
		{artifact.ModeEventual, "commit"},       // pgx's Tx.Commit
		{artifact.ModeReadYourWrites, "COMMIT"}, // the capture's
	} {
		t.Run(c.mode, func(t *testing.T) {
			topo, proxy, r := answerLost(t, c.mode, func(a *artifact.Topology) { a.Pool.MaxConns = 1 })
			sctx, cancel := context.WithTimeout(routerlib.WithSession(ctx, &routerlib.Session{}), time.Minute)
			defer cancel()
			if _, err := r.Exec(sctx, "INSERT INTO lost_t VALUES ('warm')"); err != nil {
				t.Fatal(err)
			}
			begin := func(tag string) pgx.Tx {
				t.Helper()
				b := &pgx.Batch{}
				b.BeginTx(pgx.TxOptions{})
				b.Queue("SELECT 1")
				br := r.SendBatch(sctx, b)
				if err := br.Close(); err != nil {
					t.Fatal(err)
				}
				tx := br.Tx()
				if _, err := tx.Exec(ctx, "INSERT INTO lost_t VALUES ($1)", tag); err != nil {
					t.Fatal(err)
				}
				return tx
			}

			tx := begin("commit")
			proxy.LoseAnswerTo(c.commit)
			err := tx.Commit(ctx)
			if !errors.Is(err, routerlib.ErrMaybeCommitted) || !strings.Contains(err.Error(), `"primary"`) {
				t.Errorf("Commit whose answer was lost: %v, want ErrMaybeCommitted naming the primary", err)
			}
			if proxy.Lost() != 1 {
				t.Fatalf("the proxy lost %d answers, want 1", proxy.Lost())
			}
			if n := tagged(t, ctx, topo.Primary, "lost_t", "commit"); n != 1 {
				t.Errorf("%d rows committed, want 1: the test lost another answer than the COMMIT's", n)
			}
		})
	}
}

// TestBatchBeginTxReadYourWrites: in read_your_writes mode, the Commit of
// the transaction a batch began records the session's position, so that
// the session's next read, with the standby paused after it replayed the
// table, sees the row. Before, the batch's Close recorded the position,
// before the write and its COMMIT: one the paused standby had replayed,
// where the read then went and saw nothing.
func TestBatchBeginTxReadYourWrites(t *testing.T) {
	topo, _, r := answerLost(t, artifact.ModeReadYourWrites, nil)
	ctx := context.Background()
	sctx, cancel := context.WithTimeout(routerlib.WithSession(ctx, &routerlib.Session{}), time.Minute)
	defer cancel()
	b := &pgx.Batch{}
	b.BeginTx(pgx.TxOptions{})
	b.Queue("SELECT 1")
	br := r.SendBatch(sctx, b)
	tx := br.Tx()
	defer tx.Rollback(ctx)
	if err := br.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "INSERT INTO lost_t VALUES ('seen')"); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	checkWrittenOnceAndSeen(t, ctx, sctx, topo, r, "lost_t", "seen")
}

// TestTxOwnCommitReadYourWrites: in read_your_writes mode, a transaction
// that a COMMIT of its own ends (one queued in the batch that began it,
// in a batch or a string of several statements sent in it) records the
// session's position once that COMMIT has run, before the Rollback that
// idiomatic code defers, which then finds the transaction over. So the
// session's next read, with the standby paused after it replayed the
// table, sees the row. Before, only the transaction's own Commit
// recorded the position: a batch begun with BeginTx that queues its own
// COMMIT recorded none (the read saw 0 rows), nor a COMMIT sent through
// the transaction's Exec or SendBatch. A batch that queues its own BEGIN
// and COMMIT (no BeginTx) already recorded it at its Close.
func TestTxOwnCommitReadYourWrites(t *testing.T) {
	topo, _, r := answerLost(t, artifact.ModeReadYourWrites, nil)
	ctx := context.Background()
	insert := func(tag string) string { return "INSERT INTO lost_t VALUES ('" + tag + "')" }
	for _, c := range []struct {
		tag string
		run func(sctx context.Context, tag string) error
	}{
		{"batch-begintx", func(sctx context.Context, tag string) error {
			b := &pgx.Batch{}
			b.BeginTx(pgx.TxOptions{})
			b.Queue(insert(tag))
			b.Queue("COMMIT")
			br := r.SendBatch(sctx, b)
			defer br.Tx().Rollback(ctx)
			return br.Close()
		}},
		{"batch-begin-commit", func(sctx context.Context, tag string) error {
			b := &pgx.Batch{}
			b.Queue("BEGIN")
			b.Queue(insert(tag))
			b.Queue("COMMIT")
			return r.SendBatch(sctx, b).Close()
		}},
		{"tx-batch", func(sctx context.Context, tag string) error {
			tx, err := r.Begin(sctx)
			if err != nil {
				return err
			}
			defer tx.Rollback(ctx)
			b := &pgx.Batch{}
			b.Queue(insert(tag))
			b.Queue("COMMIT")
			return tx.SendBatch(ctx, b).Close()
		}},
		{"tx-exec", func(sctx context.Context, tag string) error {
			tx, err := r.Begin(sctx)
			if err != nil {
				return err
			}
			defer tx.Rollback(ctx)
			_, err = tx.Exec(ctx, insert(tag)+"; COMMIT")
			return err
		}},
	} {
		t.Run(c.tag, func(t *testing.T) {
			sctx, cancel := context.WithTimeout(routerlib.WithSession(ctx, &routerlib.Session{}), time.Minute)
			defer cancel()
			if err := c.run(sctx, c.tag); err != nil {
				t.Fatal(err)
			}
			checkWrittenOnceAndSeen(t, ctx, sctx, topo, r, "lost_t", c.tag)
		})
	}
}

// TestBatchBeginTxReadOnly: a batch that begins a read-only transaction,
// not serializable (pgx.Batch.BeginTx with pgx.ReadOnly, or its own
// BEGIN READ ONLY … COMMIT), runs on a replica, as Router.BeginTx with
// those options does, and the transaction keeps its connection until
// Commit or Rollback: the batch's Close gave it back to the pool while
// the transaction was open. A serializable one stays on the primary,
// which alone can run it. Before, each went to the primary.
func TestBatchBeginTxReadOnly(t *testing.T) {
	topo := routertest.Shared(t)
	a := oneReplica(topo, 4)
	r := newRouter(t, a)
	replica := a.Nodes[1].Name
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	acquired := func() int32 {
		st, _ := r.NodeStat(replica)
		return st.Pool.AcquiredConns
	}
	const where = "SELECT pg_is_in_recovery(), inet_server_port()"
	for _, end := range []string{"Commit", "Rollback"} {
		t.Run("BeginTx-"+end, func(t *testing.T) {
			b := &pgx.Batch{}
			b.BeginTx(pgx.TxOptions{AccessMode: pgx.ReadOnly, IsoLevel: pgx.RepeatableRead})
			b.Queue(where)
			br := r.SendBatch(ctx, b)
			tx := br.Tx()
			defer tx.Rollback(ctx)
			if _, err := br.Exec(); err != nil { // the BEGIN
				t.Fatal(err)
			}
			var recovery bool
			var port int
			if err := br.QueryRow().Scan(&recovery, &port); err != nil {
				t.Fatal(err)
			}
			if err := br.Close(); err != nil {
				t.Fatal(err)
			}
			if !recovery || port == topo.Primary.Port {
				t.Errorf("a batch beginning a read-only transaction ran on port %d (in recovery: %v), want the replica", port, recovery)
			}
			if n := acquired(); n != 1 {
				t.Errorf("after the batch's Close, with its transaction open, the replica's pool counts %d connections acquired, want 1 (the transaction's)", n)
			}
			var again int
			if err := tx.QueryRow(ctx, "SELECT inet_server_port()").Scan(&again); err != nil {
				t.Fatal(err)
			}
			if again != port {
				t.Errorf("the transaction's next statement ran on port %d, the batch on %d", again, port)
			}
			if _, err := tx.Exec(ctx, "CREATE TEMP TABLE batch_ro (i int)"); err == nil {
				t.Error("a write in the read-only transaction succeeded")
			}
			var err error
			if end == "Commit" {
				err = tx.Commit(ctx)
			} else {
				err = tx.Rollback(ctx)
			}
			if end == "Rollback" && err != nil || end == "Commit" && !errors.Is(err, pgx.ErrTxCommitRollback) {
				t.Errorf("%s of the failed transaction: %v", end, err)
			}
			if n := acquired(); n != 0 {
				t.Errorf("after %s the replica's pool counts %d connections acquired, want 0", end, n)
			}
		})
	}
	t.Run("own-BEGIN-COMMIT", func(t *testing.T) {
		b := &pgx.Batch{}
		b.Queue("BEGIN READ ONLY")
		b.Queue(where)
		b.Queue("COMMIT")
		br := r.SendBatch(ctx, b)
		var recovery bool
		var port int
		if _, err := br.Exec(); err != nil {
			t.Fatal(err)
		}
		if err := br.QueryRow().Scan(&recovery, &port); err != nil {
			t.Fatal(err)
		}
		if err := br.Close(); err != nil {
			t.Fatal(err)
		}
		if !recovery || port == topo.Primary.Port {
			t.Errorf("a batch of BEGIN READ ONLY, a read and COMMIT ran on port %d (in recovery: %v), want the replica", port, recovery)
		}
		if n := acquired(); n != 0 {
			t.Errorf("after the batch's Close the replica's pool counts %d connections acquired, want 0", n)
		}
	})
	t.Run("serializable", func(t *testing.T) {
		b := &pgx.Batch{}
		b.BeginTx(pgx.TxOptions{AccessMode: pgx.ReadOnly, IsoLevel: pgx.Serializable})
		b.Queue(where)
		br := r.SendBatch(ctx, b)
		tx := br.Tx()
		defer tx.Rollback(ctx)
		var recovery bool
		if _, err := br.Exec(); err != nil {
			t.Fatal(err)
		}
		if err := br.QueryRow().Scan(&recovery, new(int)); err != nil {
			t.Fatal(err)
		}
		if err := br.Close(); err != nil {
			t.Fatal(err)
		}
		if recovery {
			t.Error("a batch beginning a serializable read-only transaction ran on a standby, which refuses it")
		}
	})
}
