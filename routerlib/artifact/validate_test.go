package artifact_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
)

// problemPaths returns the sorted problem paths of a Validate error, which
// must be nil or a *ValidationError.
func problemPaths(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	var verr *artifact.ValidationError
	if !errors.As(err, &verr) {
		t.Fatalf("error %v (%T) is not a *ValidationError", err, err)
	}
	if len(verr.Problems) == 0 {
		t.Fatalf("ValidationError with no problems")
	}
	var paths []string
	for _, p := range verr.Problems {
		paths = append(paths, p.Path)
	}
	slices.Sort(paths)
	return paths
}

// TestValidate changes one thing in the golden topology per case, and
// checks that Validate reports exactly the expected problems. Golden
// nodes: [0] primary, [1] replica-1, [2] replica-2; routes: [0] analytics
// (replica-2, round_robin).
func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*artifact.Topology)
		paths  []string // nil means valid
		want   string   // a substring of the first problem's message
	}{
		{name: "golden is valid", change: func(*artifact.Topology) {}},
		{name: "everything optional unset", change: func(t *artifact.Topology) {
			*t = artifact.Topology{Nodes: []artifact.Node{{Name: "primary", Role: "primary", Host: "127.0.0.1"}}}
		}},
		{name: "primary only", change: func(t *artifact.Topology) { t.Nodes = t.Nodes[:1]; t.Routes = nil }},
		{name: "route may include the primary", change: func(t *artifact.Topology) { t.Routes[0].Nodes = []string{"primary", "replica-2"} }},
		{name: "nearest_zone with zones", change: func(t *artifact.Topology) { t.ReadPolicy.Strategy = artifact.StrategyNearestZone }},
		{name: "unix socket host", change: func(t *artifact.Topology) { t.Nodes[1].Host = "/var/run/postgresql" }},

		{name: "format_version unsupported", change: func(t *artifact.Topology) { t.FormatVersion = 2 },
			paths: []string{"format_version"}, want: "unsupported format_version 2"},

		{name: "no nodes", change: func(t *artifact.Topology) { t.Nodes = nil; t.Routes = nil },
			paths: []string{"nodes"}, want: "at least one node is required"},
		{name: "node name empty", change: func(t *artifact.Topology) { t.Nodes[1].Name = "" },
			paths: []string{"nodes[1].name"}, want: "node name is required"},
		{name: "node name whitespace only", change: func(t *artifact.Topology) { t.Nodes[1].Name = " \t " },
			paths: []string{"nodes[1].name"}, want: "only whitespace"},
		{name: "node name not printable", change: func(t *artifact.Topology) { t.Nodes[1].Name = "replica\x00-1" },
			paths: []string{"nodes[1].name"}, want: "not printable"},
		{name: "node name invisible character", change: func(t *artifact.Topology) { t.Nodes[1].Name = "replica\u200b-1" },
			paths: []string{"nodes[1].name"}, want: "not printable"},
		{name: "node name trailing space", change: func(t *artifact.Topology) { t.Nodes[1].Name = "replica-1 " },
			paths: []string{"nodes[1].name"}, want: "begins or ends with whitespace"},
		{name: "node name duplicate", change: func(t *artifact.Topology) { t.Nodes[1].Name = "replica-2" },
			paths: []string{"nodes[2].name"}, want: `duplicate node name "replica-2", also used by nodes[1]`},
		{name: "no primary", change: func(t *artifact.Topology) { t.Nodes[0].Role = artifact.RoleReplica },
			paths: []string{"nodes"}, want: `no primary: exactly one node must have role "primary"`},
		{name: "two primaries", change: func(t *artifact.Topology) { t.Nodes[2].Role = artifact.RolePrimary },
			paths: []string{"nodes"}, want: `2 primaries (nodes[0] "primary", nodes[2] "replica-2")`},
		{name: "role empty", change: func(t *artifact.Topology) { t.Nodes[1].Role = "" },
			paths: []string{"nodes[1].role"}, want: "role is required; allowed: primary, replica"},
		{name: "role unknown", change: func(t *artifact.Topology) { t.Nodes[1].Role = "standby" },
			paths: []string{"nodes[1].role"}, want: `unknown role "standby"; allowed: primary, replica`},
		{name: "host empty", change: func(t *artifact.Topology) { t.Nodes[1].Host = "" },
			paths: []string{"nodes[1].host"}, want: "host is required"},
		{name: "host is a URI", change: func(t *artifact.Topology) { t.Nodes[1].Host = "postgres://app:secret@db/app" },
			paths: []string{"nodes[1].host"}, want: "not a connection URI"},
		{name: "port unset", change: func(t *artifact.Topology) { t.Nodes[0].Port = 0 }},
		{name: "port 1 and 65535", change: func(t *artifact.Topology) { t.Nodes[1].Port, t.Nodes[2].Port = 1, 65535 }},
		{name: "primary listed again as a replica", change: func(t *artifact.Topology) { t.Nodes[2].Port = t.Nodes[0].Port },
			paths: []string{"nodes[2].host"}, want: `node "replica-2" reaches the same server as nodes[0] "primary" (the same host, port and database)`},
		{name: "port unset is the default port", change: func(t *artifact.Topology) { t.Nodes[0].Port = 0; t.Nodes[1].Port = artifact.DefaultPort },
			paths: []string{"nodes[1].host"}, want: "reaches the same server as nodes[0]"},
		{name: "same server under another user", change: func(t *artifact.Topology) { t.Nodes[1].Port = t.Nodes[0].Port; t.Nodes[1].User = "reporting" },
			paths: []string{"nodes[1].host"}, want: "list each server once"},
		{name: "one pooler, database unset, a user per server", change: func(t *artifact.Topology) {
			for i := range t.Nodes {
				t.Nodes[i].Port, t.Nodes[i].Database, t.Nodes[i].User = 6432, "", t.Nodes[i].Name
			}
		}},
		{name: "database unset is the user's", change: func(t *artifact.Topology) {
			t.Nodes[1].Port, t.Nodes[0].Database, t.Nodes[1].Database = t.Nodes[0].Port, "", t.Nodes[0].User
			t.Nodes[1].User = t.Nodes[0].User
		}, paths: []string{"nodes[1].host"}, want: "reaches the same server as nodes[0]"},
		{name: "one pooler, a database per server", change: func(t *artifact.Topology) {
			for i := range t.Nodes {
				t.Nodes[i].Port, t.Nodes[i].Database = 6432, t.Nodes[i].Name
			}
		}},
		{name: "port negative", change: func(t *artifact.Topology) { t.Nodes[1].Port = -1 },
			paths: []string{"nodes[1].port"}, want: "port -1 is out of range"},
		{name: "port too large", change: func(t *artifact.Topology) { t.Nodes[1].Port = 65536 },
			paths: []string{"nodes[1].port"}, want: "port 65536 is out of range"},
		{name: "sslmode unknown", change: func(t *artifact.Topology) { t.Nodes[1].SSLMode = "verify" },
			paths: []string{"nodes[1].sslmode"}, want: `unknown sslmode "verify"; allowed: disable, allow, prefer, require, verify-ca, verify-full`},
		{name: "password_env with a dash", change: func(t *artifact.Topology) { t.Nodes[1].PasswordEnv = "APP-PASSWORD" },
			paths: []string{"nodes[1].password_env"}, want: "not an environment variable name"},
		{name: "password_env starting with a digit", change: func(t *artifact.Topology) { t.Nodes[1].PasswordEnv = "1PASSWORD" },
			paths: []string{"nodes[1].password_env"}},
		{name: "password_env holding a password", change: func(t *artifact.Topology) { t.Nodes[1].PasswordEnv = "s3cr3t!" },
			paths: []string{"nodes[1].password_env"}},
		{name: "user:password in user", change: func(t *artifact.Topology) { t.Nodes[1].User = "app:secret" },
			paths: []string{"nodes[1].user"}, want: "user holds ':', '=' or white space"},
		{name: "conninfo in user", change: func(t *artifact.Topology) { t.Nodes[1].User = "app password=secret" },
			paths: []string{"nodes[1].user"}, want: "connect as a role without them"},
		{name: "user with a tab", change: func(t *artifact.Topology) { t.Nodes[1].User = "app\tsecret" },
			paths: []string{"nodes[1].user"}},
		{name: "user@server is a role name", change: func(t *artifact.Topology) { t.Nodes[1].User = "app@db-1" }},
		{name: "password_env lower case and underscore", change: func(t *artifact.Topology) { t.Nodes[1].PasswordEnv = "_app_pw2" }},
		{name: "weight unset", change: func(t *artifact.Topology) { t.Nodes[1].Weight = 0 }},
		{name: "weight negative", change: func(t *artifact.Topology) { t.Nodes[1].Weight = -1 },
			paths: []string{"nodes[1].weight"}, want: "weight -1 is out of range"},
		{name: "weight too large", change: func(t *artifact.Topology) { t.Nodes[1].Weight = artifact.MaxWeight + 1 },
			paths: []string{"nodes[1].weight"}},
		{name: "max_lag without unit", change: func(t *artifact.Topology) { t.Nodes[1].MaxLag = "10" },
			paths: []string{"nodes[1].max_lag"}, want: `invalid duration "10"`},
		{name: "max_lag zero", change: func(t *artifact.Topology) { t.Nodes[1].MaxLag = "0s" },
			paths: []string{"nodes[1].max_lag"}, want: `duration "0s" must be greater than zero`},
		{name: "max_lag negative", change: func(t *artifact.Topology) { t.Nodes[1].MaxLag = "-1s" },
			paths: []string{"nodes[1].max_lag"}},
		{name: "max_lag_bytes negative", change: func(t *artifact.Topology) { t.Nodes[1].MaxLagBytes = -1 },
			paths: []string{"nodes[1].max_lag_bytes"}},

		{name: "read_policy strategy unknown", change: func(t *artifact.Topology) { t.ReadPolicy.Strategy = "fastest" },
			paths: []string{"read_policy.strategy"}, want: "allowed: round_robin, random, weighted, least_lag, nearest_zone"},
		{name: "read_policy fallback unknown", change: func(t *artifact.Topology) { t.ReadPolicy.Fallback = "retry" },
			paths: []string{"read_policy.fallback"}, want: "allowed: primary, error"},
		{name: "nearest_zone without zones", change: func(t *artifact.Topology) {
			t.ReadPolicy.Strategy = artifact.StrategyNearestZone
			for i := range t.Nodes {
				t.Nodes[i].Zone = ""
			}
		}, paths: []string{"read_policy.strategy"}, want: "no node has one"},

		{name: "consistency mode unknown", change: func(t *artifact.Topology) { t.Consistency.Mode = "linearizable" },
			paths: []string{"consistency.mode"}, want: "allowed: eventual, read_your_writes, strong"},
		{name: "wait_timeout invalid", change: func(t *artifact.Topology) { t.Consistency.WaitTimeout = "200" },
			paths: []string{"consistency.wait_timeout"}},
		{name: "wait_timeout zero: the primary at once", change: func(t *artifact.Topology) { t.Consistency.WaitTimeout = "0s" }},
		{name: "wait_timeout negative", change: func(t *artifact.Topology) { t.Consistency.WaitTimeout = "-1ms" },
			paths: []string{"consistency.wait_timeout"}, want: `duration "-1ms" is negative`},

		{name: "health interval invalid", change: func(t *artifact.Topology) { t.Health.Interval = "1 s" },
			paths: []string{"health.interval"}},
		{name: "health timeout negative", change: func(t *artifact.Topology) { t.Health.Timeout = "-500ms" },
			paths: []string{"health.timeout"}},
		{name: "connect_timeout zero", change: func(t *artifact.Topology) { t.Health.ConnectTimeout = "0s" },
			paths: []string{"health.connect_timeout"}},
		{name: "connect_timeout invalid", change: func(t *artifact.Topology) { t.Health.ConnectTimeout = "2" },
			paths: []string{"health.connect_timeout"}},
		{name: "eject_after negative", change: func(t *artifact.Topology) { t.Health.EjectAfter = -1 },
			paths: []string{"health.eject_after"}},
		{name: "readmit_after negative", change: func(t *artifact.Topology) { t.Health.ReadmitAfter = -1 },
			paths: []string{"health.readmit_after"}},

		{name: "route name empty", change: func(t *artifact.Topology) { t.Routes[0].Name = "" },
			paths: []string{"routes[0].name"}, want: "route name is required"},
		{name: "route name whitespace only", change: func(t *artifact.Topology) { t.Routes[0].Name = "  " },
			paths: []string{"routes[0].name"}},
		{name: "route name not printable", change: func(t *artifact.Topology) { t.Routes[0].Name = "analytics\n" },
			paths: []string{"routes[0].name"}},
		{name: "route name duplicate", change: func(t *artifact.Topology) {
			t.Routes = append(t.Routes, artifact.Route{Name: "analytics", Nodes: []string{"replica-1"}})
		}, paths: []string{"routes[1].name"}, want: `duplicate route name "analytics", also used by routes[0]`},
		{name: "route without nodes", change: func(t *artifact.Topology) { t.Routes[0].Nodes = nil },
			paths: []string{"routes[0].nodes"}, want: "at least one node"},
		{name: "route names unknown node", change: func(t *artifact.Topology) { t.Routes[0].Nodes = []string{"replica-2", "replica-3"} },
			paths: []string{"routes[0].nodes[1]"}, want: `unknown node "replica-3"; the nodes are: primary, replica-1, replica-2`},
		{name: "route lists a node twice", change: func(t *artifact.Topology) { t.Routes[0].Nodes = []string{"replica-2", "replica-2"} },
			paths: []string{"routes[0].nodes[1]"}, want: `node "replica-2" is already listed at routes[0].nodes[0]`},
		{name: "route strategy unknown", change: func(t *artifact.Topology) { t.Routes[0].Strategy = "fastest" },
			paths: []string{"routes[0].strategy"}},
		{name: "route fallback unknown", change: func(t *artifact.Topology) { t.Routes[0].Fallback = "panic" },
			paths: []string{"routes[0].fallback"}},
		{name: "route nearest_zone without zones", change: func(t *artifact.Topology) {
			t.Routes[0].Strategy = artifact.StrategyNearestZone
			t.Nodes[2].Zone = ""
		}, paths: []string{"routes[0].strategy"}, want: "none of the route's nodes has one"},
		{name: "route inherits nearest_zone without zones", change: func(t *artifact.Topology) {
			t.ReadPolicy.Strategy = artifact.StrategyNearestZone
			t.Routes[0].Strategy = ""
			t.Nodes[2].Zone = ""
		}, paths: []string{"routes[0].strategy"}, want: "(inherited from read_policy)"},

		{name: "max_conns negative", change: func(t *artifact.Topology) { t.Pool.MaxConns = -1; t.Pool.MinConns = 0 },
			paths: []string{"pool.max_conns"}},
		{name: "min_conns negative", change: func(t *artifact.Topology) { t.Pool.MinConns = -1 },
			paths: []string{"pool.min_conns"}},
		{name: "min_conns above max_conns", change: func(t *artifact.Topology) { t.Pool.MaxConns, t.Pool.MinConns = 4, 5 },
			paths: []string{"pool.min_conns"}, want: "min_conns 5 exceeds max_conns 4"},
		{name: "min_conns equal to max_conns", change: func(t *artifact.Topology) { t.Pool.MaxConns, t.Pool.MinConns = 5, 5 }},
		{name: "min_conns above default max_conns", change: func(t *artifact.Topology) { t.Pool.MaxConns, t.Pool.MinConns = 0, artifact.DefaultMaxConns+1 },
			paths: []string{"pool.min_conns"}, want: "exceeds the default max_conns 10"},
		{name: "max_conn_lifetime invalid", change: func(t *artifact.Topology) { t.Pool.MaxConnLifetime = "forever" },
			paths: []string{"pool.max_conn_lifetime"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			topo := golden(t)
			tt.change(&topo)
			err := topo.Validate()
			if got, want := problemPaths(t, err), sorted(tt.paths); !slices.Equal(got, want) {
				t.Fatalf("problem paths = %q, want %q\nerror: %v", got, want, err)
			}
			if tt.want != "" {
				var verr *artifact.ValidationError
				errors.As(err, &verr)
				if msg := verr.Problems[0].Message; !strings.Contains(msg, tt.want) {
					t.Errorf("message %q does not contain %q", msg, tt.want)
				}
			}
		})
	}
}

