package routerlib_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// TestBatchSentAgainLeavesTheCallersBatch: a batch the router sends again
// because the server had ended its session as idle (resendBatch) is the
// caller's pgx.Batch, which the caller may send again: the same Batch
// sent a second time, and a third time over ended sessions again, gives
// the right rows and runs each callback once per sending, for a read
// batch on a replica (one that begins a read-only transaction too,
// committed through its Tx), an autocommit write batch, and a
// read_your_writes read batch that sticks to the primary, with the
// statements prepared and cached (the default exec mode) or sent with
// their text, and named arguments (which pgx rewrites in the queued
// query it sends). Before, the
// resend took the callbacks out of the caller's queued queries (the
// second sending ran none), and pgx's description of each statement, kept
// in the caller's queued query from the ended session, where preparing it
// failed, made the second sending fail ("mismatched param and argument
// count").
func TestBatchSentAgainLeavesTheCallersBatch(t *testing.T) {
	topo := routertest.Shared(t)
	ctx := context.Background()
	if err := topo.Primary.Exec(ctx, "DROP TABLE IF EXISTS batch_again; CREATE TABLE batch_again (tag text NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	for _, exec := range []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeExec} {
		for _, kind := range []string{"read", "read-tx", "write", "sticky-read"} {
			t.Run(exec.String()+"/"+kind, func(t *testing.T) {
				mode := artifact.ModeEventual
				sctx := ctx
				if kind == "sticky-read" {
					mode = artifact.ModeReadYourWrites
					// A position no replica has replayed: the reads stick
					// to the primary.
					sctx = routerlib.WithSession(ctx, routerlib.NewSession(routerlib.LSN(1<<62)))
				}
				ended := &idleEndCounter{}
				r, _ := idleRouter(t, topo, mode, func(cfg *pgxpool.Config) {
					cfg.ConnConfig.DefaultQueryExecMode = exec
					cfg.ConnConfig.Tracer = ended
					cfg.MaxConns = 1 // the batch goes out on the session the test saw ended
				})
				endSessions := func() {
					t.Helper()
					if kind == "read" || kind == "read-tx" {
						idleReadSessions(t, r, topo)
						return
					}
					b := &pgx.Batch{}
					var pid int
					b.Queue("SELECT pg_backend_pid()").QueryRow(func(row pgx.Row) error { return row.Scan(&pid) })
					if kind == "write" {
						b.Queue("INSERT INTO batch_again VALUES ('warm')")
					}
					if err := r.SendBatch(sctx, b).Close(); err != nil {
						t.Fatal(err)
					}
					sessionGone(t, topo, pid, "the batch's")
				}

				tag := exec.String() + "/" + kind
				b := &pgx.Batch{}
				if kind == "read-tx" {
					b.BeginTx(pgx.TxOptions{AccessMode: pgx.ReadOnly})
				}
				var sum, called, tags, tagsCalled int
				if kind == "write" {
					b.Queue("INSERT INTO batch_again VALUES ($1) RETURNING 1", tag).QueryRow(func(row pgx.Row) error { tagsCalled++; return row.Scan(&tags) })
				}
				// Named arguments: pgx rewrites the text and arguments of
				// the queued query it sends.
				b.Queue("SELECT @forty::int + @two::int", pgx.NamedArgs{"forty": 40, "two": 2}).QueryRow(func(row pgx.Row) error {
					called++
					var n int
					err := row.Scan(&n)
					sum += n
					return err
				})
				sendings := []struct {
					name  string
					ended bool // over sessions the server had ended
				}{{"first, over ended sessions", true}, {"again at once", false}, {"again over ended sessions", true}}
				for i, s := range sendings {
					if s.ended {
						endSessions()
					}
					before := ended.n.Load()
					br := r.SendBatch(sctx, b)
					tx := br.Tx() // before any result, as a deferred Rollback takes it
					err := br.Close()
					if tx != nil && err == nil {
						err = tx.Commit(ctx)
					}
					met := ended.n.Load() - before
					t.Logf("sending %d (%s): %v; callback ran %d times in all, sum %d; %d met an ended session", i+1, s.name, err, called, sum, met)
					if s.ended && met == 0 {
						t.Fatalf("sending %d met no session ended as idle: the test proves nothing", i+1)
					}
					if err != nil {
						t.Fatalf("sending %d (%s) of the same batch: %v; want it to succeed", i+1, s.name, err)
					}
					if want := i + 1; called != want || sum != 42*want {
						t.Fatalf("after sending %d (%s) of the same batch the callback ran %d times, its answers summing to %d; want %d and %d (once a sending)", i+1, s.name, called, sum, want, 42*want)
					}
					if kind == "write" {
						n := tagged(t, ctx, topo.Primary, "batch_again", tag)
						if want := i + 1; n != want || tagsCalled != want {
							t.Fatalf("after sending %d (%s) of the same write batch: %d rows, the INSERT's callback ran %d times; want %d and %d", i+1, s.name, n, tagsCalled, want, want)
						}
					}
				}
			})
		}
	}
}

