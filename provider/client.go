package provider

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/conninfo"
	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/guc"
	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/pgsql"
	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/statement"
)

// Bounds of every connection the provider opens, so that a server that
// accepts TCP and never answers fails a plan instead of hanging it.
const (
	// defaultConnectTimeout is connect_timeout, in seconds, when neither the
	// provider configuration nor PGCONNECT_TIMEOUT sets one. As in libpq it
	// bounds each host address tried, and 1 means 2.
	defaultConnectTimeout = 10
	// defaultStatementTimeout is the statement_timeout of the provider's
	// sessions unless the provider configuration sets one.
	defaultStatementTimeout = "5min"
)

// connSettings is the provider configuration after Terraform values were
// resolved. Empty fields fall back to libpq's environment variables (PGHOST,
// PGPORT, …) and defaults, because pgx parses the conninfo the way libpq does.
type connSettings struct {
	Host             string
	Port             int64
	Database         string
	Username         string
	Password         string
	SSLMode          string
	SSLRootCert      string
	SSLCert          string
	SSLKey           string
	ConnectTimeout   int64  // seconds; 0: PGCONNECT_TIMEOUT, then defaultConnectTimeout
	StatementTimeout string // a PostgreSQL time; "": defaultStatementTimeout
	MaxConnections   int64
}

// conninfo renders the settings as a libpq keyword/value string, without the
// password: the password is set on the parsed config, so it never sits in a
// string that an error message could echo.
func (s connSettings) conninfo(database string) string {
	var kv []string
	add := func(k, v string) {
		if v != "" {
			kv = append(kv, k+"="+conninfo.Quote(v))
		}
	}
	add("host", s.Host)
	if s.Port != 0 {
		add("port", fmt.Sprint(s.Port))
	}
	add("dbname", database)
	add("user", s.Username)
	add("sslmode", s.SSLMode)
	add("sslrootcert", s.SSLRootCert)
	add("sslcert", s.SSLCert)
	add("sslkey", s.SSLKey)
	add("connect_timeout", fmt.Sprint(s.connectTimeout()))
	add("application_name", "terraform-provider-pgreplication")
	return strings.Join(kv, " ")
}

// connectTimeout is the connect_timeout the provider's connections use, with
// libpq's rule that 1 second means 2.
func (s connSettings) connectTimeout() int64 {
	t := s.ConnectTimeout
	if t == 0 {
		if v, err := strconv.ParseInt(os.Getenv("PGCONNECT_TIMEOUT"), 10, 64); err == nil && v > 0 {
			t = v
		} else {
			t = defaultConnectTimeout
		}
	}
	return max(t, 2)
}

// statementTimeout is the statement_timeout of the provider's sessions.
func (s connSettings) statementTimeout() string {
	if s.StatementTimeout != "" {
		return s.StatementTimeout
	}
	return defaultStatementTimeout
}

// How long the provider's pools keep a session that no handler uses. Each
// is a session in a database that whoever acts on it next knows nothing
// of: kept for a minute, a DROP DATABASE without FORCE later in the same
// run (the destroy of a postgresql_database after the publications in it,
// a local-exec), which waits 5 s for other sessions to leave, failed with
// 55006 ("database … is being accessed by other users",
// TestAccPublication_probefixDestroyThenDropDatabase), as the publisher
// probe's did (publisherPoolIdle). A short idle time ends the sessions of
// whatever operation touched the database last, a Delete or an Update
// that moved an object elsewhere, without each handler knowing it was the
// last; closing a database's sessions after a Delete would miss the
// Update, and close sessions other handlers of the apply were about to
// take. A close goes through BeforeClose, so the place it held under the
// role's limits is freed only once its backend has exited (closeAndWait),
// and the pool's size (connectionCap, caps) is not read again. The cost:
// a handler that comes more than poolIdle after the last one connects
// again (a few milliseconds on a server that answers); the handlers of a
// plan or an apply come in bursts that share the connections.
const (
	// poolIdle is pgxpool's MaxConnIdleTime: 2 s, not the probe's 1 s,
	// so that a burst's gaps (Terraform walks the graph in waves) reuse
	// the sessions, and a session still ends within 3 s of its last use,
	// well within DROP DATABASE's 5 s.
	poolIdle = 2 * time.Second
	// poolIdleCheck is how often a pool looks for sessions idle for
	// poolIdle (pgxpool's HealthCheckPeriod, a minute by default).
	poolIdleCheck = poolIdle / 4
)

// statementGrace is how much longer than statement_timeout the provider
// waits for a statement: the server's own timeout fires first, with its own
// error; the provider only gives up on a server that cannot even do that.
const statementGrace = 10 * time.Second

// clientStatementBound is the client-side bound of each statement for a
// session whose statement_timeout is timeout (a PostgreSQL time); none when
// the timeout is off ("0").
func clientStatementBound(timeout string) time.Duration {
	ms, err := guc.Milliseconds(timeout)
	if err != nil || ms <= 0 {
		return 0
	}
	return time.Duration(ms)*time.Millisecond + statementGrace
}

// server is one provider instance's connection to one PostgreSQL server. It
// connects lazily, on the first query, so a provider whose host is only known
// after another resource is applied can still be planned. It keeps one pool per
// database it is asked for (almost always just the provider's database), and
// every resource of the instance shares them.
type server struct {
	settings connSettings
	// unknown is set when some setting was not known at plan time; the
	// server is then unusable until apply, and plan-time checks that need it
	// are skipped.
	unknown bool
	// unknownAttrs names the provider arguments that were unknown, for
	// the diagnostic that says so (unknownDiag).
	unknownAttrs []string
	// syncConfirmWait is the provider's (see pgreplicationProvider); zero
	// for syncConfirmTimeout.
	syncConfirmWait time.Duration

	mu    sync.Mutex // guards pools and facts
	pools map[string]*pgxpool.Pool
	facts *serverFacts

	// routerFiles are the router files this provider instance's
	// pgreplication_router_config resources claimed in this plan or apply.
	routerFiles *routerFileClaims
}

// serverFacts are what the provider needs to know about a server before it
// plans: things that cannot change without a restart.
type serverFacts struct {
	VersionNum int    // server_version_num, e.g. 170010
	Version    string // server_version, e.g. "17.10"
	WalLevel   string // wal_level: minimal, replica or logical (logical decoding needs logical)
}

// Major is the server's major version (15, 16, 17, …).
func (f serverFacts) Major() int { return f.VersionNum / 10000 }

func newServer(s connSettings) *server {
	return &server{settings: s, pools: map[string]*pgxpool.Pool{}, routerFiles: &routerFileClaims{m: map[string]routerFileClaim{}}}
}

// defaultDatabase is the database of the provider configuration (or libpq's default).
func (s *server) defaultDatabase() string {
	if s.settings.Database != "" {
		return s.settings.Database
	}
	cfg, err := pgxpool.ParseConfig(s.settings.conninfo(""))
	if err != nil {
		return "postgres"
	}
	return cfg.ConnConfig.Database
}

// Pool returns the pool for database ("" means the provider's database),
// creating it on first use.
func (s *server) Pool(ctx context.Context, database string) (*pgxpool.Pool, error) {
	if s.unknown {
		return nil, errConfigUnknown
	}
	if database == "" {
		database = s.settings.Database
	}
	s.mu.Lock()
	p, ok := s.pools[database]
	s.mu.Unlock()
	if ok {
		return p, nil
	}
	key := poolKey{conninfo: s.settings.conninfo(database), password: s.settings.Password, maxConns: s.maxConnections(),
		statementTimeout: s.settings.statementTimeout()}
	p, err := processPools.get(ctx, key, func() (*pgxpool.Pool, error) { return s.newPool(ctx, key, database) })
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.pools[database] = p
	s.mu.Unlock()
	return p, nil
}

// maxConnections is the provider's max_connections, or its default.
func (s *server) maxConnections() int32 {
	if s.settings.MaxConnections <= 0 {
		return defaultMaxConnections
	}
	return int32(s.settings.MaxConnections)
}

