package artifact_test

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
)

// node is a valid primary node object, for building small inputs.
const node = `{"name": "primary", "role": "primary", "host": "127.0.0.1"}`

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name  string
		input string
		is    error    // sentinel the error must wrap, if any
		want  []string // substrings the message must contain
		not   string   // a substring the message must not contain
	}{
		{
			name:  "unknown node field",
			input: `{"format_version": 1, "nodes": [` + node + `, {"name": "r", "pasword_env": "X"}]}`,
			is:    artifact.ErrUnknownField,
			want:  []string{`nodes[1]: unknown field "pasword_env" (did you mean "password_env"?)`},
		},
		{
			name:  "unknown top-level field",
			input: `{"format_version": 1, "nodes": [` + node + `], "nodez": []}`,
			is:    artifact.ErrUnknownField,
			want:  []string{`top level: unknown field "nodez" (did you mean "nodes"?)`},
		},
		{
			name:  "unknown field without a near name",
			input: `{"format_version": 1, "nodes": [` + node + `], "health": {"checks": 3}}`,
			is:    artifact.ErrUnknownField,
			want:  []string{`health: unknown field "checks"`},
		},
		{
			// encoding/json alone would accept "Port" for "port".
			name:  "field name in the wrong case",
			input: `{"format_version": 1, "nodes": [{"name": "primary", "role": "primary", "host": "h", "Port": 5432}]}`,
			is:    artifact.ErrUnknownField,
			want:  []string{`nodes[0]: unknown field "Port" (did you mean "port"?)`},
		},
		{
			name:  "every unknown field reported",
			input: `{"format_version": 1, "nodes": [` + node + `], "routes": [{"name": "a", "nodes": ["primary"], "stratgy": "random"}], "pool": {"max_con": 1}}`,
			is:    artifact.ErrUnknownField,
			want:  []string{`routes[0]: unknown field "stratgy" (did you mean "strategy"?)`, `pool: unknown field "max_con" (did you mean "max_conns"?)`},
		},
		{
			name:  "password in a node",
			input: `{"format_version": 1, "nodes": [{"name": "primary", "role": "primary", "host": "h", "password": "hunter2"}]}`,
			is:    artifact.ErrPasswordField,
			want:  []string{"nodes[0].password: ", "secrets never go in the router file", "password_env", "passfile"},
		},
		{
			name:  "password at the top level, any case",
			input: `{"format_version": 1, "nodes": [` + node + `], "PASSWORD": "hunter2"}`,
			is:    artifact.ErrPasswordField,
			want:  []string{"PASSWORD: ", "secrets never go in the router file"},
		},
		{
			name:  "password inside an unknown field",
			input: `{"format_version": 1, "nodes": [` + node + `], "auth": [{"password": "hunter2"}]}`,
			is:    artifact.ErrPasswordField,
			want:  []string{"auth[0].password: "},
		},
		{
			name:  "password reported even with a bad version",
			input: `{"format_version": 7, "nodes": [{"name": "p", "password": "hunter2"}]}`,
			is:    artifact.ErrPasswordField,
			want:  []string{"nodes[0].password: "},
		},
		{
			name:  "format_version missing",
			input: `{"nodes": [` + node + `]}`,
			is:    artifact.ErrFormatVersion,
			want:  []string{"format_version is missing", "reads format_version 1"},
		},
		{
			name:  "format_version null",
			input: `{"format_version": null, "nodes": [` + node + `]}`,
			is:    artifact.ErrFormatVersion,
			want:  []string{"format_version is missing"},
		},
		{
			// A newer file's unknown fields are a symptom; the version is the cause.
			name:  "format_version unsupported",
			input: `{"format_version": 2, "nodes": [` + node + `], "placement": {}}`,
			is:    artifact.ErrFormatVersion,
			want:  []string{"format_version 2", "reads format_version 1"},
		},
		{
			name:  "format_version not an integer",
			input: `{"format_version": "1", "nodes": [` + node + `]}`,
			want:  []string{`format_version: expected an integer, found the string "1"`},
		},
		{
			name:  "trailing object",
			input: `{"format_version": 1, "nodes": [` + node + `]} {}`,
			want:  []string{"unexpected data after the topology object at line 1, column 95"},
		},
		{
			name:  "trailing garbage",
			input: "{\"format_version\": 1, \"nodes\": [" + node + "]}\n\n  x",
			want:  []string{"unexpected data after the topology object at line 3, column 3"},
		},
		{
			name:  "duplicate field",
			input: `{"format_version": 1, "nodes": [{"name": "primary", "role": "primary", "host": "a", "host": "b"}]}`,
			want:  []string{`nodes[0]: duplicate field "host"`},
		},
		{
			name:  "string for integer",
			input: `{"format_version": 1, "nodes": [{"name": "primary", "role": "primary", "host": "h", "port": "5432"}]}`,
			want:  []string{`nodes[0].port: expected an integer, found the string "5432"`},
		},
		{
			name:  "fraction for integer",
			input: `{"format_version": 1, "nodes": [{"name": "primary", "role": "primary", "host": "h", "weight": 1.5}]}`,
			want:  []string{"nodes[0].weight: expected an integer from", "found the number 1.5"},
		},
		{
			name:  "integer out of int32 range",
			input: `{"format_version": 1, "nodes": [` + node + `], "pool": {"max_conns": 3000000000}}`,
			want:  []string{"pool.max_conns: expected an integer from -2147483648 to 2147483647, found the number 3000000000"},
		},
		{
			name:  "string for bool",
			input: `{"format_version": 1, "nodes": [{"name": "primary", "role": "primary", "host": "h", "synchronous": "yes"}]}`,
			want:  []string{`nodes[0].synchronous: expected true or false, found the string "yes"`},
		},
		{
			name:  "object for array",
			input: `{"format_version": 1, "nodes": ` + node + `}`,
			want:  []string{"nodes: expected an array, found an object"},
		},
		{
			name:  "number for duration",
			input: `{"format_version": 1, "nodes": [` + node + `], "health": {"interval": 1}}`,
			want:  []string{"health.interval: expected a string, found the number 1"},
		},
		{
			name:  "every type problem reported",
			input: `{"format_version": 1, "nodes": [{"name": 1, "role": "primary", "host": true}]}`,
			want:  []string{"nodes[0].name: expected a string", "nodes[0].host: expected a string"},
		},
		{
			name:  "syntax error",
			input: "{\n  \"format_version\": 1,\n  \"nodes\": [}\n}",
			want:  []string{"invalid JSON at line 3, column 13"},
		},
		{
			name:  "syntax error at the start",
			input: "\n  }",
			want:  []string{"invalid JSON at line 2, column 3: invalid character '}' looking for beginning of value"},
		},
		{
			name:  "truncated",
			input: `{"format_version": 1, "nodes": [`,
			want:  []string{"unexpected end of file"},
		},
		{
			name:  "empty",
			input: " \n",
			want:  []string{"the file is empty"},
		},
		{
			name:  "not an object",
			input: `[{"format_version": 1}]`,
			want:  []string{"must hold one JSON object, found an array"},
		},
		{
			name:  "null",
			input: `null`,
			want:  []string{"must hold one JSON object, found null"},
		},
		{
			name:  "unknown field not close to any",
			input: `{"format_version": 1, "nodes": [` + node + `], "foo": 1}`,
			is:    artifact.ErrUnknownField,
			want:  []string{`top level: unknown field "foo"`},
			not:   "did you mean",
		},
		{
			name:  "syntax error inside a literal",
			input: "{\n  \"format_version\": tru,\n}",
			want:  []string{"invalid JSON at line 2, column 24: invalid character ',' in literal true"},
		},
		{
			name:  "nested too deep",
			input: `{"format_version": 1, "nodes": [` + node + `], "x": ` + strings.Repeat("[", 1_000_000),
			want:  []string{"x" + strings.Repeat("[0]", 31) + ": objects and arrays nest more than 32 deep"},
		},
		{
			name:  "long unknown field shortened",
			input: `{"format_version": 1, "nodes": [` + node + `], "` + strings.Repeat("x", 10_000) + `": {"password": "hunter2"}}`,
			want:  []string{strings.Repeat("x", 200) + "….password: "},
			not:   strings.Repeat("x", 201),
		},
		{
			name:  "byte order mark",
			input: "\ufeff{\"format_version\": 1, \"nodes\": [" + node + "]}",
			want:  []string{"byte order mark"},
		},
		{
			name:  "not UTF-8",
			input: "{\"format_version\": 1, \"nodes\": [{\"name\": \"\xff\"}]}",
			want:  []string{"not valid UTF-8"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			topo, err := artifact.Parse([]byte(tt.input))
			if err == nil {
				t.Fatalf("Parse succeeded: %+v", topo)
			}
			if !reflect.DeepEqual(topo, artifact.Topology{}) {
				t.Errorf("Parse returned a topology with its error: %+v", topo)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %q does not wrap %q", err, tt.is)
			}
			for _, want := range tt.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
			if tt.not != "" && strings.Contains(err.Error(), tt.not) {
				t.Errorf("error %q contains %q", err, tt.not)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error %q repeats the password", err)
			}
		})
	}
}

