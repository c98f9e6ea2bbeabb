package routerlib_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// TestReadBatchMovesOffAFailedReplica: a batch of reads whose replica
// failed under it (stopped, before any health check saw it) is sent again
// on another replica, the failed one out of rotation, as a Query's read
// runs again there. Before, the batch failed ("node failed under a read
// batch, which was not sent again") on every call that chose the stopped
// replica, which stayed in rotation until a health check saw it down.
func TestReadBatchMovesOffAFailedReplica(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(2))
	ctx := context.Background()
	// Checks too far apart to see the stop within the test: only the
	// calls' own failures can take the replica out.
	r := newRouter(t, steadyHealth(topo.Artifact(), time.Hour))
	warm := func() {
		for i := 0; i < 4; i++ {
			br := r.SendBatch(ctx, readBatch())
			if err := br.Close(); err != nil {
				t.Fatal(err)
			}
		}
	}
	warm() // sessions on both replicas, which the stop then breaks
	if err := topo.Standbys[0].Stop(ctx); err != nil {
		t.Fatal(err)
	}
	failed := 0
	for i := 0; i < 6; i++ {
		br := r.SendBatch(ctx, readBatch())
		var answer int
		_, err := br.Exec()
		if err == nil {
			err = br.QueryRow().Scan(&answer)
		}
		if cerr := br.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			failed++
			t.Logf("batch %d: %v", i, err)
		} else if answer != 42 {
			t.Errorf("batch %d: answer %d, want 42", i, answer)
		}
	}
	t.Logf("%d of 6 read batches failed with %s stopped; replica-1 readable: %v", failed, topo.Standbys[0].Name, nodeStat(r, "replica-1").Readable)
	if failed > 0 {
		t.Errorf("%d of 6 read batches failed with one of two replicas stopped, want each sent again on the other", failed)
	}
	if nodeStat(r, "replica-1").Readable {
		t.Errorf("replica-1 is still in rotation after a batch failed on it")
	}
}

func readBatch() *pgx.Batch {
	b := &pgx.Batch{}
	b.Queue("SELECT 1")
	b.Queue("SELECT 40 + $1::int", 2)
	return b
}
