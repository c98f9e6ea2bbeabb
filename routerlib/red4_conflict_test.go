package routerlib_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// TestRed4RecoveryConflictFatalInReadOnlyTx: a read-only transaction on a
// replica, idle between two statements (a report reading several tables),
// whose snapshot the replay of the primary's VACUUM conflicts with: the
// standby cannot send an ERROR to a session waiting for its next command,
// so it ends the session with FATAL 40001 ("terminating connection due to
// conflict with recovery"). That is the statement's transaction's, as the
// ERROR 40001 of TestRecoveryConflictIsTheCallers and the FATAL 25P03 of
// idle_in_transaction_session_timeout are: the node is healthy, and doc.go
// says only a failure of the node or of the connection to it counts. The
// replica must stay in rotation.
func TestRed4RecoveryConflictFatalInReadOnlyTx(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(1))
	ctx := context.Background()
	replica := topo.Standbys[0]
	for _, sql := range []string{"ALTER SYSTEM SET max_standby_streaming_delay = '100ms'", "SELECT pg_reload_conf()"} {
		if err := replica.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	if err := topo.Primary.Exec(ctx, "CREATE TABLE conflict_fatal AS SELECT g AS id FROM generate_series(1, 1000) g"); err != nil {
		t.Fatal(err)
	}
	waitReplayed(t, topo)
	a := steadyHealth(topo.Artifact(), interval)
	a.ReadPolicy = artifact.ReadPolicy{Fallback: artifact.FallbackError}
	logs := &lockedBuffer{}
	r := newRouter(t, a, routerlib.WithLogger(slog.New(slog.NewTextHandler(logs, nil))))
	tx, err := r.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly, IsoLevel: pgx.RepeatableRead})
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	var n, port int
	if err := tx.QueryRow(ctx, "SELECT count(*), inet_server_port() FROM conflict_fatal").Scan(&n, &port); err != nil {
		t.Fatal(err)
	}
	if port != replica.Port {
		t.Fatalf("the read-only transaction runs on port %d, not the replica's %d", port, replica.Port)
	}
	// The transaction is idle, holding its snapshot; the primary removes
	// rows it can still see.
	if err := topo.Primary.Exec(ctx, "DELETE FROM conflict_fatal"); err != nil {
		t.Fatal(err)
	}
	if err := topo.Primary.Exec(ctx, "VACUUM conflict_fatal"); err != nil {
		t.Fatal(err)
	}
	waitReplayed(t, topo)
	err = tx.QueryRow(ctx, "SELECT count(*) FROM conflict_fatal").Scan(&n)
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "40001" {
		t.Fatalf("the transaction's next read: %v, want the server's 40001", err)
	}
	t.Logf("the transaction's next read: %v (severity %s)", err, pgErr.Severity)
	s := nodeStat(r, replica.Name)
	time.Sleep(2 * interval)
	after := nodeStat(r, replica.Name)
	if !s.Readable || !after.Readable {
		t.Errorf("the replica after its server ended a session for a recovery conflict: at once %+v, %v later %+v", s, 2*interval, after)
	}
	var reads, onReplica int
	for range 20 {
		if err := r.QueryRow(ctx, "SELECT inet_server_port()").Scan(&port); err != nil {
			t.Errorf("read after the conflict: %v", err)
			continue
		}
		reads++
		if port == replica.Port {
			onReplica++
		}
	}
	if onReplica != reads {
		t.Errorf("%d of %d reads right after the conflict on the replica", onReplica, reads)
	}
	t.Logf("log:\n%s", logs.String())
}
