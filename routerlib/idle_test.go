package routerlib_test

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// idleEndCounter is a pgx tracer that counts the statements, batches,
// copies and prepares the server answered with FATAL 57P05 (idle_session_timeout),
// whatever the router then did with them.
type idleEndCounter struct {
	n    atomic.Int64
	code string // the SQLSTATE counted instead of 57P05, such as 57P01
}

func (c *idleEndCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	return ctx
}

func (c *idleEndCounter) TraceQueryEnd(_ context.Context, _ *pgx.Conn, d pgx.TraceQueryEndData) {
	c.count(d.Err)
}

func (c *idleEndCounter) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	return ctx
}

func (c *idleEndCounter) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}

func (c *idleEndCounter) TraceCopyFromStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceCopyFromStartData) context.Context {
	return ctx
}

func (c *idleEndCounter) TraceCopyFromEnd(_ context.Context, _ *pgx.Conn, d pgx.TraceCopyFromEndData) {
	c.count(d.Err)
}

func (c *idleEndCounter) TracePrepareStart(ctx context.Context, _ *pgx.Conn, _ pgx.TracePrepareStartData) context.Context {
	return ctx
}

// TracePrepareEnd counts the round trip in which pgx describes a copy's
// columns before its COPY statement, which TraceCopyFromEnd does not see
// fail.
func (c *idleEndCounter) TracePrepareEnd(_ context.Context, _ *pgx.Conn, d pgx.TracePrepareEndData) {
	c.count(d.Err)
}

// TraceBatchEnd counts a batch once, its preparing round trip's failure
// too, which no TraceBatchQuery sees.
func (c *idleEndCounter) TraceBatchEnd(_ context.Context, _ *pgx.Conn, d pgx.TraceBatchEndData) {
	c.count(d.Err)
}

