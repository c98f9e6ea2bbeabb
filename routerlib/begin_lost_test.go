package routerlib_test

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
)

// TestBeginAnswerLost: BeginTx whose BEGIN's answer is lost: a BEGIN
// commits nothing, so the error must not say it may have committed (it
// said "failed during a write, which may have committed").
func TestBeginAnswerLost(t *testing.T) {
	for _, mode := range []string{"", "read_your_writes"} {
		t.Run("mode "+mode, func(t *testing.T) {
			_, proxy, r := answerLost(t, mode, nil)
			ctx := context.Background()
			if mode != "" {
				ctx = routerlib.WithSession(ctx, &routerlib.Session{})
			}
			proxy.LoseAnswerTo("begin")
			tx, err := r.BeginTx(ctx, pgx.TxOptions{})
			if err == nil {
				_ = tx.Rollback(ctx)
				t.Fatalf("BeginTx succeeded: the proxy lost no BEGIN answer (lost %d)", proxy.Lost())
			}
			t.Logf("lost %d: %v", proxy.Lost(), err)
			if errors.Is(err, routerlib.ErrMaybeCommitted) {
				t.Errorf("BeginTx whose BEGIN answer was lost: %v; a BEGIN commits nothing", err)
			}
		})
	}
}
