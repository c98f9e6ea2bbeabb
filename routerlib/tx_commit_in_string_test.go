package routerlib_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
)

// TestTxCommitInStatementStringAnswerLost: a transaction's statement
// string that ends with its own COMMIT ("INSERT …; COMMIT", one simple
// query) whose answer is lost after the server ran it has committed: its
// error must say the transaction may have committed (ErrMaybeCommitted),
// never that it did not, as for a COMMIT sent on its own (endsTx looked at
// the first statement only). In read_your_writes mode the session's next
// read sees the row all the same (the commit's outcome unknown, it asks
// the primary for its position first).
func TestTxCommitInStatementStringAnswerLost(t *testing.T) {
	ctx := context.Background()
	for _, mode := range []string{artifact.ModeEventual, artifact.ModeReadYourWrites} {
		t.Run(mode, func(t *testing.T) {
			topo, proxy, r := answerLost(t, mode, nil)
			sctx, cancel := context.WithTimeout(routerlib.WithSession(ctx, &routerlib.Session{}), time.Minute)
			defer cancel()
			tx, err := r.Begin(sctx)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback(ctx)
			const sql = "INSERT INTO lost_t VALUES ('in string'); COMMIT"
			proxy.LoseAnswerTo(sql)
			_, err = tx.Exec(ctx, sql)
			if proxy.Lost() != 1 {
				t.Fatalf("the proxy lost %d answers, want 1 (err %v)", proxy.Lost(), err)
			}
			if n := tagged(t, ctx, topo.Primary, "lost_t", "in string"); n != 1 {
				t.Fatalf("%d rows committed, want 1", n)
			}
			if !errors.Is(err, routerlib.ErrMaybeCommitted) || strings.Contains(err.Error(), "did not commit") {
				t.Errorf("a statement string ending in COMMIT whose answer was lost after the server committed it: %v; want ErrMaybeCommitted", err)
			}
			if mode == artifact.ModeReadYourWrites {
				eventually(t, 10*time.Second, "the primary taking writes again", func() bool { return nodeStat(r, "primary").Writer })
				checkWrittenOnceAndSeen(t, ctx, sctx, topo, r, "lost_t", "in string")
			}
		})
	}
}

// TestTxAtomicBodyAnswerLost: a transaction's CREATE FUNCTION with a
// SQL-standard body (BEGIN ATOMIC …; END) whose answer is lost did not
// commit, and says so: the body's END follows a semicolon, and endsTx
// took it for the END that commits, so the error said the transaction
// may have committed (the safe side, but wrong).
func TestTxAtomicBodyAnswerLost(t *testing.T) {
	ctx := context.Background()
	topo, proxy, r := answerLost(t, artifact.ModeEventual, nil)
	tx, err := r.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	const sql = "CREATE FUNCTION lost_atomic() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END"
	proxy.LoseAnswerTo(sql)
	_, err = tx.Exec(ctx, sql)
	if proxy.Lost() != 1 {
		t.Fatalf("the proxy lost %d answers, want 1 (err %v)", proxy.Lost(), err)
	}
	if errors.Is(err, routerlib.ErrMaybeCommitted) || err == nil || !strings.Contains(err.Error(), "did not commit") {
		t.Errorf("a transaction's CREATE FUNCTION … BEGIN ATOMIC … END whose answer was lost: %v; want that it did not commit", err)
	}
	eventually(t, 10*time.Second, "the lost transaction rolled back", func() bool {
		var n int
		if err := topo.Primary.QueryRow(ctx, "SELECT count(*) FROM pg_proc WHERE proname = 'lost_atomic'").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == 0
	})
}
