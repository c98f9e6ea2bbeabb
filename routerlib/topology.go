package routerlib

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
)

// A topology is one loaded router file with its pools and the health of
// each node. The Router swaps whole topologies on reload; everything in one
// is immutable after build except the atomics.
type topology struct {
	file     artifact.Topology // defaults applied
	nodes    []*node           // in file order
	byName   map[string]*node
	declared *node // the node with role primary
	routes   map[string]*route
	policy   policy
	mode     consistency
	wait     time.Duration // consistency.wait_timeout
	interval time.Duration // health.interval
	timeout  time.Duration // health.timeout
	eject    int           // health.eject_after
	readmit  int           // health.readmit_after

	// writer is the node taking writes: the declared primary, or a node
	// that was promoted after it failed. nil means none: writes fail with
	// ErrNoPrimary. Only the monitor stores it.
	writer atomic.Pointer[node]
	rr     atomic.Uint64 // round-robin position shared by all reads

	// inflight counts calls between choosing a node and holding a
	// connection from its pool. A retired topology closes its pools once it
	// drops to zero; pgxpool.Close then waits for the held connections.
	inflight atomic.Int64
	retired  atomic.Bool
}

type consistency uint8

const (
	consistencyEventual consistency = iota
	consistencyReadYourWrites
	consistencyStrong
)

type strategy uint8

const (
	strategyRoundRobin strategy = iota
	strategyRandom
	strategyWeighted
	strategyLeastLag
	strategyNearestZone
)

type policy struct {
	strategy        strategy
	fallbackPrimary bool
}

type route struct {
	name   string
	nodes  []*node
	policy policy
}

func parsePolicy(s, fallback string) policy {
	p := policy{fallbackPrimary: fallback != artifact.FallbackError}
	switch s {
	case artifact.StrategyRandom:
		p.strategy = strategyRandom
	case artifact.StrategyWeighted:
		p.strategy = strategyWeighted
	case artifact.StrategyLeastLag:
		p.strategy = strategyLeastLag
	case artifact.StrategyNearestZone:
		p.strategy = strategyNearestZone
	}
	return p
}

// buildTopology validates f, applies defaults and creates one pool per node.
// Pools connect lazily, so a node that is down does not fail the build.
func buildTopology(f artifact.Topology, o *options) (*topology, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	f = f.WithDefaults()
	t := &topology{
		file:    f,
		byName:  make(map[string]*node, len(f.Nodes)),
		routes:  make(map[string]*route, len(f.Routes)),
		policy:  parsePolicy(f.ReadPolicy.Strategy, f.ReadPolicy.Fallback),
		eject:   f.Health.EjectAfter,
		readmit: f.Health.ReadmitAfter,
	}
	switch f.Consistency.Mode {
	case artifact.ModeReadYourWrites:
		t.mode = consistencyReadYourWrites
	case artifact.ModeStrong:
		t.mode = consistencyStrong
	}
	var err error
	durations := []struct {
		d   artifact.Duration
		dst *time.Duration
	}{{f.Consistency.WaitTimeout, &t.wait}, {f.Health.Interval, &t.interval}, {f.Health.Timeout, &t.timeout}}
	for _, d := range durations {
		if *d.dst, err = d.d.Std(); err != nil {
			return nil, err
		}
	}
	for _, decl := range f.Nodes {
		n, err := newNode(decl, f.Pool, o)
		if err != nil {
			t.closePools()
			return nil, err
		}
		t.nodes = append(t.nodes, n)
		t.byName[n.name] = n
		if n.declaredPrimary {
			t.declared = n
		}
	}
	for _, r := range f.Routes {
		rt := &route{name: r.Name, policy: parsePolicy(r.Strategy, r.Fallback)}
		for _, name := range r.Nodes {
			rt.nodes = append(rt.nodes, t.byName[name])
		}
		t.routes[r.Name] = rt
	}
	return t, nil
}

