package routerlib

import (
	"context"
	"io"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
)

// An Option configures a [Router] in [Open] or [New].
type Option func(*options)

type options struct {
	zone         string
	logger       *slog.Logger
	tracer       Tracer
	password     func(ctx context.Context, node artifact.Node) (string, error)
	onReloadErr  func(error)
	poolConfig   func(node artifact.Node, cfg *pgxpool.Config)
	monitorCfg   func(node artifact.Node, cfg *pgx.ConnConfig)
	watch        time.Duration // 0: do not watch
	watchDefault bool          // WithWatch was not given
	keptTick     time.Duration // readConnsTick, but in tests

	conns *connRegistry // not an option: the Router's, for the nodes it builds
}

// DefaultWatchInterval is how often [Open] checks the router file for
// changes unless [WithWatch] says otherwise.
const DefaultWatchInterval = time.Second

func newOptions(opts []Option) options {
	o := options{watch: DefaultWatchInterval, watchDefault: true, keptTick: readConnsTick, conns: &connRegistry{}}
	for _, opt := range opts {
		opt(&o)
	}
	if o.logger == nil {
		o.logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return o
}

// WithZone sets the application's zone for the nearest_zone read policy:
// reads prefer replicas whose zone matches and use any healthy replica when
// none does. The zero value, "", matches no replica.
func WithZone(zone string) Option { return func(o *options) { o.zone = zone } }

// WithLogger sends the router's logs (ejections, readmissions, failover,
// reloads) to l. The default discards them. Passwords are never logged.
//
// Each change of a replica's read rotation is one record, with its "node"
// and what it "was" before: "routerlib: replica out of rotation" with the
// "reason" [Router.Stat] gives as Ejected (a warning; readmitting, when it
// answers again and waits for readmit_after good checks, is info), and
// "routerlib: replica in rotation" (info). So a replica going from lag to
// unreachable, then back, logs each step. The record is written before
// the change shows in Stat.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithTracer sends every routing decision to t. The default, nil, traces
// nothing and costs nothing.
func WithTracer(t Tracer) Option { return func(o *options) { o.tracer = t } }

// WithPasswordFunc sets the function that supplies a node's password. It is
// called before every new connection, so a rotated password takes effect
// without a restart. It takes precedence over the node's password_env; when
// it returns "", the password_env variable and the passfile still apply.
func WithPasswordFunc(f func(ctx context.Context, node artifact.Node) (string, error)) Option {
	return func(o *options) { o.password = f }
}

// WithOnReloadError calls f when the watched router file changed but could
// not be loaded (it does not parse or validate, or a pool cannot be built).
// The old configuration stays in force. The error is logged either way.
func WithOnReloadError(f func(error)) Option { return func(o *options) { o.onReloadErr = f } }

// WithPoolConfig lets the application adjust each node's [pgxpool.Config]
// (tracers, AfterConnect, type registration) before the pool is created.
// Fields the router sets itself (BeforeConnect, and default_transaction_read_only
// on replicas) should be left alone. On the primary's pool the router
// combines ConnConfig.Tracer with a tracer of its own (pgx's multitracer),
// which empties pgx's statement cache after a DISCARD ALL (see
// [Conn.Release]). A PrepareConn, BeforeAcquire or AfterRelease set here
// runs for every call, as with pgxpool alone: the router then keeps no
// connection between calls. Otherwise a replica keeps its connections
// between reads, and the primary between writes, for up to half a
// second (which saves pgxpool's acquire and release); a ConnConfig.Tracer
// that is a pgxpool AcquireTracer or ReleaseTracer is told only of the
// acquires and releases that reach pgxpool.
func WithPoolConfig(f func(node artifact.Node, cfg *pgxpool.Config)) Option {
	return func(o *options) { o.poolConfig = f }
}

// WithMonitorConfig lets the application adjust the connection the
// health monitor opens to each node, apart from the pools (a copy of the
// pool's ConnConfig after [WithPoolConfig]): its Database, User (and that
// user's Password) or RuntimeParams. It runs when the node is set up and
// again on each of the monitor's connections, after the password from
// [WithPasswordFunc] or the file's password_env is set, so a password it
// sets is the one the checks log in with. Its host, port, fallbacks,
// lookup and dial functions and connect timeout stay the pool's, so the
// checks always ask the server the calls go to. When the server refuses
// a user, password or database it set (SQLSTATE 28P01, 28000, 3D000),
// the error (New's, NodeStat.LastError, the log) names WithMonitorConfig
// and that user and database, not the router file's settings.
//
// Through PgBouncer in transaction pooling it is what keeps the checks
// apart from the application's transactions: PgBouncer pools server
// connections per database and user, and a check on the application's
// pool waits for one of its default_pool_size server connections. When
// the application's transactions hold them all (long reports, a batch
// job), the check waits behind them, and a wait past health.timeout is a
// node that does not answer: eject_after of them eject it and cut its
// calls off, which fails the long transactions on a healthy primary with
// [ErrMaybeCommitted]. Declare a PgBouncer database of the checks' own
// (its pool_size a few connections) for the same server, and point the
// monitor at it:
//
//	; pgbouncer.ini
//	[databases]
//	app_health = host=10.0.0.5 dbname=app pool_size=2
//
//	routerlib.WithMonitorConfig(func(_ artifact.Node, cfg *pgx.ConnConfig) {
//		cfg.Database = "app_health"
//	})
func WithMonitorConfig(f func(node artifact.Node, cfg *pgx.ConnConfig)) Option {
	return func(o *options) { o.monitorCfg = f }
}

// WithWatch sets how often the router file given to [Open] is checked for
// changes (its size, modification time, status-change time, which a chmod
// that makes it readable moves, and SHA-256). The default is
// [DefaultWatchInterval]; 0 turns watching off. [New] has no file and
// ignores it.
func WithWatch(interval time.Duration) Option {
	return func(o *options) { o.watch = interval; o.watchDefault = false }
}
