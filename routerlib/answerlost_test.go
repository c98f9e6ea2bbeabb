package routerlib_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// answerLost returns a topology whose standby has replayed the table
// lost_t (tag text) and then paused, and a read_your_writes Router that
// reaches the primary through a proxy that can lose the server's answer
// to a statement (routertest.Proxy), the standby in rotation.
func answerLost(t *testing.T, mode string, edit func(*artifact.Topology), opts ...routerlib.Option) (*routertest.Topology, *routertest.Proxy, *routerlib.Router) {
	t.Helper()
	topo := routertest.Start(t, routertest.WithStandbys(1))
	ctx := context.Background()
	if err := topo.Primary.Exec(ctx, "CREATE TABLE lost_t (tag text)"); err != nil {
		t.Fatal(err)
	}
	waitReplayed(t, topo)
	proxy := topo.Primary.NewProxy(t)
	a := steadyHealth(topo.Artifact(), 100*time.Millisecond)
	a.Nodes[0].Port = proxy.Port()
	a.Consistency = artifact.Consistency{Mode: mode, WaitTimeout: "50ms"}
	if edit != nil {
		edit(&a)
	}
	r := newRouter(t, a, opts...)
	eventually(t, 10*time.Second, "replica-1 in rotation", func() bool { return nodeStat(r, "replica-1").Readable })
	if err := topo.Standbys[0].PauseReplay(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = topo.Standbys[0].ResumeReplay(context.Background()) })
	return topo, proxy, r
}

// TestCaptureAnswerLostAfterCommit: a read_your_writes write whose answer
// is lost after it committed (the connection closes; no error from the
// server) fails, saying it may have committed, and leaves its position
// unknown: the session is marked (Session.markLost), so its next read
// asks the primary for its position first and waits for, or goes
// around, the standby that has not replayed the write. Unmarked, that
// read went to the paused standby and saw nothing of the write (each
// path below failed so with markLost emptied; TestCaptureConnectionLost-
// AfterCommit does not show it: there the server's own FATAL reaches the
// client, and the position is read after it on another connection).
func TestCaptureAnswerLostAfterCommit(t *testing.T) {
	topo, proxy, r := answerLost(t, artifact.ModeReadYourWrites, nil)
	ctx := context.Background()
	for _, w := range []struct{ tag, sql string }{
		// BEGIN, the write, COMMIT and the position query in one flush.
		{"insert", "INSERT INTO lost_t VALUES ('insert')"},
		// The write, a Sync that commits it, then the position query.
		{"several", "INSERT INTO lost_t VALUES ('x'); INSERT INTO lost_t VALUES ('several')"},
		{"do", "DO $$BEGIN INSERT INTO lost_t VALUES ('do'); END$$"},
	} {
		sctx := routerlib.WithSession(ctx, &routerlib.Session{})
		proxy.LoseAnswerTo(w.sql)
		before := proxy.Lost()
		if _, err := r.Exec(sctx, w.sql); err == nil {
			t.Fatalf("%s: no error, though the answer was lost", w.tag)
		}
		if proxy.Lost() != before+1 {
			t.Fatalf("%s: the proxy lost %d answers, want 1", w.tag, proxy.Lost()-before)
		}
		eventually(t, 10*time.Second, "the primary taking writes again", func() bool { return nodeStat(r, "primary").Writer })
		checkWrittenOnceAndSeen(t, ctx, sctx, topo, r, "lost_t", w.tag)
	}
}

