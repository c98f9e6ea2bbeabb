package routerlib_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// TestAutocommitBatchAndCopyNodeFailed: autocommit writes whose connection
// fails after they went out, in eventual and read_your_writes mode alike.
// A batch (Router.SendBatch outside a transaction) whose answer was lost
// after the server ran and committed it fails with ErrMaybeCommitted
// naming the primary, at its first result and at its Close, and is not
// sent again (before, both were pgx's bare "unexpected EOF", as if
// nothing had gone out). A CopyFrom whose session the server ended after
// rows went out fails with ErrMaybeCommitted naming the primary and runs
// no second time (its rows are spent); one whose answer was lost runs no
// second time, and says ErrMaybeCommitted whenever it committed; this
// held before. The pool sends every statement with its text, in one flush
// for a batch (QueryExecModeExec), so that the proxy loses the answer to
// the batch itself, after the server ran it.
func TestAutocommitBatchAndCopyNodeFailed(t *testing.T) {
	ctx := context.Background()
	execMode := routerlib.WithPoolConfig(func(_ artifact.Node, cfg *pgxpool.Config) {
		cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeExec
	})
	for _, mode := range []string{artifact.ModeEventual, artifact.ModeReadYourWrites} {
		t.Run(mode, func(t *testing.T) {
			topo, proxy, r := answerLost(t, mode, nil, execMode)
			sctx := routerlib.WithSession(ctx, &routerlib.Session{})
			maybeCommitted := func(what string, err error) {
				t.Helper()
				t.Logf("%s: %v", what, err)
				if !errors.Is(err, routerlib.ErrMaybeCommitted) || !strings.Contains(err.Error(), `"primary"`) {
					t.Errorf("%s: %v, want ErrMaybeCommitted naming the primary", what, err)
				}
			}
			primaryBack := func() {
				t.Helper()
				eventually(t, 10*time.Second, "the primary taking writes again", func() bool { return nodeStat(r, "primary").Writer })
			}

			// A batch whose answer was lost after it committed.
			const insert = "INSERT INTO lost_t VALUES ('batch')"
			b := &pgx.Batch{}
			b.Queue(insert)
			b.Queue("INSERT INTO lost_t VALUES ('batch-2')")
			proxy.LoseAnswerTo(insert)
			br := r.SendBatch(sctx, b)
			_, err := br.Exec()
			maybeCommitted("a batch's first result, its answer lost", err)
			maybeCommitted("the Close of a batch whose answer was lost", br.Close())
			if proxy.Lost() != 1 {
				t.Fatalf("the proxy lost %d answers, want 1", proxy.Lost())
			}
			for _, tag := range []string{"batch", "batch-2"} {
				if n := tagged(t, ctx, topo.Primary, "lost_t", tag); n != 1 {
					t.Errorf("%s: %d rows on the primary, want 1 (the batch ran once, and committed)", tag, n)
				}
			}
			primaryBack()
			if mode == artifact.ModeReadYourWrites {
				checkWrittenOnceAndSeen(t, ctx, sctx, topo, r, "lost_t", "batch-2")
			}

			// A CopyFrom whose answer (to the COPY statement) was lost.
			proxy.LoseAnswerTo(`copy "lost_t" ( "tag" ) from stdin binary;`)
			_, lostErr := r.CopyFrom(sctx, pgx.Identifier{"lost_t"}, []string{"tag"}, pgx.CopyFromRows([][]any{{"copy-lost"}, {"copy-lost"}}))
			if proxy.Lost() != 2 {
				t.Fatalf("the proxy lost %d answers, want 2", proxy.Lost())
			}
			primaryBack()

			// A CopyFrom whose session the server ends after its first
			// rows went out.
			eventually(t, 10*time.Second, "the lost CopyFrom's session gone", func() bool { return copySessions(t, topo) == 0 })
			src := &endingCopySource{t: t, topo: topo, rows: 5, endAt: 2}
			_, err = r.CopyFrom(sctx, pgx.Identifier{"lost_t"}, []string{"tag"}, src)
			maybeCommitted("a CopyFrom whose session ended after rows went out", err)
			if ended := src.result(); ended != 1 {
				t.Fatalf("the test ended %d COPY sessions, want 1", ended)
			}
			primaryBack()
			// pgconn sends the rows without waiting for the server's
			// CopyInResponse, whose loss closes the connection: they may
			// have reached the server, and committed, first
			// (ErrMaybeCommitted), or pgconn may have found the
			// connection closed before it wrote them, and its CopyDone:
			// then nothing committed, and pgconn says nothing went out
			// (SafeToRetry), which is no ErrMaybeCommitted.
			n := tagged(t, ctx, topo.Primary, "lost_t", "copy-lost")
			t.Logf("a CopyFrom whose answer was lost: %d rows committed, %v", n, lostErr)
			switch {
			case n != 0 && n != 2:
				t.Errorf("copy-lost: %d rows on the primary, want 0 or 2 (it ran at most once)", n)
			case lostErr == nil || !strings.Contains(lostErr.Error(), `"primary"`):
				t.Errorf("a CopyFrom whose answer was lost: %v, want an error naming the primary", lostErr)
			case n != 0 && !errors.Is(lostErr, routerlib.ErrMaybeCommitted):
				t.Errorf("a CopyFrom whose answer was lost committed its %d rows, but says %v, not ErrMaybeCommitted", n, lostErr)
			}
			if n := tagged(t, ctx, topo.Primary, "lost_t", "copy-ended"); n != 0 {
				t.Errorf("copy-ended: %d rows on the primary, want 0 (its session ended before its end, and it must not run again)", n)
			}
		})
	}
}

