package artifact

import (
	"fmt"
	"slices"
	"time"
)

// FormatVersion is the version of the router file format this package reads
// and writes. [Parse] rejects a file with any other format_version.
const FormatVersion = 1

// Topology is the whole router file: the nodes of one replicated PostgreSQL
// cluster and how routerlib chooses among them.
//
// The zero value of every optional field means "unset"; [Topology.WithDefaults]
// replaces unset fields with the defaults listed in defaults.go, and [Marshal]
// leaves them out of the file.
type Topology struct {
	// FormatVersion is the file format version. Zero means [FormatVersion]:
	// [Marshal] always writes the current version.
	FormatVersion int `json:"format_version"`
	// Nodes are the PostgreSQL servers: exactly one primary and any number
	// of replicas. Required.
	Nodes []Node `json:"nodes"`
	// ReadPolicy chooses a replica for reads that use no named route.
	ReadPolicy ReadPolicy `json:"read_policy,omitzero"`
	// Consistency says how fresh a replica read must be.
	Consistency Consistency `json:"consistency,omitzero"`
	// Health configures the checks that eject and readmit nodes.
	Health Health `json:"health,omitzero"`
	// Routes are named sets of nodes that callers select by name, for
	// example to keep analytics queries off the replicas serving the app.
	Routes []Route `json:"routes,omitempty"`
	// Pool sizes the connection pool kept for each node.
	Pool Pool `json:"pool,omitzero"`
}

// Node is one PostgreSQL server.
type Node struct {
	// Name identifies the node in routes, logs and errors. Required, unique,
	// printable, without leading or trailing whitespace.
	Name string `json:"name"`
	// Role is [RolePrimary] or [RoleReplica]. Required.
	Role string `json:"role"`
	// Host is the host name, IP address or Unix socket directory. Required.
	// A URI ("://"), or a host name holding white space, '=' or '@' (a
	// connection string, user:password@host), is refused without being
	// shown.
	Host string `json:"host"`
	// Port is the TCP port. Zero means [DefaultPort].
	Port int `json:"port,omitempty"`
	// Database is the database name. Empty means the server's default
	// (the user name). One that libpq would read as a connection string
	// ('=', or a postgres:// or postgresql:// prefix) is refused without
	// being shown.
	Database string `json:"database,omitempty"`
	// User is the role to connect as. Empty means the driver's default.
	// One holding ':', '=' or white space (user:password, a pasted
	// "user=… password=…") is refused without being shown, though
	// PostgreSQL allows such role names: connect as a role named without
	// them.
	User string `json:"user,omitempty"`
	// SSLMode is one of [SSLModes]. Empty means [DefaultSSLMode].
	SSLMode string `json:"sslmode,omitempty"`
	// SSLRootCert is the path of the CA certificate used by the verify-ca and
	// verify-full modes. Empty means the driver's default.
	SSLRootCert string `json:"sslrootcert,omitempty"`
	// PasswordEnv names the environment variable that holds the password.
	// The password itself never goes in the file.
	PasswordEnv string `json:"password_env,omitempty"`
	// Passfile is the path of a .pgpass file to read the password from.
	Passfile string `json:"passfile,omitempty"`
	// Zone is the availability zone, used by [StrategyNearestZone].
	// Empty means unknown.
	Zone string `json:"zone,omitempty"`
	// Weight is the node's share of reads under [StrategyWeighted], from 0
	// to [MaxWeight]. Zero means [DefaultWeight].
	Weight int `json:"weight,omitempty"`
	// MaxLag is how far behind the primary, in replay time, a replica may
	// fall before it stops serving reads. Empty means no limit.
	MaxLag Duration `json:"max_lag,omitempty"`
	// MaxLagBytes is how far behind the primary, in WAL bytes, a replica may
	// fall before it stops serving reads. Zero means no limit.
	MaxLagBytes int64 `json:"max_lag_bytes,omitempty"`
	// Synchronous records that the replica is a synchronous standby, so
	// committed writes are already on it.
	Synchronous bool `json:"synchronous,omitempty"`
}