// TestTxCommitAnswerLost: a transaction from Router.BeginTx whose COMMIT
// reached the server, and committed, but whose answer was lost fails with
// ErrMaybeCommitted, naming the node, in eventual and read_your_writes
// mode alike; a statement of a transaction whose connection failed before
// its COMMIT says the transaction did not commit, and it did not. Before,
// both were the bare "unexpected EOF" of pgx (eventual) or of the
// capture's batch (read_your_writes), as if nothing had been sent.
func TestTxCommitAnswerLost(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct{ mode, commit string }{
		{artifact.ModeEventual, "commit"},       // pgx's Tx.Commit
		{artifact.ModeReadYourWrites, "COMMIT"}, // the capture's
	} {
		t.Run(c.mode, func(t *testing.T) {
			// One primary connection, which the first write prepares the
			// capture's statements on: the COMMIT's text is then sent once,
			// by Commit.
			topo, proxy, r := answerLost(t, c.mode, func(a *artifact.Topology) { a.Pool.MaxConns = 1 })
			sctx := routerlib.WithSession(ctx, &routerlib.Session{})
			if _, err := r.Exec(sctx, "INSERT INTO lost_t VALUES ('warm')"); err != nil {
				t.Fatal(err)
			}
			tx, err := r.Begin(sctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tx.Exec(ctx, "INSERT INTO lost_t VALUES ('commit')"); err != nil {
				t.Fatal(err)
			}
			proxy.LoseAnswerTo(c.commit)
			err = tx.Commit(ctx)
			if !errors.Is(err, routerlib.ErrMaybeCommitted) || !strings.Contains(err.Error(), `"primary"`) {
				t.Errorf("Commit whose answer was lost: %v, want ErrMaybeCommitted naming the primary", err)
			}
			if proxy.Lost() != 1 {
				t.Fatalf("the proxy lost %d answers, want 1", proxy.Lost())
			}
			if n := tagged(t, ctx, topo.Primary, "lost_t", "commit"); n != 1 {
				t.Errorf("%d rows committed, want 1: the test lost another answer than the COMMIT's", n)
			}

			// A statement before the COMMIT.
			tx, err = r.Begin(sctx)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback(ctx)
			const insert = "INSERT INTO lost_t VALUES ('statement')"
			proxy.LoseAnswerTo(insert)
			_, err = tx.Exec(ctx, insert)
			if err == nil || errors.Is(err, routerlib.ErrMaybeCommitted) || !strings.Contains(err.Error(), "did not commit") {
				t.Errorf("a statement whose answer was lost in a transaction: %v, want an error saying the transaction did not commit", err)
			}
			eventually(t, 10*time.Second, "the statement's transaction rolled back", func() bool {
				return tagged(t, ctx, topo.Primary, "lost_t", "statement") == 0
			})
		})
	}
}

// TestTxBatchAnswerLost: in a transaction from Router.BeginTx, in
// eventual and read_your_writes mode alike, a batch holding a COMMIT whose
// answer was lost after the server committed fails with ErrMaybeCommitted
// naming the node, and so does the Rollback after it; a batch without
// one, a CopyFrom and a savepoint's statement whose answer was lost say
// the transaction did not commit, as does the Rollback after them (pgx's
// ROLLBACK fails on the closed connection), and it did not. Before, each
// was the bare "unexpected EOF" or "conn closed" of pgx. The pool sends
// every statement with its text, in one flush for a batch
// (QueryExecModeExec), so that the proxy loses the answer to the batch
// itself, after the server ran it, not to a Parse before it.
func TestTxBatchAnswerLost(t *testing.T) {
	ctx := context.Background()
	execMode := routerlib.WithPoolConfig(func(_ artifact.Node, cfg *pgxpool.Config) {
		cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeExec
	})
	for _, mode := range []string{artifact.ModeEventual, artifact.ModeReadYourWrites} {
		t.Run(mode, func(t *testing.T) {
			topo, proxy, r := answerLost(t, mode, nil, execMode)
			sctx := routerlib.WithSession(ctx, &routerlib.Session{})
			begin := func() pgx.Tx {
				t.Helper()
				tx, err := r.Begin(sctx)
				if err != nil {
					t.Fatal(err)
				}
				return tx
			}
			lost := 0
			lose := func(sql string) {
				t.Helper()
				if proxy.Lost() != lost {
					t.Fatalf("the proxy lost %d answers, want %d", proxy.Lost(), lost)
				}
				lost++
				proxy.LoseAnswerTo(sql)
			}
			didNotCommit := func(what string, err error) {
				t.Helper()
				if err == nil || errors.Is(err, routerlib.ErrMaybeCommitted) || !strings.Contains(err.Error(), "did not commit") || !strings.Contains(err.Error(), `"primary"`) {
					t.Errorf("%s: %v, want an error naming the primary and saying the transaction did not commit", what, err)
				}
			}
			rolledBack := func(tag string) {
				t.Helper()
				eventually(t, 10*time.Second, tag+"'s transaction rolled back", func() bool {
					return tagged(t, ctx, topo.Primary, "lost_t", tag) == 0
				})
			}

			// A batch holding the COMMIT.
			tx := begin()
			b := &pgx.Batch{}
			b.Queue("INSERT INTO lost_t VALUES ('batch-commit')")
			b.Queue("COMMIT")
			lose("COMMIT")
			err := tx.SendBatch(ctx, b).Close()
			if !errors.Is(err, routerlib.ErrMaybeCommitted) || !strings.Contains(err.Error(), `"primary"`) {
				t.Errorf("a batch holding a COMMIT whose answer was lost: %v, want ErrMaybeCommitted naming the primary", err)
			}
			if err := tx.Rollback(ctx); !errors.Is(err, routerlib.ErrMaybeCommitted) {
				t.Errorf("Rollback after a batch holding a COMMIT whose answer was lost: %v, want ErrMaybeCommitted", err)
			}
			if n := tagged(t, ctx, topo.Primary, "lost_t", "batch-commit"); n != 1 {
				t.Errorf("%d rows committed, want 1: the test lost another answer than the batch's", n)
			}

			// A batch without one: its first result, then Close.
			tx = begin()
			const insert = "INSERT INTO lost_t VALUES ('batch')"
			b = &pgx.Batch{}
			b.Queue(insert)
			b.Queue("SELECT 1")
			lose(insert)
			br := tx.SendBatch(ctx, b)
			_, err = br.Exec()
			didNotCommit("a batch's statement whose answer was lost", err)
			didNotCommit("the Close of a batch whose answer was lost", br.Close())
			didNotCommit("Rollback after a batch whose answer was lost", tx.Rollback(ctx))
			rolledBack("batch")

			// CopyFrom.
			tx = begin()
			lose(`copy "lost_t" ( "tag" ) from stdin binary;`)
			_, err = tx.CopyFrom(ctx, pgx.Identifier{"lost_t"}, []string{"tag"}, pgx.CopyFromRows([][]any{{"copy"}}))
			didNotCommit("a CopyFrom whose answer was lost", err)
			didNotCommit("Rollback after a CopyFrom whose answer was lost", tx.Rollback(ctx))
			rolledBack("copy")

			// A savepoint (Begin on the transaction), after a statement
			// through Conn(), which runs in the transaction.
			tx = begin()
			if _, err := tx.Conn().Exec(ctx, "INSERT INTO lost_t VALUES ('conn')"); err != nil {
				t.Fatal(err)
			}
			if n := tagged(t, ctx, tx, "lost_t", "conn"); n != 1 {
				t.Errorf("the transaction sees %d rows of its Conn()'s insert, want 1", n)
			}
			sp, err := tx.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			const spInsert = "INSERT INTO lost_t VALUES ('savepoint')"
			lose(spInsert)
			_, err = sp.Exec(ctx, spInsert)
			didNotCommit("a savepoint's statement whose answer was lost", err)
			didNotCommit("the savepoint's Rollback after it", sp.Rollback(ctx))
			didNotCommit("the transaction's Rollback after it", tx.Rollback(ctx))
			rolledBack("savepoint")
			rolledBack("conn")
			if proxy.Lost() != lost {
				t.Fatalf("the proxy lost %d answers, want %d", proxy.Lost(), lost)
			}
		})
	}
}

// TestTxCutByTheRouter: transactions on a primary that stops answering
// (frozen) are cut off by the router once its checks fail: a Commit in
// flight, and a batch holding a COMMIT, then fail with ErrMaybeCommitted,
// saying why the router cut them (the COMMIT may have reached the server,
// which runs it when it thaws); a statement, a CopyFrom, and a batch
// holding a COMMIT cut while pgx prepared its statements, before it went
// out, of other transactions say those did not commit, and so does the
// Rollback after them. Before, each was "use of closed network connection" (the Rollback
// "conn closed").
func TestTxCutByTheRouter(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(1))
	ctx := context.Background()
	if err := topo.Primary.Exec(ctx, "CREATE TABLE cut_t (tag text)"); err != nil {
		t.Fatal(err)
	}
	a, _ := hungHealth(topo.Artifact())
	r := newRouter(t, a)
	begin := func() pgx.Tx {
		t.Helper()
		tx, err := r.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return tx
	}
	committing, other, batching, coldBatching, copying := begin(), begin(), begin(), begin(), begin()
	if _, err := committing.Exec(ctx, "INSERT INTO cut_t VALUES ('commit')"); err != nil {
		t.Fatal(err)
	}
	// batching's statements are prepared before the freeze, as pgx does
	// in the round trip before a batch: its COMMIT is then in flight when
	// the router cuts it. coldBatching's are not, and the router cuts that
	// round trip: its COMMIT never went out.
	const batchInsert = "INSERT INTO cut_t VALUES ('batch')"
	for _, sql := range []string{batchInsert, "COMMIT"} {
		if _, err := batching.Prepare(ctx, sql, sql); err != nil {
			t.Fatal(err)
		}
	}
	// The COPY's column types are asked once, before the freeze: the
	// COPY itself is then in flight when the router cuts it.
	copyRows := func(tag string) (int64, error) {
		return copying.CopyFrom(ctx, pgx.Identifier{"cut_t"}, []string{"tag"}, pgx.CopyFromRows([][]any{{tag}}))
	}
	if _, err := copyRows("copy-before"); err != nil {
		t.Fatal(err)
	}
	if err := topo.Primary.Freeze(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = topo.Primary.Thaw() })
	calls := []struct {
		what  string
		maybe bool
		call  func() error
	}{
		{"a Commit", true, func() error { return committing.Commit(ctx) }},
		{"a batch holding a COMMIT", true, func() error {
			b := &pgx.Batch{}
			b.Queue(batchInsert)
			b.Queue("COMMIT")
			return batching.SendBatch(ctx, b).Close()
		}},
		{"a batch holding a COMMIT, cut before it went out", false, func() error {
			b := &pgx.Batch{}
			b.Queue("INSERT INTO cut_t VALUES ('batch-cold')")
			b.Queue("COMMIT")
			return coldBatching.SendBatch(ctx, b).Close()
		}},
		{"a statement", false, func() error {
			_, err := other.Exec(ctx, "INSERT INTO cut_t VALUES ('statement')")
			return err
		}},
		{"a CopyFrom", false, func() error {
			_, err := copyRows("copy")
			return err
		}},
	}
	errs := make([]chan error, len(calls))
	for i, c := range calls {
		errs[i] = make(chan error, 1)
		go func() { errs[i] <- c.call() }()
	}
	for i, c := range calls {
		err := <-errs[i]
		switch {
		case c.maybe && (!errors.Is(err, routerlib.ErrMaybeCommitted) || !strings.Contains(err.Error(), "stopped answering")):
			t.Errorf("%s the router cut: %v, want ErrMaybeCommitted saying the primary stopped answering", c.what, err)
		case !c.maybe && (err == nil || errors.Is(err, routerlib.ErrMaybeCommitted) || !strings.Contains(err.Error(), "stopped answering") || !strings.Contains(err.Error(), "did not commit")):
			t.Errorf("%s of a transaction the router cut: %v, want an error saying the primary stopped answering and the transaction did not commit", c.what, err)
		}
	}
	for _, tx := range []pgx.Tx{other, copying, coldBatching} {
		if err := tx.Rollback(ctx); err == nil || errors.Is(err, routerlib.ErrMaybeCommitted) || !strings.Contains(err.Error(), "did not commit") {
			t.Errorf("Rollback of a transaction the router cut: %v, want an error saying the transaction did not commit", err)
		}
	}
	if err := topo.Primary.Thaw(); err != nil {
		t.Fatal(err)
	}
	for _, tag := range []string{"statement", "copy-before", "copy", "batch-cold"} {
		eventually(t, 10*time.Second, tag+"'s transaction rolled back", func() bool {
			return tagged(t, ctx, topo.Primary, "cut_t", tag) == 0
		})
	}
}
