package routerlib

import (
	"testing"
	"time"
)

// TestRywcutCutBackendsForgetOld: a write pool's connections cut by a
// context's end are noted at every Release, in applications that never
// settle a session (no read_your_writes): the list must not grow without
// bound. Before add dropped the expired ones, 100,000 cuts over more than
// cutAwaitLimit left 100,000 entries.
func TestRywcutCutBackendsForgetOld(t *testing.T) {
	var c cutBackends
	s := &Session{}
	old := time.Now().Add(-cutAwaitLimit - time.Second)
	for i := range 100_000 {
		c.cuts = append(c.cuts, cutBackend{uint32(i + 1), old, s})
	}
	c.add(7, s)
	c.add(8, s)
	if len(c.cuts) != 2 || c.cuts[0].pid != 7 || c.cuts[1].pid != 8 {
		t.Fatalf("after two cuts now and 100,000 older than cutAwaitLimit: %d noted (want the 2 recent), first %+v", len(c.cuts), c.cuts[0])
	}
	if got := c.pending(s); len(got) != 2 {
		t.Fatalf("pending: %v, want [7 8]", got)
	}
	c.add(0, s) // a connection never set up
	if len(c.cuts) != 2 {
		t.Fatalf("pid 0 noted: %d entries", len(c.cuts))
	}
}