// newPool makes the pool of key, to database, with no more connections
// than the provider's role may open there (connectionCap): a pool larger
// than the role's CONNECTION LIMIT fails whichever handler asks for the
// connection past it, and Terraform runs the handlers of an apply
// concurrently, so the apply stopped halfway, some objects made and some
// not. The limits are read on the pool's own first connection: a separate
// connection to read them would count against the very limit it measures
// (a proxy or a role that allows one connection refuses the pool's). Only
// when they leave fewer connections than max_connections is the pool made
// again, smaller (pgxpool cannot shrink one), once the first session has
// ended on the server (closeAndWait). A server it cannot connect to fails
// here, with the connection's error, as the pool's first connection would
// have.
func (s *server) newPool(ctx context.Context, key poolKey, database string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(key.conninfo)
	if err != nil {
		return nil, fmt.Errorf("invalid connection settings: %w", err)
	}
	if cfg.ConnConfig, err = s.connConfig(database); err != nil {
		return nil, err
	}
	cfg.MaxConns = key.maxConns
	cfg.MinConns = 0
	cfg.MaxConnIdleTime = poolIdle
	cfg.HealthCheckPeriod = poolIdleCheck // when idle connections are closed
	// pgxpool pings a connection idle for over a second when it is
	// acquired; bounded like a connection, or a ping to a server that
	// stopped answering (a frozen host) waits as long as the handler,
	// which has no deadline.
	cfg.PingTimeout = time.Duration(s.settings.connectTimeout()) * time.Second
	// The pools of the role in every database share its CONNECTION LIMIT,
	// and so does the publisher probe's pool of the role on this server.
	// Their connections to database, of every role, the probe's among
	// them, share the database's CONNECTION LIMIT (dbRoom).
	room := processPools.roleRoom(roomKeyOf(cfg.ConnConfig))
	dbRoom := processPools.dbRoom(dbRoomKeyOf(cfg.ConnConfig))
	wait := roleRoomWait
	if bound := clientStatementBound(s.settings.statementTimeout()); bound > 0 {
		// Long enough for a place held by a statement the server never
		// answers (a frozen host) to be freed: the statement's bound, then
		// its connection's close (closeAndWait), and a second for admit to
		// see it. A wait of the bound alone ended first, the holder's
		// statement having started just before it, and told the user to
		// raise the role's CONNECTION LIMIT; the waiter now connects,
		// and its connection says the server did not answer
		// (TestAccProvider_roleRoomWaitOnFrozenServer).
		wait = bound + cfg.PingTimeout + time.Second
	}
	tracer := cfg.ConnConfig.Tracer
	for {
		var p *pgxpool.Pool // set before its first connection is made
		cfg.ConnConfig.Tracer = refusalTracer{QueryTracer: tracer, refused: func() { room.refused(p) }}
		// binds is whether a limit leaves the pool no more than its size.
		// Only then, or when the role's CONNECTION LIMIT holds its pools
		// (roleRoom), may a connection made after one closed be refused
		// for the closed one's session, which the server counts until its
		// backend exits; so only then does a close wait for that
		// (closeAndWait: on a server that stopped answering, up to
		// connect_timeout, the pool's connections together).
		var binds atomic.Bool
		cfg.BeforeConnect = func(ctx context.Context, _ *pgx.ConnConfig) error {
			return room.admit(ctx, p, wait, cfg.PingTimeout, s.describe(), s.role())
		}
		cfg.AfterConnect = func(ctx context.Context, c *pgx.Conn) error {
			unmeasured, unsized := room.connected(p)
			if !unmeasured && !unsized {
				return nil
			}
			// A pool kept for a database missing when it was made
			// (3D000), now created: its first connection that succeeds
			// measures the room, as newPool measures a pool's first.
			// Unmeasured, the room admitted one connection of the role
			// at a time, every other pool's waiting for this one's
			// statements (TestRoomMissingDatabaseCreatedLaterMeasuresTheRoom).
			// And it sizes the pool, which newPool could not: made at
			// max_connections, it opened connections past the database's
			// CONNECTION LIMIT, and the server refused one (53300,
			// TestRoom2MissingDatabaseCreatedLaterSizesThePool).
			if hook := beforeLimitsRead.Load(); hook != nil {
				(*hook)(database)
			}
			var limit int32
			var by connLimit
			var err error
			if unmeasured {
				limit, by, err = room.measure(ctx, p, c, cfg.PingTimeout)
			} else {
				mctx, cancel := context.WithTimeout(ctx, cfg.PingTimeout)
				var l connLimits
				l, err = connectionCap(mctx, c)
				limit, by = l.cap, l.by
				cancel()
			}
			if unsized {
				if err == nil {
					binds.Store(limit <= cfg.MaxConns)
				}
				room.sized(p, limit, by, err)
			}
			if err != nil {
				// pgxpool closes the connection without BeforeClose, and
				// without waiting for its session to end on the server,
				// which counts it against the role's CONNECTION LIMIT until
				// its backend exits: freed at once, the place went to the
				// role's next connection, and the server refused it (53300,
				// TestRoomfixFailedLimitsReadHoldsThePlaceUntilTheBackendExits).
				room.closeHeld(p, c, cfg.PingTimeout)
				if ctx.Err() != nil {
					return err
				}
				return s.limitsUnanswered(database, err)
			}
			return nil
		}
		cfg.BeforeClose = func(c *pgx.Conn) {
			room.ending(p)
			if binds.Load() || room.limited(p) {
				closeAndWait(c, cfg.PingTimeout)
			}
			room.ended(p)
		}
		p, err = pgxpool.NewWithConfig(ctx, cfg)
		if err != nil {
			return nil, fmt.Errorf("cannot create a connection pool for database %q: %w", database, err)
		}
		room.add(p, dbRoom)
		first, err := p.Acquire(ctx)
		if hook := afterFirstAcquire.Load(); hook != nil {
			(*hook)(database)
		}
		switch {
		case isMissingDatabase(err):
			// The handler decides what a database that is gone means.
			// The pool is sized by its first connection that succeeds,
			// once the database exists (AfterConnect).
			room.unsized(p)
			room.firstOver(ctx, p, nil)
			return p, nil
		case err != nil:
			room.firstOver(ctx, p, err)
			if ctx.Err() != nil {
				// The caller gave up: its connection, abandoned while
				// starting, holds its place until the backend exits
				// (startingConn), for up to what is left of
				// connect_timeout on a server that stopped answering, and
				// Close waits for it; the caller does not (the pool is
				// nobody's: poolSet.get keeps no pool that failed).
				go func() {
					p.Close()
					room.remove(p)
				}()
				return nil, err
			}
			p.Close()
			room.remove(p)
			return nil, err
		}
		limit, _, err := room.measure(ctx, p, first.Conn(), cfg.PingTimeout)
		if err != nil {
			// The first connection failed after all, as one the server
			// never answered does: the pool is not kept, and the next
			// Pool makes it again and measures the room. Its session is
			// closed here, as the smaller pool's below: released, the
			// pool's Close waited for pgconn's own close of it, 15 s on a
			// server that does not answer.
			room.closeHeld(p, first.Hijack(), cfg.PingTimeout)
			room.firstOver(ctx, p, err)
			p.Close()
			room.remove(p)
			if ctx.Err() != nil {
				return nil, err
			}
			return nil, s.limitsUnanswered(database, err)
		}
		binds.Store(limit <= cfg.MaxConns)
		if limit >= cfg.MaxConns {
			first.Release()
			return p, nil
		}
		// The smaller pool's first connection must not be refused for
		// this session, which the server counts until its backend exits.
		room.closeHeld(p, first.Hijack(), cfg.PingTimeout)
		p.Close()
		room.remove(p)
		cfg.MaxConns = limit
	}
}

// refusalTracer is a pool's tracer (QueryTracer), that also tells the
// pool's room when the server refused one of its connections for too
// many connections (roleRoom.refused).
type refusalTracer struct {
	pgx.QueryTracer
	refused func()
}

func (t refusalTracer) TraceConnectStart(ctx context.Context, _ pgx.TraceConnectStartData) context.Context {
	return ctx
}

func (t refusalTracer) TraceConnectEnd(_ context.Context, data pgx.TraceConnectEndData) {
	if tooManyConnections(data.Err) {
		t.refused()
	}
}

// tooManyConnections is whether err is the server's refusal of a
// connection past max_connections or a CONNECTION LIMIT (53300).
func tooManyConnections(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "53300"
}

// limitsCancelled is whether err is the server's cancel of a statement:
// statement_timeout or pg_cancel_backend (57014), lock_timeout (55P03).
func limitsCancelled(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "57014" || pgErr.Code == "55P03")
}

// limitsUnanswered is the error of a connection to database that the
// server stopped answering, or ended, or whose statement it cancelled,
// while the provider read its role's limits on it (connectionCap's err):
// the read's bare error ("context deadline exceeded") named neither the
// server nor what to do.
func (s *server) limitsUnanswered(database string, err error) error {
	if limitsCancelled(err) {
		return fmt.Errorf("%s cancelled the provider's read of its role's connection limits in database %q (%w): it ran past the provider's "+
			"statement_timeout (%s) or the role's lock_timeout, or was cancelled by hand; something holds the catalogs it reads (pg_database, "+
			"pg_authid) or the server is overloaded. Nothing was changed: try again once the server answers faster, or raise statement_timeout",
			s.describe(), database, err, s.settings.statementTimeout())
	}
	return fmt.Errorf("%s did not answer the provider's connection to database %q: it stopped answering, or ended the session, "+
		"while the provider read its role's connection limits there (%w). Nothing was changed: check that server (a frozen host, a restart, "+
		"a network cut) and try again once it answers", s.describe(), database, err)
}

// connectionCap reads the limits on the connections of conn's role to its
// database (connLimits): what the role's and the database's CONNECTION
// LIMIT leave (superusers are not held to them) and, for a role that is not
// a superuser, what max_connections leaves past the slots reserved for
// superusers. The publisher probe reads them too (publisherPool.spare),
// for superusers as well, so that its sessions leave the places the
// provider counts on. err is the read's when it did not get the server's
// answer: conn lost, the server not answering within the statement's
// bound, or ctx done, or the server cancelling the read (statement_timeout,
// lock_timeout: limitsCancelled); the limits are then not known, not
// absent.
func connectionCap(ctx context.Context, conn *pgx.Conn) (connLimits, error) {
	// Sessions are counted as PostgreSQL counts them for its limits:
	// client backends, conn among them. WAL senders (replication
	// connections, physical or logical) neither count nor are refused, on
	// 15.18, 16.14, 17.10 and 18.4 (pool_walsender_limit_test.go); nor do
	// background workers: a subscription's apply worker running as the
	// role left its LIMIT 2 to two client connections on 16.14, 17.10 and
	// 18.4 (its backend_type is 'logical replication worker' on 16,
	// 'logical replication apply worker' since 17, never 'background
	// worker'), and CountUserBackends skips them in every version.
	//
	// A role without pg_read_all_stats is shown no other role's
	// backend_type (null): counting 'client backend' alone, it found 4
	// places where other roles' sessions left 2, and the server refused
	// the pool's 3rd and 4th connections (53300,
	// TestProbefixConnectionCapCountsOtherRolesSessions). Such a row counts
	// when it has a role and a database, which autovacuum workers, the
	// checkpointer and a physical WAL sender have not, unless its pid is a
	// WAL sender's (pg_stat_replication: a logical one has both) or a
	// subscription worker's (pg_stat_subscription), which every role is
	// shown; the counts then match the ones a role with pg_read_all_stats
	// reads (TestRoomConnectionCapSameWithoutReadAllStats). A parallel
	// query worker or another background worker of another role in a
	// database still counts: the pool may be made smaller than it could,
	// never larger.
	//
	// The database's count adds its autovacuum workers (no role; a role
	// without pg_read_all_stats sees no backend_type either): the server
	// counts them against the database's CONNECTION LIMIT, though not
	// against max_connections or a role's, before PostgreSQL 18 at least.
	// Uncounted, one working on the database let the room admit a
	// connection the server then refused (53300, "too many connections
	// for database": TestDblimitProbeOfAnotherRoleSharesTheDatabaseLimit,
	// 13 of 15 probes in one run of nine). Counting them where the server
	// would not only makes a connection wait for the worker to finish.
	const sql = `WITH counted AS (
SELECT a.usesysid, a.datid FROM pg_stat_activity a
 WHERE a.backend_type = 'client backend'
    OR a.backend_type IS NULL AND a.usesysid IS NOT NULL AND a.datid IS NOT NULL
       AND a.pid NOT IN (SELECT w.pid FROM pg_stat_replication w)
       AND a.pid NOT IN (SELECT s.pid FROM pg_stat_subscription s WHERE s.pid IS NOT NULL))
SELECT r.rolsuper, r.rolconnlimit, d.datconnlimit,
       (SELECT count(*) FROM counted a WHERE a.usesysid = r.oid),
       (SELECT count(*) FROM counted a WHERE a.datid = d.oid)
         + (SELECT count(*) FROM pg_stat_activity v WHERE v.datid = d.oid AND v.usesysid IS NULL
              AND (v.backend_type = 'autovacuum worker' OR v.backend_type IS NULL)),
       (SELECT count(*) FROM counted),
       current_setting('max_connections')::int - current_setting('superuser_reserved_connections')::int
         - coalesce(nullif(current_setting('reserved_connections', true), '')::int, 0)
  FROM pg_roles r, pg_database d
 WHERE r.rolname = current_user AND d.datname = current_database()`
	var (
		super                                 bool
		roleLimit, dbLimit                    int64
		roleSessions, dbSessions, allSessions int64
		serverLimit                           int64
	)
	if err := conn.QueryRow(ctx, sql, pgx.QueryExecModeSimpleProtocol).Scan(&super, &roleLimit, &dbLimit, &roleSessions, &dbSessions, &allSessions, &serverLimit); err != nil {
		if conn.IsClosed() || ctx.Err() != nil || limitsCancelled(err) {
			return connLimits{}, err
		}
		// The limits are an optimisation of the pool's size, never a
		// reason to fail: a role that cannot read them keeps its pool.
		// A read the server cancelled is not that: taken for a role
		// without limits, the room let the role's pools open past its
		// CONNECTION LIMIT (53300,
		// TestRoomfixCancelledLimitsReadIsNotUnlimited).
		return connLimits{cap: math.MaxInt32, by: noConnLimit, roleFree: -1, dbFree: -1, serverFree: -1}, nil
	}
	// conn is one of the sessions counted, and one the pool may keep.
	l := connLimits{by: noConnLimit, super: super, roleFree: -1, dbFree: -1, serverFree: max(serverLimit-allSessions, 0)}
	if dbLimit >= 0 {
		// Whoever reads it: the database's places are shared by every
		// role's sessions there (dbRoom), a superuser's counted too.
		l.dbFree = max(dbLimit-dbSessions, 0)
	}
	capped := int64(math.MaxInt32)
	tighter := func(n int64, by connLimit) {
		if n < capped {
			capped, l.by = n, by
		}
	}
	if !super {
		l.held = roleLimit >= 0 || dbLimit >= 0
		if roleLimit >= 0 {
			l.roleFree = max(roleLimit-roleSessions, 0)
			tighter(roleLimit-roleSessions+1, roleConnLimit)
		}
		if dbLimit >= 0 {
			tighter(dbLimit-dbSessions+1, databaseConnLimit)
		}
		tighter(serverLimit-allSessions+1, serverConnLimit)
	}
	l.cap = int32(max(capped, 1))
	return l, nil
}