// TestValidateNeverShowsPasswordEnv: a password_env that is not a
// variable's name may be the password itself, written there by mistake;
// the error, which Open returns and a reload logs, does not show it.
func TestValidateNeverShowsPasswordEnv(t *testing.T) {
	topo := golden(t)
	topo.Nodes[1].PasswordEnv = "canary-s3cr3t!"
	err := topo.Validate()
	if err == nil {
		t.Fatal("a password_env that is no variable's name was accepted")
	}
	if strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("the error shows the value of password_env: %v", err)
	}
}

// TestValidateNeverShowsHostOrDatabase: a host, database or user that holds
// a password typed there by mistake (a URI, a conninfo string), on two nodes
// alike, is refused without showing it.
func TestValidateNeverShowsHostOrDatabase(t *testing.T) {
	for _, mistake := range []func(*artifact.Node){
		func(n *artifact.Node) { n.Host = "postgres://app:canary-s3cr3t@db/app" },
		func(n *artifact.Node) { n.Database = "dbname=app password=canary-s3cr3t" },
		func(n *artifact.Node) { n.User = "app:canary-s3cr3t" },
		func(n *artifact.Node) { n.User = "app password=canary-s3cr3t" },
	} {
		topo := golden(t)
		for i := range topo.Nodes {
			mistake(&topo.Nodes[i])
			topo.Nodes[i].Port = 5432
		}
		err := topo.Validate()
		if err == nil {
			t.Fatal("nodes that reach one server were accepted")
		}
		if strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("the error shows the host or database: %v", err)
		}
	}
}

