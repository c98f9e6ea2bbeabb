package provider

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/conninfo"
	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/statement"
)

// publisherPools are the connections of this process to the publishers of
// subscriptions, for the probe's checks (publisherProbe): one small pool per
// publisher connection string, so that a refresh, an import or a plan of
// many subscriptions to one publisher connects once, not once per
// subscription every time. Process-wide like processPools: a real Terraform
// run starts a provider process per command, so nothing a pool keeps (a
// connection, a failure) outlives the command there.
var publisherPools = publisherPoolSet{m: map[string]*publisherPool{}}

const (
	// publisherPoolConns bounds the sessions a probe pool opens on one
	// publisher: its checks are single short queries, each taking a
	// connection for its own duration only.
	publisherPoolConns = 2
	// publisherPoolIdle is how long a connection the checks no longer use
	// stays open (give or take publisherPoolIdleCheck): the checks of one
	// command come in a burst (a resource's refresh, then its plan, the
	// resources ten at a time), which shares the pool's connections, and
	// its sessions end soon after the burst does. They are sessions in the
	// publisher's database, unknown to whoever acts on it next: kept for
	// 15 s, a DROP DATABASE without FORCE in the same run (the destroy of
	// a postgresql_database the subscriptions depend on, a local-exec),
	// which waits 5 s for other sessions to leave, failed with 55006
	// ("database … is being accessed by other users"). The cost: checks
	// further apart than this (a long apply) connect again.
	publisherPoolIdle = time.Second
	// publisherPoolIdleCheck is how often the pool looks for connections
	// idle for publisherPoolIdle (pgxpool's HealthCheckPeriod), so that
	// one ends within publisherPoolIdle+publisherPoolIdleCheck of its last
	// check, well within DROP DATABASE's 5 s.
	publisherPoolIdleCheck = publisherPoolIdle / 4
	// publisherPoolUnused is how long a pool nobody asked for is kept, its
	// connections long closed: in-process (the acceptance tests) one
	// process sees many publishers, each pool with a goroutine of its own.
	// Far longer than any probe's use of a pool it reached.
	publisherPoolUnused = 10 * time.Minute
	// publisherTightRoom is the room under the publisher's max_connections
	// (for roles that are not superusers, the probe's session among those
	// counted) below which the probe keeps no idle session (sparing): the
	// provider's own pools on that server may count on up to their
	// max_connections (4 by default) in each database, and two idle probe
	// sessions took places they had counted on. Sparing costs a
	// connection per check, which is what every check cost before the
	// pools; on a publisher with room, nothing.
	publisherTightRoom = 10
	// publisherRetryAfter is how long a failed attempt to reach a publisher
	// answers for the other probes of the same provider instance (the same
	// command): a plan of ten subscriptions on a publisher that does not
	// answer waits one publisherProbeTimeout, not one for its refresh and
	// another for its plan. Longer than a refresh and the plan after it;
	// short enough that an apply running for minutes looks again. The next
	// command, a new provider instance (and in a real run a new process),
	// always tries again.
	publisherRetryAfter = 30 * time.Second
)

// errPublisherSilent is the cause of an attempt to reach a publisher that
// ended with no answer (a publisher stopped with SIGSTOP, or behind a path
// that drops packets): pgxpool returns the bare context error then.
var errPublisherSilent = fmt.Errorf("the publisher did not answer within %s", publisherProbeTimeout)

// publisherPoolSet holds the probe pools of the process by connection string.
type publisherPoolSet struct {
	mu sync.Mutex // guards m
	// m is by the publisher's full connection string, password included:
	// held in memory only, never in a message. The pool's connections are
	// made from namedHostConfig, with the password set on the config.
	m map[string]*publisherPool
}

