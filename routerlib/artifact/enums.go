package artifact

// The values of the enumerated fields. Each group comes with a slice listing
// every allowed value, in the order documentation should show them; the
// provider feeds the slices to its validators and descriptions, and
// [Topology.Validate] checks against the same slices, so the two cannot
// drift apart. Callers must not modify the slices.

// Node roles ([Node.Role]).
const (
	// RolePrimary is the one node that accepts writes.
	RolePrimary = "primary"
	// RoleReplica is a read-only standby.
	RoleReplica = "replica"
)

// Roles lists every allowed [Node.Role]; do not modify it.
var Roles = []string{RolePrimary, RoleReplica}

// SSL modes ([Node.SSLMode]), with libpq's meanings.
const (
	// SSLModeDisable never uses TLS.
	SSLModeDisable = "disable"
	// SSLModeAllow uses TLS only if the server insists.
	SSLModeAllow = "allow"
	// SSLModePrefer uses TLS if the server offers it.
	SSLModePrefer = "prefer"
	// SSLModeRequire always uses TLS but does not verify the server.
	SSLModeRequire = "require"
	// SSLModeVerifyCA always uses TLS and verifies the server's certificate
	// chain.
	SSLModeVerifyCA = "verify-ca"
	// SSLModeVerifyFull always uses TLS and verifies the certificate chain
	// and the host name.
	SSLModeVerifyFull = "verify-full"
)

// SSLModes lists every allowed [Node.SSLMode]; do not modify it.
var SSLModes = []string{SSLModeDisable, SSLModeAllow, SSLModePrefer, SSLModeRequire, SSLModeVerifyCA, SSLModeVerifyFull}

// Replica selection strategies ([ReadPolicy.Strategy], [Route.Strategy]).
const (
	// StrategyRoundRobin takes healthy replicas in turn.
	StrategyRoundRobin = "round_robin"
	// StrategyRandom takes a healthy replica uniformly at random.
	StrategyRandom = "random"
	// StrategyWeighted takes a healthy replica at random in proportion to
	// its weight.
	StrategyWeighted = "weighted"
	// StrategyLeastLag takes the healthy replica furthest along in replay.
	StrategyLeastLag = "least_lag"
	// StrategyNearestZone prefers healthy replicas in the caller's zone.
	// At least one node must have a zone.
	StrategyNearestZone = "nearest_zone"
)

// Strategies lists every allowed strategy; do not modify it.
var Strategies = []string{StrategyRoundRobin, StrategyRandom, StrategyWeighted, StrategyLeastLag, StrategyNearestZone}

// Fallbacks when no replica is healthy ([ReadPolicy.Fallback],
// [Route.Fallback]).
const (
	// FallbackPrimary sends the read to the primary.
	FallbackPrimary = "primary"
	// FallbackError fails the read, keeping load off the primary.
	FallbackError = "error"
)

// Fallbacks lists every allowed fallback; do not modify it.
var Fallbacks = []string{FallbackPrimary, FallbackError}

// Consistency modes ([Consistency.Mode]).
const (
	// ModeEventual reads from any healthy replica within its lag limits.
	ModeEventual = "eventual"
	// ModeReadYourWrites reads from a replica only once it has replayed the
	// session's last write, waiting up to the wait timeout.
	ModeReadYourWrites = "read_your_writes"
	// ModeStrong sends every read to the primary.
	ModeStrong = "strong"
)

// ConsistencyModes lists every allowed [Consistency.Mode]; do not modify it.
var ConsistencyModes = []string{ModeEventual, ModeReadYourWrites, ModeStrong}
