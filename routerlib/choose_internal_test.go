package routerlib

import (
	"fmt"
	"testing"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
)

// TestNthBeyondItsRoom: nth keeps the first eight eligible candidates of
// its counting pass and looks for a later k-th in a second pass. Round
// robin over eleven eligible replicas among fourteen candidates (the
// writer, an ejected one and one in another zone left out) visits each
// in turn, those past the eighth included; random picks only eligible
// ones; none eligible is nil.
func TestNthBeyondItsRoom(t *testing.T) {
	var cands []*node
	for i := range 14 {
		n := &node{server: &server{}, name: fmt.Sprintf("n%d", i), decl: artifact.Node{Zone: "a"}}
		cands = append(cands, n)
	}
	writer := cands[0]
	cands[5].ejected.Store(uint32(EjectLagBytes))
	cands[9].decl.Zone = "b"
	var want []string
	for i, n := range cands {
		if i != 0 && i != 5 && i != 9 {
			want = append(want, n.name)
		}
	}
	r, topo := &Router{}, &topology{}
	for round := range 3 {
		for i := range want {
			// rr starts at 0 and nth adds 1 before it takes the modulo.
			got := r.nth(topo, cands, writer, nil, 0, "a", false)
			if w := want[(round*len(want)+i+1)%len(want)]; got == nil || got.name != w {
				t.Fatalf("round %d, pick %d: %v, want %s", round, i, got, w)
			}
		}
	}
	for range 200 {
		got := r.nth(topo, cands, writer, cands[12], 0, "a", true)
		if got == nil || got == writer || got == cands[5] || got == cands[9] || got == cands[12] {
			t.Fatalf("random picked %v", got)
		}
	}
	if got := r.nth(topo, cands, writer, nil, 0, "c", false); got != nil {
		t.Errorf("no candidate in zone c, got %s", got.name)
	}
}
