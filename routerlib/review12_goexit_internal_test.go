package routerlib

import (
	"context"
	"runtime"
	"testing"
	"time"

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
					r := panicqRouter(t, topo, mode, runtime.Goexit)
					ctx := context.Background()
					if where == "primary" {
						ctx = Primary(ctx)
					}
					if mode == artifact.ModeReadYourWrites {
						ctx = WithSession(ctx, NewSession(0))
					}
					for i := 0; i < 2; i++ {
						if goexitCall(ctx, r, c) {
							t.Fatalf("call %d: the handler did not end it", i)
						}
						if err := answersNext(ctx, r); err != nil {
							t.Fatalf("the %s's next call after a handler's Goexit %d: %v, want 7 within 10 s", where, i, err)
						}
					}
				})
			}
		}
	}
}

// goexitCall runs c on a goroutine of its own, which the handler ends,
// and reports whether the call returned all the same.
func goexitCall(ctx context.Context, r *Router, c panicqCall) (finished bool) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_ = c.call(cctx, r)
		finished = true
	}()
	<-done
	return finished
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
	const write = "INSERT INTO review12_goexit SELECT panicq_notice()"
	for _, c := range []panicqCall{
		{"Exec", write, nil, execCall},
		{"ExecArgs", write + " + $1::int", []any{1}, execCall},
		{"Query", write + " RETURNING v", nil, queryAll},
		{"QueryRow", write + " + $1::int RETURNING v", []any{1}, queryRow},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := panicqRouter(t, topo, artifact.ModeReadYourWrites, runtime.Goexit)
			s := NewSession(0)
			ctx := WithSession(bg, s)
			for i := 0; i < 2; i++ {
				lost, lsn := s.lost.Load(), s.LSN()
				if goexitCall(ctx, r, c) {
					t.Fatalf("call %d: the handler did not end it", i)
				}
				if s.lost.Load() == lost && s.LSN() == lsn {
					t.Errorf("call %d: the session is neither marked nor at the write's position after a write its handler cut", i)
				}
				if err := answersNext(Primary(ctx), r); err != nil {
					t.Fatalf("the primary's next call after a handler's Goexit %d: %v, want 7 within 10 s", i, err)
				}
			}
		})
	}
}
