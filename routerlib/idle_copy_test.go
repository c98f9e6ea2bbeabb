package routerlib_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// TestIdleSessionEndedUnderCopy: a CopyFrom sent on a session the primary
// had ended as idle (idle_session_timeout: FATAL 57P05) never ran. When
// the FATAL came before pgx read anything of the copy's source (at the
// round trip in which pgx describes the table's columns, before it sends
// the COPY statement: every time in the exec modes, the first time on a
// session in the default one), the copy is sent again on a live session,
// as an Exec there, and its rows land once. When pgx had read rows of the
// source already (the description cached on the session, so the COPY
// statement went out at once), it cannot be sent again: the error says
// that it did not commit, why, and what to do, and is no
// ErrMaybeCommitted, whichever failure pgx returns: the FATAL, or, when
// its copy writer met the closed connection first and closed it (its
// reader and writer race to see the session end; seen once in a
// clean-clone CI run), the connection's failure, after which the copy's
// end never went out (see TestCopyWriterClosedDidNotCommit, which forces
// that order): either way the server never had it. Before, no copy was
// sent again.
func TestIdleSessionEndedUnderCopy(t *testing.T) {
	topo := routertest.Shared(t)
	ctx := context.Background()
	if err := topo.Primary.Exec(ctx, "DROP TABLE IF EXISTS idle_copy; CREATE TABLE idle_copy (tag text NOT NULL, n int NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	for _, exec := range []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeExec} {
		t.Run(exec.String(), func(t *testing.T) {
			// One session per pool, so that the copy goes out on the
			// session the test saw ended.
			ended := &idleEndCounter{}
			r, _ := idleRouter(t, topo, artifact.ModeEventual, func(cfg *pgxpool.Config) {
				cfg.ConnConfig.DefaultQueryExecMode = exec
				cfg.ConnConfig.Tracer = ended
				cfg.MaxConns = 1
			})
			copyRows := func(tag string) (int64, error) {
				return r.CopyFrom(ctx, pgx.Identifier{"idle_copy"}, []string{"tag", "n"}, pgx.CopyFromRows([][]any{{tag, 1}, {tag, 2}, {tag, 3}}))
			}
			endWriteSession := func(whose string) {
				t.Helper()
				var pid int
				if err := r.QueryRow(ctx, "INSERT INTO idle_copy VALUES ('warm', 0) RETURNING pg_backend_pid()").Scan(&pid); err != nil {
					t.Fatal(err)
				}
				sessionGone(t, topo, pid, whose)
			}

			// Nothing of the source read: sent again.
			tag := exec.String() + "/unread"
			endWriteSession("the copy's")
			before := ended.n.Load()
			n, err := copyRows(tag)
			got := tagged(t, ctx, topo.Primary, "idle_copy", tag)
			t.Logf("the copy's description not cached: %d rows, %v; %d rows landed; %d copies met an ended session", n, err, got, ended.n.Load()-before)
			if ended.n.Load() == before {
				t.Errorf("the copy met no session ended as idle: the test proves nothing")
			}
			if err != nil || n != 3 || got != 3 {
				t.Errorf("a CopyFrom whose session the primary had ended as idle, before pgx read its source: %d rows, %v; %d landed; want it sent again, 3 rows landed once", n, err, got)
			}
			if exec != pgx.QueryExecModeCacheStatement {
				return // the exec modes describe the table before every copy
			}

			// The source read: not sent again, and says it did not commit.
			tag = exec.String() + "/read"
			if _, err := copyRows(exec.String() + "/describe"); err != nil { // the description cached on the session
				t.Fatal(err)
			}
			endWriteSession("the copy's")
			n, err = copyRows(tag)
			got = tagged(t, ctx, topo.Primary, "idle_copy", tag)
			t.Logf("the copy's description cached: %d rows, %v; %d rows landed", n, err, got)
			switch {
			case got != 0:
				t.Errorf("%d rows landed, want 0", got)
			case err == nil:
				t.Errorf("a CopyFrom whose source pgx had read, on a session the primary had ended as idle, succeeded with %d rows; want it to fail (nothing landed)", n)
			case errors.Is(err, routerlib.ErrMaybeCommitted) || !strings.Contains(err.Error(), "did not commit") || !strings.Contains(err.Error(), `"primary"`) || !strings.Contains(err.Error(), "source"):
				t.Errorf("a CopyFrom whose source pgx had read, on a session the primary had ended as idle: %v; want an error naming the primary, saying it did not commit and why it was not sent again (its source), no ErrMaybeCommitted", err)
			}
		})
	}
}

// TestCopyDescribeFailedDidNotCommit: a CopyFrom whose session the server
// ended (pg_terminate_backend) before the copy, so that pgx's round trip
// describing the table's columns, before the COPY statement, meets the
// FATAL, did not commit, and says so, naming the primary; before, it said
// ErrMaybeCommitted. In the exec mode pgx describes the table before
// every copy.
func TestCopyDescribeFailedDidNotCommit(t *testing.T) {
	topo := routertest.Shared(t)
	ctx := context.Background()
	if err := topo.Primary.Exec(ctx, "DROP TABLE IF EXISTS ended_copy; CREATE TABLE ended_copy (tag text NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	r := newRouter(t, steadyHealth(topo.Artifact(), interval), routerlib.WithPoolConfig(func(_ artifact.Node, cfg *pgxpool.Config) {
		cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeExec
		cfg.MaxConns = 1
	}))
	var pid int
	if err := r.QueryRow(ctx, "INSERT INTO ended_copy VALUES ('warm') RETURNING pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	var ended bool
	if err := topo.Primary.QueryRow(ctx, "SELECT pg_terminate_backend($1, 10000)", pid).Scan(&ended); err != nil || !ended {
		t.Fatalf("ending the session: %t, %v", ended, err)
	}
	_, err := r.CopyFrom(ctx, pgx.Identifier{"ended_copy"}, []string{"tag"}, pgx.CopyFromRows([][]any{{"copy"}}))
	got := tagged(t, ctx, topo.Primary, "ended_copy", "copy")
	t.Logf("%v; %d rows landed", err, got)
	switch {
	case got != 0:
		t.Errorf("%d rows landed, want 0", got)
	case err == nil:
		t.Errorf("the copy on a session the server had ended succeeded; the test proves nothing")
	case errors.Is(err, routerlib.ErrMaybeCommitted) || !strings.Contains(err.Error(), "did not commit") || !strings.Contains(err.Error(), `"primary"`):
		t.Errorf("a CopyFrom that failed before its COPY statement was sent: %v; want an error naming the primary and saying it did not commit, no ErrMaybeCommitted", err)
	}
	eventually(t, 10*time.Second, "the primary taking writes", func() bool { return nodeStat(r, topo.Primary.Name).Writer })
}