func (c *idleEndCounter) count(err error) {
	code := c.code
	if code == "" {
		code = "57P05"
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == code {
		c.n.Add(1)
	}
}

// idleRerunMsg is what the router logs (at debug level) when a call runs
// again after the server ended its idle session.
const idleRerunMsg = "routerlib: the server ended an idle session (idle_session_timeout); the call, which did not run, runs again"

// TestIdleSessionTimeoutIsNotANodeFault: a server with idle_session_timeout
// ends every router session idle longer (FATAL 57P05), and the router sees
// it only when it sends the next statement on that session, which the
// server never runs. Readers and writers in bursts, with pauses longer than
// the timeout: no statement fails (reads and writes alike run again), no
// node leaves rotation or stops taking writes, and each write is applied
// exactly once. A write on the primary first meets a session the server is
// known to have ended, so that the primary's case is always exercised.
// In read_your_writes mode each worker carries a Session: the writes go
// through the capture path and the reads wait for their replay.
func TestIdleSessionTimeoutIsNotANodeFault(t *testing.T) {
	for _, mode := range []string{artifact.ModeEventual, artifact.ModeReadYourWrites} {
		t.Run(mode, func(t *testing.T) { idleSessionTimeout(t, mode) })
	}
}

func idleSessionTimeout(t *testing.T, mode string) {
	topo := routertest.Shared(t)
	ctx := context.Background()
	if err := topo.Primary.Exec(ctx, "DROP TABLE IF EXISTS idle_writes; CREATE TABLE idle_writes (id int8 NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	ended := &idleEndCounter{}
	r, reruns := idleRouter(t, topo, mode, func(cfg *pgxpool.Config) { cfg.ConnConfig.Tracer = ended })
	rerunOnPrimary := func() int { return reruns(topo.Primary.Name) }

	stopWatch := watchStat(r, func(s routerlib.NodeStat) bool {
		return !s.Healthy || s.DeclaredRole == artifact.RoleReplica && !s.Readable || s.DeclaredRole == artifact.RolePrimary && !s.Writer
	})

	var nextID, written, reads, failed atomic.Int64
	var firstErr atomic.Pointer[error]

	// The primary's case by construction: a write leaves its session idle
	// in the pool; once the server has ended it, the next write is sent on
	// it, meets FATAL 57P05, and runs again.
	first := func() int {
		ctx := routerlib.WithSession(ctx, &routerlib.Session{})
		id := nextID.Add(1)
		var pid int
		if err := r.QueryRow(ctx, "INSERT INTO idle_writes VALUES ($1) RETURNING pg_backend_pid()", id).Scan(&pid); err != nil {
			t.Fatal(err)
		}
		written.Add(1)
		return pid
	}
	sessionGone(t, topo, first(), "the first write's")
	first()
	if rerunOnPrimary() == 0 {
		t.Fatal("the write after the server ended the pool's only idle session did not run again: it met no ended session, and the test would prove nothing of writes")
	}
	fail := func(err error) {
		failed.Add(1)
		firstErr.CompareAndSwap(nil, &err)
	}
	// Each worker sends a burst, then idles past the timeout (not past
	// pgxpool's one-second ping), so the next burst meets ended sessions.
	deadline := time.Now().Add(4 * time.Second)
	var wg sync.WaitGroup
	worker := func(burst func(ctx context.Context, i int)) {
		wg.Go(func() {
			ctx := routerlib.WithSession(ctx, &routerlib.Session{})
			for i := 0; time.Now().Before(deadline); i++ {
				for j := range 4 {
					burst(ctx, i*4+j)
				}
				time.Sleep(idleTimeout + time.Duration(50+rand.IntN(250))*time.Millisecond)
			}
		})
	}
	for range 4 {
		worker(func(ctx context.Context, i int) {
			var port int
			var err error
			switch i % 3 {
			case 0:
				err = r.QueryRow(ctx, "SELECT inet_server_port()").Scan(&port)
			case 1:
				var rows pgx.Rows
				if rows, err = r.Query(ctx, "SELECT inet_server_port()"); err == nil {
					_, err = pgx.CollectRows(rows, pgx.RowTo[int32])
				}
			default:
				_, err = r.Exec(ctx, "SELECT inet_server_port()")
			}
			reads.Add(1)
			if err != nil {
				fail(err)
			}
		})
	}
	for range 2 {
		worker(func(ctx context.Context, i int) {
			id := nextID.Add(1)
			var err error
			if i%2 == 0 {
				_, err = r.Exec(ctx, "INSERT INTO idle_writes VALUES ($1)", id)
			} else {
				var got int64
				err = r.QueryRow(ctx, "INSERT INTO idle_writes VALUES ($1) RETURNING id", id).Scan(&got)
			}
			if err != nil {
				fail(err)
				return
			}
			written.Add(1)
		})
	}
	wg.Wait()
	left := stopWatch()

	t.Logf("%d reads, %d writes (%d applied), %d failed; the server ended %d idle sessions under a statement", reads.Load(), nextID.Load(), written.Load(), failed.Load(), ended.n.Load())
	// The capture path of read_your_writes speaks pgconn, which the pgx
	// tracer does not see: the router's own record counts its writes.
	t.Logf("%d calls on the primary ran again", rerunOnPrimary())
	// The replicas' case: a read that met a session the server had ended
	// runs again and the router says so (idleRerunMsg), whichever of its
	// paths met it; the tracer sees only the statements pgx sent. Once
	// the router saw an ending on a node it pings the sessions older than
	// it (shouldPing), so the traced count may be 0 when the first ending
	// on each replica was met by the router itself (read_your_writes,
	// under load: once in a clean-clone CI run).
	standbyReruns := 0
	for _, s := range topo.Standbys {
		standbyReruns += reruns(s.Name)
	}
	t.Logf("%d calls on the replicas ran again", standbyReruns)
	if ended.n.Load() == 0 && standbyReruns == 0 {
		t.Fatal("no statement on a replica met a session ended by idle_session_timeout: the test proves nothing of reads")
	}
	if failed.Load() != 0 {
		t.Errorf("%d statements failed; want 0; the first: %v", failed.Load(), *firstErr.Load())
	}
	if left != nil {
		t.Errorf("a node left rotation or stopped taking writes: %+v", *left)
	}
	// Each write that succeeded is there once; none that failed is.
	var rows, distinct int64
	if err := topo.Primary.QueryRow(ctx, "SELECT count(*), count(DISTINCT id) FROM idle_writes").Scan(&rows, &distinct); err != nil {
		t.Fatal(err)
	}
	if rows != written.Load() || distinct != rows {
		t.Errorf("idle_writes holds %d rows (%d distinct ids) after %d successful writes; want each applied once", rows, distinct, written.Load())
	}
}

// idleTimeout is the idle_session_timeout of idleRouter's sessions: under
// a second, or pgxpool's ping of sessions idle longer would find them
// ended first; not much less, or on a busy machine (two suites at once
// under -race) a new session idles that long between its setup and its
// first query, the monitor's too: with 100 ms the checks failed three
// times in a row and ejected healthy nodes.
const idleTimeout = 500 * time.Millisecond

// idleRouter is a Router on topo in mode whose sessions the server ends
// once idle for idleTimeout, each pool's configuration then changed by
// edit; reruns counts the calls on a node that met such a session and ran
// again (idleRerunMsg). The subject is the sessions, not ejection
// (steadyHealth).
func idleRouter(t *testing.T, topo *routertest.Topology, mode string, edit func(*pgxpool.Config), editArtifact ...func(*artifact.Topology)) (r *routerlib.Router, reruns func(node string) int) {
	a := steadyHealth(topo.Artifact(), interval)
	a.Consistency.Mode = mode
	for _, e := range editArtifact {
		e(&a)
	}
	if mode == artifact.ModeReadYourWrites {
		// A session's read that no replica has replayed for goes to the
		// primary at once, not after a wait, and not to a replica at the
		// primary's position when the primary is behind the session (a
		// position the test made up).
		a.Consistency.WaitTimeout = "0s"
	}
	logs := &logClock{}
	r = newRouter(t, a, routerlib.WithLogger(slog.New(logs)), routerlib.WithPoolConfig(func(_ artifact.Node, cfg *pgxpool.Config) {
		cfg.ConnConfig.RuntimeParams["idle_session_timeout"] = idleTimeout.String()
		// pgxpool pings a session idle over a second before handing it
		// out, and a dead one is dropped unseen: the statement would meet
		// only sessions idle between the timeout and that second, a
		// window a busy machine's late timers close (the primary's case
		// once went unexercised). Without that ping every session idle
		// past the timeout meets the next statement, however late it
		// comes. The router's own ping of the sessions older than an
		// ending it saw (shouldPing) stays.
		cfg.ShouldPing = func(context.Context, pgxpool.ShouldPingParams) bool { return false }
		edit(cfg)
	}))
	return r, func(node string) int {
		logs.mu.Lock()
		defer logs.mu.Unlock()
		return len(logs.times[[2]string{idleRerunMsg, node}])
	}
}

// sessionGone waits until the primary's session pid (whose, for the
// failure's words) is gone: the server ended it as idle.
func sessionGone(t *testing.T, topo *routertest.Topology, pid int, whose string) {
	t.Helper()
	sessionGoneOn(t, topo.Primary, pid, whose)
}

// sessionGoneOn waits until node's session pid (whose, for the failure's
// words) is gone: the server ended it as idle.
func sessionGoneOn(t *testing.T, node *routertest.Node, pid int, whose string) {
	t.Helper()
	eventually(t, 30*time.Second, "the server ends "+whose+" idle session on "+node.Name, func() bool {
		var gone bool
		if err := node.QueryRow(context.Background(), "SELECT NOT EXISTS (SELECT FROM pg_stat_activity WHERE pid = $1)", pid).Scan(&gone); err != nil {
			t.Fatal(err)
		}
		return gone
	})
}

// TestIdleSessionEndedUnderWriteBatch: an autocommit write batch
// (Router.SendBatch outside a transaction) sent on a session the server
// had already ended as idle (idle_session_timeout: FATAL 57P05, read at
// the batch's first result) never ran, as an Exec sent there never does;
// it gets an Exec's answer: sent again on a live session, once (its
// statements' callbacks too), whatever result the caller reads first, in
// eventual and read_your_writes mode, with its statements prepared and
// cached (the default exec mode) or sent with their text. A batch that
// begins a transaction and queues its COMMIT is not sent again (the
// caller holds its Tx), and says it did not commit. Before, both failed
// with ErrMaybeCommitted although nothing of them had run (the
// transaction's batch only when sent with its text: prepared, pgx's
// prepare round trip met the ended session first, which said not sent).
func TestIdleSessionEndedUnderWriteBatch(t *testing.T) {
	topo := routertest.Shared(t)
	ctx := context.Background()
	if err := topo.Primary.Exec(ctx, "DROP TABLE IF EXISTS idle_batch; CREATE TABLE idle_batch (id int8 NOT NULL, tag text NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	const insert = "INSERT INTO idle_batch VALUES ($1, $2)"
	var id atomic.Int64
	for _, mode := range []string{artifact.ModeEventual, artifact.ModeReadYourWrites} {
		for _, exec := range []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeExec} {
			t.Run(mode+"/"+exec.String(), func(t *testing.T) {
				r, rerunsOn := idleRouter(t, topo, mode, func(cfg *pgxpool.Config) { cfg.ConnConfig.DefaultQueryExecMode = exec })
				reruns := func() int { return rerunsOn(topo.Primary.Name) }
				sctx := routerlib.WithSession(ctx, &routerlib.Session{})
				for _, first := range []string{"Exec", "Query", "Close", "BeginTx"} {
					// The batch's statements, cached on the session the
					// pool keeps, whose pid the batch says.
					tag := mode + "/" + exec.String() + "/" + first
					b := &pgx.Batch{}
					b.Queue(insert, id.Add(1), "warm")
					b.Queue("SELECT pg_backend_pid()")
					br := r.SendBatch(sctx, b)
					if _, err := br.Exec(); err != nil {
						t.Fatal(err)
					}
					var pid int
					if err := br.QueryRow().Scan(&pid); err != nil {
						t.Fatal(err)
					}
					if err := br.Close(); err != nil {
						t.Fatal(err)
					}
					sessionGone(t, topo, pid, "the batch's")
					before := reruns()
					b = &pgx.Batch{}
					if first == "BeginTx" {
						// A batch that begins a transaction and commits it:
						// the caller has its Tx, bound to the ended session.
						// It is not sent again, and says it did not commit.
						b.BeginTx(pgx.TxOptions{})
						b.Queue(insert, id.Add(1), tag)
						b.Queue("COMMIT")
						br = r.SendBatch(sctx, b)
						_, err := br.Exec()
						closeErr := br.Close()
						var n int
						if qerr := topo.Primary.QueryRow(ctx, "SELECT count(*) FROM idle_batch WHERE tag = $1", tag).Scan(&n); qerr != nil {
							t.Fatal(qerr)
						}
						t.Logf("%s: %v; Close: %v; %d rows written", first, err, closeErr, n)
						if n != 0 || err == nil || errors.Is(err, routerlib.ErrMaybeCommitted) || errors.Is(closeErr, routerlib.ErrMaybeCommitted) || !strings.Contains(err.Error(), "did not commit") {
							t.Errorf("%s: a transaction's batch sent on a session the server had ended as idle: %v (Close: %v), %d rows written; want 0 rows and an error saying it did not commit, no ErrMaybeCommitted", first, err, closeErr, n)
						}
						continue
					}
					b.Queue(insert, id.Add(1), tag)
					b.Queue("SELECT pg_backend_pid()")
					var called int
					// A QueryRow callback, which pgx's Close runs with a failed
					// result's error too (an Exec callback it does not).
					var got int64
					b.Queue(insert+" RETURNING id", id.Add(1), tag).QueryRow(func(row pgx.Row) error { called++; return row.Scan(&got) })
					br = r.SendBatch(sctx, b)
					err := readFirstResult(br, first)
					closeErr := br.Close()
					var n int
					if qerr := topo.Primary.QueryRow(ctx, "SELECT count(*) FROM idle_batch WHERE tag = $1", tag).Scan(&n); qerr != nil {
						t.Fatal(qerr)
					}
					t.Logf("%s first: %v; Close: %v; %d rows written; %d reruns logged", first, err, closeErr, n, reruns()-before)
					if err != nil || closeErr != nil {
						t.Errorf("%s first: a batch sent on a session the server had ended as idle failed (%v; Close: %v), want it sent again; maybe committed: %t; rows written: %d", first, err, closeErr,
							errors.Is(err, routerlib.ErrMaybeCommitted) || errors.Is(closeErr, routerlib.ErrMaybeCommitted), n)
					}
					if n != 2 && err == nil && closeErr == nil {
						t.Errorf("%s first: %d rows written, want 2 (the batch ran once)", first, n)
					}
					if called != 1 && err == nil && closeErr == nil {
						t.Errorf("%s first: the last statement's callback ran %d times, want 1", first, called)
					}
					if reruns() == before {
						t.Errorf("%s first: the batch met no session ended as idle: the test proves nothing", first)
					}
				}
			})
		}
	}
}

// readFirstResult reads br's first result the way first names it: "Exec"
// or "BeginTx" by Exec, "Query" by Query (its rows closed), and any other
// ("Close") not at all, leaving it to Close. It returns the result's
// error.
func readFirstResult(br pgx.BatchResults, first string) error {
	var err error
	switch first {
	case "Exec", "BeginTx":
		_, err = br.Exec()
	case "Query":
		var rows pgx.Rows
		if rows, err = br.Query(); err == nil {
			rows.Close()
			err = rows.Err()
		}
	}
	return err
}
