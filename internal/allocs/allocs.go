// Package allocs measures a call's allocations for the tests that pin them
// (routerlib's, routerlib/stdlib's and its compat module's); it lives at the
// module root, as internal/cputime does, so that all of them may import it.
package allocs

import "testing"

// rounds is how many measurements Least takes.
const rounds = 5

// Least returns the fewest allocations per call of f over several rounds of
// testing.AllocsPerRun(runs, f). AllocsPerRun counts every allocation of
// the process while f runs, so the router's health checks (each allocates
// for its queries) land in a round now and then, more often on a busy
// machine where the runs take longer, and under -race sync.Pool drops what
// it is given at random; both only ever add. An exact pin on one round
// failed that way (11 against 13 beside open rows, under -race). The least
// round is f's own count: a change that adds an allocation to every call
// still shows in each round.
func Least(runs int, f func()) float64 {
	least := testing.AllocsPerRun(runs, f)
	for i := 1; i < rounds && least > 0; i++ {
		if n := testing.AllocsPerRun(runs, f); n < least {
			least = n
		}
	}
	return least
}