// connLimits is what connectionCap read of the limits on a role's
// connections to a database.
type connLimits struct {
	// cap is the most connections the role may open to the database, the
	// connection that read it included: at least 1, and math.MaxInt32
	// when nothing limits the role.
	cap int32
	by  connLimit // the limit that leaves cap
	// roleFree is what the role's CONNECTION LIMIT leaves beyond its
	// sessions now, the reading one among them; -1 when it does not hold
	// the role (none, or a superuser).
	roleFree int64
	// dbFree is what the database's CONNECTION LIMIT leaves beyond the
	// sessions in it now, of every role, the reading one among them; -1
	// when the database has none. A superuser is not refused for it, but
	// its sessions are counted.
	dbFree int64
	// super is whether the role is a superuser, which neither CONNECTION
	// LIMIT holds.
	super bool
	// held is whether the role's or the database's CONNECTION LIMIT holds
	// the role (it is not a superuser).
	held bool
	// serverFree is the places max_connections, less its reserved
	// connections, leaves beyond the sessions now, the reading one among
	// them, for a superuser too; -1 when the limits could not be read.
	serverFree int64
}

// connLimit is which of the limits connectionCap reads leaves the fewest
// connections, for a message that names it and says how to raise it.
type connLimit int

const (
	noConnLimit       connLimit = iota
	roleConnLimit               // the role's CONNECTION LIMIT
	databaseConnLimit           // the database's CONNECTION LIMIT
	serverConnLimit             // max_connections, less the reserved connections
)

// closeAndWait ends conn's session and waits, at most timeout, until the
// server has ended it too: PostgreSQL counts a session against the
// connection limits until its backend has exited, and the backend keeps the
// socket open until then so that a client can wait for that ("synchronous
// close", in PostgreSQL's socket_close). pgx's Close does not wait: it
// sends Terminate and closes the socket.
func closeAndWait(conn *pgx.Conn, timeout time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	defer conn.Close(ctx)
	// SyncConn stops pgconn's reads, so that the socket is read here only.
	if conn.PgConn().SyncConn(ctx) != nil {
		return
	}
	nc := conn.PgConn().Conn()
	terminate, err := (&pgproto3.Terminate{}).Encode(nil)
	if err != nil {
		return
	}
	if _, err := nc.Write(terminate); err != nil {
		return
	}
	_ = nc.SetReadDeadline(time.Now().Add(timeout))
	_, _ = io.Copy(io.Discard, nc) // until the server closes it: its backend has exited
}

// roleRoomWait bounds the wait for a place under the role's CONNECTION
// LIMIT when the provider's statement_timeout is off.
const roleRoomWait = 30 * time.Minute

// roleRoom is the places that the CONNECTION LIMIT of one role on one
// server leaves the process's pools of that role, in every database, the
// publisher probe's among them (roomKey): each pool is sized alone
// (connectionCap), so together they could open more, the server refused
// one (53300) and the apply stopped halfway. A
// connection is made only when a place is free (admit); one waiting for a
// place closes the idle connections of the role's pools. Places are
// counted as the server counts sessions: from admission until the session
// has ended on the server (closeAndWait), so that a place freed is never
// refused for the session that held it.
type roleRoom struct {
	mu sync.Mutex // guards the fields below
	places
	pools map[*pgxpool.Pool]bool
	// failed is the timeout of a first connection while the room was not
	// measured, at failedAt: the connections that waited for it fail with
	// it, as they would have one by one (firstOver).
	failed   error
	failedAt time.Time
	// firsts are the pools whose first connection newPool is making
	// (add), until it tells its outcome (connected, firstOver).
	firsts map[*pgxpool.Pool]bool
	// firstOut is the pool of firsts whose connection was admitted alone
	// while the room was not measured, until its outcome is told. The
	// failure frees its place before newPool can record it (firstOver),
	// and a connection admitted in between waited connect_timeout again
	// on a server that had just not answered (4 s for 2 s in CI). Only
	// newPool's first connections: a later one of a pool kept for a
	// missing database fails at once and tells nobody, and held the next
	// one back (review3).
	firstOut *pgxpool.Pool
	// caps are the pools that newPool kept for a database missing then
	// (3D000), so could not size by the limits on their first connection:
	// 0 until their first connection that succeeds reads them, -1 while it
	// does (admit makes one connection of such a pool at a time), then the
	// most connections the pool may have (connectionCap). Replacing the
	// pool by a smaller one instead would close it under the handlers that
	// hold it.
	caps map[*pgxpool.Pool]int32
	// capBy is the limit each cap of caps comes from (connectionCap's by),
	// for admit's error when a connection waited past its bound.
	capBy map[*pgxpool.Pool]connLimit
	// made are the connections of the pools of caps made whose sessions
	// have not ended (connected, ended). pgxpool's count leaves out one
	// whose AfterConnect has returned but is not yet the pool's, and one
	// taken from it to be closed whose session the server still counts.
	made map[*pgxpool.Pool]int64
	// dbs is the room of each pool's database (dbRoom), where its
	// connections take a place too, after the role's.
	dbs map[*pgxpool.Pool]*dbRoom
	// super is whether the role is a superuser (measured), whom a
	// database's CONNECTION LIMIT does not refuse: its connections take
	// a database's place without waiting for one.
	super bool
	// rechecking is whether a recheck of the room runs.
	rechecking bool
}

// afterFirstAcquire, when set (by tests), runs between the first Acquire of
// a new pool to a database and newPool's handling of its outcome.
var afterFirstAcquire atomic.Pointer[func(database string)]

// beforeLimitsRead, when set (by tests), runs in a connection's
// AfterConnect before it reads the role's limits (measure, connectionCap).
var beforeLimitsRead atomic.Pointer[func(database string)]

// afterLimitsRead, when set (by tests), runs in roleRoom.measure after the
// server answered connectionCap and before the rooms are set from it.
var afterLimitsRead atomic.Pointer[func(database string)]

// admitHeldBack, when set (by tests), runs each time admit holds back a
// connection of role to database for a place, before it waits for one
// (once per round of its wait): how a test tells that connections did
// not wait for each other without a wall-clock bound, which a loaded
// machine's slow connections broke.
var admitHeldBack atomic.Pointer[func(role, database string)]

// roomKey is a role on a server, the key of its roleRoom: every host and
// port its connections may reach, sorted, and the role. In the order they
// are tried, a provider's host list and a subscription's naming the same
// servers in another order (host=a,b and host=b,a, both reaching the one
// that answers) were two rooms, and the server refused the probe (53300,
// TestReview14RoomKeyHostOrder). Nothing else of the connection string
// is in it: the provider's pools (newPool) and the publisher probe's
// (publisherPoolSet.get) name
// one server with different settings (sslmode, connect_timeout, the
// database), and keyed by the whole string without the database, the
// probe's connections were counted in no room, so the two together
// opened more than the role's CONNECTION LIMIT allows, and the server
// refused the probe (53300, TestProberoomProbeSharesTheRoleRoom). The
// loopback names of a port (localhost, 127.0.0.1, ::1) are one server: a
// provider configured with host = "localhost" and a subscription's
// conninfo with host=127.0.0.1 were two rooms, and the server refused the
// probe (53300, TestDblimitLocalhostAndLoopbackAddressShareTheRoom).
// Other names of one server (a DNS name and its address, a socket
// directory) are still rooms apart: an address says nothing of which
// server answers there (a name may resolve to several, a proxy or a
// standby may sit behind one), and what the server says of itself is
// known only once connected, after its connection was admitted in a room.
type roomKey struct{ servers, role string }

