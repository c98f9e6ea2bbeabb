package routerlib_test

import (
	"context"
	"errors"
	"net"
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

// TestCopyWriterClosedDidNotCommit: a CopyFrom whose source pgx had read,
// sent on a session the primary had ended as idle, never ran; pgx often
// returns not the server's FATAL but its own connection's failure ("use
// of closed network connection"): its copy writer, whose write failed,
// closed the connection, and pgx then sent CopyFail, never CopyDone, so
// the server never had the copy's end. The error says the copy did not
// commit (naming the primary and the source), no ErrMaybeCommitted. A
// source of many rows makes pgx write CopyData more than once, so its
// writer meets the closed socket; slowReads orders the rest as a busy
// machine sometimes does (seen once in CI): pgx's reader sees the closed
// connection before the FATAL, and reports it before the writer reports
// its write error.
// Before, that error was an ErrMaybeCommitted.
func TestCopyWriterClosedDidNotCommit(t *testing.T) {
	topo := routertest.Shared(t)
	ctx := context.Background()
	if err := topo.Primary.Exec(ctx, "DROP TABLE IF EXISTS next_copy_closed; CREATE TABLE next_copy_closed (tag text NOT NULL, n int NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	slow := &slowReads{}
	r, _ := idleRouter(t, topo, artifact.ModeEventual, func(cfg *pgxpool.Config) {
		cfg.MaxConns = 1 // the copy goes out on the session the test saw ended
		// The monitor's connection is dialled with the pool's DialFunc
		// too (it must reach the node as the pools do), and a check
		// whose read slowReads held up hung for 5 s: with the pool's
		// one session busy on a copy, answering nothing in time, the
		// primary failed eject_after deadlines and lost the writes,
		// rightly for a node whose check hangs (a CI run at load 12:
		// "no primary is taking writes"). Only the pool's sessions,
		// which pgxpool's AfterConnect marks (the monitor's connection
		// does not run it), are slowed.
		var dialled sync.Map // local address → *slowReadConn
		next := cfg.ConnConfig.DialFunc
		cfg.ConnConfig.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := next(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			sc := &slowReadConn{Conn: c, slow: slow, closed: make(chan struct{})}
			dialled.Store(c.LocalAddr().String(), sc)
			return sc, nil
		}
		after := cfg.AfterConnect
		cfg.AfterConnect = func(ctx context.Context, c *pgx.Conn) error {
			if sc, ok := dialled.LoadAndDelete(c.PgConn().Conn().LocalAddr().String()); ok {
				sc.(*slowReadConn).pool.Store(true)
			}
			if after != nil {
				return after(ctx, c)
			}
			return nil
		}
	})
	rows := make([][]any, 50000)
	for i := range rows {
		rows[i] = []any{"read", i}
	}
	copyRows := func() (int64, error) {
		return r.CopyFrom(ctx, pgx.Identifier{"next_copy_closed"}, []string{"tag", "n"}, pgx.CopyFromRows(rows))
	}
	const runs = 12
	closed, fatal, wrong := 0, 0, 0
	for i := 0; i < runs; i++ {
		if _, err := copyRows(); err != nil { // the description cached on the session
			t.Fatal(err)
		}
		var pid int
		if err := r.QueryRow(ctx, "INSERT INTO next_copy_closed VALUES ('warm', 0) RETURNING pg_backend_pid()").Scan(&pid); err != nil {
			t.Fatal(err)
		}
		sessionGone(t, topo, pid, "the copy's")
		var before int
		if err := topo.Primary.QueryRow(ctx, "SELECT count(*) FROM next_copy_closed").Scan(&before); err != nil {
			t.Fatal(err)
		}
		slow.on.Store(true)
		_, err := copyRows()
		slow.on.Store(false)
		var after int
		if err := topo.Primary.QueryRow(ctx, "SELECT count(*) FROM next_copy_closed").Scan(&after); err != nil {
			t.Fatal(err)
		}
		switch {
		case err == nil:
			t.Fatalf("run %d: the copy on an ended session succeeded: the test proves nothing", i)
		case errors.As(err, new(*pgconn.PgError)):
			fatal++
		case errors.Is(err, net.ErrClosed):
			closed++
		}
		if after != before || errors.Is(err, routerlib.ErrMaybeCommitted) || !strings.Contains(err.Error(), "did not commit") || !strings.Contains(err.Error(), `"primary"`) || !strings.Contains(err.Error(), "source") {
			wrong++
			t.Logf("run %d: %d rows landed: %v", i, after-before, err)
		}
	}
	t.Logf("%d copies on a session ended as idle: %d returned the FATAL, %d net.ErrClosed; %d said otherwise than 'did not commit'; %d reads of the monitor's connection in the slow windows, not held up", runs, fatal, closed, wrong, slow.spared.Load())
	if closed == 0 {
		t.Errorf("no copy met pgx's closed connection: the test proves nothing")
	}
	if wrong > 0 {
		t.Errorf("%d of %d copies that never ran did not say they did not commit", wrong, runs)
	}
}

// slowReads, while on is set, holds back every slowReadConn's reads until
// the connection is closed, and its Close a while after it closed: so
// pgx's copy writer, whose write met the closed socket, closes the
// connection, and its reader reports the closed connection to pgx's
// CopyFrom before the writer reports its write error, the order a busy
// machine sometimes gives.
type slowReads struct {
	on atomic.Bool
	// spared counts the reads of the monitor's connection made while on
	// was set, which slowReadConn does not hold up.
	spared atomic.Int64
}

type slowReadConn struct {
	net.Conn
	slow   *slowReads
	pool   atomic.Bool // a pool's session, not the monitor's
	once   sync.Once
	closed chan struct{}
}

func (c *slowReadConn) Read(b []byte) (int, error) {
	if c.slow.on.Load() && !c.pool.Load() {
		c.slow.spared.Add(1)
	}
	if c.slow.on.Load() && c.pool.Load() {
		select {
		case <-c.closed:
		case <-time.After(5 * time.Second):
		}
	}
	return c.Conn.Read(b)
}

func (c *slowReadConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { close(c.closed) })
	if c.slow.on.Load() && c.pool.Load() {
		time.Sleep(300 * time.Millisecond)
	}
	return err
}