// endingCopySource gives rows rows tagged copy-ended, and at the endAt'th
// ends the session running the COPY (pg_terminate_backend), then waits
// until it is gone: the server ends a COPY that has had rows.
type endingCopySource struct {
	t           *testing.T
	topo        *routertest.Topology
	rows, endAt int
	i           int
	mu          sync.Mutex
	ended       int // sessions ended
}

func (s *endingCopySource) Next() bool {
	s.i++
	if s.i == s.endAt {
		s.end()
	}
	return s.i <= s.rows
}

// copying selects, in pg_stat_activity, the sessions copying into lost_t.
const copying = "state = 'active' AND query ILIKE 'copy%lost_t%' AND pid <> pg_backend_pid()"

func copySessions(t *testing.T, topo *routertest.Topology) int {
	t.Helper()
	var n int
	if err := topo.Primary.QueryRow(context.Background(), "SELECT count(*) FROM pg_stat_activity WHERE "+copying).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func (s *endingCopySource) end() {
	// pgx calls Next on a goroutine of its own, which it starts before
	// it sends the COPY statement: the session may not be copying yet.
	// No t.Fatal here.
	ctx := context.Background()
	var n int
	for deadline := time.Now().Add(10 * time.Second); n == 0 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if err := s.topo.Primary.QueryRow(ctx, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE "+copying).Scan(&n); err != nil {
			s.t.Errorf("ending the COPY's session: %v", err)
			return
		}
	}
	s.mu.Lock()
	s.ended = n
	s.mu.Unlock()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		var left int
		if err := s.topo.Primary.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE "+copying).Scan(&left); err != nil || left == 0 {
			return
		}
	}
	s.t.Errorf("the COPY's session still there 10s after pg_terminate_backend")
}

func (s *endingCopySource) Values() ([]any, error) { return []any{"copy-ended"}, nil }

func (s *endingCopySource) Err() error { return nil }

func (s *endingCopySource) result() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ended
}

// TestCopyResetBeforeItsRows: a CopyFrom whose connection resets after its
// COPY statement went out and before any of its rows could be written
// (the write of the first CopyData fails, having written nothing: pgconn
// says nothing was sent, SafeToRetry) committed nothing, since the server
// commits a COPY at its end, and says so truly: not that it was not sent
// (its COPY statement was), nor that it may have committed. The reset is
// made on the client's socket (resetConn) so that it falls there every
// time; a proxy's close races pgconn's reader, which then reports the
// connection's end instead (ErrMaybeCommitted, TestAutocommitBatchAndCopyNodeFailed).
func TestCopyResetBeforeItsRows(t *testing.T) {
	topo := routertest.Shared(t)
	ctx := context.Background()
	if err := topo.Primary.Exec(ctx, "DROP TABLE IF EXISTS copy_reset; CREATE TABLE copy_reset (tag text)"); err != nil {
		t.Fatal(err)
	}
	fault := &copyReset{}
	r := newRouter(t, steadyHealth(topo.Artifact(), interval), routerlib.WithPoolConfig(func(_ artifact.Node, cfg *pgxpool.Config) {
		dial := cfg.ConnConfig.DialFunc
		cfg.ConnConfig.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dial(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &resetConn{Conn: c, fault: fault}, nil
		}
	}))
	fault.armed.Store(true)
	_, err := r.CopyFrom(ctx, pgx.Identifier{"copy_reset"}, []string{"tag"}, pgx.CopyFromRows([][]any{{"reset"}, {"reset"}}))
	t.Logf("CopyFrom reset before its rows: %v", err)
	if !fault.copySent.Load() || fault.armed.Load() {
		t.Fatalf("the COPY statement went out: %t; the reset fell: %t; want both", fault.copySent.Load(), !fault.armed.Load())
	}
	eventually(t, 10*time.Second, "the reset COPY's session gone", func() bool {
		var n int
		if err := topo.Primary.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE query ILIKE 'copy%copy_reset%' AND pid <> pg_backend_pid()").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == 0
	})
	if n := tagged(t, ctx, topo.Primary, "copy_reset", "reset"); n != 0 {
		t.Errorf("%d rows on the primary, want 0 (the COPY never had its end)", n)
	}
	switch {
	case err == nil:
		t.Fatal("CopyFrom succeeded, though its connection reset")
	case errors.Is(err, routerlib.ErrMaybeCommitted):
		t.Errorf("CopyFrom: %v; want no ErrMaybeCommitted: nothing of it could commit", err)
	case strings.Contains(err.Error(), "not sent"):
		t.Errorf("CopyFrom: %v; says it was not sent, but its COPY statement went out", err)
	case !strings.Contains(err.Error(), `node "primary" failed before the end of the copy was sent; it did not commit`):
		t.Errorf("CopyFrom: %v; want it to say, naming the primary, that the copy did not commit", err)
	}
}

