package artifact

// Defaults for every optional field, in one place. A field left at its zero
// value means "use the default"; [Topology.WithDefaults] applies them.
// Fields not listed here (database, user, sslrootcert, password_env,
// passfile, zone, max_lag, max_lag_bytes, synchronous) have no default: unset
// means the driver's own default, or no limit.
const (
	// DefaultPort is [Node.Port] when unset.
	DefaultPort = 5432
	// DefaultWeight is [Node.Weight] when unset.
	DefaultWeight = 100
	// DefaultSSLMode is [Node.SSLMode] when unset, as in libpq.
	DefaultSSLMode = SSLModePrefer
	// DefaultStrategy is [ReadPolicy.Strategy] when unset.
	DefaultStrategy = StrategyRoundRobin
	// DefaultFallback is [ReadPolicy.Fallback] when unset.
	DefaultFallback = FallbackPrimary
	// DefaultConsistencyMode is [Consistency.Mode] when unset.
	DefaultConsistencyMode = ModeEventual
	// DefaultWaitTimeout is [Consistency.WaitTimeout] when unset.
	DefaultWaitTimeout Duration = "200ms"
	// DefaultHealthInterval is [Health.Interval] when unset.
	DefaultHealthInterval Duration = "1s"
	// DefaultHealthTimeout is [Health.Timeout] when unset.
	DefaultHealthTimeout Duration = "1s"
	// DefaultConnectTimeout is [Health.ConnectTimeout] when unset: ample for
	// a TLS handshake and SCRAM authentication on a loaded server, and short
	// enough that a call needing a new connection to a hung node fails over
	// within seconds.
	DefaultConnectTimeout Duration = "2s"
	// DefaultEjectAfter is [Health.EjectAfter] when unset.
	DefaultEjectAfter = 3
	// DefaultReadmitAfter is [Health.ReadmitAfter] when unset.
	DefaultReadmitAfter = 2
	// DefaultMaxConns is [Pool.MaxConns] when unset.
	DefaultMaxConns int32 = 10
	// DefaultMinConns is [Pool.MinConns] when unset.
	DefaultMinConns int32 = 0
	// DefaultMaxConnLifetime is [Pool.MaxConnLifetime] when unset.
	DefaultMaxConnLifetime Duration = "1h"
)

// MaxWeight is the largest allowed [Node.Weight]. The bound keeps the sum
// of all weights far from integer overflow in the weighted strategy.
const MaxWeight = 1_000_000

// WithDefaults returns a copy of t with every unset field set to its
// default. Routes without a strategy or fallback inherit the read policy's
// (after its own defaults). The copy shares no slices with t, so t is never
// modified. WithDefaults does not validate: invalid values are kept as they
// are.
func (t Topology) WithDefaults() Topology {
	c := t.clone()
	if c.FormatVersion == 0 {
		c.FormatVersion = FormatVersion
	}
	for i := range c.Nodes {
		n := &c.Nodes[i]
		setDefault(&n.Port, DefaultPort)
		setDefault(&n.Weight, DefaultWeight)
		setDefault(&n.SSLMode, DefaultSSLMode)
	}
	setDefault(&c.ReadPolicy.Strategy, DefaultStrategy)
	setDefault(&c.ReadPolicy.Fallback, DefaultFallback)
	setDefault(&c.Consistency.Mode, DefaultConsistencyMode)
	setDefault(&c.Consistency.WaitTimeout, DefaultWaitTimeout)
	setDefault(&c.Health.Interval, DefaultHealthInterval)
	setDefault(&c.Health.Timeout, DefaultHealthTimeout)
	setDefault(&c.Health.ConnectTimeout, DefaultConnectTimeout)
	setDefault(&c.Health.EjectAfter, DefaultEjectAfter)
	setDefault(&c.Health.ReadmitAfter, DefaultReadmitAfter)
	for i := range c.Routes {
		r := &c.Routes[i]
		setDefault(&r.Strategy, c.ReadPolicy.Strategy)
		setDefault(&r.Fallback, c.ReadPolicy.Fallback)
	}
	setDefault(&c.Pool.MaxConns, DefaultMaxConns)
	setDefault(&c.Pool.MinConns, DefaultMinConns)
	setDefault(&c.Pool.MaxConnLifetime, DefaultMaxConnLifetime)
	return c
}

// setDefault sets *field to def if it holds the zero value.
func setDefault[T comparable](field *T, def T) {
	var zero T
	if *field == zero {
		*field = def
	}
}