// publisherPool is the pool of one publisher connection string, and what
// the last attempt to reach it found.
type publisherPool struct {
	pool   *pgxpool.Pool
	params conninfo.Params
	// room is the room of the probe's role on the publisher (roomKey),
	// the provider's when the provider connects to that server as that
	// role too: the pool's connections are admitted there, so that the
	// provider's pools and the probe's never together open more than the
	// role's CONNECTION LIMIT allows. Counted apart, the server refused
	// the probe (53300) and the command's checks went undone ("Publisher
	// Not Checked", TestProberoomProbeSharesTheRoleRoom).
	room *roleRoom
	// closing holds the connections releaseClosed ends, whose places it
	// frees itself: BeforeClose, when pgxpool destroys them, leaves them.
	closing sync.Map // of *pgx.Conn
	// sparing: the publisher limits the sessions of the probe's role or
	// database (CONNECTION LIMIT), or has little room left under
	// max_connections (publisherTightRoom), and a connection closes as
	// soon as its check is done (QueryRow), as the probe's own connection
	// did before the pools. An idle session would hold a place of that
	// limit between the checks and for publisherPoolIdle after them: a
	// place of max_connections, or of a database's CONNECTION LIMIT,
	// that the provider's pools (connectionCap) counted on when the
	// provider manages the publisher too, and the server refused a
	// connection of the provider's (53300).
	sparing atomic.Bool
	used    time.Time         // when get last returned it; guarded by publisherPoolSet.mu
	mu      sync.Mutex        // guards trying and failed
	trying  *publisherAttempt // the attempt under way, which concurrent probes wait for
	failed  *publisherAttempt // the last attempt, when it failed
}

// publisherAttempt is one attempt to reach a publisher; done is closed
// when err is set.
type publisherAttempt struct {
	done chan struct{}
	by   *server // the provider instance that made it
	at   time.Time
	err  error
}

// reach returns the pool of the publisher that connection names once one
// of its connections answers, within publisherProbeTimeout; its errors
// carry no secret of connection. Concurrent callers share one attempt, and
// a failed attempt answers for the probes of the same provider instance
// (by) for publisherRetryAfter: a publisher that does not answer costs one
// publisherProbeTimeout, not one per subscription or per check.
// The checks query through the publisherPool it returns (QueryRow).
func (ps *publisherPoolSet) reach(ctx context.Context, by *server, connection string) (*publisherPool, conninfo.Params, error) {
	pp, err := ps.get(connection)
	if err != nil {
		return nil, nil, err
	}
	ctx = statement.WithSecrets(ctx, pp.params.Secrets()...)
	for {
		pp.mu.Lock()
		if f := pp.failed; f != nil && f.by == by && time.Since(f.at) < publisherRetryAfter {
			pp.mu.Unlock()
			return nil, nil, f.err
		}
		if a := pp.trying; a != nil {
			pp.mu.Unlock()
			select {
			case <-a.done:
			case <-ctx.Done():
				return nil, nil, ctx.Err()
			}
			if errors.Is(a.err, context.Canceled) {
				continue // the attempt's own caller gave up: not the publisher's answer
			}
			if a.err != nil {
				return nil, nil, a.err
			}
			return pp, pp.params, nil
		}
		a := &publisherAttempt{done: make(chan struct{}), by: by}
		pp.trying = a
		pp.mu.Unlock()
		a.err = pp.try(ctx)
		a.at = time.Now()
		pp.mu.Lock()
		pp.trying, pp.failed = nil, nil
		if a.err != nil && ctx.Err() == nil {
			pp.failed = a
		}
		pp.mu.Unlock()
		close(a.done)
		if a.err != nil {
			return nil, nil, a.err
		}
		return pp, pp.params, nil
	}
}

// try takes a connection from the pool and pings it (ready): the attempt
// answers for the checks after it, and pgxpool hands out a connection idle
// for under a second without a ping of its own. A session the publisher
// ended since its last use (a restart, pg_terminate_backend) is no answer
// of the publisher's: ready empties the pool and a fresh connection
// decides, within the same publisherProbeTimeout.
func (pp *publisherPool) try(ctx context.Context) error {
	parent := ctx
	ctx, cancel := context.WithTimeoutCause(ctx, publisherProbeTimeout, errPublisherSilent)
	defer cancel()
	err := ready(ctx, pp.pool, publisherProbeTimeout)
	if err == nil {
		pp.spare(ctx)
		return nil
	}
	switch {
	case parent.Err() != nil:
		return parent.Err()
	case context.Cause(ctx) == errPublisherSilent && errors.Is(err, context.DeadlineExceeded):
		// The connection may not have been tried: it waits for a place
		// of its role that the provider's own connections hold.
		if err := pp.room.stillWaiting(pp.pool, publisherProbeTimeout, publisherAddress(pp.params), pp.params["user"]); err != nil {
			return err
		}
		return errPublisherSilent
	}
	return statement.Masked(ctx, err)
}