// TestBatchSentAgainGotNoConnection: a batch that begins a read-only
// transaction ([pgx.Batch.BeginTx]) on a replica whose session the
// server had ended as idle is sent again; when that sending gets no
// connection (the replica stopped meanwhile), the transaction the caller
// took from the batch's Tx never began: its Commit and Rollback fail
// naming the replica and the cause (the failed connect), and match
// pgx.ErrTxClosed, and no connection stays acquired. Before, the Tx was
// the first sending's, on the ended session its resend had released: its
// Commit said pgx's bare "conn closed". (With another node to take it,
// the batch goes there: TestReadBatchMovesOffAFailedReplica.)
func TestBatchSentAgainGotNoConnection(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(1))
	ctx := context.Background()
	replica := topo.Standbys[0]
	for _, exec := range []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeExec} {
		t.Run(exec.String(), func(t *testing.T) {
			if err := replica.Start(ctx); err != nil {
				t.Fatal(err)
			}
			ended := &idleEndCounter{}
			r, _ := idleRouter(t, topo, artifact.ModeEventual, func(cfg *pgxpool.Config) {
				cfg.ConnConfig.DefaultQueryExecMode = exec
				cfg.ConnConfig.Tracer = ended
				cfg.MaxConns = 1 // the batch goes out on the session the test saw ended
			}, func(a *artifact.Topology) {
				// No other node to send it to: a read batch whose
				// replica failed goes to another, as a Query's read.
				a.ReadPolicy.Fallback = artifact.FallbackError
			})
			eventually(t, 10*time.Second, replica.Name+" in rotation", func() bool { return nodeStat(r, replica.Name).Readable })
			idleReadSessions(t, r, topo)
			b := &pgx.Batch{}
			b.BeginTx(pgx.TxOptions{AccessMode: pgx.ReadOnly})
			b.Queue("SELECT 1")
			br := r.SendBatch(ctx, b)
			tx := br.Tx() // before any result, as a deferred Rollback takes it
			if err := replica.Stop(ctx); err != nil {
				t.Fatal(err)
			}
			_, err := br.Exec()
			closeErr := br.Close()
			commitErr := tx.Commit(ctx)
			rollbackErr := tx.Rollback(ctx)
			t.Logf("Exec: %v; Close: %v; Commit: %v; Rollback: %v; %d met an ended session", err, closeErr, commitErr, rollbackErr, ended.n.Load())
			if ended.n.Load() == 0 {
				t.Fatal("the batch met no session ended as idle: the test proves nothing")
			}
			if err == nil {
				t.Fatal("the batch's first result succeeded on a stopped replica: the test proves nothing")
			}
			for what, err := range map[string]error{"Commit": commitErr, "Rollback": rollbackErr} {
				if err == nil || !strings.Contains(err.Error(), `"`+replica.Name+`"`) || !errors.As(err, new(*pgconn.ConnectError)) || !errors.Is(err, pgx.ErrTxClosed) {
					t.Errorf("%s of the transaction whose batch got no connection when sent again: %v; want an error naming %s and the failed connect, matching pgx.ErrTxClosed", what, err, replica.Name)
				}
			}
			if n := nodeStat(r, replica.Name).Pool.AcquiredConns; n != 0 {
				t.Errorf("%d connections of %s's pool stay acquired, want 0", n, replica.Name)
			}
		})
	}
}

// TestReadOnlyBatchGotNoConnection: a batch that begins a read-only
// transaction ([pgx.Batch.BeginTx]) and gets no connection (the caller's
// context ended before the pool gave one) gives, as pgx promises, a
// transaction from Tx, whose Rollback (deferred, as usual) and Commit
// fail naming the replica and why, matching pgx.ErrTxClosed. Before, Tx
// was nil: the deferred Rollback panicked.
func TestReadOnlyBatchGotNoConnection(t *testing.T) {
	topo := routertest.Shared(t)
	r := newRouter(t, steadyHealth(topo.Artifact(), interval))
	eventually(t, 10*time.Second, "a replica in rotation", func() bool { return nodeStat(r, topo.Standbys[0].Name).Readable })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	b := &pgx.Batch{}
	b.BeginTx(pgx.TxOptions{AccessMode: pgx.ReadOnly})
	b.Queue("SELECT 1")
	br := r.SendBatch(ctx, b)
	tx := br.Tx()
	closeErr := br.Close()
	if tx == nil {
		t.Fatalf("Tx of a read-only batch that got no connection is nil (Close: %v): a deferred br.Tx().Rollback(ctx) panics", closeErr)
	}
	for what, err := range map[string]error{"Rollback": tx.Rollback(ctx), "Commit": tx.Commit(ctx)} {
		t.Logf("%s: %v", what, err)
		if err == nil || !strings.Contains(err.Error(), `node "replica-`) || !errors.Is(err, context.Canceled) || !errors.Is(err, pgx.ErrTxClosed) {
			t.Errorf("%s: %v; want an error naming the replica and the context's end, matching pgx.ErrTxClosed", what, err)
		}
	}
}

