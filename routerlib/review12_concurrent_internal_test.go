package routerlib

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
)

// TestReview12ConcurrentPanics: eight goroutines whose handler panics at
// once, on pools of one connection, in both modes and on both sides
// (run with -race): the cut connections are closed once each, and the
// node's next call still gets one within 10 s.
func TestReview12ConcurrentPanics(t *testing.T) {
	topo := panicqTopology(t)
	for _, mode := range []string{artifact.ModeEventual, artifact.ModeReadYourWrites} {
		t.Run(mode, func(t *testing.T) {
			r := panicqRouter(t, topo, mode, panicPanicq)
			var wg sync.WaitGroup
			for g := 0; g < 8; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					ctx := WithSession(context.Background(), NewSession(0))
					if g%2 == 0 {
						ctx = Primary(ctx)
					}
					c := panicqCalls[g%4]
					for i := 0; i < 3; i++ {
						func() {
							defer func() { _ = recover() }()
							cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
							defer cancel()
							_ = c.call(cctx, r)
						}()
					}
				}()
			}
			wg.Wait()
			for _, ctx := range []context.Context{context.Background(), Primary(context.Background())} {
				if err := answersNext(ctx, r); err != nil {
					t.Fatalf("next call after concurrent panics: %v, want 7 within 10 s", err)
				}
			}
		})
	}
}