// roomKeyOf is the roomKey of cfg's connections.
func roomKeyOf(cfg *pgx.ConnConfig) roomKey {
	var servers []string
	for _, c := range append([]*pgconn.FallbackConfig{{Host: cfg.Host, Port: cfg.Port}}, cfg.Fallbacks...) {
		host := c.Host
		if ip := net.ParseIP(host); host == "localhost" || ip.Equal(net.IPv4(127, 0, 0, 1)) || ip.Equal(net.IPv6loopback) {
			// One postmaster listens on both loopback addresses of its
			// port (listen_addresses = 'localhost'), and another cannot
			// take that port on either while it does. Not every address
			// of 127.0.0.0/8: keyed as localhost too, a postmaster on
			// 127.0.0.2 and another on 127.0.0.1, at one port, shared a
			// room, each limit counting the other's sessions
			// (TestRoomsOtherLoopbackAddressIsAnotherServer).
			host = "localhost"
		}
		// pgconn makes a fallback of each address with and without TLS.
		if a := net.JoinHostPort(host, strconv.Itoa(int(c.Port))); !slices.Contains(servers, a) {
			servers = append(servers, a)
		}
	}
	slices.Sort(servers)
	return roomKey{servers: strings.Join(servers, ","), role: cfg.User}
}

// dbRoomKey is a database on a server, the key of its dbRoom: the servers
// of roomKey, and the database.
type dbRoomKey struct{ servers, database string }

// dbRoomKeyOf is the dbRoomKey of cfg's connections.
func dbRoomKeyOf(cfg *pgx.ConnConfig) dbRoomKey {
	return dbRoomKey{servers: roomKeyOf(cfg).servers, database: cfg.Database}
}

// roleRoom is the room of key's role on its server.
func (ps *poolSet) roleRoom(key roomKey) *roleRoom {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	r, ok := ps.rooms[key]
	if !ok {
		r = &roleRoom{places: newPlaces(), pools: map[*pgxpool.Pool]bool{},
			firsts: map[*pgxpool.Pool]bool{}, caps: map[*pgxpool.Pool]int32{}, capBy: map[*pgxpool.Pool]connLimit{}, made: map[*pgxpool.Pool]int64{},
			dbs: map[*pgxpool.Pool]*dbRoom{}}
		ps.rooms[key] = r
	}
	return r
}

// dbRoom is the room of key's database on its server.
func (ps *poolSet) dbRoom(key dbRoomKey) *dbRoom {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	d, ok := ps.dbRooms[key]
	if !ok {
		d = &dbRoom{places: newPlaces(), pools: map[*pgxpool.Pool]*roleRoom{}}
		ps.dbRooms[key] = d
	}
	return d
}

// add adds p, a pool newPool makes, before its first connection
// (firsts), whose connections take a place in db too (nil: none).
func (r *roleRoom) add(p *pgxpool.Pool, db *dbRoom) {
	r.mu.Lock()
	r.pools[p] = true
	r.firsts[p] = true
	r.inDatabase(p, db)
	r.mu.Unlock()
}

// inDatabase records db as the room of p's database; r.mu is held.
func (r *roleRoom) inDatabase(p *pgxpool.Pool, db *dbRoom) {
	if db == nil {
		return
	}
	r.dbs[p] = db
	db.mu.Lock()
	db.pools[p] = r
	db.mu.Unlock()
}

// join adds p, a publisher probe's pool of the room's role and server
// (publisherPoolSet.get), whose connections the room admits: its idle
// connections are closed for a connection that waits, as the provider's
// pools' are. Unlike newPool's pools it has no first connection of its own
// that measures the room: any of its connections measures it while it is
// not measured (connected).
func (r *roleRoom) join(p *pgxpool.Pool, db *dbRoom) {
	r.mu.Lock()
	r.pools[p] = true
	r.inDatabase(p, db)
	r.mu.Unlock()
}

// stillWaiting is admit's error for a connection of p that waits for a
// place after its caller gave up at wait (the publisher probe's bound,
// which admit's own ends with): without it, the caller's error said the
// server did not answer. nil when no connection of p waits.
func (r *roleRoom) stillWaiting(p *pgxpool.Pool, wait time.Duration, server, role string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.waiting[p] == 0 {
		return nil
	}
	if db := r.dbs[p]; db.full() {
		return roomWaitError(databaseConnLimit, db.size(), role, p.Config().ConnConfig.Database, server, wait)
	}
	return roomWaitError(roleConnLimit, r.room, role, p.Config().ConnConfig.Database, server, wait)
}

func (r *roleRoom) remove(p *pgxpool.Pool) {
	r.mu.Lock()
	delete(r.pools, p)
	delete(r.pending, p)
	delete(r.waiting, p)
	delete(r.firsts, p)
	delete(r.caps, p)
	delete(r.capBy, p)
	delete(r.made, p)
	r.dbs[p].remove(p)
	delete(r.dbs, p)
	if r.firstOut == p {
		r.firstOut = nil
	}
	r.mu.Unlock()
}

// unsized marks p, kept for a database missing when newPool made it, as
// not sized yet (caps).
func (r *roleRoom) unsized(p *pgxpool.Pool) {
	r.mu.Lock()
	r.caps[p] = 0
	r.mu.Unlock()
}

// sized sets the cap of p, an unsized pool, to limit, read on its first
// connection that succeeded, which the limit by leaves; when the read
// failed (err), p is unsized again and its next connection reads it.
func (r *roleRoom) sized(p *pgxpool.Pool, limit int32, by connLimit, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.caps[p]; !ok {
		return // removed
	}
	if err != nil {
		limit = 0
	}
	r.caps[p], r.capBy[p] = limit, by
}

// fits is whether p may have one more connection under its cap (caps):
// its connections made (made), and those admitted and being made, are
// fewer.
func (r *roleRoom) fits(p *pgxpool.Pool) bool {
	limit, ok := r.caps[p]
	switch {
	case !ok:
		return true
	case limit < 0:
		return false
	}
	return r.made[p]+r.pending[p] < max(int64(limit), 1)
}

// admit waits, at most wait, for a place for a connection of p; it closes
// the role's idle connections (each within timeout) while it waits. server
// and role name them in its error. It stops waiting when ctx is done:
// pgxpool's connect context, done when p is closed (not when the Acquire
// that asked for the connection is cancelled: that one returns at once).
// newPool closes a pool whose first Acquire was cancelled, and Close waits
// for the connection being made: waiting on, a handler that Terraform
// cancelled waited for a place for as long as the statement that held it
// (TestRoomCancelledWhileWaitingForAPlace).
func (r *roleRoom) admit(ctx context.Context, p *pgxpool.Pool, wait, timeout time.Duration, server, role string) error {
	began := time.Now()
	deadline := began.Add(wait)
	// When a limit read on the server holds the connection back, the
	// limits are read again (recheck): after each roomRecheck, once more
	// before it gives up, and at once on the role's first connection held
	// back by its database's room (a superuser passes it).
	nextCheck := began.Add(roomRecheck)
	firstChecked, lastChecked := false, false
	r.mu.Lock()
	db := r.dbs[p]
	r.waiting[p]++
	db.wait(p, 1)
	leave := func() {
		r.waiting[p]--
		db.wait(p, -1)
	}
	for {
		r.trim()
		if !r.measured && r.failed != nil && r.failedAt.After(began) {
			leave()
			err := &roomUnansweredError{r.failed}
			r.mu.Unlock()
			return err
		}
		// Before the room is measured, on the first connection of the
		// role's first pool, it admits that connection alone: pools made
		// at once in several databases were each admitted their first
		// connection, more than the limit allowed, and the server refused
		// one (53300).
		// A pool kept for a database missing when it was made has its
		// own cap too (caps): only its own idle connections are closed
		// when that holds the connection back.
		placed := !r.measured && r.held+r.admitted() == 0 && r.firstOut == nil || r.measured && (r.room < 0 || r.held+r.admitted() < r.room)
		fits := r.fits(p)
		// Then a place of the database's CONNECTION LIMIT, which the
		// process's connections of every role there share (dbRoom), and
		// takes it (with the role's below, under r.mu).
		if placed && fits && db.take(p, r.measured && r.super) {
			if !r.measured && r.firsts[p] {
				r.firstOut = p
			}
			r.waiting[p]--
			r.pending[p]++
			r.mu.Unlock()
			return nil
		}
		if err := ctx.Err(); err != nil {
			leave()
			r.mu.Unlock()
			return err
		}
		now := time.Now()
		// Not while a connection of the role is being made: the recheck's
		// session could take the place it was admitted to.
		if byLimit := fits && (placed || r.measured); byLimit && r.admitted() == 0 {
			check := false
			switch {
			case placed && !r.measured:
				check, firstChecked = !firstChecked, true
			case now.After(deadline):
				check, lastChecked = !lastChecked, true
			default:
				check = now.After(nextCheck)
			}
			if check {
				r.mu.Unlock()
				ran := r.recheck(ctx, p, timeout)
				r.mu.Lock()
				if ran {
					nextCheck = time.Now().Add(roomRecheck)
					continue
				}
			}
		}
		if now.After(deadline) {
			leave()
			// Held back by its pool's cap, the connection waits for one
			// of its own pool's, whichever else is full: the cap's limit is
			// the one reached. Otherwise the role's room is, or, the
			// role's place found, the database's.
			n, by := r.room, roleConnLimit
			switch {
			case !fits:
				n, by = int64(r.caps[p]), r.capBy[p]
			case placed:
				n, by = db.size(), databaseConnLimit
			}
			r.mu.Unlock()
			return roomWaitError(by, n, role, p.Config().ConnConfig.Database, server, wait)
		}
		// Held back by its pool's cap, with the room full or not, only
		// its own pool's idle connections free what it waits for: closing
		// the role's other pools' too freed places it could not take, and
		// those pools made their connections again
		// (TestReview7CappedAndRoomFullClosesOnlyItsPoolsIdle). Held
		// back by the database's room, the idle connections of every
		// role's pools in that database free it, each through its own
		// role's room.
		var pools map[*pgxpool.Pool]*roleRoom
		switch {
		case !fits:
			pools = map[*pgxpool.Pool]*roleRoom{p: r}
		case placed:
			pools = db.members()
		default:
			pools = make(map[*pgxpool.Pool]*roleRoom, len(r.pools))
			for q := range r.pools {
				pools[q] = r
			}
		}
		r.mu.Unlock()
		if hook := admitHeldBack.Load(); hook != nil {
			(*hook)(p.Config().ConnConfig.User, p.Config().ConnConfig.Database)
		}
		// Together: each close waits for its session to end, up to
		// timeout on a server that stopped answering, and one after the
		// other they kept the waiting connection n times that
		// (TestRoomfixFrozenServerIdleConnectionsCloseTogether).
		var closes sync.WaitGroup
		closed := 0
		for q, room := range pools {
			for _, c := range q.AcquireAllIdle(context.Background()) {
				// Hijacked, its pool forgets it without BeforeClose.
				conn := c.Hijack()
				closes.Go(func() { room.closeHeld(q, conn, timeout) })
				closed++
			}
		}
		closes.Wait()
		if closed == 0 {
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
		r.mu.Lock()
	}
}

// roomWaitError is admit's error for a connection of role to database on
// server that waited wait for a place under the limit by, which leaves
// the provider n connections (its role's room, or its pool's cap), and got
// none: the provider's own operations held them all that long. It names
// the limit, and how to raise it; running fewer operations at once needs
// no superuser. Lowering the provider's max_connections, which it said
// before, shortens no wait.
func roomWaitError(by connLimit, n int64, role, database, server string, wait time.Duration) error {
	var limit, raise string
	switch by {
	case databaseConnLimit:
		limit = fmt.Sprintf("the CONNECTION LIMIT of database %s", pgsql.Ident(database))
		raise = fmt.Sprintf("ALTER DATABASE %s CONNECTION LIMIT …", pgsql.Ident(database))
	case serverConnLimit:
		limit = "the server's max_connections (less its reserved connections)"
		raise = "ALTER SYSTEM SET max_connections = …, then restart the server"
	default:
		limit = fmt.Sprintf("the CONNECTION LIMIT of the provider's role %s", pgsql.Ident(role))
		raise = fmt.Sprintf("ALTER ROLE %s CONNECTION LIMIT …, as a superuser", pgsql.Ident(role))
	}
	n = max(n, 1)
	return fmt.Errorf("a connection of the provider's role %s to database %q on %s waited %s for a place and got none: %s leaves the provider %d "+
		"connections there (what it allows, less the other sessions there, as the provider last read them), and the provider's own "+
		"operations held them all that long. "+
		"Raise that limit (%s), close the other sessions, or run fewer operations at once (terraform apply -parallelism=%d or lower), "+
		"then apply again: what this apply already did is in the state",
		pgsql.Ident(role), database, server, wait, limit, n, raise, n)
}

// firstOver tells the outcome of p's first connection, made by newPool
// for a caller whose context is ctx: err, when the server did not answer
// it (a timeout) before the room was measured, is recorded, and the
// connections waiting for that one to be admitted in turn fail with it,
// where each would have waited connect_timeout for the same server. A
// caller's own deadline or cancel says nothing of the server: recorded,
// it failed the role's waiting connections at once ("not tried: the
// server did not answer"), the server healthy and answering within
// connect_timeout (TestRoomfixCallersDeadlineIsNotTheServersSilence).
func (r *roleRoom) firstOver(ctx context.Context, p *pgxpool.Pool, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.firsts, p)
	if r.firstOut == p {
		r.firstOut = nil
	}
	if err == nil || ctx.Err() != nil || !pgconn.Timeout(err) && !errors.Is(err, context.DeadlineExceeded) {
		return
	}
	if !r.measured {
		r.failed, r.failedAt = err, time.Now()
	}
}