// spare learns whether the publisher limits the sessions of the probe's
// role or database, or has fewer than publisherTightRoom places left under
// max_connections, as connectionCap reads the limits (sparing), and if so
// ends the pool's idle sessions, waiting until the server has ended them
// (releaseClosed). A publisher that cannot say keeps the pool as it is.
func (pp *publisherPool) spare(ctx context.Context) {
	c, err := pp.pool.Acquire(ctx)
	if err != nil {
		return
	}
	l, err := connectionCap(ctx, c.Conn())
	c.Release()
	if err != nil || l.serverFree < 0 {
		return
	}
	limited := l.held || l.serverFree < publisherTightRoom
	pp.sparing.Store(limited)
	if limited {
		for _, c := range pp.pool.AcquireAllIdle(ctx) {
			pp.releaseClosed(c)
		}
	}
}

// QueryRow runs one check on a connection of the pool; on a sparing pool
// the connection's session is ended once the row is read, and Scan
// returns when the server has ended it.
func (pp *publisherPool) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	if !pp.sparing.Load() {
		return pp.pool.QueryRow(ctx, sql, args...)
	}
	c, err := pp.pool.Acquire(ctx)
	if err != nil {
		return failedRow{err}
	}
	return &sparingRow{row: c.QueryRow(ctx, sql, args...), conn: c, pp: pp}
}

// sparingRow is a row read on a connection that is closed after it.
type sparingRow struct {
	row  pgx.Row
	conn *pgxpool.Conn
	pp   *publisherPool
}

func (r *sparingRow) Scan(dest ...any) error {
	err := r.row.Scan(dest...)
	r.pp.releaseClosed(r.conn)
	return err
}

// releaseClosed ends the session of c, a connection acquired from the
// pool, and waits until the server has ended it (closeAndWait) before it
// frees c's place in the role's room and gives c's place in the pool back:
// released closed, pgxpool destroys it. Hijacked first, the pool's place
// was free at once, and another check opened a session while this one's
// backend was still counted by the server: a burst of checks on a sparing
// pool held twice publisherPoolConns places (53300 for the probe itself on
// a publisher with 5 places left).
func (pp *publisherPool) releaseClosed(c *pgxpool.Conn) {
	pp.closing.Store(c.Conn(), true)
	pp.room.closeHeld(pp.pool, c.Conn(), publisherProbeTimeout)
	c.Release()
}

// failedRow is the row of a check that got no connection.
type failedRow struct{ err error }

func (r failedRow) Scan(...any) error { return r.err }

// get returns the pool of connection, made at its first use; making one
// does not connect. Pools unused for publisherPoolUnused are closed.
func (ps *publisherPoolSet) get(connection string) (*publisherPool, error) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	now := time.Now()
	for c, pp := range ps.m {
		if c != connection && now.Sub(pp.used) > publisherPoolUnused && pp.pool.Stat().TotalConns() == 0 {
			pp.pool.Close()
			pp.room.remove(pp.pool)
			delete(ps.m, c)
		}
	}
	if pp, ok := ps.m[connection]; ok {
		pp.used = now
		return pp, nil
	}
	p, err := conninfo.Parse(connection)
	if err != nil {
		return nil, err
	}
	cfg, err := namedHostConfig(p, publisherProbeTimeout)
	if err != nil {
		return nil, err
	}
	pp := &publisherPool{params: p, used: now, room: processPools.roleRoom(roomKeyOf(cfg))}
	if pp.pool, err = pp.newPool(cfg); err != nil {
		return nil, err
	}
	pp.room.join(pp.pool, processPools.dbRoom(dbRoomKeyOf(cfg)))
	ps.m[connection] = pp
	return pp, nil
}