func TestParseDoesNotValidateOrDefault(t *testing.T) {
	topo, err := artifact.Parse(readFile(t, "invalid_two_primaries.json"))
	if err != nil {
		t.Fatalf("Parse(two primaries) = %v; Parse must leave the rules to Validate", err)
	}
	if len(topo.Nodes) != 2 {
		t.Errorf("nodes = %+v", topo.Nodes)
	}
	topo, err = artifact.Parse(readFile(t, "minimal.json"))
	if err != nil {
		t.Fatalf("Parse(minimal): %v", err)
	}
	want := artifact.Topology{
		FormatVersion: 1,
		Nodes:         []artifact.Node{{Name: "primary", Role: "primary", Host: "127.0.0.1"}},
	}
	if !reflect.DeepEqual(topo, want) {
		t.Errorf("Parse(minimal) = %+v, want %+v (no defaults)", topo, want)
	}
}

func TestParseNullIsUnset(t *testing.T) {
	topo, err := artifact.Parse([]byte(`{"format_version": 1, "nodes": [{"name": "primary", "role": "primary", "host": "h", "port": null}], "routes": null, "pool": null}`))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if topo.Nodes[0].Port != 0 || topo.Routes != nil || topo.Pool != (artifact.Pool{}) {
		t.Errorf("Parse = %+v, want null fields unset", topo)
	}
}