// roomUnansweredError is a connection not tried because the server did not
// answer the role's connection that was admitted before it (firstOver).
// It unwraps to that connection's error, so that its kind (not accepted,
// or accepted and not answered) is told the same; its text leaves out
// that connection's database, which is not this one's.
type roomUnansweredError struct{ cause error }

func (e *roomUnansweredError) Error() string {
	return "not tried: the server did not answer the role's connection made just before this one within connect_timeout"
}

func (e *roomUnansweredError) Unwrap() error { return e.cause }

// places are the count of a room's places (roleRoom, dbRoom), guarded by
// the room's mu.
type places struct {
	room     int64                   // the places; -1 while not measured, or not limited
	measured bool                    // room was measured: before, one connection is made at a time
	stale    bool                    // a connection was refused since (refused): the next one made measures again
	held     int64                   // connections made whose sessions have not ended
	closing  int64                   // of held, those being closed: their sessions may have ended on the server
	pending  map[*pgxpool.Pool]int64 // connections being made, admitted
	waiting  map[*pgxpool.Pool]int64 // connections being made, waiting in admit
}

func newPlaces() places {
	return places{room: -1, pending: map[*pgxpool.Pool]int64{}, waiting: map[*pgxpool.Pool]int64{}}
}

// shrink makes a measured room no larger than the places held, and stale
// (refused).
func (r *places) shrink() {
	if !r.measured {
		return
	}
	if r.room < 0 || r.room > r.held {
		r.room = r.held
	}
	r.stale = true
}

// admitted is the connections being made that hold a place.
func (r *places) admitted() int64 {
	var n int64
	for _, k := range r.pending {
		n += k
	}
	return n
}

// trim frees the places of connections that failed to be made: pgxpool
// says how many of a pool's connections are still being made, and those
// waiting in admit hold none.
func (r *places) trim() {
	for q, k := range r.pending {
		if making := int64(q.Stat().ConstructingConns()) - r.waiting[q]; k > making {
			r.pending[q] = max(making, 0)
		}
	}
}

// connected counts a connection of p made: its place, and its place in
// its database's room, are held until its session ends. unmeasured is
// whether the rooms are to be measured on it: the role's or the
// database's is not measured yet, and the connection is not newPool's
// first of p, which newPool measures itself (it sizes p from it). unsized is whether
// p is to be sized on it (caps): p is marked as being sized until sized
// says how.
func (r *roleRoom) connected(p *pgxpool.Pool) (unmeasured, unsized bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	dbUnmeasured := r.dbs[p].connected(p)
	unmeasured = (!r.measured || r.stale || dbUnmeasured) && !r.firsts[p]
	if limit, ok := r.caps[p]; ok {
		r.made[p]++
		if limit == 0 {
			unsized = true
			r.caps[p] = -1
		}
	}
	if r.pending[p] > 0 {
		r.pending[p]--
	}
	delete(r.firsts, p)
	if r.firstOut == p {
		r.firstOut = nil
	}
	r.held++
	return unmeasured, unsized
}

// limited is whether the role's CONNECTION LIMIT holds its pools, or its
// database's holds p (measured).
func (r *roleRoom) limited(p *pgxpool.Pool) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.room >= 0 || r.dbs[p].limited()
}

// ending marks a held connection of p as being closed, before its session
// ends on the server (measure).
func (r *roleRoom) ending(p *pgxpool.Pool) {
	r.mu.Lock()
	r.closing++
	r.dbs[p].ending()
	r.mu.Unlock()
}

// ended frees the place of a connection of p, marked ending, whose
// session has ended.
func (r *roleRoom) ended(p *pgxpool.Pool) {
	r.mu.Lock()
	r.held = max(r.held-1, 0)
	r.closing = max(r.closing-1, 0)
	if r.made[p] > 0 {
		r.made[p]--
	}
	r.dbs[p].ended()
	r.mu.Unlock()
}

// closeHeld closes conn, a held connection taken from its pool p, and
// frees its place once its session has ended on the server
// (closeAndWait).
func (r *roleRoom) closeHeld(p *pgxpool.Pool, conn *pgx.Conn, timeout time.Duration) {
	r.ending(p)
	closeAndWait(conn, timeout)
	r.ended(p)
}

// measure is connectionCap on conn, a connection of p of the room's role,
// and sets the room from what its CONNECTION LIMIT leaves, and the room of
// p's database (dbRoom.set) from what the database's leaves. Sessions of the
// provider that the server counts but that are still being made are taken
// for others': the room may be smaller than it could, never larger. When
// the server did not answer (connectionCap's err) the room is left as it
// was: taken for a role without limits, it let the role's pools open past
// its CONNECTION LIMIT once the server answered again
// (TestRoomServerFrozenWhileMeasuredIsNotUnlimited). The read is part of
// making the connection, and waits as long, timeout (connect_timeout): it
// holds the room, every connection of the role waiting for it, and the
// statement's bound (statement_timeout and 10 s: 5 min 10 s by default,
// none when it is off) kept them all that long on a server that froze
// just after the connection was made.
func (r *roleRoom) measure(ctx context.Context, p *pgxpool.Pool, conn *pgx.Conn, timeout time.Duration) (int32, connLimit, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	l, before, err := r.readLimits(ctx, p, conn, timeout)
	if err != nil {
		return 0, noConnLimit, err
	}
	r.setFrom(p, l, before, 0)
	return l.cap, l.by, nil
}

// readLimits is connectionCap on conn, a connection of p, bounded by
// timeout, and what p's database's room said before the read
// (dbRoom.sessions); r.mu is held, and keeps the role's own sessions as
// they are through the read; other roles' in p's database are not
// (dbRoom.set).
func (r *roleRoom) readLimits(ctx context.Context, p *pgxpool.Pool, conn *pgx.Conn, timeout time.Duration) (connLimits, dbSessions, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	before := r.dbs[p].sessions()
	l, err := connectionCap(ctx, conn)
	if err != nil {
		return connLimits{}, before, err
	}
	if hook := afterLimitsRead.Load(); hook != nil {
		(*hook)(conn.Config().Database)
	}
	return l, before, nil
}

// setFrom sets the room, and the room of p's database, from l, read
// (readLimits) on a connection that holds own places beyond those counted
// as held: 0 for a connection of the pools, 1 for recheck's, whose session
// has ended when they are set. r.mu is held.
func (r *roleRoom) setFrom(p *pgxpool.Pool, l connLimits, before dbSessions, own int64) {
	r.measured = true
	r.stale = false
	r.super = l.super
	r.dbs[p].set(l, before, own)
	r.room = -1
	if free := l.roleFree; free >= 0 {
		// A session being closed may have ended on the server, so not be
		// among the sessions counted, while it is still held: counted as
		// held, it was a place twice, and the server refused a connection
		// (53300) when ended freed it.
		r.room = free + r.held - r.closing + own
	}
}

// roomRecheck is how long a connection waits for a place under a limit
// read on the server before recheck reads the limits again, and again
// after each such wait.
const roomRecheck = 5 * time.Second

