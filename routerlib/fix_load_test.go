package routerlib_test

import "sync"

// underLoad calls load again and again in each of n goroutines, the
// application's load under a fault, until the stop it returns is called;
// stop returns once every goroutine has.
func underLoad(n int, load func()) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				load()
			}
		})
	}
	return func() {
		close(done)
		wg.Wait()
	}
}