// enter marks a call in flight on t; it fails when t has been retired by a
// reload, and the caller loads the new topology.
func (t *topology) enter() bool {
	t.inflight.Add(1)
	if t.retired.Load() {
		t.inflight.Add(-1)
		return false
	}
	return true
}

func (t *topology) leave() { t.inflight.Add(-1) }

// closePools closes every pool; pgxpool.Close waits until connections held
// by callers (open rows, transactions) are released.
func (t *topology) closePools() {
	for _, n := range t.nodes {
		n.close()
	}
}

// A node is one server in the router file: its pools and its health as the
// monitor last saw it.
type node struct {
	decl            artifact.Node
	name            string
	declaredPrimary bool
	maxLag          time.Duration
	connConfig      *pgx.ConnConfig // for the monitor's own connection
	// beforeConnect is the pools' hook (the password from WithPasswordFunc
	// or password_env, and the application's own hook): the monitor's
	// connection must authenticate exactly as the pools' do.
	beforeConnect func(context.Context, *pgx.ConnConfig) error

	// readPool serves reads on a declared replica; its sessions run with
	// default_transaction_read_only=on so a misrouted write fails with
	// SQLSTATE 25006 instead of succeeding. nil on the declared primary.
	readPool *pgxpool.Pool
	// writePool serves writes. The declared primary has one from the
	// start; the monitor creates one for a replica when it is promoted.
	writePool atomic.Pointer[pgxpool.Pool]
	baseCfg   *pgxpool.Config // template for a lazily created writePool

	// Health, stored by the monitor (and by the query path on a failed
	// connection), loaded by the query path.
	reachable  atomic.Bool   // the last check succeeded
	recovery   atomic.Bool   // pg_is_in_recovery() at the last check
	readable   atomic.Bool   // in read rotation
	ejected    atomic.Uint32 // EjectReason while not readable
	replayLSN  atomic.Uint64 // replay LSN for a standby, current LSN for a primary
	lagBytes   atomic.Int64
	lagNanos   atomic.Int64
	connFailed atomic.Bool // a query saw the connection fail since the last check
	lastErr    atomic.Pointer[string]

	reads, writes, errors atomic.Int64

	// Only the monitor goroutine touches these (and the build that runs
	// before the topology is published).
	fails, goods int
	admitted     bool // has been readable at least once
	behindSince  time.Time
	hc           *pgx.Conn // the monitor's connection
}

func newNode(decl artifact.Node, p artifact.Pool, o *options) (*node, error) {
	n := &node{decl: decl, name: decl.Name, declaredPrimary: decl.Role == artifact.RolePrimary}
	var err error
	if n.maxLag, err = decl.MaxLag.Std(); err != nil {
		return nil, fmt.Errorf("node %q: %w", decl.Name, err)
	}
	cfg, err := poolConfig(decl, p, o)
	if err != nil {
		return nil, fmt.Errorf("node %q: %w", decl.Name, err)
	}
	n.baseCfg = cfg
	n.connConfig = cfg.ConnConfig.Copy()
	n.beforeConnect = cfg.BeforeConnect
	if n.declaredPrimary {
		wp, err := pgxpool.NewWithConfig(context.Background(), cfg.Copy())
		if err != nil {
			return nil, fmt.Errorf("node %q: %w", decl.Name, err)
		}
		n.writePool.Store(wp)
		return n, nil
	}
	rc := cfg.Copy()
	rc.ConnConfig.RuntimeParams["default_transaction_read_only"] = "on"
	if n.readPool, err = pgxpool.NewWithConfig(context.Background(), rc); err != nil {
		return nil, fmt.Errorf("node %q: %w", decl.Name, err)
	}
	return n, nil
}

