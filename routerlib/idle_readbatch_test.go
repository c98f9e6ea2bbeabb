package routerlib_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// TestIdleSessionEndedUnderReadBatch: a batch of reads (Router.SendBatch
// to a replica) sent on a session the replica had ended as idle
// (idle_session_timeout: FATAL 57P05, read at the batch's first result)
// never ran, and a read has nothing to undo: it is sent again on a live
// session, as a Query there runs again, whatever result the caller reads
// first, with its statements prepared and cached (the default exec mode)
// or sent with their text, and a batch that begins a read-only
// transaction too (its Tx, taken before any result is read, is the new
// session's). Each callback runs once, on the new session's result: not
// also with the FATAL, as pgx's Close would run the failed sending's.
// Before, the caller got the bare FATAL, naming no node.
func TestIdleSessionEndedUnderReadBatch(t *testing.T) {
	topo := routertest.Shared(t)
	ctx := context.Background()
	for _, exec := range []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeExec} {
		t.Run(exec.String(), func(t *testing.T) {
			ended := &idleEndCounter{}
			r, _ := idleRouter(t, topo, artifact.ModeEventual, func(cfg *pgxpool.Config) {
				cfg.ConnConfig.DefaultQueryExecMode = exec
				cfg.ConnConfig.Tracer = ended
			})
			for _, first := range []string{"Exec", "Query", "Close", "BeginTx"} {
				idleReadSessions(t, r, topo)
				before := ended.n.Load()
				b := &pgx.Batch{}
				if first == "BeginTx" {
					b.BeginTx(pgx.TxOptions{AccessMode: pgx.ReadOnly})
				}
				var one, firstCalled int
				if first == "Close" {
					// Close reads the first result, through its callback.
					b.Queue("SELECT 1").QueryRow(func(row pgx.Row) error { firstCalled++; return row.Scan(&one) })
				} else {
					b.Queue("SELECT 1")
					one, firstCalled = 1, 1
				}
				var answer, called int
				b.Queue("SELECT 40 + $1::int", 2).QueryRow(func(row pgx.Row) error { called++; return row.Scan(&answer) })
				br := r.SendBatch(ctx, b)
				tx := br.Tx() // before any result, as a deferred Rollback takes it
				err := readFirstResult(br, first)
				closeErr := br.Close()
				var txErr error
				if first == "BeginTx" {
					if tx == nil {
						t.Fatalf("%s: the batch's Tx is nil", first)
					}
					txErr = tx.Commit(ctx)
				}
				met := ended.n.Load() - before
				t.Logf("%s first: %v; Close: %v; Commit: %v; answer %d, callback ran %d times; %d statements met an ended session", first, err, closeErr, txErr, answer, called, met)
				if met == 0 {
					t.Errorf("%s first: the batch met no session ended as idle: the test proves nothing", first)
				}
				if err != nil || closeErr != nil || txErr != nil {
					t.Errorf("%s first: a read batch sent on a session the replica had ended as idle failed (%v; Close: %v; Commit: %v), want it sent again", first, err, closeErr, txErr)
					continue
				}
				if answer != 42 || called != 1 || one != 1 || firstCalled != 1 {
					t.Errorf("%s first: answer %d, callback ran %d times, first result %d, its callback ran %d times; want 42 and 1, each callback once", first, answer, called, one, firstCalled)
				}
			}
		})
	}
}

// idleReadSessions sends read batches through r until each replica of
// topo served one, then waits until the replicas have ended those
// sessions as idle: r's replica pools then hold only ended sessions.
func idleReadSessions(t *testing.T, r *routerlib.Router, topo *routertest.Topology) {
	t.Helper()
	for s, pid := range readBatchSessions(t, r, topo) {
		sessionGoneOn(t, s, pid, "a read batch's")
	}
}

// readBatchSessions sends read batches through r until each replica of
// topo served one, and returns the session each replica's last one ran
// on.
func readBatchSessions(t *testing.T, r *routerlib.Router, topo *routertest.Topology) map[*routertest.Node]int {
	t.Helper()
	ctx := context.Background()
	pids := map[*routertest.Node]int{}
	for i := 0; len(pids) < len(topo.Standbys); i++ {
		if i == 50 {
			t.Fatalf("50 read batches reached %d of %d replicas", len(pids), len(topo.Standbys))
		}
		b := &pgx.Batch{}
		var port int32
		var pid int
		b.Queue("SELECT inet_server_port(), pg_backend_pid()").QueryRow(func(row pgx.Row) error { return row.Scan(&port, &pid) })
		if err := r.SendBatch(ctx, b).Close(); err != nil {
			t.Fatal(err)
		}
		for _, s := range topo.Standbys {
			if s.Port == int(port) {
				pids[s] = pid
			}
		}
	}
	return pids
}