// newPool makes the pool of the connections cfg describes, admitted in
// the role's room (room). A connection whose query timed out is not handed
// out again: pgconn closes a connection whose read a context ended
// (ResultReader.receiveMessage, asyncClose), and pgxpool destroys a closed
// connection when it is released.
func (pp *publisherPool) newPool(cfg *pgx.ConnConfig) (*pgxpool.Pool, error) {
	// ConnString is what namedHostConfig parsed: no password (set on cfg),
	// nothing from the environment. pgxpool needs a config of its own
	// ParseConfig; its connection settings are cfg's.
	pcfg, err := pgxpool.ParseConfig(cfg.ConnString())
	if err != nil {
		return nil, err
	}
	pcfg.ConnConfig = cfg
	// The checks are one-off queries, each on whichever connection the
	// pool hands out: pgx's statement cache (prepare a named statement,
	// then run it) saves nothing on them, and behind PgBouncer in
	// transaction pooling mode (before 1.21's max_prepared_statements) the
	// prepare and the run are two transactions, which may go to two server
	// connections: the checks failed with 42P05 or 26000 and the publisher
	// went unchecked. Unprepared, each check is one round trip, one
	// transaction.
	cfg.DefaultQueryExecMode = pgx.QueryExecModeExec
	// A connection the publisher refuses during its startup (3D000, a
	// database the conninfo names that does not exist) holds its place in
	// the role's room until the server has closed the socket, as the
	// provider's own do (startingConn): PostgreSQL counts that backend
	// against the role's CONNECTION LIMIT until it exits, and freed when
	// pgx returned the error, the place went to the provider's next
	// connection, which the server refused (53300, 2 of 30 in
	// TestReview14ProbeRefusedAtStartupKeepsThePlaceUntilTheBackendExits).
	// The dial's own errors are kept as they are: try tells a publisher
	// that did not answer by them.
	dial := cfg.DialFunc
	cfg.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &startingConn{Conn: c, timeout: publisherProbeTimeout, dialed: time.Now()}, nil
	}
	startedOnValidate(&cfg.Config)
	// A connection the publisher refuses for too many connections shrinks
	// the rooms, as the provider's pools' do (newPool).
	cfg.Tracer = refusalTracer{QueryTracer: cfg.Tracer, refused: func() { pp.room.refused(pp.pool) }}
	pcfg.MaxConns = publisherPoolConns
	pcfg.MinConns = 0
	pcfg.MaxConnIdleTime = publisherPoolIdle
	pcfg.HealthCheckPeriod = publisherPoolIdleCheck // when idle connections are closed
	// As the provider's pools (newPool): a place of the role's
	// CONNECTION LIMIT is taken before a connection is made, and freed
	// once its session has ended on the server. pp.pool is set before
	// the pool makes its first connection (MinConns is 0).
	server := publisherAddress(pp.params)
	pcfg.BeforeConnect = func(ctx context.Context, _ *pgx.ConnConfig) error {
		return pp.room.admit(ctx, pp.pool, publisherProbeTimeout, publisherProbeTimeout, server, cfg.User)
	}
	pcfg.AfterConnect = func(ctx context.Context, c *pgx.Conn) error {
		if unmeasured, _ := pp.room.connected(pp.pool); unmeasured {
			if _, _, err := pp.room.measure(ctx, pp.pool, c, publisherProbeTimeout); err != nil {
				// pgxpool closes it without BeforeClose.
				pp.room.closeHeld(pp.pool, c, publisherProbeTimeout)
				return err
			}
		}
		return nil
	}
	pcfg.BeforeClose = func(c *pgx.Conn) {
		if _, ok := pp.closing.LoadAndDelete(c); ok {
			return
		}
		pp.room.ending(pp.pool)
		if pp.room.limited(pp.pool) || pp.sparing.Load() {
			closeAndWait(c, publisherProbeTimeout)
		}
		pp.room.ended(pp.pool)
	}
	return pgxpool.NewWithConfig(context.Background(), pcfg)
}
