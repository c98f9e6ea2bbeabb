package routerlib

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
)

// TestReview12HandlerGoexit: a notice handler of the application's ends
// its goroutine with runtime.Goexit (t.FailNow in a test's handler)
// while a call reads its reply. recover() returns nil for a Goexit, so a
// deferred clean-up that asks recover() whether the call was cut takes
// it for a call that ended well and leaves the connection out of the
// pool for good: with pools of one connection, the node's next call must
// get a connection and its answer within 10 s.
func TestReview12HandlerGoexit(t *testing.T) {
	topo := panicqTopology(t)
	for _, mode := range []string{artifact.ModeEventual, artifact.ModeReadYourWrites} {
		for _, where := range []string{"replica", "primary"} {
			for _, c := range panicqCalls[:4] {
				t.Run(mode+"/"+where+"/"+c.name, func(t *testing.T) {
					a := topo.Artifact()
					a.Consistency.Mode = mode
					r, err := New(context.Background(), a, WithPoolConfig(func(_ artifact.Node, c *pgxpool.Config) {
						c.MaxConns = 1
						c.ConnConfig.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
							if n.Message == "panicq notice" {
								runtime.Goexit()
							}
						}
					}))
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(r.Close)
					ctx := context.Background()
					if where == "primary" {
						ctx = Primary(ctx)
					}
					if mode == artifact.ModeReadYourWrites {
						ctx = WithSession(ctx, NewSession(0))
					}
					for i := 0; i < 2; i++ {
						finished := false
						done := make(chan struct{})
						go func() {
							defer close(done)
							cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
							defer cancel()
							_ = c.call(cctx, r)
							finished = true
						}()
						<-done
						if finished {
							t.Fatalf("call %d: the handler did not end it", i)
						}
						cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
						var got int
						err = r.QueryRow(cctx, "SELECT $1::int", 7).Scan(&got)
						cancel()
						if err != nil || got != 7 {
							t.Fatalf("the %s's next call after a handler's Goexit %d: %d (%v), want 7 within 10 s", where, i, got, err)
						}
					}
				})
			}
		}
	}
}

// TestReview12CaptureGoexit: the same Goexit out of a handler while a
// read_your_writes write reads its reply (the capture paths of
// capture.go). The node's next call must get a connection within 10 s,
// and the session must be marked (the write went out and the server
// commits it) unless its position was read (the application's deferred
// Close finished the capture), as for a panic.
func TestReview12CaptureGoexit(t *testing.T) {
	topo := panicqTopology(t)
	bg := context.Background()
	if err := topo.Primary.Exec(bg, `CREATE TABLE IF NOT EXISTS review12_goexit (v int)`); err != nil {
		t.Fatal(err)
	}
	calls := []struct {
		name string
		call func(ctx context.Context, r *Router) error
	}{
		{"Exec", func(ctx context.Context, r *Router) error {
			_, err := r.Exec(ctx, "INSERT INTO review12_goexit SELECT panicq_notice()")
			return err
		}},
		{"ExecArgs", func(ctx context.Context, r *Router) error {
			_, err := r.Exec(ctx, "INSERT INTO review12_goexit SELECT panicq_notice() + $1::int", 1)
			return err
		}},
		{"Query", func(ctx context.Context, r *Router) error {
			rows, err := r.Query(ctx, "INSERT INTO review12_goexit SELECT panicq_notice() RETURNING v")
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
			}
			return rows.Err()
		}},
		{"QueryRow", func(ctx context.Context, r *Router) error {
			var n int
			return r.QueryRow(ctx, "INSERT INTO review12_goexit SELECT panicq_notice() + $1::int RETURNING v", 1).Scan(&n)
		}},
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			a := topo.Artifact()
			a.Consistency.Mode = artifact.ModeReadYourWrites
			r, err := New(bg, a, WithPoolConfig(func(_ artifact.Node, c *pgxpool.Config) {
				c.MaxConns = 1
				c.ConnConfig.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
					if n.Message == "panicq notice" {
						runtime.Goexit()
					}
				}
			}))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(r.Close)
			s := NewSession(0)
			ctx := WithSession(bg, s)
			for i := 0; i < 2; i++ {
				lost, lsn := s.lost.Load(), s.LSN()
				finished := false
				done := make(chan struct{})
				go func() {
					defer close(done)
					cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
					defer cancel()
					_ = c.call(cctx, r)
					finished = true
				}()
				<-done
				if finished {
					t.Fatalf("call %d: the handler did not end it", i)
				}
				if s.lost.Load() == lost && s.LSN() == lsn {
					t.Errorf("call %d: the session is neither marked nor at the write's position after a write its handler cut", i)
				}
				cctx, cancel := context.WithTimeout(Primary(ctx), 10*time.Second)
				var got int
				err = r.QueryRow(cctx, "SELECT $1::int", 7).Scan(&got)
				cancel()
				if err != nil || got != 7 {
					t.Fatalf("the primary's next call after a handler's Goexit %d: %d (%v), want 7 within 10 s", i, got, err)
				}
			}
		})
	}
}
