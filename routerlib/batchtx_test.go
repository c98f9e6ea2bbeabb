package routerlib_test

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
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
