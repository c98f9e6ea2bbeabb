package routerlib_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// hcheck (f62c9d9, checkAnew) makes the check that a session's 57P01 asks
// for close the monitor's session and set up a new one. A healthy primary
// whose role (or server: max_connections) has no place left refuses that
// new session (53300): an operator shedding sessions (a lower CONNECTION
// LIMIT, the excess terminated with pg_terminate_backend: what one does
// when connections run out), or other clients retrying, which take a
// freed place at once. The check is then "refused", which after recheck
// takes the writes from the node at once (chooseWriter: connFailed set,
// 53300 is not notDown). Every write then fails with no writer until a
// check gets a session, though the primary answered all along and the
// monitor had a working session. Before, the monitor's session checked
// the node, and it kept the writes.
func TestReview3TerminatedSessionOnFullPrimaryKeepsWriter(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(0))
	ctx := context.Background()
	const role = "review3_full"
	// The monitor's session and the pool's two.
	if err := topo.Primary.Exec(ctx, `CREATE ROLE `+role+` LOGIN CONNECTION LIMIT 3 IN ROLE pg_monitor`); err != nil {
		t.Fatal(err)
	}
	a := steadyHealth(topo.Artifact(), time.Minute) // no scheduled check meanwhile
	for i := range a.Nodes {
		a.Nodes[i].User = role
	}
	events := &syncBuffer{}
	r := newRouter(t, a, routerlib.WithLogger(slog.New(slog.NewTextHandler(events, &slog.HandlerOptions{Level: slog.LevelDebug}))),
		routerlib.WithPoolConfig(func(_ artifact.Node, cfg *pgxpool.Config) { cfg.MaxConns = 2 }))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the router's log:\n%s", events.String())
		}
	})
	primary := topo.Primary.Name
	eventually(t, 10*time.Second, "the primary taking the writes", func() bool {
		s, _ := r.NodeStat(primary)
		return s.Writer
	})
	// One session of the pool held in a transaction, one running a long
	// statement: with the monitor's, the role's three.
	tx, err := r.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tx.Rollback(context.Background()) })
	if _, err := tx.Exec(ctx, `SELECT 1`); err != nil {
		t.Fatal(err)
	}
	const sleep = `SELECT pg_sleep(30) -- review3`
	failed := make(chan error, 1)
	go func() {
		_, err := r.Exec(ctx, sleep)
		failed <- err
	}()
	var pid int
	eventually(t, 10*time.Second, "the long statement running", func() bool {
		_ = topo.Primary.QueryRow(ctx, `SELECT coalesce((SELECT pid FROM pg_stat_activity WHERE query = $1), 0)`, sleep).Scan(&pid)
		return pid != 0
	})
	// The operator sheds the role's sessions to fewer (a server running
	// out of connections): a lower limit, then the excess terminated.
	// (Other instances of the application retrying their connections
	// take a freed place the same way: that failed too, racily.)
	if err := topo.Primary.Exec(ctx, `ALTER ROLE `+role+` CONNECTION LIMIT 1`); err != nil {
		t.Fatal(err)
	}
	// The operator terminates the long statement's session.
	var ok bool
	if err := topo.Primary.QueryRow(ctx, `SELECT pg_terminate_backend($1)`, pid).Scan(&ok); err != nil || !ok {
		t.Fatalf("pg_terminate_backend(%d): %v, %v", pid, ok, err)
	}
	select {
	case err := <-failed:
		t.Logf("the statement on the terminated session: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the terminated statement did not return")
	}
	eventually(t, 10*time.Second, "the check the 57P01 asked for", func() bool {
		return strings.Contains(events.String(), "checking the node now")
	})
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if s, _ := r.NodeStat(primary); !s.Writer {
			t.Fatalf("the primary, which answers and whose monitor had a working session, lost the writes after one of the "+
				"application's sessions was terminated on a server with no free place for the role: %s", s.LastError)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The other transaction's session still writes.
	if _, err := tx.Exec(ctx, `SELECT 1`); err != nil {
		t.Fatalf("the primary's other session: %v", err)
	}
}
