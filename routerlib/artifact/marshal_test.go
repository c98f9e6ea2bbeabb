package artifact_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
)

// readFile returns a testdata file.
func readFile(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// golden parses and validates testdata/topology.golden.json.
func golden(t testing.TB) artifact.Topology {
	t.Helper()
	topo, err := artifact.Parse(readFile(t, "topology.golden.json"))
	if err != nil {
		t.Fatalf("Parse(golden): %v", err)
	}
	if err := topo.Validate(); err != nil {
		t.Fatalf("golden Validate: %v", err)
	}
	return topo
}

func TestMarshalRoundTrip(t *testing.T) {
	for _, name := range []string{"topology.golden.json", "minimal.json"} {
		t.Run(name, func(t *testing.T) {
			want := readFile(t, name)
			topo, err := artifact.Parse(want)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			got, err := artifact.Marshal(topo)
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("Marshal(Parse(%s)) differs from the file:\n%s", name, got)
			}
		})
	}
}

func TestMarshalIsCanonical(t *testing.T) {
	want := readFile(t, "topology.golden.json")
	topo := golden(t)

	// The same topology in another order: replicas first, routes and route
	// nodes reversed, an extra route so route order matters.
	shuffled := golden(t)
	shuffled.Nodes = []artifact.Node{topo.Nodes[2], topo.Nodes[0], topo.Nodes[1]}
	shuffled.Routes = append(shuffled.Routes, artifact.Route{Name: "reporting", Nodes: []string{"replica-2", "replica-1"}})
	shuffled.Routes[0], shuffled.Routes[1] = shuffled.Routes[1], shuffled.Routes[0]
	before := clone(shuffled)

	got, err := artifact.Marshal(shuffled)
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	if !reflect.DeepEqual(shuffled, before) {
		t.Errorf("Marshal modified its argument:\n got %+v\nwant %+v", shuffled, before)
	}
	withReporting := golden(t)
	withReporting.Routes = append(withReporting.Routes, artifact.Route{Name: "reporting", Nodes: []string{"replica-1", "replica-2"}})
	wantWith, err := artifact.Marshal(withReporting)
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	if !bytes.Equal(got, wantWith) {
		t.Errorf("shuffled topology marshals differently:\n%s\nwant\n%s", got, wantWith)
	}

	// Without the extra route, the shuffled topology gives the golden bytes.
	shuffled.Routes = shuffled.Routes[1:]
	if shuffled.Routes[0].Name != "analytics" {
		t.Fatalf("test setup: routes = %+v", shuffled.Routes)
	}
	got, err = artifact.Marshal(shuffled)
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("shuffled golden topology marshals differently:\n%s", got)
	}
}

func TestMarshalFormat(t *testing.T) {
	topo := artifact.Topology{Nodes: []artifact.Node{{Name: "a<b>&c", Role: artifact.RolePrimary, Host: "db"}}}
	got, err := artifact.Marshal(topo)
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	want := "{\n  \"format_version\": 1,\n  \"nodes\": [\n    {\n      \"name\": \"a<b>&c\",\n      \"role\": \"primary\",\n      \"host\": \"db\"\n    }\n  ]\n}\n"
	if string(got) != want {
		t.Errorf("Marshal =\n%s\nwant (format_version filled in, no HTML escaping, trailing newline)\n%s", got, want)
	}
}

func TestMarshalRefusesInvalid(t *testing.T) {
	topo := golden(t)
	topo.Nodes[1].Role = artifact.RolePrimary
	got, err := artifact.Marshal(topo)
	var verr *artifact.ValidationError
	if !errors.As(err, &verr) {
		t.Fatalf("Marshal(two primaries) = %q, %v; want a *ValidationError", got, err)
	}
	if got != nil {
		t.Errorf("Marshal returned bytes with an error: %q", got)
	}
	if len(verr.Problems) != 1 || verr.Problems[0].Path != "nodes" {
		t.Errorf("problems = %v, want one at nodes", verr.Problems)
	}
}

func TestLoad(t *testing.T) {
	topo, err := artifact.Load(filepath.Join("testdata", "topology.golden.json"))
	if err != nil {
		t.Fatalf("Load(golden): %v", err)
	}
	if !reflect.DeepEqual(topo, golden(t)) {
		t.Errorf("Load and Parse disagree")
	}

	missing := filepath.Join(t.TempDir(), "router.json")
	if _, err := artifact.Load(missing); !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Errorf("Load(missing) = %v, want an error naming %s that wraps os.ErrNotExist", err, missing)
	}

	path := filepath.Join("testdata", "invalid_password_field.json")
	if _, err := artifact.Load(path); !errors.Is(err, artifact.ErrPasswordField) || !strings.Contains(err.Error(), path) {
		t.Errorf("Load(%s) = %v, want a password error naming the path", path, err)
	}

	// Load validates, which Parse does not.
	path = filepath.Join("testdata", "invalid_two_primaries.json")
	_, err = artifact.Load(path)
	var verr *artifact.ValidationError
	if !errors.As(err, &verr) || !strings.Contains(err.Error(), path) {
		t.Errorf("Load(%s) = %v, want a *ValidationError naming the path", path, err)
	}
}

// clone deep-copies a topology so a test can tell whether it was modified.
func clone(t artifact.Topology) artifact.Topology {
	c := t
	c.Nodes = append([]artifact.Node(nil), t.Nodes...)
	c.Routes = append([]artifact.Route(nil), t.Routes...)
	for i := range c.Routes {
		c.Routes[i].Nodes = append([]string(nil), t.Routes[i].Nodes...)
	}
	return c
}
