package routerlib_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// TestRedBeginOnTerminatedSessions: the primary's idle pooled sessions
// ended by pg_terminate_backend (an operator's sweep of idle sessions, a
// server restarting its backends) under a busy pool that pgxpool does not
// ping: a transaction begun next starts on a new session. Its BEGIN met
// the ended session, so nothing of the transaction ran; before, BeginTx
// failed with "failed while a transaction began; nothing of it ran or
// committed".
func TestRedBeginOnTerminatedSessions(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(1))
	for _, mode := range []string{artifact.ModeEventual, artifact.ModeReadYourWrites} {
		t.Run(mode, func(t *testing.T) { beginOnTerminatedSessions(t, topo, mode) })
	}
}

func beginOnTerminatedSessions(t *testing.T, topo *routertest.Topology, mode string) {
	ctx := routerlib.WithSession(context.Background(), &routerlib.Session{})
	a := steadyHealth(topo.Artifact(), 200*time.Millisecond)
	a.Pool.MaxConns = 4
	a.Consistency.Mode = mode
	r := newRouter(t, a)
	failed, began := 0, 0
	for round := range 5 {
		// Four sessions open and idle, used within the last second.
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := r.Exec(ctx, "SELECT pg_sleep(0.05)"); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		var ended int
		if err := topo.Primary.QueryRow(ctx, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'routerlib' AND state = 'idle' AND pid <> pg_backend_pid()").Scan(&ended); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond) // the FATALs are in the sockets
		for range 4 {
			began++
			tx, err := r.BeginTx(ctx, pgx.TxOptions{})
			if err != nil {
				failed++
				t.Logf("round %d (%d sessions ended): BeginTx: %v", round, ended, err)
				continue
			}
			if err := tx.Rollback(ctx); err != nil {
				t.Error(err)
			}
		}
		time.Sleep(300 * time.Millisecond)
	}
	if failed > 0 {
		t.Errorf("%d of %d transactions begun right after the primary's idle sessions were terminated failed", failed, began)
	}
}