// recheck reads the limits again on a connection of p's role made past
// the room, outside the pools, and sets the rooms from them once its
// session has ended on the server (closeAndWait), so that the places
// counted follow the server: a CONNECTION LIMIT raised during the run
// (ALTER ROLE, ALTER DATABASE) was not seen until a pool was made again,
// and a connection waited for a place until admit's bound, then told the
// user to raise the limit just raised (TestRoomsRaisedLimitIsReadAgain).
// On the role's first connection, held back by its database's room, it
// tells whether the role is a superuser, whom that limit does not refuse
// (TestRoomsSuperuserFirstConnectionPassesAFullDatabase). A connection
// the server refuses (53300: the limit holds; refused shrinks the rooms)
// or does not answer changes nothing else: the caller waits on. One
// recheck of the role's room runs at a time; it returns whether it ran.
func (r *roleRoom) recheck(ctx context.Context, p *pgxpool.Pool, timeout time.Duration) bool {
	r.mu.Lock()
	if r.rechecking {
		r.mu.Unlock()
		return false
	}
	r.rechecking = true
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.rechecking = false
		r.mu.Unlock()
	}()
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(cctx, p.Config().ConnConfig)
	if err != nil {
		return true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.pools[p]; !ok {
		closeAndWait(conn, timeout) // p was closed meanwhile
		return true
	}
	l, before, err := r.readLimits(ctx, p, conn, timeout)
	// Set only once the session has ended: a place it freed, counted
	// while it ran, was refused to the connection that took it (53300).
	closeAndWait(conn, timeout)
	if err == nil {
		r.setFrom(p, l, before, 1)
	}
	return true
}

// refused shrinks the rooms of p's connection that the server refused for
// too many connections (53300) to the places held, marked stale: the limit
// was lowered during the run (ALTER ROLE or ALTER DATABASE … CONNECTION
// LIMIT), or other sessions took the places, since the rooms were measured.
// Counted as before, every connection admitted past the places now held
// was refused too (TestRoomsLoweredLimitWaitsForAPlace). The next
// connection made reads the limits again (connected), or admit's recheck.
func (r *roleRoom) refused(p *pgxpool.Pool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.shrink()
	r.dbs[p].refused()
}

// dbRoom is the places that the CONNECTION LIMIT of one database on one
// server (dbRoomKey) leaves the process's connections to it, of every
// role: the provider's pools there and the publisher probe's. Each pool
// is sized alone (connectionCap), and a role's room counts its role's
// limit only, so a provider's pool and the probe's in a database of
// CONNECTION LIMIT 2 together opened more than 2, and the server refused
// the probe (53300, "too many connections for database": 15 of 15 probes
// in TestDblimitProbeAndProviderShareTheDatabaseLimit). A connection
// takes a place here after its role's (roleRoom.admit), both under the
// role's room's lock, and holds it as it holds that one: from admission
// until its session has ended on the server. Its methods are called with
// the connection's roleRoom.mu held, and take mu after it, never before:
// the rooms of two roles in one database never wait for each other.
// Every method is a no-op on a nil dbRoom (a pool of no database's room).
type dbRoom struct {
	mu sync.Mutex // guards the fields below
	places
	// pools are the pools of the database, each with its role's room,
	// through which one waiting for a place closes their idle
	// connections.
	pools map[*pgxpool.Pool]*roleRoom
	// ends counts the held connections marked ending so far (ending), of
	// every role: set tells by it which were ended during a read.
	ends int64
}

// dbSessions is what dbRoom.sessions saw before a read of the limits.
type dbSessions struct{ counted, ends int64 }