// poolConfig builds a node's pool configuration from the file. The password
// never comes from the file: it comes from the WithPasswordFunc hook or the
// password_env variable, read before each connection so rotation works, or
// from libpq's passfile (the node's, else PGPASSFILE or ~/.pgpass).
func poolConfig(decl artifact.Node, p artifact.Pool, o *options) (*pgxpool.Config, error) {
	kv := []string{
		"host=" + conninfoValue(decl.Host),
		"port=" + strconv.Itoa(decl.Port),
		"sslmode=" + conninfoValue(decl.SSLMode),
	}
	for _, f := range []struct{ key, value string }{
		{"dbname", decl.Database}, {"user", decl.User}, {"sslrootcert", decl.SSLRootCert}, {"passfile", decl.Passfile},
	} {
		if f.value != "" {
			kv = append(kv, f.key+"="+conninfoValue(f.value))
		}
	}
	cfg, err := pgxpool.ParseConfig(strings.Join(kv, " "))
	if err != nil {
		return nil, err
	}
	cfg.MaxConns = p.MaxConns
	cfg.MinConns = p.MinConns
	if cfg.MaxConnLifetime, err = p.MaxConnLifetime.Std(); err != nil {
		return nil, err
	}
	if cfg.ConnConfig.RuntimeParams == nil {
		cfg.ConnConfig.RuntimeParams = map[string]string{}
	}
	if _, ok := cfg.ConnConfig.RuntimeParams["application_name"]; !ok {
		cfg.ConnConfig.RuntimeParams["application_name"] = "routerlib"
	}
	if o.poolConfig != nil {
		o.poolConfig(decl, cfg)
	}
	if o.password != nil || decl.PasswordEnv != "" {
		hook, env := o.password, decl.PasswordEnv
		user := cfg.BeforeConnect
		cfg.BeforeConnect = func(ctx context.Context, cc *pgx.ConnConfig) error {
			if user != nil {
				if err := user(ctx, cc); err != nil {
					return err
				}
			}
			return setPassword(ctx, cc, decl, hook, env)
		}
	}
	return cfg, nil
}

func setPassword(ctx context.Context, cc *pgx.ConnConfig, decl artifact.Node, hook func(context.Context, artifact.Node) (string, error), env string) error {
	if hook != nil {
		pw, err := hook(ctx, decl)
		if err != nil {
			return fmt.Errorf("password for node %q: %w", decl.Name, err)
		}
		if pw != "" {
			cc.Password = pw
			return nil
		}
	}
	if env != "" {
		if pw, ok := os.LookupEnv(env); ok {
			cc.Password = pw
		}
	}
	return nil
}

// conninfoValue quotes v for a libpq key=value connection string.
func conninfoValue(v string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}

// readPoolOf returns the pool that serves reads on n.
func (n *node) readPoolOf() *pgxpool.Pool {
	if n.readPool != nil {
		return n.readPool
	}
	return n.writePool.Load()
}

// ensureWritePool gives a promoted replica a pool without
// default_transaction_read_only. Only the monitor calls it.
func (n *node) ensureWritePool() error {
	if n.writePool.Load() != nil {
		return nil
	}
	wp, err := pgxpool.NewWithConfig(context.Background(), n.baseCfg.Copy())
	if err != nil {
		return fmt.Errorf("node %q: %w", n.name, err)
	}
	n.writePool.Store(wp)
	return nil
}

func (n *node) close() {
	if n.readPool != nil {
		n.readPool.Close()
	}
	if wp := n.writePool.Load(); wp != nil {
		wp.Close()
	}
}

// markDown takes n out of rotation at once after a connection failure seen
// by a query; the monitor readmits it after readmit_after good checks.
func (n *node) markDown(err error) {
	n.connFailed.Store(true)
	// The reason before readable, as in the monitor (see Stat). A node the
	// monitor already ejected keeps its reason.
	if n.readable.Load() {
		n.ejected.Store(uint32(EjectUnreachable))
		n.readable.Store(false)
	}
	n.reachable.Store(false)
	s := err.Error()
	n.lastErr.Store(&s)
}