// copyReset arms resetConn: the next CopyData message written on any of
// its connections fails, as on a connection the peer reset, having
// written nothing; every later write on that connection fails so too.
// Its reads fail only a second after pgconn closes it: pgconn, which
// reads the server's messages on a goroutine of its own during a copy,
// then sees the failed write first, not a read's error.
type copyReset struct {
	armed    atomic.Bool
	copySent atomic.Bool // a COPY statement was written before the reset
}

type resetConn struct {
	net.Conn
	fault *copyReset
	reset atomic.Bool
}

func (c *resetConn) Write(b []byte) (int, error) {
	if c.reset.Load() {
		return 0, &net.OpError{Op: "write", Net: "tcp", Err: os.NewSyscallError("write", syscall.ECONNRESET)}
	}
	if c.fault.armed.Load() {
		if len(b) > 0 && b[0] == 'd' && c.fault.armed.CompareAndSwap(true, false) {
			c.reset.Store(true)
			return 0, &net.OpError{Op: "write", Net: "tcp", Err: os.NewSyscallError("write", syscall.ECONNRESET)}
		}
		if bytes.Contains(b, []byte("copy \"copy_reset\"")) {
			c.fault.copySent.Store(true)
		}
	}
	return c.Conn.Write(b)
}

func (c *resetConn) Close() error {
	if c.reset.Load() {
		time.AfterFunc(time.Second, func() { c.Conn.Close() })
		return nil
	}
	return c.Conn.Close()
}

// TestWriteRowsCutAfterTheirFirstRow: a write whose rows the caller reads
// through Router.Query (INSERT … RETURNING, 20 MB of rows) and whose
// session the server ends after the first rows came (pg_terminate_backend
// while the server waits for the client to take more: ClientWrite) fails
// with ErrMaybeCommitted naming the primary, as a write through Exec or
// QueryRow whose connection fails after it went out does, in eventual and
// read_your_writes mode. Before, Query's rows gave pgx's bare error once a
// row had come: the one way an autocommit write said nothing of its commit.
func TestWriteRowsCutAfterTheirFirstRow(t *testing.T) {
	topo := routertest.Shared(t)
	ctx := context.Background()
	if err := topo.Primary.Exec(ctx, "DROP TABLE IF EXISTS cut_rows; CREATE TABLE cut_rows (id int, tag text)"); err != nil {
		t.Fatal(err)
	}
	const write = "INSERT INTO cut_rows SELECT g, $1 FROM generate_series(1, 200) g RETURNING id, repeat('x', 100000)"
	for _, mode := range []string{artifact.ModeEventual, artifact.ModeReadYourWrites} {
		t.Run(mode, func(t *testing.T) {
			a := steadyHealth(topo.Artifact(), interval)
			a.Consistency.Mode = mode
			r := newRouter(t, a)
			sctx := routerlib.WithSession(ctx, &routerlib.Session{})
			rows, err := r.Query(sctx, write, mode)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			if !rows.Next() {
				t.Fatalf("no first row: %v", rows.Err())
			}
			eventually(t, 20*time.Second, "the write's session ended while it waits to send its rows", func() bool {
				var n int
				if err := topo.Primary.QueryRow(ctx, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE query LIKE 'INSERT INTO cut_rows%' AND wait_event = 'ClientWrite' AND pid <> pg_backend_pid()").Scan(&n); err != nil {
					t.Fatal(err)
				}
				return n > 0
			})
			n := 1
			for rows.Next() {
				n++
			}
			err = rows.Err()
			t.Logf("%d rows read, then %v", n, err)
			// All 200 rows may be in the client's buffers when the
			// session ends (the server waits in ClientWrite for the end of
			// the result): the rows' error is what the test is about.
			if err == nil {
				t.Fatalf("all %d rows came with no error: the session ended too late to prove anything", n)
			}
			if !errors.Is(err, routerlib.ErrMaybeCommitted) || !strings.Contains(err.Error(), `"primary"`) {
				t.Errorf("a write whose session ended after its first rows: %v; want ErrMaybeCommitted naming the primary", err)
			}
			eventually(t, 10*time.Second, "the write's session gone", func() bool {
				var left int
				if err := topo.Primary.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'INSERT INTO cut_rows%' AND pid <> pg_backend_pid()").Scan(&left); err != nil {
					t.Fatal(err)
				}
				return left == 0
			})
			if got := tagged(t, ctx, topo.Primary, "cut_rows", mode); got != 0 {
				t.Errorf("%d rows written; want 0 (the session ended before the commit) and the write never run again", got)
			}
		})
	}
}