// sessions is what set needs of the room before a read of the limits:
// the held sessions not being closed (those the server counts), and
// ends.
func (d *dbRoom) sessions() dbSessions {
	if d == nil {
		return dbSessions{}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return dbSessions{counted: d.held - d.closing, ends: d.ends}
}

// wait counts a connection of p that starts (n 1) or stops (n -1)
// waiting in admit.
func (d *dbRoom) wait(p *pgxpool.Pool, n int64) {
	if d == nil {
		return
	}
	d.mu.Lock()
	d.waiting[p] += n
	d.mu.Unlock()
}

// take gives a waiting connection of p a place, when one is free, or when
// its role is exempt (a superuser: not refused, but counted); before the
// room is measured, only when no other connection holds one.
func (d *dbRoom) take(p *pgxpool.Pool, exempt bool) bool {
	if d == nil {
		return true
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	used := d.used()
	if !exempt && (!d.measured && used > 0 || d.measured && d.room >= 0 && used >= d.room) {
		return false
	}
	d.waiting[p]--
	d.pending[p]++
	return true
}

// connected counts a connection of p made, and says whether the room is
// still to be measured.
func (d *dbRoom) connected(p *pgxpool.Pool) (unmeasured bool) {
	if d == nil {
		return false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.pending[p] > 0 {
		d.pending[p]--
	}
	d.held++
	return !d.measured || d.stale
}

// ending marks a held connection as being closed (roleRoom.ending).
func (d *dbRoom) ending() {
	if d == nil {
		return
	}
	d.mu.Lock()
	d.closing++
	d.ends++
	d.mu.Unlock()
}

// ended frees the place of a connection marked ending (roleRoom.ended).
func (d *dbRoom) ended() {
	if d == nil {
		return
	}
	d.mu.Lock()
	d.held = max(d.held-1, 0)
	d.closing = max(d.closing-1, 0)
	d.mu.Unlock()
}

// set measures the room from l, read on a held connection to the
// database, as roleRoom.measure does the role's, and before, what
// sessions said before the read. The sessions the server counted of the
// process's are those held through the whole read: the room's mu is not
// held through it, and taken as they are after it, a connection of
// another role made meanwhile, not counted by the server, was taken for
// one of them, so for a place the count left over; the room came out a
// place larger than the database's CONNECTION LIMIT, and the server
// refused a connection (53300,
// TestSubreviewDatabaseRoomMeasuredWhileAnotherRoleConnects). One marked
// ending during the read may have ended before the server counted: not
// taken either. The room may be smaller than it could, never larger.
func (d *dbRoom) set(l connLimits, before dbSessions, own int64) {
	if d == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.measured = true
	d.stale = false
	d.room = -1
	if l.dbFree >= 0 {
		d.room = l.dbFree + max(before.counted-(d.ends-before.ends), 0) + own
	}
}

// refused shrinks the room to the places held, marked stale, after a
// connection to the database was refused for too many connections
// (roleRoom.refused).
func (d *dbRoom) refused() {
	if d == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.shrink()
}

// limited is whether the database's CONNECTION LIMIT holds (measured).
func (d *dbRoom) limited() bool {
	if d == nil {
		return false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.room >= 0
}

// full is whether the database's CONNECTION LIMIT holds and its places
// are all held, for a message that names it.
func (d *dbRoom) full() bool {
	if d == nil {
		return false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.room >= 0 && d.used() >= d.room
}

// used is the places held, and admitted to connections being made (those
// of connections that failed to be made trimmed first). d.mu is held.
func (d *dbRoom) used() int64 {
	d.trim()
	return d.held + d.admitted()
}

// size is the room, for a message: -1 when not measured or not limited.
func (d *dbRoom) size() int64 {
	if d == nil {
		return -1
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.room
}

// members are the database's pools, each with its role's room.
func (d *dbRoom) members() map[*pgxpool.Pool]*roleRoom {
	d.mu.Lock()
	defer d.mu.Unlock()
	m := make(map[*pgxpool.Pool]*roleRoom, len(d.pools))
	for q, r := range d.pools {
		m[q] = r
	}
	return m
}

// remove forgets p, a closed pool.
func (d *dbRoom) remove(p *pgxpool.Pool) {
	if d == nil {
		return
	}
	d.mu.Lock()
	delete(d.pools, p)
	delete(d.pending, p)
	delete(d.waiting, p)
	d.mu.Unlock()
}

// notAccepting is the DialFunc of a connection, around dial: a dial that
// fails is a notAcceptedError, so that connectFix tells "nothing accepted
// the connection" from "something accepted it and did not answer". The
// connection is a startingConn, bounded by timeout.
func notAccepting(dial pgconn.DialFunc, timeout time.Duration) pgconn.DialFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, &notAcceptedError{text: err.Error()}
		}
		return &startingConn{Conn: c, timeout: timeout, dialed: time.Now()}, nil
	}
}

// startingConn is a connection whose Close, when its startup failed after
// the server answered (3D000, a pool kept for a database that does not
// exist yet), waits at most timeout until the server has closed the socket,
// as closeAndWait does: PostgreSQL counts the refused session against the
// role's CONNECTION LIMIT until its backend exits, and pgconn closes the
// socket and returns the error at once, so the role's room freed the place
// early and the role's next connection was refused (53300, 2 of 20 in
// TestRefusedMissingDatabaseKeepsThePlaceUntilTheBackendExits). A session
// started (ValidateConnect) closes at once. A connection whose read or
// write failed waits only what is left of its connect_timeout: a server
// that stopped answering made the connect wait all of it, and the wait
// ends at once; a connect that was abandoned (its pool closed when the
// caller that made the pool gave up, or its Acquire was cancelled) failed
// its read early, and its backend, still starting on a slow server, was
// counted against the role's CONNECTION LIMIT after its place was freed:
// the callers after it made the pool again, each leaving one more, and the
// server refused the pool's connections (53300,
// TestReview10PoolMakersOfManyDeadlines).
type startingConn struct {
	net.Conn
	timeout time.Duration
	dialed  time.Time
	started atomic.Bool
}

func (c *startingConn) Close() error {
	if deadline := c.dialed.Add(c.timeout); !c.started.Load() && time.Now().Before(deadline) {
		// The end of the client's stream ends a backend still in its
		// startup (one waiting for a password the client will not send).
		if hc, ok := c.Conn.(interface{ CloseWrite() error }); ok {
			_ = hc.CloseWrite()
		}
		_ = c.Conn.SetReadDeadline(deadline)
		_, _ = io.Copy(io.Discard, c.Conn) // until the server closes it: its backend has exited
	}
	return c.Conn.Close()
}

// notAcceptedError is a dial's error: no server accepted the connection.
// It keeps the text only: pgconn would take a timeout it wraps for a
// timeout of the whole connection, and connectFix could no longer tell
// "nothing listens" from "something listens and does not answer".
type notAcceptedError struct{ text string }

func (e *notAcceptedError) Error() string { return e.text }

// processPools are the pools of every server of this process, shared by
// servers that connect with the same settings. A real Terraform run starts
// one provider process per provider configuration and configures it once,
// so there this changes nothing. In-process (the acceptance tests) the
// framework configures one provider again for every command; without
// sharing, each configuration would leave its own pools' connections open
// until they idle out, and a few test steps exhaust max_connections.
var processPools = poolSet{m: map[poolKey]*pgxpool.Pool{}, making: map[poolKey]*poolMaking{}, rooms: map[roomKey]*roleRoom{},
	dbRooms: map[dbRoomKey]*dbRoom{}}

// poolSet holds the pools of a process by key, and makes each once: callers
// that ask for a pool being made wait for that one (its first connection,
// which may wait connect_timeout on a server that does not answer) rather
// than each making their own in turn.
type poolSet struct {
	mu      sync.Mutex // guards m, making, rooms and dbRooms
	m       map[poolKey]*pgxpool.Pool
	making  map[poolKey]*poolMaking
	rooms   map[roomKey]*roleRoom // pools of one role on one server, the publisher probe's among them
	dbRooms map[dbRoomKey]*dbRoom // pools of every role in one database on one server
}

// poolMaking is a pool being made; done is closed when p or err is set.
// gaveUp is whether err came with the maker's caller's context done: its
// deadline or cancel, which says nothing of the server.
type poolMaking struct {
	done   chan struct{}
	p      *pgxpool.Pool
	err    error
	gaveUp bool
}

// get returns the pool of key, made by newPool for a caller whose context
// is ctx when the set has none; a pool that could not be made is not kept,
// so the next get tries again. A caller that finds the pool being made
// waits for it until its own ctx is done, and makes it again when the
// maker's caller gave up: handed the maker's error, it failed with that
// caller's "context deadline exceeded", its own context not done and the
// server answering (TestRoomfixPoolMakersDeadlineIsNotTheWaiters).
func (ps *poolSet) get(ctx context.Context, key poolKey, newPool func() (*pgxpool.Pool, error)) (*pgxpool.Pool, error) {
	for {
		ps.mu.Lock()
		if p, ok := ps.m[key]; ok {
			ps.mu.Unlock()
			return p, nil
		}
		if m, ok := ps.making[key]; ok {
			ps.mu.Unlock()
			select {
			case <-m.done:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			if m.err != nil && m.gaveUp {
				continue
			}
			return m.p, m.err
		}
		m := &poolMaking{done: make(chan struct{})}
		ps.making[key] = m
		ps.mu.Unlock()
		m.p, m.err = newPool()
		m.gaveUp = ctx.Err() != nil
		ps.mu.Lock()
		delete(ps.making, key)
		if m.err == nil {
			ps.m[key] = m.p
		}
		ps.mu.Unlock()
		close(m.done)
		return m.p, m.err
	}
}

// connConfig is the configuration of every connection the provider opens to
// database on its server (the pools' and replicationExec's): the settings'
// conninfo, the password set on the parsed config (so that it never sits in
// a string an error could echo), the session settings and the statement
// tracer. poolKey holds everything it depends on.
func (s *server) connConfig(database string) (*pgx.ConnConfig, error) {
	cfg, err := pgx.ParseConfig(s.settings.conninfo(database))
	if err != nil {
		return nil, fmt.Errorf("invalid connection settings: %w", err)
	}
	if s.settings.Password != "" {
		cfg.Password = s.settings.Password
	}
	timeout := s.settings.statementTimeout()
	cfg.RuntimeParams["statement_timeout"] = timeout
	// SQL text from the configuration (row filters) is checked with a
	// lexer that reads '…' as PostgreSQL does with this on, its default; a
	// database or role that turns it off would let a backslash pair the
	// quotes differently on the server.
	cfg.RuntimeParams["standard_conforming_strings"] = "on"
	cfg.Tracer = statement.Tracer{Bound: clientStatementBound(timeout)}
	cfg.DialFunc = notAccepting(cfg.DialFunc, time.Duration(s.settings.connectTimeout())*time.Second)
	startedOnValidate(&cfg.Config)
	return cfg, nil
}

// startedOnValidate marks a connection of cfg that its DialFunc made a
// startingConn as started once its session has started (ValidateConnect),
// so that its Close no longer waits for the server's end.
func startedOnValidate(cfg *pgconn.Config) {
	validate := cfg.ValidateConnect
	cfg.ValidateConnect = func(ctx context.Context, c *pgconn.PgConn) error {
		nc := c.Conn()
		if tc, ok := nc.(interface{ NetConn() net.Conn }); ok {
			nc = tc.NetConn() // under TLS
		}
		if sc, ok := nc.(*startingConn); ok {
			sc.started.Store(true)
		}
		if validate != nil {
			return validate(ctx, c)
		}
		return nil
	}
}

// poolKey is everything a pool's connections depend on.
type poolKey struct {
	conninfo         string // without the password
	password         string
	maxConns         int32
	statementTimeout string
}

// replicationExec runs one replication command (ALTER_REPLICATION_SLOT, …)
// on a replication connection to database, with the provider's settings and
// bounds; the pools cannot run them. The connection is closed after it.
func (s *server) replicationExec(ctx context.Context, database, sql string) error {
	if s.unknown {
		return errConfigUnknown
	}
	if database == "" {
		database = s.settings.Database
	}
	cfg, err := s.connConfig(database)
	if err != nil {
		return err
	}
	cfg.RuntimeParams["replication"] = "database"
	// A walsender takes replication commands in simple queries only.
	cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return s.queryError(ctx, sql, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		return s.queryError(ctx, sql, err)
	}
	return nil
}

// Facts returns the server's version, read once per provider instance.
func (s *server) Facts(ctx context.Context) (serverFacts, error) {
	s.mu.Lock()
	f := s.facts
	s.mu.Unlock()
	if f != nil {
		return *f, nil
	}
	p, err := s.Pool(ctx, "")
	if err != nil {
		return serverFacts{}, err
	}
	const sql = `SELECT current_setting('server_version_num')::int, current_setting('server_version'), current_setting('wal_level')`
	var out serverFacts
	if err := p.QueryRow(ctx, sql).Scan(&out.VersionNum, &out.Version, &out.WalLevel); err != nil {
		return serverFacts{}, fmt.Errorf("cannot read the server version from %s: %w", s.describe(), s.queryError(ctx, sql, err))
	}
	s.mu.Lock()
	s.facts = &out
	s.mu.Unlock()
	return out, nil
}

// describe names the server in messages: host and port, never credentials.
func (s *server) describe() string {
	cfg, err := pgxpool.ParseConfig(s.settings.conninfo(""))
	if err != nil {
		return "the configured server"
	}
	return fmt.Sprintf("%s:%d", cfg.ConnConfig.Host, cfg.ConnConfig.Port)
}

// serverFromProviderData is every resource's and data source's Configure: it
// takes the provider instance's server, or reports a provider bug.
func serverFromProviderData(data any, diags *diag.Diagnostics) *server {
	if data == nil {
		// Configure runs before the provider is configured during validation.
		return nil
	}
	s, ok := data.(*server)
	if !ok {
		diags.AddError("Unexpected Provider Data", fmt.Sprintf("Expected *server, got %T. This is a bug in the provider; please report it.", data))
		return nil
	}
	return s
}

// requireMajor is the plan-time version gate: it adds an error on attr when
// the server is older than PostgreSQL major, naming the feature and the
// server's version, so the problem shows in `terraform plan` rather than as a
// SQL error during apply. It says nothing when the server cannot be asked yet
// (configuration unknown until apply, or unreachable: Read and apply report
// that).
func (s *server) requireMajor(ctx context.Context, major int, feature string, attr path.Path, diags *diag.Diagnostics) {
	if s == nil || s.unknown {
		return
	}
	f, err := s.Facts(ctx)
	if err != nil {
		return
	}
	if f.Major() < major {
		diags.AddAttributeError(attr, "Feature Needs a Newer PostgreSQL",
			fmt.Sprintf("%s needs PostgreSQL %d or later; %s runs PostgreSQL %s. Remove the setting or upgrade the server.",
				feature, major, s.describe(), f.Version))
	}
}

// PoolOrDiag is Pool for a handler, connected: it takes a live connection
// from the pool (ready; it stays there for the handler's statements), so
// that a server the provider cannot reach or log in to is reported as that,
// "Cannot Connect to PostgreSQL", by whichever handler runs first, and not
// under the title of the statement that happened to open the first
// connection. On failure it adds
// that diagnostic (connectDiag) and returns nil; a database that does not
// exist is left to the handler.
func (s *server) PoolOrDiag(ctx context.Context, database string, diags *diag.Diagnostics) *pgxpool.Pool {
	if s.unknown {
		diags.Append(s.unknownDiag())
		return nil
	}
	p, err := s.Pool(ctx, database)
	if err == nil {
		err = ready(ctx, p, time.Duration(s.settings.connectTimeout())*time.Second)
	}
	if isMissingDatabase(err) {
		// The server answered: the handler decides what a database that
		// is gone means (a publication's Read plans it created again).
		return p
	}
	if err != nil {
		if database == "" {
			database = s.defaultDatabase()
		}
		diags.Append(s.connectDiag(ctx, database, err))
		return nil
	}
	return p
}

// errConfigUnknown is Pool's error while the provider configuration has
// values known only during apply.
var errConfigUnknown = errors.New("the provider configuration has values that are not known yet; they are known during apply")

// unknownDiag says that a handler that must reach the server (a refresh, a
// plan-time read) cannot, because the provider arguments named are known
// only during apply, and what to do. It names no host or port: those may be
// the unknown ones.
func (s *server) unknownDiag() diag.Diagnostic {
	args := "Some arguments"
	if len(s.unknownAttrs) > 0 {
		args = "The arguments " + strings.Join(s.unknownAttrs, ", ")
	}
	return diag.NewErrorDiagnostic("Provider Configuration Not Known Yet",
		args+" of the pgreplication provider configuration are known only during apply (they come from other resources' results), "+
			"and this step has to connect to the server: to read what the object has there, or to check the plan against it. Apply the resources those values come from first (terraform apply -target=<their address>), then plan again; "+
			"or give the provider values known at plan time (variables, data sources).")
}

// ready checks that p can give a handler a live connection. pgxpool pings a
// pooled connection only when it has been idle for over a second, so one
// that the server ended since its last use (a restart, pg_terminate_backend,
// DROP DATABASE … WITH (FORCE)) would fail the handler's first statement
// with 57P01 or a closed connection. The ping finds it; the pool is then
// emptied, since the server most likely ended its other sessions too, and a
// fresh connection decides. The ping waits at most timeout (the
// connect_timeout): a server that stopped answering (a frozen host, a
// network black hole) fails it, and the fresh connection then fails as any
// connection to it does, instead of the handler waiting for ever.
func ready(ctx context.Context, p *pgxpool.Pool, timeout time.Duration) error {
	refused := false
	for fresh := false; ; fresh = true {
		c, err := p.Acquire(ctx)
		if err != nil && !refused && tooManyConnections(err) {
			// The room admitted a connection the server refused: the
			// limit was lowered, or other sessions took the places, since
			// the room was measured. The room now counts only the places
			// held (refusalTracer), so the connection made again waits
			// for one of them, as the room's others do, instead of
			// failing the handler (TestRoomsLoweredLimitWaitsForAPlace).
			refused = true
			c, err = p.Acquire(ctx)
		}
		if err != nil {
			return err
		}
		pctx, cancel := context.WithTimeout(ctx, timeout)
		err = c.Ping(pctx)
		cancel()
		c.Release()
		if err == nil || fresh {
			return err
		}
		p.Reset()
	}
}

// connectDiag is the one diagnostic for a connection to database on s that
// could not be made: the server's address, the cause (secrets masked) and the
// fix (connectFix).
func (s *server) connectDiag(ctx context.Context, database string, err error) diag.Diagnostic {
	detail := fmt.Sprintf("The provider cannot connect to database %q on %s: %s", database, s.describe(), statement.MaskedError(ctx, err))
	var connErr *pgconn.ConnectError
	if errors.As(err, &connErr) {
		detail += "\n\n" + s.connectFix(err)
	}
	return diag.NewErrorDiagnostic("Cannot Connect to PostgreSQL", detail)
}

// queryError is the error to show when sql, run on s, failed with err: the
// text of statement.Error (the statement, the server's message, DETAIL, HINT
// and SQLSTATE, secrets masked), completed with the fix where the cause is
// known: the statements that grant privs when the server refused for lack
// of privilege (withGrants). A connection that could not be made is no
// statement's failure: its error is statement.MaskedError's text, without
// the statement, and says what to check (connectFix). Errors that are not
// the server's (hiddenStatsError) get the statement too, so the message
// says what was read.
func (s *server) queryError(ctx context.Context, sql string, err error, privs ...privilege) error {
	if err == nil {
		return nil
	}
	var connErr *pgconn.ConnectError
	if errors.As(err, &connErr) {
		return fmt.Errorf("%w\n\n%s", statement.Masked(ctx, err), s.connectFix(err))
	}
	if len(privs) == 0 {
		return statement.Error(ctx, sql, err)
	}
	return s.withGrants(ctx, statement.Error(ctx, sql, err), privs...)
}

// readFailure is the cause and the fix of a read of what (the catalogs a
// resource is read from, e.g. "publication \"p\" from pg_publication …")
// that failed with err, for a "Cannot Read …" diagnostic: the server's
// message (secrets masked), then what to do: the statements that grant
// privs when the server refused for lack of privilege, raising
// statement_timeout when the read ran past it, trying again when the server
// went away or stopped answering, and what to check when the connection
// could not be made. Reading changes nothing, so every fix ends in planning
// again.
func (s *server) readFailure(ctx context.Context, what string, err error, privs ...privilege) string {
	detail := fmt.Sprintf("Reading %s on %s failed: ", what, s.describe())
	var pgErr *pgconn.PgError
	var connErr *pgconn.ConnectError
	switch {
	case errors.As(err, &connErr):
		return detail + s.queryError(ctx, "", err).Error()
	case errors.As(err, &pgErr) && pgErr.Code == "42501":
		return detail + s.withGrants(ctx, statement.Masked(ctx, err), privs...).Error() + "\n\nThen plan again."
	case errors.As(err, &pgErr) && pgErr.Code == "57014": // query_canceled: statement_timeout
		return detail + statement.MaskedError(ctx, err) + fmt.Sprintf("\n\nThe read ran longer than the provider's statement_timeout (%s): "+
			"the server is overloaded or something holds its catalogs. Plan again once it answers faster, or raise statement_timeout.",
			s.settings.statementTimeout())
	case errors.Is(err, context.DeadlineExceeded) || serverAway(err):
		return detail + statement.MaskedError(ctx, err) + "\n\nThe server ended the session or stopped answering while the provider read " +
			"(a restart, a failover, a frozen host, a network cut). Nothing was changed: plan again once it answers."
	}
	return detail + statement.MaskedError(ctx, err) + "\n\nNothing was changed. The server's message above says why; plan again once that is fixed."
}

// connectFix says what to check when a connection to s could not be made:
// the credentials when the server refused them, the database when it does
// not exist, and otherwise the address and the connect_timeout the provider
// waited.
func (s *server) connectFix(err error) string {
	var pgErr *pgconn.PgError
	role := pgsql.Ident(s.role())
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "28P01": // invalid_password
			return fmt.Sprintf("%s refused the password of the provider's role %s. Check the provider's username and password "+
				"(or PGUSER, PGPASSWORD and the passfile, which the provider reads when its configuration sets none).", s.describe(), role)
		case "28000": // invalid_authorization_specification: pg_hba.conf or a role that may not log in
			return fmt.Sprintf("%s does not let the provider's role %s connect. A superuser fixes it with ALTER ROLE %s LOGIN, "+
				"or with a pg_hba.conf line that allows this role from this host to this database (then SELECT pg_reload_conf()).", s.describe(), role, role)
		case "3D000": // invalid_catalog_name
			return fmt.Sprintf("%s has no such database: check the provider's database (or PGDATABASE).", s.describe())
		case "53300": // too_many_connections: max_connections, or a role's or database's CONNECTION LIMIT
			return fmt.Sprintf("%s has no connection left for the provider's role %s: the server's message above says which limit was reached "+
				"(max_connections, or the CONNECTION LIMIT of the role or of the database), and other sessions hold the connections it allows. "+
				"The provider opens at most max_connections connections per database (%d here) and no more than those limits leave when it starts. "+
				"Close the other sessions, raise the limit (ALTER ROLE %s CONNECTION LIMIT …, as a superuser), or lower the provider's max_connections, "+
				"then apply again: what this apply already did is in the state.", s.describe(), role, s.maxConnections(), role)
		}
		return fmt.Sprintf("%s refused the provider's connection; the server's message above says why.", s.describe())
	}
	// pgx has no error value for this one: its text is all there is.
	if strings.Contains(err.Error(), "server refused TLS connection") {
		sslmode := "PGSSLMODE"
		if s.settings.SSLMode != "" {
			sslmode = "sslmode = " + strconv.Quote(s.settings.SSLMode)
		}
		return fmt.Sprintf("%s answered, but does not offer TLS (ssl = off there), and the provider's %s requires it. "+
			"Turn TLS on in that server (ssl = on, with ssl_cert_file and ssl_key_file), or set the provider's sslmode to prefer or disable "+
			"(or PGSSLMODE) if the connection need not be encrypted.", s.describe(), sslmode)
	}
	var notAccepted *notAcceptedError
	if !errors.As(err, &notAccepted) && errors.Is(err, context.DeadlineExceeded) {
		return fmt.Sprintf("%s accepted the connection but did not answer within connect_timeout (%d seconds): the server is frozen or "+
			"overloaded (a stopped VM, a postmaster that forks no backend, a network that drops its answers), or what listens there is not "+
			"PostgreSQL (a proxy with no server behind it). Check that server, and that the provider's host and port (or PGHOST and PGPORT) "+
			"are PostgreSQL's; raise the provider's connect_timeout if it is only slow.", s.describe(), s.settings.connectTimeout())
	}
	return fmt.Sprintf("No PostgreSQL server accepted a connection at %s (the provider waits connect_timeout, %d seconds, for each address). "+
		"Check the provider's host and port (or PGHOST and PGPORT), that the server runs and listens there (listen_addresses, port) "+
		"and that no firewall drops the connection; raise the provider's connect_timeout if the server is slow to answer. "+
		"If the server is gone for good, with the objects on it, remove them from the state (terraform state rm <address>) "+
		"instead of destroying them.",
		s.describe(), s.settings.connectTimeout())
}

// FactsOrDiag is Facts for a handler: on failure it adds a diagnostic and
// returns false, the one of connectDiag when the connection could not be made.
func (s *server) FactsOrDiag(ctx context.Context, diags *diag.Diagnostics) (serverFacts, bool) {
	f, err := s.Facts(ctx)
	var connErr *pgconn.ConnectError
	switch {
	case errors.As(err, &connErr):
		diags.Append(s.connectDiag(ctx, s.defaultDatabase(), connErr))
		return serverFacts{}, false
	case err != nil:
		diags.AddError("Cannot Read Server Version", err.Error())
		return serverFacts{}, false
	}
	return f, true
}

// namedHostConfig is the configuration of a connection to a host that a
// resource names, such as a subscription's publisher: a host that someone
// else may run. It holds what the resource's connection parameters say and
// nothing of the user running Terraform: pgx, like libpq, fills what a
// connection string leaves out from PGPASSWORD and the other PG* variables,
// the passfile, the service file and the client certificates in
// ~/.postgresql, and any of those would hand the provider's own credentials
// to that host. So every such setting is written out here, empty when the
// resource has none. File paths in the parameters (passfile, sslcert, …)
// name files on the server that will connect, not here: they are not used.
// It fails when the parameters name no host or no user, which only the
// server that connects would know how to default.
func namedHostConfig(p conninfo.Params, connectTimeout time.Duration) (*pgx.ConnConfig, error) {
	host := p["host"]
	if a := p["hostaddr"]; a != "" {
		host = a
	}
	if host == "" || p["user"] == "" {
		return nil, fmt.Errorf("the connection parameters name no host or no user")
	}
	dbname := p["dbname"]
	if dbname == "" {
		dbname = p["user"] // libpq's default
	}
	port, sslmode := p["port"], p["sslmode"]
	if port == "" {
		port = "5432"
	}
	if sslmode == "" {
		sslmode = "prefer"
	}
	// Every setting pgx would otherwise take from the environment, a
	// passfile or a service file is written out, empty where the resource
	// has none. The password is not in the string (an error could echo it):
	// it is set on the config below.
	explicit := conninfo.Params{
		"host": host, "port": port, "user": p["user"], "dbname": dbname,
		"passfile": os.DevNull, "sslmode": sslmode, "sslcert": "", "sslkey": "", "sslrootcert": "", "sslpassword": "",
		"options": "", "target_session_attrs": "any",
		"application_name": "terraform-provider-pgreplication",
		"connect_timeout":  strconv.Itoa(max(int(connectTimeout/time.Second), 2)),
	}
	cfg, err := pgx.ParseConfig(explicit.String())
	if err != nil {
		return nil, err
	}
	// Whatever pgx found, the password is the resource's (none if it has none).
	cfg.Password = p["password"]
	cfg.Tracer = statement.Tracer{} // the caller bounds the probe as a whole
	return cfg, nil
}