// ReadPolicy chooses among replicas.
type ReadPolicy struct {
	// Strategy is one of [Strategies]. Empty means [DefaultStrategy].
	Strategy string `json:"strategy,omitempty"`
	// Fallback is one of [Fallbacks]: what to do when no replica is
	// healthy. Empty means [DefaultFallback].
	Fallback string `json:"fallback,omitempty"`
}

// Consistency says how fresh a replica read must be.
type Consistency struct {
	// Mode is one of [ConsistencyModes]. Empty means [DefaultConsistencyMode].
	Mode string `json:"mode,omitempty"`
	// WaitTimeout is how long a read waits for a replica to catch up under
	// [ModeReadYourWrites] before falling back. Empty means
	// [DefaultWaitTimeout].
	WaitTimeout Duration `json:"wait_timeout,omitempty"`
}

// Health configures node health checks.
type Health struct {
	// Interval is the time between checks of one node. Empty means
	// [DefaultHealthInterval].
	Interval Duration `json:"interval,omitempty"`
	// Timeout bounds one check's query, once connected: a check that has
	// not answered within it counts as failed. Empty means
	// [DefaultHealthTimeout].
	Timeout Duration `json:"timeout,omitempty"`
	// ConnectTimeout bounds setting up every connection routerlib opens to
	// a node, for its pools and its checks alike: dial, TLS and
	// authentication. It is separate from Timeout because a new
	// connection costs the server a process and an authentication, which
	// take longer than a check's query on a busy machine. Empty means
	// [DefaultConnectTimeout].
	ConnectTimeout Duration `json:"connect_timeout,omitempty"`
	// EjectAfter is the number of consecutive failed checks that take a
	// node out of rotation. Zero means [DefaultEjectAfter].
	EjectAfter int `json:"eject_after,omitempty"`
	// ReadmitAfter is the number of consecutive passed checks that put an
	// ejected node back. Zero means [DefaultReadmitAfter].
	ReadmitAfter int `json:"readmit_after,omitempty"`
}

// Route is a named set of nodes with its own read policy.
type Route struct {
	// Name is what callers pass to select the route. Required, unique,
	// printable, without leading or trailing whitespace.
	Name string `json:"name"`
	// Nodes are the names of the nodes the route reads from. Required.
	Nodes []string `json:"nodes"`
	// Strategy is one of [Strategies]. Empty means the read_policy strategy.
	Strategy string `json:"strategy,omitempty"`
	// Fallback is one of [Fallbacks]. Empty means the read_policy fallback.
	Fallback string `json:"fallback,omitempty"`
}

// Pool sizes the connection pool kept for each node.
type Pool struct {
	// MaxConns is the most connections per node. Zero means
	// [DefaultMaxConns].
	MaxConns int32 `json:"max_conns,omitempty"`
	// MinConns is the number of idle connections kept open per node.
	// Zero means [DefaultMinConns].
	MinConns int32 `json:"min_conns,omitempty"`
	// MaxConnLifetime is how long a connection lives before it is replaced.
	// Empty means [DefaultMaxConnLifetime].
	MaxConnLifetime Duration `json:"max_conn_lifetime,omitempty"`
}

// Duration is a length of time in Go duration syntax, such as "250ms", "10s"
// or "1m30s". It is kept as text so that a malformed value is reported by
// [Topology.Validate] together with every other problem, rather than
// stopping [Parse] at the first one, and so that [Marshal] writes back
// exactly what was set. The empty Duration means unset.
type Duration string

// Std returns d as a [time.Duration]. The empty Duration is 0 with no
// error; a value that is not Go duration syntax is an error naming it.
func (d Duration) Std() (time.Duration, error) {
	if d == "" {
		return 0, nil
	}
	v, err := time.ParseDuration(string(d))
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q: use Go duration syntax such as \"500ms\", \"10s\" or \"1m\"", string(d))
	}
	return v, nil
}

// clone returns a copy of t that shares no slices with it.
func (t Topology) clone() Topology {
	c := t
	c.Nodes = slices.Clone(t.Nodes)
	c.Routes = slices.Clone(t.Routes)
	for i := range c.Routes {
		c.Routes[i].Nodes = slices.Clone(c.Routes[i].Nodes)
	}
	return c
}