// TestTerminatedUnderReadBatch: a batch of reads sent on a replica
// session that pg_terminate_backend() had ended (FATAL 57P01, read at
// the batch's first result) is sent again, as a Query there runs again:
// on a session of that replica made after the ending, which the same pass
// cannot reach (the node is checked at once, and stays in rotation).
// Before, the caller got the bare FATAL, naming no node.
func TestTerminatedUnderReadBatch(t *testing.T) {
	topo := routertest.Shared(t)
	ctx := context.Background()
	ended := &idleEndCounter{code: "57P01"}
	r := newRouter(t, steadyHealth(topo.Artifact(), interval), routerlib.WithPoolConfig(func(_ artifact.Node, cfg *pgxpool.Config) {
		cfg.MaxConns = 1 // the batch goes out on the session the test ended
		cfg.ConnConfig.Tracer = ended
	}))
	endings := func() int { return int(ended.n.Load()) }
	for i := range 3 {
		for s, pid := range readBatchSessions(t, r, topo) {
			var ended bool
			if err := s.QueryRow(ctx, "SELECT pg_terminate_backend($1, 10000)", pid).Scan(&ended); err != nil || !ended {
				t.Fatalf("ending %s's session %d: %t, %v", s.Name, pid, ended, err)
			}
		}
		b := &pgx.Batch{}
		var answer int
		b.Queue("SELECT 40 + $1::int", 2).QueryRow(func(row pgx.Row) error { return row.Scan(&answer) })
		before := endings()
		err := r.SendBatch(ctx, b).Close()
		t.Logf("batch %d: %v, answer %d; %d endings seen", i, err, answer, endings()-before)
		if endings() == before {
			t.Errorf("batch %d met no session pg_terminate_backend had ended: the test proves nothing", i)
		}
		if err != nil || answer != 42 {
			t.Errorf("batch %d, a read batch sent on a replica session pg_terminate_backend had ended: %v, answer %d; want it sent again, 42", i, err, answer)
		}
	}
}

// TestIdleSessionEndedUnderStickyReadBatch: in read_your_writes mode, a
// batch of reads that goes to the primary (no replica has replayed the
// session's position: sticky) is sent through the capture path
// (sendReadBatchCapture), and is sent again, whole, when the primary had
// ended its session as idle. Before, the caller got the bare FATAL 57P05.
func TestIdleSessionEndedUnderStickyReadBatch(t *testing.T) {
	topo := routertest.Shared(t)
	ended := &idleEndCounter{}
	r, _ := idleRouter(t, topo, artifact.ModeReadYourWrites, func(cfg *pgxpool.Config) {
		cfg.ConnConfig.Tracer = ended
		cfg.MaxConns = 1 // the batch goes out on the session the test saw ended
	})
	// A position no replica has replayed: the reads stick to the primary.
	sctx := routerlib.WithSession(context.Background(), routerlib.NewSession(routerlib.LSN(1<<62)))
	for i := range 2 {
		b := &pgx.Batch{}
		var pid int
		var port int32
		b.Queue("SELECT pg_backend_pid(), inet_server_port()").QueryRow(func(row pgx.Row) error { return row.Scan(&pid, &port) })
		before := ended.n.Load()
		err := r.SendBatch(sctx, b).Close()
		t.Logf("batch %d: %v; ran on port %d (the primary's: %d); %d met an ended session", i, err, port, topo.Primary.Port, ended.n.Load()-before)
		if err != nil {
			t.Fatalf("batch %d, a read batch on the primary: %v; want it sent again when the primary had ended its session as idle", i, err)
		}
		if int(port) != topo.Primary.Port {
			t.Fatalf("batch %d ran on port %d, not the primary's: the test proves nothing", i, port)
		}
		sessionGone(t, topo, pid, "the read batch's")
	}
}
