package routerlib_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

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

// TestTxCutByTheRouter: a transaction on a primary that stops answering
// (frozen) is cut off by the router once its checks fail: a Commit in
// flight then fails with ErrMaybeCommitted, saying why the router cut it
// (the COMMIT may have reached the server, which runs it when it thaws),
// and a statement of another transaction says that transaction did not
// commit. Before, both were "use of closed network connection".
func TestTxCutByTheRouter(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(1))
	ctx := context.Background()
	if err := topo.Primary.Exec(ctx, "CREATE TABLE cut_t (tag text)"); err != nil {
		t.Fatal(err)
	}
	a, _ := hungHealth(topo.Artifact())
	r := newRouter(t, a)
	committing, err := r.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := committing.Exec(ctx, "INSERT INTO cut_t VALUES ('commit')"); err != nil {
		t.Fatal(err)
	}
	other, err := r.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Rollback(ctx)
	if err := topo.Primary.Freeze(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = topo.Primary.Thaw() })
	errs := make(chan error, 2)
	go func() { errs <- committing.Commit(ctx) }()
	_, err = other.Exec(ctx, "INSERT INTO cut_t VALUES ('statement')")
	commitErr := <-errs
	if !errors.Is(commitErr, routerlib.ErrMaybeCommitted) || !strings.Contains(commitErr.Error(), "stopped answering") {
		t.Errorf("a Commit the router cut: %v, want ErrMaybeCommitted saying the primary stopped answering", commitErr)
	}
	if err == nil || errors.Is(err, routerlib.ErrMaybeCommitted) || !strings.Contains(err.Error(), "stopped answering") || !strings.Contains(err.Error(), "did not commit") {
		t.Errorf("a statement of a transaction the router cut: %v, want an error saying the primary stopped answering and the transaction did not commit", err)
	}
	if err := topo.Primary.Thaw(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the statement's transaction rolled back", func() bool {
		return tagged(t, ctx, topo.Primary, "cut_t", "statement") == 0
	})
}
