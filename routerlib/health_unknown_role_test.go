package routerlib

import (
	"testing"
	"time"
)

// TestUnknownRole: a node whose checks have not answered for roleWindow
// holds the writes back from another node only while it is seen
// answering calls (now, or as the monitor saw it before it was cut off);
// one down, one checked in time, one never checked and the node that
// would take the writes do not.
func TestUnknownRole(t *testing.T) {
	top := &topology{interval: 100 * time.Millisecond, timeout: 500 * time.Millisecond, eject: 2}
	reg := &connRegistry{}
	mk := func(name string) *node {
		n := &node{server: &server{conns: reg.add(name, name+":5432")}, name: name}
		top.nodes = append(top.nodes, n)
		return n
	}
	primary, standby := mk("primary"), mk("standby")
	now := time.Now()
	stale := now.Add(-2 * roleWindow(top)).UnixNano()
	answered := func(n *node) {
		n.conns.answered.took.Store(int64(time.Millisecond))
		n.conns.answered.at.Store(int64(time.Since(monoEpoch)))
	}
	cases := []struct {
		name string
		set  func()
		want *node
	}{
		{"never checked", func() {}, nil},
		{"checked in time, answering", func() { standby.checkedAt.Store(now.UnixNano()); answered(standby) }, nil},
		{"stale, answering nothing", func() { standby.checkedAt.Store(stale); standby.conns.answered.at.Store(0) }, nil},
		{"stale, answering calls", func() { standby.checkedAt.Store(stale); answered(standby) }, standby},
		{"stale, seen answering before it was cut off", func() {
			standby.checkedAt.Store(stale)
			standby.conns.answered.at.Store(0)
			standby.aliveAt.Store(now.UnixNano())
		}, standby},
		{"checked again since", func() { standby.checkedAt.Store(time.Now().UnixNano()) }, nil},
	}
	for _, c := range cases {
		c.set()
		if got := unknownRole(top, primary); got != c.want {
			t.Errorf("%s: unknownRole = %v, want %v", c.name, got, c.want)
		}
	}
	// The node that would take the writes is not its own obstacle.
	primary.checkedAt.Store(stale)
	answered(primary)
	if got := unknownRole(top, primary); got != nil {
		t.Errorf("the writer-to-be with an old check: unknownRole = %s, want none", got.name)
	}
}
