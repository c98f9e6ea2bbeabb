package artifact_test

import (
	"reflect"
	"testing"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
)

func TestWithDefaultsFillsUnset(t *testing.T) {
	in := artifact.Topology{
		Nodes: []artifact.Node{
			{Name: "primary", Role: artifact.RolePrimary, Host: "127.0.0.1"},
			{Name: "replica-1", Role: artifact.RoleReplica, Host: "127.0.0.1", Port: 5433},
		},
		Routes: []artifact.Route{{Name: "analytics", Nodes: []string{"replica-1"}}},
	}
	before := clone(in)
	got := in.WithDefaults()

	want := artifact.Topology{
		FormatVersion: artifact.FormatVersion,
		Nodes: []artifact.Node{
			{Name: "primary", Role: "primary", Host: "127.0.0.1", Port: 5432, SSLMode: "prefer", Weight: 100},
			{Name: "replica-1", Role: "replica", Host: "127.0.0.1", Port: 5433, SSLMode: "prefer", Weight: 100},
		},
		ReadPolicy:  artifact.ReadPolicy{Strategy: "round_robin", Fallback: "primary"},
		Consistency: artifact.Consistency{Mode: "eventual", WaitTimeout: "200ms"},
		Health:      artifact.Health{Interval: "1s", Timeout: "1s", ConnectTimeout: "2s", EjectAfter: 3, ReadmitAfter: 2},
		Routes:      []artifact.Route{{Name: "analytics", Nodes: []string{"replica-1"}, Strategy: "round_robin", Fallback: "primary"}},
		Pool:        artifact.Pool{MaxConns: 10, MinConns: 0, MaxConnLifetime: "1h"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("WithDefaults =\n%+v\nwant\n%+v", got, want)
	}
	if !reflect.DeepEqual(in, before) {
		t.Errorf("WithDefaults modified its receiver: %+v", in)
	}

	// The copy is deep: changing it leaves the input alone.
	got.Nodes[0].Name = "changed"
	got.Routes[0].Nodes[0] = "changed"
	if !reflect.DeepEqual(in, before) {
		t.Errorf("WithDefaults result shares slices with its receiver: %+v", in)
	}
}

func TestWithDefaultsKeepsSetValues(t *testing.T) {
	in := golden(t)
	in.ReadPolicy.Strategy = artifact.StrategyLeastLag
	in.Routes = append(in.Routes, artifact.Route{Name: "reporting", Nodes: []string{"replica-1"}})
	got := in.WithDefaults()

	want := clone(in)
	want.Nodes[0].Weight = artifact.DefaultWeight // the only unset node field with a default
	want.Routes[1].Strategy = artifact.StrategyLeastLag
	want.Routes[1].Fallback = in.ReadPolicy.Fallback
	if !reflect.DeepEqual(got, want) {
		t.Errorf("WithDefaults =\n%+v\nwant\n%+v", got, want)
	}
	if err := got.Validate(); err != nil {
		t.Errorf("WithDefaults of a valid topology is invalid: %v", err)
	}
}
