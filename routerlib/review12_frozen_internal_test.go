package routerlib

import (
	"context"
	"testing"
	"time"
)

// TestReview12PanicOnFrozenServer: the handler freezes the primary, then
// panics. closeOnPanic closes the cut connection with a 1 s context: the
// panic must reach the application within 2 s, not hang on the frozen
// server.
func TestReview12PanicOnFrozenServer(t *testing.T) {
	topo := panicqTopology(t)
	r := panicqRouter(t, topo, "", func() {
		if err := topo.Primary.Freeze(); err != nil {
			t.Error(err)
		}
		panic("review12: handler")
	})
	t.Cleanup(func() { _ = topo.Primary.Thaw() })
	for _, c := range panicqCalls[:4] {
		var took time.Duration
		func() {
			var at time.Time
			defer func() {
				if p := recover(); p != nil {
					took = time.Since(at)
				}
				_ = topo.Primary.Thaw()
			}()
			ctx, cancel := context.WithTimeout(Primary(context.Background()), 10*time.Second)
			defer cancel()
			at = time.Now()
			_ = c.call(ctx, r)
		}()
		t.Logf("%s: the panic reached the application after %v", c.name, took)
		if took > 2500*time.Millisecond {
			t.Errorf("%s: the panic took %v to reach the application over a frozen server, want about 1 s at most", c.name, took)
		}
	}
}