// TestInvalidFiles checks every testdata/invalid_*.json file: each must fail
// Parse or Validate in the way its table entry says.
func TestInvalidFiles(t *testing.T) {
	tests := map[string]struct {
		parse error    // the sentinel a Parse failure wraps, or nil for a Parse failure without one
		paths []string // the problem paths, when Parse succeeds and Validate fails
		want  string   // a substring of the error
	}{
		"invalid_unknown_field.json":  {parse: artifact.ErrUnknownField, want: `nodes[1]: unknown field "pasword_env" (did you mean "password_env"?)`},
		"invalid_password_field.json": {parse: artifact.ErrPasswordField, want: "nodes[0].password: "},
		"invalid_format_version.json": {parse: artifact.ErrFormatVersion, want: "the file has format_version 2, this build reads format_version 1"},
		"invalid_trailing_data.json":  {want: "unexpected data after the topology object at line 11, column 1"},
		"invalid_two_primaries.json":  {paths: []string{"nodes"}, want: `2 primaries (nodes[0] "pg-a", nodes[1] "pg-b")`},
		"invalid_route_unknown_node.json": {
			paths: []string{"routes[0].nodes[1]"},
			want:  `unknown node "replica-3"; the nodes are: primary, replica-1`,
		},
		"invalid_many_problems.json": {
			paths: []string{
				"nodes[0].port", "nodes[0].sslmode",
				"nodes[1].role", "nodes[1].host", "nodes[1].password_env", "nodes[1].weight", "nodes[1].max_lag", "nodes[1].max_lag_bytes",
				"nodes[2].name",
				"read_policy.strategy", "read_policy.fallback",
				"consistency.mode", "consistency.wait_timeout",
				"health.interval", "health.timeout", "health.eject_after", "health.readmit_after",
				"routes[0].nodes", "routes[1].name", "routes[1].nodes[0]", "routes[1].fallback",
				"pool.min_conns", "pool.max_conn_lifetime",
			},
			want: "invalid topology (23 problems):\nnodes[0].port: port 70000 is out of range",
		},
	}
	files, err := filepath.Glob(filepath.Join("testdata", "invalid_*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(tests) {
		t.Errorf("testdata has %d invalid_*.json files, the table %d; give every file a case", len(files), len(tests))
	}
	for _, file := range files {
		name := filepath.Base(file)
		t.Run(name, func(t *testing.T) {
			tt, ok := tests[name]
			if !ok {
				t.Fatalf("no table entry for %s", name)
			}
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			topo, err := artifact.Parse(data)
			if tt.paths == nil {
				if err == nil {
					t.Fatalf("Parse succeeded, want an error")
				}
				if tt.parse != nil && !errors.Is(err, tt.parse) {
					t.Errorf("Parse error %q does not wrap %q", err, tt.parse)
				}
			} else {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				err = topo.Validate()
				if got := problemPaths(t, err); !slices.Equal(got, sorted(tt.paths)) {
					t.Errorf("problem paths = %q\nwant %q\nerror: %v", got, sorted(tt.paths), err)
				}
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