// TestTerminatedUnderReadBatchOnThePrimary: a batch of reads on the
// primary's read-write session (the fallback when no replica is in the
// router file, a read_your_writes read that sticks to the primary, and a
// batch that begins a read-only transaction there) whose session
// pg_terminate_backend had ended is sent again when nothing of it ran:
// the FATAL 57P01 came in the round trip in which pgx prepares the
// batch's new statements, before any of them went out (the default exec
// mode). When the FATAL came at the first result, the server may have
// run the batch up to the ending (a function it called may have written
// elsewhere): it is not sent again, and the error says so, naming the
// primary. Before, neither was sent again: only a replica's read-only
// session took a batch again after such an ending.
func TestTerminatedUnderReadBatchOnThePrimary(t *testing.T) {
	topo := routertest.Shared(t)
	ctx := context.Background()
	for _, exec := range []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeExec} {
		for _, kind := range []string{"fallback", "fallback-tx", "sticky"} {
			t.Run(exec.String()+"/"+kind, func(t *testing.T) {
				a := steadyHealth(topo.Artifact(), interval)
				sctx := ctx
				if kind == "sticky" {
					a.Consistency.Mode, a.Consistency.WaitTimeout = artifact.ModeReadYourWrites, "0s"
					// A position no replica has replayed: the reads stick
					// to the primary.
					sctx = routerlib.WithSession(ctx, routerlib.NewSession(routerlib.LSN(1<<62)))
				} else {
					a.Nodes = a.Nodes[:1] // the primary alone: reads fall back to it
				}
				ended := &idleEndCounter{code: "57P01"}
				r := newRouter(t, a, routerlib.WithPoolConfig(func(_ artifact.Node, cfg *pgxpool.Config) {
					cfg.ConnConfig.DefaultQueryExecMode = exec
					cfg.ConnConfig.Tracer = ended
					cfg.MaxConns = 1 // the batch goes out on the session the test ended
				}))
				for i := range 3 {
					b := &pgx.Batch{}
					var pid int
					b.Queue("SELECT pg_backend_pid()").QueryRow(func(row pgx.Row) error { return row.Scan(&pid) })
					if err := r.SendBatch(sctx, b).Close(); err != nil {
						t.Fatal(err)
					}
					var terminated bool
					if err := topo.Primary.QueryRow(ctx, "SELECT pg_terminate_backend($1, 10000)", pid).Scan(&terminated); err != nil || !terminated {
						t.Fatalf("ending the primary's session %d: %t, %v", pid, terminated, err)
					}
					b = &pgx.Batch{}
					if kind == "fallback-tx" {
						b.BeginTx(pgx.TxOptions{AccessMode: pgx.ReadOnly})
					}
					var answer, port int
					// New text each time: pgx prepares it first (the
					// default exec mode), on the ended session.
					b.Queue(fmt.Sprintf("SELECT 40 + $1::int, inet_server_port() -- %s %d", kind, i), 2).QueryRow(func(row pgx.Row) error { return row.Scan(&answer, &port) })
					before := ended.n.Load()
					br := r.SendBatch(sctx, b)
					tx := br.Tx()
					err := br.Close()
					switch {
					case tx != nil && err == nil:
						err = tx.Commit(ctx)
					case tx != nil:
						_ = tx.Rollback(ctx) // gives its connection back
					}
					t.Logf("batch %d: %v; answer %d on port %d (the primary's: %d); %d met an ended session", i, err, answer, port, topo.Primary.Port, ended.n.Load()-before)
					if ended.n.Load() == before {
						t.Fatalf("batch %d met no session pg_terminate_backend had ended: the test proves nothing", i)
					}
					if exec == pgx.QueryExecModeExec {
						if err == nil || !strings.Contains(err.Error(), `"primary"`) || !strings.Contains(err.Error(), "not sent again") {
							t.Fatalf("batch %d, sent with its text on a session pg_terminate_backend had ended (the FATAL at its first result): %v; want an error naming the primary and saying it was not sent again", i, err)
						}
						continue
					}
					if err != nil || answer != 42 || port != topo.Primary.Port {
						t.Fatalf("batch %d, a read batch on the primary whose session pg_terminate_backend had ended before pgx prepared it: %v, answer %d on port %d; want it sent again there, 42", i, err, answer, port)
					}
				}
			})
		}
	}
}
