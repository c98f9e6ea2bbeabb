package routerlib

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
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
	reads    route // a read's nodes and policy without a Route: nodes, read_policy
	mode     consistency
	wait     time.Duration // consistency.wait_timeout
	interval time.Duration // health.interval
	timeout  time.Duration // health.timeout
	connect  time.Duration // health.connect_timeout
	eject    int           // health.eject_after
	readmit  int           // health.readmit_after

	// writer is the node taking writes: the one node out of recovery, or
	// of several the one on the latest timeline (see chooseWriter). nil
	// means none: writes fail with ErrNoPrimary, and noWriter says why
	// when nodes are out of recovery but none may take writes. Only the
	// health checks store them.
	writer   atomic.Pointer[node]
	noWriter atomic.Pointer[string]
	retired  atomic.Bool
	// drained is closed once t, retired, has no call left between
	// choosing a node and holding a connection, nor has the topology it
	// replaced; prevDrained is the drained of the topology t replaced (nil
	// for the first): t's servers close only after it, since calls on it
	// may use them too.
	drained     chan struct{}
	prevDrained <-chan struct{}

	// cluster is the system identifier of the cluster the nodes belong
	// to as the last choice of the writer judged it (see clusterOf), 0
	// if unknown; clusterSeen is the last one a majority of the nodes
	// shared, 0 until two agree, kept across reloads. Guarded by
	// Router.checkMu.
	cluster, clusterSeen int64

	// The two atomics every read writes come last, past a line of
	// padding: sharing a cache line with the fields above, which every
	// read loads, would move those from core to core with them.
	_ [cacheLine]byte
	// rr is the round-robin position shared by all reads.
	rr atomic.Uint64
	// inflight counts calls between choosing a node and holding a
	// connection from its pool. A retired topology closes its pools once it
	// drops to zero; pgxpool.Close then waits for the held connections.
	inflight atomic.Int64
}

// cacheLine is the size of a cache line on amd64 and most arm64 (128 bytes
// on Apple's, where the padding halves the sharing instead of ending it).
const cacheLine = 64

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
	fallback        string // as the file says, for errors
}

type route struct {
	name   string
	nodes  []*node
	policy policy
}