func TestValidateCollectsEveryProblem(t *testing.T) {
	topo := golden(t)
	topo.Nodes[0].Port = 99999
	topo.Nodes[1].Role = "leader"
	topo.Nodes[2].MaxLag = "soon"
	topo.Routes[0].Nodes = []string{"replica-7"}
	topo.Pool.MinConns = 11

	err := topo.Validate()
	want := []string{"nodes[0].port", "nodes[1].role", "nodes[2].max_lag", "pool.min_conns", "routes[0].nodes[0]"}
	if got := problemPaths(t, err); !slices.Equal(got, want) {
		t.Fatalf("problem paths = %q, want %q", got, want)
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 1+len(want) || lines[0] != "invalid topology (5 problems):" {
		t.Errorf("Error() = %q, want a header and one line per problem", err)
	}
	if !strings.HasPrefix(lines[1], "nodes[0].port: port 99999 is out of range") {
		t.Errorf("first problem line = %q", lines[1])
	}

	wrapped := fmt.Errorf("load router.json: %w", err)
	var verr *artifact.ValidationError
	if !errors.As(wrapped, &verr) || len(verr.Problems) != len(want) {
		t.Errorf("errors.As through a wrap: %v", verr)
	}
}

func TestValidationErrorOneProblem(t *testing.T) {
	err := &artifact.ValidationError{Problems: []artifact.Problem{{Path: "nodes", Message: "at least one node is required"}}}
	if got, want := err.Error(), "invalid topology: nodes: at least one node is required"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestValidateNilIsUntyped(t *testing.T) {
	// A typed nil *ValidationError in an error interface is non-nil.
	if err := golden(t).Validate(); err != nil {
		t.Fatalf("Validate(golden) = %#v", err)
	}
}

func TestDurationStd(t *testing.T) {
	for d, want := range map[artifact.Duration]string{"": "0s", "250ms": "250ms", "1m30s": "1m30s"} {
		got, err := d.Std()
		if err != nil || got.String() != want {
			t.Errorf("Duration(%q).Std() = %v, %v; want %s", d, got, err, want)
		}
	}
	if _, err := artifact.Duration("10 seconds").Std(); err == nil || !strings.Contains(err.Error(), `"10 seconds"`) {
		t.Errorf(`Duration("10 seconds").Std() error = %v, want one naming the value`, err)
	}
}

func TestEnumSlices(t *testing.T) {
	for name, values := range map[string][]string{
		"Roles": artifact.Roles, "SSLModes": artifact.SSLModes, "Strategies": artifact.Strategies,
		"Fallbacks": artifact.Fallbacks, "ConsistencyModes": artifact.ConsistencyModes,
	} {
		if len(values) == 0 || len(sorted(values)) != len(slices.Compact(sorted(values))) {
			t.Errorf("%s = %q: want distinct values", name, values)
		}
	}
	for name, tc := range map[string]struct {
		value   string
		allowed []string
	}{
		"DefaultSSLMode":         {artifact.DefaultSSLMode, artifact.SSLModes},
		"DefaultStrategy":        {artifact.DefaultStrategy, artifact.Strategies},
		"DefaultFallback":        {artifact.DefaultFallback, artifact.Fallbacks},
		"DefaultConsistencyMode": {artifact.DefaultConsistencyMode, artifact.ConsistencyModes},
	} {
		if !slices.Contains(tc.allowed, tc.value) {
			t.Errorf("%s = %q is not an allowed value", name, tc.value)
		}
	}
}
