package routerlib_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// TestRedAcquiredAnswerLost: on a connection from Acquire, a transaction's
// COMMIT, or an autocommit write, that reached the server and committed but
// whose answer was lost (the network broke) fails with ErrMaybeCommitted,
// and so does an INSERT … RETURNING through Query (in the rows' Err),
// as through the Router's own Exec and BeginTx. Before, each gave pgx's
// bare "conn closed" or "unexpected EOF", which names no node and reads as
// if nothing ran: a caller who retried on it wrote twice.
func TestRedAcquiredAnswerLost(t *testing.T) {
	ctx := context.Background()
	topo := routertest.Start(t, routertest.WithStandbys(1))
	if err := topo.Primary.Exec(ctx, "CREATE TABLE acq_lost (tag text)"); err != nil {
		t.Fatal(err)
	}
	proxy := topo.Primary.NewProxy(t)
	a := steadyHealth(topo.Artifact(), 100*time.Millisecond)
	a.Nodes[0].Port = proxy.Port()
	a.Consistency = artifact.Consistency{Mode: artifact.ModeEventual}
	r := newRouter(t, a)
	count := func(tag string) int {
		var n int
		if err := topo.Primary.QueryRow(ctx, "SELECT count(*) FROM acq_lost WHERE tag = $1", tag).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	c, err := r.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := c.BeginTx(ctx, pgx.TxOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "INSERT INTO acq_lost VALUES ('tx')"); err != nil {
		t.Fatal(err)
	}
	proxy.LoseAnswerTo("commit")
	err = tx.Commit(ctx)
	c.Release()
	if proxy.Lost() != 1 || count("tx") != 1 {
		t.Fatalf("lost %d answers, %d rows: the test did not lose the COMMIT's answer after it committed", proxy.Lost(), count("tx"))
	}
	if !errors.Is(err, routerlib.ErrMaybeCommitted) {
		t.Errorf("an acquired connection's transaction whose COMMIT answer was lost: %v, want ErrMaybeCommitted", err)
	}

	c, err = r.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	proxy.LoseAnswerTo("INSERT INTO acq_lost VALUES ('exec')")
	_, err = c.Exec(ctx, "INSERT INTO acq_lost VALUES ('exec')")
	c.Release()
	if proxy.Lost() != 2 || count("exec") != 1 {
		t.Fatalf("lost %d answers, %d rows: the test did not lose the INSERT's answer after it committed", proxy.Lost(), count("exec"))
	}
	if !errors.Is(err, routerlib.ErrMaybeCommitted) {
		t.Errorf("an acquired connection's autocommit INSERT whose answer was lost: %v, want ErrMaybeCommitted", err)
	}

	c, err = r.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const returning = "INSERT INTO acq_lost VALUES ('query') RETURNING tag"
	proxy.LoseAnswerTo(returning)
	rows, err := c.Query(ctx, returning)
	if err == nil {
		for rows.Next() {
		}
		rows.Close()
		err = rows.Err()
	}
	c.Release()
	// The proxy drops the first answer, the row, and closes the
	// connection before the Sync that would commit it: the server rolls
	// it back, but the client cannot know which it was.
	if proxy.Lost() != 3 {
		t.Fatalf("lost %d answers, want 3: the test did not lose the INSERT … RETURNING's answer", proxy.Lost())
	}
	if !errors.Is(err, routerlib.ErrMaybeCommitted) {
		t.Errorf("an acquired connection's INSERT … RETURNING through Query whose answer was lost: %v, want ErrMaybeCommitted", err)
	}

	// A batch and a copy whose answers never come: the caller's deadline
	// cuts them after they went out.
	if err := topo.Primary.Exec(ctx, "CREATE TABLE acq_copy (tag text)"); err != nil {
		t.Fatal(err)
	}
	for _, call := range []struct {
		marker string
		run    func(context.Context, *routerlib.Conn) error
	}{
		{"acq_batch", func(ctx context.Context, c *routerlib.Conn) error {
			b := &pgx.Batch{}
			b.Queue("INSERT INTO acq_lost VALUES ('acq_batch')")
			return c.SendBatch(ctx, b).Close()
		}},
		{"acq_copy", func(ctx context.Context, c *routerlib.Conn) error {
			_, err := c.CopyFrom(ctx, pgx.Identifier{"acq_copy"}, []string{"tag"}, pgx.CopyFromRows([][]any{{"copy"}}))
			return err
		}},
	} {
		c, err := r.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		proxy.HoldAnswers(call.marker, call.marker)
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		err = call.run(cctx, c)
		cancel()
		c.Release()
		if !errors.Is(err, routerlib.ErrMaybeCommitted) || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("an acquired connection's %s whose answer never came: %v, want ErrMaybeCommitted and context.DeadlineExceeded", call.marker, err)
		}
	}
}