func parsePolicy(s, fallback string) policy {
	p := policy{fallbackPrimary: fallback != artifact.FallbackError, fallback: fallback}
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

// buildTopology validates f, applies defaults and gives each node its
// server: prev's (the topology in force, nil in New) for a node whose
// connection settings did not change, a new one with new pools otherwise.
// Pools connect lazily, so a node that is down does not fail the build.
// It runs under Router.checkMu.
func buildTopology(f artifact.Topology, o *options, prev *topology) (*topology, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	f = f.WithDefaults()
	t := &topology{
		file:    f,
		byName:  make(map[string]*node, len(f.Nodes)),
		routes:  make(map[string]*route, len(f.Routes)),
		eject:   f.Health.EjectAfter,
		readmit: f.Health.ReadmitAfter,
		drained: make(chan struct{}),
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
	}{{f.Consistency.WaitTimeout, &t.wait}, {f.Health.Interval, &t.interval}, {f.Health.Timeout, &t.timeout}, {f.Health.ConnectTimeout, &t.connect}}
	for _, d := range durations {
		if *d.dst, err = d.d.Std(); err != nil {
			return nil, err
		}
	}
	stays := false // a node of prev stays on its server
	for _, decl := range f.Nodes {
		var was *node
		if prev != nil {
			was = prev.byName[decl.Name]
		}
		n, err := newNode(decl, f.Pool, t.connect, o, was)
		if err != nil {
			t.closeServersNotIn(prev)
			return nil, err
		}
		t.nodes = append(t.nodes, n)
		t.byName[n.name] = n
		if decl.Role == artifact.RolePrimary {
			t.declared = n
		}
		if was != nil && (n.server == was.server || was.sameAddress(decl)) {
			stays = true
		}
	}
	// The cluster learnt (see clusterOf) is the one of the servers that
	// stay: a file that now lists only other servers may list another
	// cluster on purpose (a switch to a new cluster), whose identifier its
	// own nodes give.
	if stays {
		t.cluster, t.clusterSeen = prev.cluster, prev.clusterSeen
	}
	t.reads = route{nodes: t.nodes, policy: parsePolicy(f.ReadPolicy.Strategy, f.ReadPolicy.Fallback)}
	for _, r := range f.Routes {
		rt := &route{name: r.Name, policy: parsePolicy(r.Strategy, r.Fallback)}
		for _, name := range r.Nodes {
			rt.nodes = append(rt.nodes, t.byName[name])
		}
		t.routes[r.Name] = rt
	}
	return t, nil
}

// keepWriter makes prev's writer t's: a reload does not forget a failover,
// nor stop writes while the writer is checked again. The caller holds
// Router.checkMu.
func (t *topology) keepWriter(prev *topology) error {
	w := prev.writerNode()
	if w == nil {
		return nil
	}
	n := t.byName[w.name]
	if n == nil || (n.server != w.server && !w.sameAddress(n.decl)) {
		return nil
	}
	if err := n.ensureWritePool(); err != nil {
		return fmt.Errorf("node %q: %w", n.name, err)
	}
	t.writer.Store(n)
	t.noWriter.Store(prev.noWriter.Load())
	return nil
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

// hold keeps a call that entered t counted in flight past its return, for
// what the application ends later on t's pools: reading a write's LSN when
// its rows or batch are closed. The func it returns ends the hold, once.
func (t *topology) hold() func() {
	t.inflight.Add(1)
	return sync.OnceFunc(t.leave)
}

// closeServersNotIn closes the servers of t that other (nil for none) does
// not use: their pools, once the connections callers hold (open rows,
// transactions) are released, and the monitor's connections. Each closes
// on its own, so that a connection held on one leaves the others closed.
func (t *topology) closeServersNotIn(other *topology) {
	var wg sync.WaitGroup
	for _, n := range t.nodes {
		if other.nodeOn(n.server) == nil {
			wg.Go(n.close)
		}
	}
	wg.Wait()
}

// writerNode returns the node taking writes in t, or nil (also for a nil t).
func (t *topology) writerNode() *node {
	if t == nil {
		return nil
	}
	return t.writer.Load()
}

// nodeOn returns t's node on server s, or nil (also for a nil t).
func (t *topology) nodeOn(s *server) *node {
	if t == nil || s == nil {
		return nil
	}
	for _, n := range t.nodes {
		if n.server == s {
			return n
		}
	}
	return nil
}

// A node is one server as this topology declares it: its role, weight,
// zone and lag limits, and the server it reaches.
type node struct {
	*server
	decl   artifact.Node
	name   string
	maxLag time.Duration
}

// A server is what the router keeps for one node across reloads: its pools,
// the monitor's connection and its health. A reload that leaves a node's
// connection settings as they were gives the new topology the same server,
// so it opens no connection and forgets nothing; see [buildTopology].
type server struct {
	key        connKey
	connConfig *pgx.ConnConfig // for the monitor's own connection
	// beforeConnect is the pools' hook (the password from WithPasswordFunc
	// or password_env, and the application's own hook): the monitor's
	// connection must authenticate exactly as the pools' do.
	beforeConnect func(context.Context, *pgx.ConnConfig) error
	// monitor applies WithMonitorConfig's hook (nil without one) to the
	// monitor's connection, after beforeConnect, so that a user of its
	// own keeps its own password.
	monitor func(*pgx.ConnConfig)

	// readPool serves reads on a declared replica; its sessions run with
	// default_transaction_read_only=on so a misrouted write fails with
	// SQLSTATE 25006 instead of succeeding. writePool serves writes and
	// the declared primary's reads; a replica gets one when it is
	// promoted. Each is created once, under Router.checkMu, and never
	// replaced.
	readPool  atomic.Pointer[pgxpool.Pool]
	writePool atomic.Pointer[pgxpool.Pool]
	// readOnlyLost says that readPool's sessions came without
	// default_transaction_read_only (see readonly.go): its reads are sent
	// read only one by one.
	readOnlyLost atomic.Bool
	// fork is the fork of the primary's timeline the server's WAL
	// receiver last showed (see seeFork); guarded by Router.checkMu.
	fork    forkPoint
	baseCfg *pgxpool.Config // template for the pools
	// cut are the backends of the write pool's connections closed with a
	// call in flight, whose end a session's position read awaits. A
	// server that inherits another's health (the same address reached
	// with other settings) shares its list: the old pool's cuts, before
	// the reload and during its last calls, are the same server's.
	cutBackends *cutBackends

	// Health, stored by the monitor (and by the query path on a failed
	// connection), loaded by the query path.
	reachable atomic.Bool // the last check succeeded
	recovery  atomic.Bool // pg_is_in_recovery() at the last check
	// ejected is why the server is out of read rotation, EjectNone when
	// it is in (see inRotation); set by setEjected and markDown alone,
	// which log each change, under rotationMu.
	ejected    atomic.Uint32
	rotationMu sync.Mutex
	logger     *slog.Logger  // the Router's, for the records of ejected
	replayLSN  atomic.Uint64 // replay LSN for a standby, current LSN for a primary
	lagBytes   atomic.Int64
	lagNanos   atomic.Int64
	// connFailed is when (time since monoEpoch; 0 if never) a query last
	// saw the connection fail, until a check begun after it is applied
	// (see seenFailures).
	connFailed atomic.Int64
	// queryFailed says that connFailed came from a connection failing under
	// a query (markDown), not only from the server ending a session
	// (recheck), whose check may answer late without the node being down;
	// a time, as connFailed.
	queryFailed atomic.Int64
	// dialFailed: a pool failed to set up a connection since the
	// monitor's last one was set up. The monitor's session may still
	// answer (a postmaster that hangs, or refuses new sessions, leaves
	// the sessions it has), so the next check of a standby connects
	// anew: see server.check.
	dialFailed atomic.Bool
	// checkAnew: a query saw the server end a session (recheck), so the
	// next check sets up a session of its own (see server.check).
	checkAnew atomic.Bool
	lastErr   atomic.Pointer[error] // the last check or connection error
	// timeline is the WAL timeline the server was last seen writing on,
	// out of recovery; 0 once seen in recovery or never seen out of it.
	// Kept while the server is unreachable: an old primary that comes
	// back on an earlier timeline must not take writes from it.
	timeline atomic.Uint32
	// splitBrain says why the server, out of recovery, takes no writes;
	// nil when it does or is in recovery.
	splitBrain atomic.Pointer[string]
	// twinOf is the node that stands for this server when the router
	// file lists it under another name too (see twinsOf), as last
	// logged; "" if none. Guarded by Router.checkMu.
	twinOf string
	// cloneTLI is the timeline a declared replica was last seen out of
	// recovery on, as the declared primary was (see clonesOf): a copy of
	// the cluster started as a primary of its own; 0 if it is none. Kept
	// while the node is unreachable. Guarded by Router.checkMu.
	cloneTLI uint32
	// started is when the server last seen at this address started (Unix
	// nanoseconds; see checkResult.started); 0 until a check answers.
	started atomic.Int64
	// startedBefore is the start time the server showed before the last
	// change of it the checks saw (a restart), and restartSeen when the
	// router saw that change (see restartedSince); guarded by
	// Router.checkMu.
	startedBefore int64
	restartSeen   time.Time

	reads, writes, errors atomic.Int64

	// kept holds the read pool's connections between reads, keptW the
	// write pool's between writes.
	kept, keptW readConns

	// replay shares the replay-position queries of the reads waiting for
	// the server to replay their session's LSN.
	replay replayPoll

	// conns holds every connection open to the server, so that the
	// router can cut them off when it stops answering, and on Close.
	conns *nodeConns

	// Only the health checks touch these, under Router.checkMu.
	last         checkResult // the last check that answered, or failed
	lastGood     checkResult // the last check that answered (see keepNewer)
	down         bool        // the last check failed (as logged)
	fails, goods int
	admitted     bool // has been readable at least once
	behindSince  time.Time
	caughtUp     bool // seen caught up with the writer since it was last out as unreachable (see node.lag)
	// blind: the router's user may not list the standby's pg_wal, as
	// logged once (see Router.rotate).
	blind bool

	// life ends when the server closes: its check in flight ends then.
	life    context.Context
	endLife context.CancelFunc
	watch   watchState // the monitor's check in flight; see watchNode
	// checkNow asks the monitor for a check of the server now, outside
	// its schedule (see recheck); buffered, so a request never waits.
	checkNow chan struct{}
	// checkedAt is when (Unix nanoseconds) a check of the server last
	// answered and was applied, 0 if none has; aliveAt is when the
	// monitor last saw it answer calls on the pools' sessions at a
	// deadline its check missed past the excuse window (see watchNode).
	// aliveAt after checkedAt: the node is up, but its role and lag are
	// unknown (see unknownRole).
	checkedAt, aliveAt atomic.Int64
	// terminated is when (Unix nanoseconds) a query last saw the server
	// end a session (see sessionEnded); 0 if never.
	terminated atomic.Int64

	// hcMu serialises the checks of the server (the monitor's own and a
	// reload's) and closing it, which alone use hc.
	hcMu sync.Mutex
	hc   *pgx.Conn // the monitor's connection; guarded by hcMu
	// hcQuery is the check query hc may send (checkQuery or
	// checkQueryHistory), "" until asked; guarded by hcMu.
	hcQuery string
	// hcStarted is when the server hc is connected to started (see
	// checkResult.started); guarded by hcMu.
	hcStarted int64
	// hcCluster is the system identifier of the cluster hc is connected
	// to (see checkResult.cluster); guarded by hcMu.
	hcCluster int64
	closed    bool // the server is closed: no check connects again; guarded by hcMu
}

// connKey is what a server's pools and connections are made of. Two
// declarations with the same key reach the same server the same way.
type connKey struct {
	connString                                       string // host, port, database, user, TLS, passfile
	passwordEnv                                      string
	connectTimeout, maxConnLifetime, maxConnIdleTime time.Duration
	healthCheckPeriod                                time.Duration
	maxConns, minConns                               int32
	runtimeParams                                    string
}

func keyOf(decl artifact.Node, cfg *pgxpool.Config) connKey {
	params := make([]string, 0, len(cfg.ConnConfig.RuntimeParams))
	for k, v := range cfg.ConnConfig.RuntimeParams {
		params = append(params, k+"="+v)
	}
	slices.Sort(params)
	return connKey{
		connString:        cfg.ConnString(),
		passwordEnv:       decl.PasswordEnv,
		connectTimeout:    cfg.ConnConfig.ConnectTimeout,
		maxConnLifetime:   cfg.MaxConnLifetime,
		maxConnIdleTime:   cfg.MaxConnIdleTime,
		healthCheckPeriod: cfg.HealthCheckPeriod,
		maxConns:          cfg.MaxConns,
		minConns:          cfg.MinConns,
		runtimeParams:     strings.Join(params, "\x00"),
	}
}

// newNode makes the node for decl. It reuses prev's server when prev (the
// node of the same name in the topology in force, or nil) reaches it with
// the same settings; otherwise it makes a new server, which inherits prev's
// health when it has the same address. It runs under Router.checkMu.
func newNode(decl artifact.Node, p artifact.Pool, connectTimeout time.Duration, o *options, prev *node) (*node, error) {
	n := &node{decl: decl, name: decl.Name}
	var err error
	if n.maxLag, err = decl.MaxLag.Std(); err != nil {
		return nil, fmt.Errorf("node %q: %w", decl.Name, err)
	}
	cfg, err := poolConfig(decl, p, o)
	if err != nil {
		return nil, fmt.Errorf("node %q: %w", decl.Name, err)
	}
	cfg.ConnConfig.ConnectTimeout = connectTimeout
	key := keyOf(decl, cfg)
	if prev != nil && prev.key == key {
		n.server = prev.server
	} else {
		// Every connection to the server, the pools' and the checks', is
		// set up within connect_timeout and tracked, so that it can be
		// cut off.
		conns := o.conns.add(decl.Name, net.JoinHostPort(decl.Host, strconv.Itoa(decl.Port)))
		dial := cfg.ConnConfig.DialFunc
		cfg.ConnConfig.DialFunc = conns.dialer(dial, false)
		cc := cfg.ConnConfig.Copy()
		cc.DialFunc = conns.dialer(dial, true)
		var monitor func(c *pgx.ConnConfig)
		if o.monitorCfg != nil {
			pc, monitorDial := &cfg.ConnConfig.Config, cc.DialFunc
			monitor = func(c *pgx.ConnConfig) {
				o.monitorCfg(decl, c)
				// The checks ask the server the calls go to, whatever the hook set.
				c.Host, c.Port, c.Fallbacks, c.LookupFunc, c.ConnectTimeout = pc.Host, pc.Port, pc.Fallbacks, pc.LookupFunc, connectTimeout
				c.DialFunc = monitorDial
			}
			monitor(cc)
		}
		n.server = &server{key: key, baseCfg: cfg, connConfig: cc, beforeConnect: cfg.BeforeConnect, monitor: monitor, conns: conns, last: checkResult{err: errNotChecked}, checkNow: make(chan struct{}, 1), logger: o.logger, cutBackends: new(cutBackends)}
		cfg.ShouldPing = n.server.shouldPing(cfg.ShouldPing)
		cfg.BeforeConnect = startedAlive(cfg.BeforeConnect)
		n.kept.every, n.keptW.every, n.keptW.write = o.keptTick, o.keptTick, true
		//lint:ignore SA1019 an application may still set the deprecated BeforeAcquire, which pgxpool runs on each acquire
		n.kept.off = cfg.PrepareConn != nil || cfg.BeforeAcquire != nil || cfg.AfterRelease != nil
		n.keptW.off = n.kept.off
		n.life, n.endLife = context.WithCancel(context.Background())
		n.ejected.Store(uint32(EjectNotChecked))
		if prev != nil {
			// Counters stay, so that rates computed from Stat (and
			// Prometheus counters) do not reset on a reload.
			n.reads.Store(prev.reads.Load())
			n.writes.Store(prev.writes.Load())
			n.errors.Store(prev.errors.Load())
			if prev.sameAddress(decl) {
				n.inherit(prev.server)
			}
		}
	}
	if decl.Role == artifact.RolePrimary {
		err = n.ensureWritePool()
	} else {
		err = n.ensureReadPool(n.name)
	}
	if err != nil {
		n.closeIfNew(prev)
		return nil, err
	}
	return n, nil
}

// sameAddress reports whether decl reaches the server n does, perhaps with
// other settings (a new pool size, a rotated TLS root).
func (n *node) sameAddress(decl artifact.Node) bool {
	return n.decl.Host == decl.Host && n.decl.Port == decl.Port
}

// inherit takes o's health: the same server reached with other settings is
// still the same server, on the same timeline, as healthy as it was.
func (s *server) inherit(o *server) {
	s.reachable.Store(o.reachable.Load())
	s.recovery.Store(o.recovery.Load())
	s.ejected.Store(o.ejected.Load())
	s.replayLSN.Store(o.replayLSN.Load())
	s.lagBytes.Store(o.lagBytes.Load())
	s.lagNanos.Store(o.lagNanos.Load())
	s.lastErr.Store(o.lastErr.Load())
	s.timeline.Store(o.timeline.Load())
	s.started.Store(o.started.Load())
	s.splitBrain.Store(o.splitBrain.Load())
	s.last, s.lastGood, s.down, s.fails, s.goods, s.admitted, s.behindSince, s.caughtUp = o.last, o.lastGood, o.down, o.fails, o.goods, o.admitted, o.behindSince, o.caughtUp
	// A copy of the cluster stays one (see clonesOf): with the primary
	// down, a copy on a timeline after the first is known only by this.
	s.cloneTLI = o.cloneTLI
	s.startedBefore, s.restartSeen = o.startedBefore, o.restartSeen
	s.checkedAt.Store(o.checkedAt.Load())
	s.aliveAt.Store(o.aliveAt.Load())
	s.cutBackends = o.cutBackends
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
	// pgx takes target_session_attrs from $PGTARGETSESSIONATTRS, which an
	// application that used libpq's multi-host failover may still set:
	// "read-write" or "primary" refused every standby's connection (all
	// reads then went to the primary), "standby" the primary's (no write
	// was taken). The router learns each node's role from the server.
	cfg.ConnConfig.ValidateConnect = nil
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

// readPoolOf returns the pool that serves reads on n: the declared
// primary has no read-only pool.
func (t *topology) readPoolOf(n *node) *pgxpool.Pool {
	if n != t.declared {
		return n.readPool.Load()
	}
	return n.writePool.Load()
}

// ensureReadPool gives a declared replica, named name, its read-only
// pool. Pools connect lazily: creating one opens no connection (unless
// pool.min_conns asks).
func (s *server) ensureReadPool(name string) error {
	if s.readPool.Load() != nil {
		return nil
	}
	rc := s.baseCfg.Copy()
	rc.ConnConfig.RuntimeParams["default_transaction_read_only"] = "on"
	afterConnect := rc.AfterConnect
	rc.AfterConnect = func(ctx context.Context, c *pgx.Conn) error {
		if readOnlyLost(c) && !s.readOnlyLost.Swap(true) {
			s.logger.Warn("routerlib: the replica's read sessions run without default_transaction_read_only (a pooler such as PgBouncer dropped the startup parameter); each read is sent with set_config('transaction_read_only', 'on', true) in the same round trip",
				"node", name)
		}
		if afterConnect != nil {
			return afterConnect(ctx, c)
		}
		return nil
	}
	rp, err := s.newPool(rc)
	if err != nil {
		return err
	}
	s.readPool.Store(rp)
	return nil
}

// ensureWritePool gives the declared primary, or a promoted replica, a pool
// without default_transaction_read_only, whose connections forget pgx's
// cached statements when the server discards them (see discardTracer).
func (s *server) ensureWritePool() error {
	if s.writePool.Load() != nil {
		return nil
	}
	wc := s.baseCfg.Copy()
	wc.ConnConfig.Tracer = discardTracer(wc.ConnConfig.Tracer, s.cutBackends)
	wc.BeforeConnect = s.refuseInRecovery(wc.BeforeConnect)
	wp, err := s.newPool(wc)
	if err != nil {
		return err
	}
	s.writePool.Store(wp)
	keptWrites.Store(wp, &s.keptW)
	return nil
}

// newPool makes a pool of cfg, a copy of its own, with the slot that
// Close frees reserved (see nodeConns.reserveSlot): cfg.MaxConns
// connections at most, and one slot more that connects nowhere. It
// returns once the slot is taken.
//
// pgxpool keeps MinConns counting that slot (Stat().TotalConns counts a
// connection being set up), so MinConns, when set, is one more too: else
// the pool refills to min_conns − 1 connections once its first reach
// max_conn_lifetime. The first fill, made before the slot is taken, does
// not count it, and would set up one connection too many, or, with
// min_conns = max_conns, take every slot and leave none for the
// reserve: the fill's connections past min_conns (or past max_conns)
// are dropped (see reserveSlot).
func (s *server) newPool(cfg *pgxpool.Config) (*pgxpool.Pool, error) {
	taken := make(chan struct{})
	var fill atomic.Int32
	fill.Store(min(max(cfg.MinConns, cfg.MinIdleConns), cfg.MaxConns))
	cfg.MaxConns++
	if cfg.MinConns > 0 {
		cfg.MinConns = min(cfg.MinConns+1, cfg.MaxConns)
	}
	cfg.BeforeConnect = s.conns.reserveSlot(cfg.BeforeConnect, taken, &fill)
	// pgxpool's first fill runs under this context's values.
	p, err := pgxpool.NewWithConfig(context.WithValue(context.Background(), firstFillKey{}, true), cfg)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.WithValue(context.Background(), reserveKey{}, true))
	defer cancel()
	acquired := make(chan struct{})
	go func() {
		defer close(acquired)
		// It returns when cancel ends the acquire: the slot stays
		// taken by puddle's constructor, under the pool's context.
		if c, err := p.Acquire(ctx); err == nil {
			c.Release() // not so: no connection is set up before the slot is taken
		}
	}()
	select {
	case <-taken:
	case <-acquired:
		// The acquire ended before it took the slot, which it never
		// will now: the pool's connections are set up without it.
		select {
		case <-taken:
		default:
			close(taken)
		}
	}
	cancel()
	<-acquired
	return p, nil
}

// close closes the server's pools and the monitor's connection. pgxpool's
// Close waits until connections held by callers are released.
func (s *server) close() {
	s.kept.close()
	s.keptW.close()
	// Each pool waits only for its own: a transaction held on a promoted
	// replica's read pool leaves its write pool closed.
	var wg sync.WaitGroup
	for _, p := range []*pgxpool.Pool{s.readPool.Load(), s.writePool.Load()} {
		if p != nil {
			wg.Go(p.Close)
		}
	}
	wg.Wait()
	if wp := s.writePool.Load(); wp != nil {
		keptWrites.Delete(wp)
	}
	s.endLife() // ends the monitor's check in flight, which holds hcMu
	s.hcMu.Lock()
	s.closed = true
	s.closeHealthConn()
	s.hcMu.Unlock()
	s.conns.remove()
}

// cut closes every connection open to s and refuses its pools' dials
// until a check passes again: s stopped answering, and every call blocked
// on it must fail now rather than wait for it.
func (s *server) cut(cause error) {
	s.conns.cut(cause)
	// The pools' idle connections, whose sockets are now closed, must not
	// be handed out when s comes back: nor the ones kept between calls.
	s.kept.expire()
	s.keptW.expire()
	if rp := s.readPool.Load(); rp != nil {
		rp.Reset()
	}
	if wp := s.writePool.Load(); wp != nil {
		wp.Reset()
	}
}

// closeIfNew closes n's server unless it is prev's, which stays in use.
func (n *node) closeIfNew(prev *node) {
	if prev == nil || n.server != prev.server {
		n.close()
	}
}

// recheck asks the monitor to check s now, after a query saw the server
// end its session with FATAL 57P01 (admin_shutdown). That is what
// pg_terminate_backend() sends one session of a healthy server, and what a
// server shutting down sends every session: only a check on a session of
// its own tells them apart (checkAnew, see server.check). Until it
// answers s stays in rotation and keeps the writes; if it is refused, s
// is taken out at once, as after markDown (connFailed), and a writer
// loses the writes at once; a check that times out, or whose own sessions
// are ended too, counts as one failure toward eject_after, as on
// schedule, for both (see notDown).
func (s *server) recheck() {
	s.sessionEnded()
	s.checkAnew.Store(true) // first: a check begun after the time below sees it
	s.connFailed.Store(failedNow())
	s.askCheck()
}

// askCheck asks the monitor to check s now; a check in flight, begun
// before, does not answer for it (see watchNode).
func (s *server) askCheck() {
	select {
	case s.checkNow <- struct{}{}:
	default: // one is asked for already
	}
}

// failedNow is now as connFailed and queryFailed hold a failure's time:
// since monoEpoch, on the monotonic clock, and never 0 (none).
func failedNow() int64 { return max(int64(time.Since(monoEpoch)), 1) }

// seenFailures forgets the failures queries saw (connFailed, queryFailed)
// before res, a check being applied, began. A check begun earlier says
// nothing of them: it may have answered before the server shut down
// under the query. Nor does a deadline's failure (res.at is zero). The
// caller holds Router.checkMu.
func (s *server) seenFailures(res checkResult) {
	if res.at.IsZero() {
		return
	}
	began := int64(res.at.Sub(monoEpoch))
	for _, failed := range []*atomic.Int64{&s.connFailed, &s.queryFailed} {
		if at := failed.Load(); at != 0 && at < began {
			failed.CompareAndSwap(at, 0) // a failure seen since stays
		}
	}
}

// sessionEnded records that a query saw the server end a session
// (terminated, or idle past idle_session_timeout), so that the pools ping
// each session of the server before they hand it out again (see
// shouldPing): the kept ones too, which go back to them.
func (s *server) sessionEnded() {
	s.terminated.Store(time.Now().UnixNano())
	s.kept.expire()
	s.keptW.expire()
}

// acquire takes a connection of pool, one of the kept ones (see
// readConns) when pool is s's read or write pool; gen goes back to
// release with it.
func (s *server) acquire(ctx context.Context, pool *pgxpool.Pool) (c *pgxpool.Conn, gen uint64, err error) {
	switch pool {
	case s.readPool.Load():
		return s.kept.acquire(ctx, pool, nil)
	case s.writePool.Load():
		return s.keptW.acquire(ctx, pool, s.awaitsRoom)
	}
	c, err = acquireRoom(ctx, pool, s.awaitsRoom)
	return c, 0, err
}

// release gives back c, which acquire took from pool in generation gen.
func (s *server) release(pool *pgxpool.Pool, c *pgxpool.Conn, gen uint64) {
	switch pool {
	case s.readPool.Load():
		s.kept.release(c, gen)
	case s.writePool.Load():
		s.keptW.release(c, gen)
	default:
		c.Release()
	}
}

// aliveKey is the key, in a session's [pgconn.PgConn.CustomData], of when
// the session was last known alive (Unix nanoseconds): when its connect
// started (see startedAlive), or when shouldPing last had it pinged.
const aliveKey = "routerlib.pinged"

// shouldPing is the pools' ShouldPing: next's answer (pgxpool's default,
// a ping after a second idle, when nil), and a ping of every session that
// started before the server last ended one and was not pinged since.
// Sessions are ended in bulk
// (pg_terminate_backend over an application's sessions, a shutdown,
// idle_session_timeout, which ends every session idle as long), so the
// others may be gone too: pinged, a dead one is dropped and the pool hands
// out another (a ping cannot see a session that a pass still to signal
// it will end: the call that runs again after an ended session takes a
// new one, see newSession). That includes the sessions in use when the server
// ended them: a statement that had its reply before the backend took the
// signal ends well, and the server's FATAL waits on the socket behind the
// reply, so such a session comes back to the pool after the router saw the
// first one ended, idle for less than the time since. A session is pinged
// once per ending seen; until one is seen, nothing is looked up.
func (s *server) shouldPing(next func(context.Context, pgxpool.ShouldPingParams) bool) func(context.Context, pgxpool.ShouldPingParams) bool {
	return func(ctx context.Context, p pgxpool.ShouldPingParams) bool {
		if at := s.terminated.Load(); at != 0 {
			// The pool lends the session to this call alone: its data
			// is not shared.
			data := p.Conn.PgConn().CustomData()
			if alive, _ := data[aliveKey].(int64); alive <= at {
				data[aliveKey] = time.Now().UnixNano()
				return true
			}
		}
		if next != nil {
			return next(ctx, p)
		}
		return p.IdleDuration > time.Second
	}
}

// startedAlive is the pools' BeforeConnect: next (the application's and
// the password's, or nil), after arranging that the session it sets up is
// recorded as alive from now, when its connect starts, so that shouldPing
// pings it only once the server ends a session after that. Not from when
// the connect ends: a backend that started before pg_terminate_backend ran
// over the application's sessions can still hand its connect a
// ReadyForQuery, the FATAL behind it, and a session marked alive after the
// router saw the first ending would go out unpinged, to meet the FATAL
// (under load, 41 such sessions in 17 runs of
// TestTerminatedBackendOnTheOnlyReplica, and a read that met three ended
// sessions failed: see TestSessionEndedWhileItsConnectRan). A session
// whose connect starts after the ending is not pinged: through PgBouncer
// the ping of one whose server is down fails and pgxpool tries another,
// and after max_conns + 1 the acquire fails as "too many failed attempts"
// instead of as the node's fault, which runs a read again on another
// node. The mark is set in pgconn's AfterConnect of this connect's own
// copy of the configuration, which runs before any application hook sees
// the session. The copy also counts the node's answers on the session
// (countAnswers), over whatever hooks next set.
func startedAlive(next func(context.Context, *pgx.ConnConfig) error) func(context.Context, *pgx.ConnConfig) error {
	return func(ctx context.Context, cc *pgx.ConnConfig) error {
		start := time.Now().UnixNano()
		if next != nil {
			if err := next(ctx, cc); err != nil {
				return err
			}
		}
		countAnswers(&cc.Config) // over the hooks next left
		connected := cancelDials(&cc.Config)
		after := cc.AfterConnect
		cc.AfterConnect = func(ctx context.Context, pc *pgconn.PgConn) error {
			connected()
			pc.CustomData()[aliveKey] = start
			pc.CustomData()[startedKey] = start
			if after != nil {
				return after(ctx, pc)
			}
			return nil
		}
		return nil
	}
}

// inRotation reports whether s serves reads as a replica.
func (s *server) inRotation() bool { return EjectReason(s.ejected.Load()) == EjectNone }

// markDown takes n out of rotation at once after a connection failure seen
// by a query; the monitor readmits it after readmit_after good checks. A
// node last seen out of recovery keeps the writes until a check fails
// (see Router.chooseWriter): one that did not answer at all (connection
// refused, reset) is checked now, and so is one whose PgBouncer ended the
// session (bouncerEnded: "server login has been failing", "pgbouncer
// cannot connect to server"), which the server behind it did not answer
// either: the writes left a primary stopped behind its PgBouncer only at
// the next scheduled check (TestPgBouncerRefusalAsksForACheck). An error
// the server sent (too many connections) is an answer, left to the
// scheduled checks.
func (n *node) markDown(err error) {
	at := failedNow()
	n.queryFailed.Store(at)
	n.connFailed.Store(at)
	var connectErr *pgconn.ConnectError
	if errors.As(err, &connectErr) {
		n.dialFailed.Store(true)
	}
	// A node the monitor already ejected keeps its reason.
	n.rotationMu.Lock()
	if n.inRotation() {
		n.logRotation(EjectNone, EjectUnreachable, err)
		n.ejected.Store(uint32(EjectUnreachable))
	}
	n.rotationMu.Unlock()
	// A node already known down keeps the cause the checks found: the
	// calls that then fail (those its cut-off ended among them) say less.
	if n.reachable.Swap(false) {
		n.lastErr.Store(&err)
	}
	var answered *pgconn.PgError
	if !n.recovery.Load() && (!errors.As(err, &answered) || bouncerEnded(err)) {
		n.askCheck()
	}
}
