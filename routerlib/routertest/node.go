package routertest

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// A Node is one PostgreSQL server of a [Topology]: the primary or a standby.
// Its methods inject the faults a router must survive. Each call that talks
// to the server opens and closes its own connection.
type Node struct {
	Name    string // "primary", "replica-1", …: also its application_name upstream
	Host    string // always 127.0.0.1
	Port    int
	DataDir string
	// BouncerPort is where the node's PgBouncer listens ([WithPgBouncer]);
	// 0 without one.
	BouncerPort int

	t       *Topology
	bouncer *bouncer // nil without WithPgBouncer
}

// DSN returns a connection string for the postgres database as the postgres
// superuser, such as "postgres://postgres@127.0.0.1:5433/postgres?sslmode=disable".
func (n *Node) DSN() string { return n.DSNFor("postgres") }

// DSNFor returns a connection string for another database on the node.
func (n *Node) DSNFor(database string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.User("postgres"),
		Host:     n.Host + ":" + strconv.Itoa(n.Port),
		Path:     "/" + database,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// primaryConninfo is how a standby named n reaches primary.
func (n *Node) primaryConninfo(primary *Node) string {
	return fmt.Sprintf("host=%s port=%d user=postgres application_name=%s sslmode=disable",
		primary.Host, primary.Port, n.Name)
}

// errorf wraps err with the node's name and the tail of its server log, which
// usually says why.
func (n *Node) errorf(doing string, err error) error {
	tail := n.logTail()
	if tail == "" {
		return fmt.Errorf("routertest: %s: %s: %w", n.Name, doing, err)
	}
	return fmt.Errorf("routertest: %s: %s: %w\n--- last lines of %s ---\n%s", n.Name, doing, err, n.logPath(), tail)
}

// Connect opens a connection to the node's postgres database. The caller
// closes it.
func (n *Node) Connect(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.Connect(ctx, n.DSN())
	if err != nil {
		return nil, fmt.Errorf("routertest: %s: %w", n.Name, err)
	}
	return conn, nil
}

// Exec runs one statement on the node. Server errors stay reachable with
// [errors.As] and *[pgconn.PgError].
func (n *Node) Exec(ctx context.Context, sql string, args ...any) error {
	conn, err := n.Connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		return fmt.Errorf("routertest: %s: %w", n.Name, err)
	}
	return nil
}

// QueryRow runs a query on the node when the returned row is scanned, as
// [pgx.Conn.QueryRow] does; it returns [pgx.ErrNoRows] (wrapped) when there is
// no row.
func (n *Node) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return &row{n: n, ctx: ctx, sql: sql, args: args}
}

type row struct {
	n    *Node
	ctx  context.Context
	sql  string
	args []any
}

func (r *row) Scan(dest ...any) error {
	conn, err := r.n.Connect(r.ctx)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(r.ctx))
	if err := conn.QueryRow(r.ctx, r.sql, r.args...).Scan(dest...); err != nil {
		return fmt.Errorf("routertest: %s: %w", r.n.Name, err)
	}
	return nil
}

// running reports whether the node's server is up, by pg_ctl status.
func (n *Node) running(ctx context.Context) (bool, error) {
	err := n.t.command(ctx, "pg_ctl", "status", "-D", n.DataDir).Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return true, nil
	case errors.As(err, &exit) && (exit.ExitCode() == 3 || exit.ExitCode() == 4):
		return false, nil // 3: not running; 4: no data directory
	default:
		return false, n.errorf("pg_ctl status", err)
	}
}

// Start starts the node's server, if it is not running, and returns once it
// accepts connections. A standby then connects to its primary by itself; use
// [Node.WaitStreaming] to wait for that.
func (n *Node) Start(ctx context.Context) error {
	if up, err := n.running(ctx); err != nil || up {
		return err
	}
	err := n.t.run(ctx, "pg_ctl", "start", "-w", "-s", "-t", timeoutSeconds(ctx),
		"-D", n.DataDir, "-l", n.logPath())
	if err != nil {
		return n.errorf("starting", err)
	}
	return nil
}

// Stop shuts the node's server down cleanly (pg_ctl -m fast: sessions are
// cut, a primary first sends its standbys all of its WAL). A stopped node
// refuses connections. Stopping a stopped node does nothing.
func (n *Node) Stop(ctx context.Context) error {
	return n.stop(ctx, "fast")
}

func (n *Node) stop(ctx context.Context, mode string) error {
	if err := n.Thaw(); err != nil { // a frozen server cannot shut down
		return err
	}
	if _, err := os.Stat(filepath.Join(n.DataDir, "postmaster.pid")); os.IsNotExist(err) {
		return nil
	}
	if up, err := n.running(ctx); err != nil || !up {
		return err
	}
	err := n.t.run(ctx, "pg_ctl", "stop", "-w", "-s", "-m", mode, "-t", timeoutSeconds(ctx), "-D", n.DataDir)
	if err != nil {
		// A server already shutting down (a smart shutdown a test asked
		// for, which ends when its last session does) may finish between
		// the check above and pg_ctl's own: then it is stopped, as asked.
		if _, serr := os.Stat(filepath.Join(n.DataDir, "postmaster.pid")); os.IsNotExist(serr) {
			return nil
		}
		return n.errorf("stopping", err)
	}
	return nil
}

// Restart stops and starts the node's server.
func (n *Node) Restart(ctx context.Context) error {
	if err := n.Stop(ctx); err != nil {
		return err
	}
	return n.Start(ctx)
}

// Reinit replaces the node's cluster with a new one at the same address,
// as an operator who rebuilds a server from scratch or restores an old
// backup would: it stops the node, replaces its data directory with a copy
// of routertest's initdb template (timeline 1, WAL from the start, no data;
// the system identifier of every routertest cluster of these binaries) and
// starts it as a primary. Its standbys, which follow the old cluster, stop
// replicating from it.
func (n *Node) Reinit(ctx context.Context) error {
	if err := n.Stop(ctx); err != nil {
		return err
	}
	template, err := n.t.ensureTemplate(ctx)
	if err != nil {
		return err
	}
	if err := os.RemoveAll(n.DataDir); err != nil {
		return fmt.Errorf("routertest: %s: %w", n.Name, err)
	}
	if err := n.t.copyDataDir(template, n.DataDir, coldCopy); err != nil {
		return fmt.Errorf("routertest: %s: copying the template cluster %s: %w", n.Name, filepath.Dir(template), err)
	}
	if err := n.t.configureNode(n); err != nil {
		return fmt.Errorf("routertest: %s: %w", n.Name, err)
	}
	return n.Start(ctx)
}

// Promote turns a standby into a primary and returns once it is out of
// recovery and accepts writes. To fail over as production does, Stop the old
// primary first.
func (n *Node) Promote(ctx context.Context) error {
	var promoted bool
	wait, _ := strconv.Atoi(timeoutSeconds(ctx))
	if err := n.QueryRow(ctx, "SELECT pg_promote(true, $1)", wait).Scan(&promoted); err != nil {
		return n.errorf("promoting", err)
	}
	if !promoted {
		return n.errorf("promoting", errors.New("pg_promote did not finish in time"))
	}
	return poll(ctx, func() (bool, error) {
		var inRecovery bool
		err := n.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&inRecovery)
		return err == nil && !inRecovery, nil
	})
}

// PauseReplay stops a standby from applying WAL (it keeps receiving it) and
// returns once replay is paused: new data on the primary stays invisible here
// until ResumeReplay.
func (n *Node) PauseReplay(ctx context.Context) error {
	if err := n.Exec(ctx, "SELECT pg_wal_replay_pause()"); err != nil {
		return err
	}
	query := "SELECT pg_get_wal_replay_pause_state() = 'paused'"
	if n.t.Version < 14 {
		query = "SELECT pg_is_wal_replay_paused()"
	}
	err := poll(ctx, func() (bool, error) {
		var paused bool
		err := n.QueryRow(ctx, query).Scan(&paused)
		return paused, err
	})
	if err != nil {
		return n.errorf("pausing replay", err)
	}
	return nil
}

// ResumeReplay lets a paused standby apply WAL again.
func (n *Node) ResumeReplay(ctx context.Context) error {
	return n.Exec(ctx, "SELECT pg_wal_replay_resume()")
}

// SetApplyDelay makes a standby apply each commit d after the primary made
// it (recovery_min_apply_delay, with ALTER SYSTEM and a reload); 0 removes
// the delay. The setting survives restarts.
func (n *Node) SetApplyDelay(ctx context.Context, d time.Duration) error {
	value := strconv.FormatInt(d.Milliseconds(), 10) + "ms"
	if err := n.Exec(ctx, "ALTER SYSTEM SET recovery_min_apply_delay = '"+value+"'"); err != nil {
		return err
	}
	return n.reload(ctx, "recovery_min_apply_delay", strconv.FormatInt(d.Milliseconds(), 10))
}

// reload makes the server re-read its configuration and waits until a new
// session sees setting at want (in the setting's base unit), so that the
// server processes have it too.
func (n *Node) reload(ctx context.Context, setting, want string) error {
	if err := n.Exec(ctx, "SELECT pg_reload_conf()"); err != nil {
		return err
	}
	var got string
	err := poll(ctx, func() (bool, error) {
		err := n.QueryRow(ctx, "SELECT setting FROM pg_settings WHERE name = $1", setting).Scan(&got)
		return got == want, err
	})
	if err != nil {
		return n.errorf(fmt.Sprintf("reloading %s = %s (still %q)", setting, want, got), err)
	}
	return nil
}

// WaitReplayed returns once the node has replayed the WAL up to lsn (from
// [Topology.CurrentLSN]), so that data committed before it is visible here,
// or when ctx ends. On a node that is not in recovery everything it has
// written counts as replayed.
func (n *Node) WaitReplayed(ctx context.Context, lsn string) error {
	const query = `SELECT CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_flush_lsn() END >= $1::pg_lsn,
		coalesce(pg_last_wal_replay_lsn()::text, '')`
	var conn *pgx.Conn
	defer func() {
		if conn != nil {
			conn.Close(context.WithoutCancel(ctx))
		}
	}()
	var replayed string
	err := poll(ctx, func() (bool, error) {
		if conn == nil || conn.IsClosed() {
			var err error
			if conn, err = n.Connect(ctx); err != nil {
				conn = nil
				return false, nil // a restarting node: try again
			}
		}
		var done bool
		if err := conn.QueryRow(ctx, query, lsn).Scan(&done, &replayed); err != nil {
			if ctx.Err() != nil {
				return false, nil
			}
			conn.Close(ctx)
			return false, nil
		}
		return done, nil
	})
	if err != nil {
		return n.errorf(fmt.Sprintf("waiting to replay %s (replayed %s)", lsn, replayed), err)
	}
	return nil
}

// WaitStreaming returns once the standby streams from its upstream: its WAL
// receiver is streaming and the upstream's pg_stat_replication shows it
// caught up (state streaming), such as after Start or Follow.
func (n *Node) WaitStreaming(ctx context.Context) error {
	return n.waitStreamingFrom(ctx, 0)
}

// waitStreamingFrom waits for streaming from the server on port, or from any
// server when port is 0.
func (n *Node) waitStreamingFrom(ctx context.Context, port int) error {
	err := poll(ctx, func() (bool, error) {
		var from, tli int
		err := n.QueryRow(ctx, `SELECT coalesce(sender_port, 0), coalesce(received_tli, 0)
			FROM pg_stat_wal_receiver WHERE status = 'streaming'`).Scan(&from, &tli)
		if err != nil || from == 0 || port != 0 && from != port {
			return false, nil
		}
		// After a promotion the follower first streams the old timeline
		// up to the switch point, then reconnects for the new one: it
		// only streams for good once it receives the upstream's current
		// timeline (known on a primary from its WAL file name).
		upstream := &Node{Name: "upstream", Host: n.Host, Port: from, t: n.t}
		var caughtUp bool
		var upstreamTLI int
		err = upstream.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_stat_replication
			WHERE application_name = $1 AND state = 'streaming'),
			CASE WHEN pg_is_in_recovery() THEN 0
			     ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END`, n.Name).Scan(&caughtUp, &upstreamTLI)
		return err == nil && caughtUp && (upstreamTLI == 0 || tli == upstreamTLI), nil
	})
	if err != nil {
		return n.errorf("waiting until it streams", err)
	}
	return nil
}

// RequirePassword makes the node check role's password (scram-sha-256) on
// every TCP connection the role opens, replication connections included,
// ahead of the trust rule every other role keeps, and returns once the server
// refuses the role without a password. Create the role with a password
// under password_encryption = 'scram-sha-256'. Under trust a wrong or
// missing password goes unnoticed, so tests of password handling need this.
// Roles are cluster-wide but pg_hba.conf is not: call it on each node that
// must check.
func (n *Node) RequirePassword(ctx context.Context, role string) error {
	hba := filepath.Join(n.DataDir, "pg_hba.conf")
	old, err := os.ReadFile(hba)
	if err != nil {
		return n.errorf("reading pg_hba.conf", err)
	}
	quoted := `"` + strings.ReplaceAll(role, `"`, `""`) + `"`
	rules := "host all " + quoted + " 127.0.0.1/32 scram-sha-256\nhost replication " + quoted + " 127.0.0.1/32 scram-sha-256\n"
	if err := n.t.writeFile(hba, append([]byte(rules), old...)); err != nil {
		return n.errorf("writing pg_hba.conf", err)
	}
	if err := n.Exec(ctx, "SELECT pg_reload_conf()"); err != nil {
		return err
	}
	// The postmaster rereads pg_hba.conf when it handles the signal.
	cfg, err := pgx.ParseConfig(n.DSN())
	if err != nil {
		return err
	}
	cfg.User, cfg.Password = role, ""
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err = poll(ctx, func() (bool, error) {
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err == nil {
			conn.Close(ctx)
			return false, nil
		}
		var pgErr *pgconn.PgError
		return errors.As(err, &pgErr) && pgErr.Code == "28P01", nil // invalid_password
	})
	if err != nil {
		return n.errorf("waiting until it checks the password of "+role, err)
	}
	return nil
}

// Follow points a standby at another upstream, typically a standby just
// promoted, and returns once it streams from it. The standby must not have
// replayed WAL that the new primary never had: stop the old primary before
// promoting, as a failover does.
func (n *Node) Follow(ctx context.Context, primary *Node) error {
	conninfo := n.primaryConninfo(primary)
	if err := n.Exec(ctx, "ALTER SYSTEM SET primary_conninfo = "+quoteLiteral(conninfo)); err != nil {
		return err
	}
	if err := n.reload(ctx, "primary_conninfo", conninfo); err != nil {
		return err
	}
	if err := n.waitStreamingFrom(ctx, primary.Port); err != nil {
		return fmt.Errorf("following %s: %w", primary.Name, err)
	}
	return nil
}

// RestartAsStandby stops the node and starts it again as a hot standby of
// primary with its data directory as it is, without pg_rewind, as an
// operator (or an automation) does who points an old primary at the
// standby promoted in its place. When the node wrote WAL the promoted node
// never received, it cannot follow the new timeline (PostgreSQL logs that
// the new timeline forked off before its current recovery point) and
// serves its own diverged data read-only. It returns once the node accepts
// connections, not once it streams, which it may never do; use
// [Node.WaitStreaming] when it should.
func (n *Node) RestartAsStandby(ctx context.Context, primary *Node) error {
	if err := n.Stop(ctx); err != nil {
		return err
	}
	if err := n.t.configureStandby(n, primary); err != nil {
		return fmt.Errorf("routertest: %s: %w", n.Name, err)
	}
	return n.Start(ctx)
}

// Reclone rebuilds the node as a standby of primary: it stops it, replaces
// its data directory with an online copy of primary's (what pg_basebackup
// does) and returns once it streams from primary. It is how an operator
// repairs a standby that diverged from its primary.
func (n *Node) Reclone(ctx context.Context, primary *Node) error {
	if err := n.Stop(ctx); err != nil {
		return err
	}
	if err := os.RemoveAll(n.DataDir); err != nil {
		return fmt.Errorf("routertest: %s: %w", n.Name, err)
	}
	if err := n.t.backup(ctx, primary, n); err != nil {
		return err
	}
	return n.follow(ctx, primary)
}

// Rewind repairs the node as an operator repairs an old primary that
// wrote WAL the promoted node never received: it stops it (cleanly, as
// pg_rewind requires), runs pg_rewind against primary, which copies back
// what changed since the fork, starts it as a standby of primary and
// returns once it streams from it. The topology must run [WithRewind], and
// the binaries must have pg_rewind (Debian's do; the npm builds of
// tools/postgres/install.sh do not).
func (n *Node) Rewind(ctx context.Context, primary *Node) error {
	if _, err := os.Stat(filepath.Join(n.t.binDir, "pg_rewind")); err != nil {
		return fmt.Errorf("routertest: %s: %w: no pg_rewind in %s", n.Name, ErrNoBinaries, n.t.binDir)
	}
	// pg_rewind reads the source's timeline from its control file, which
	// a promotion updates only at its next checkpoint.
	if err := primary.Exec(ctx, "CHECKPOINT"); err != nil {
		return err
	}
	if err := n.Stop(ctx); err != nil {
		return err
	}
	source := fmt.Sprintf("host=%s port=%d user=postgres dbname=postgres sslmode=disable", primary.Host, primary.Port)
	if err := n.t.run(ctx, "pg_rewind", "--target-pgdata", n.DataDir, "--source-server", source); err != nil {
		return fmt.Errorf("routertest: %s: %w", n.Name, err)
	}
	return n.follow(ctx, primary)
}

// follow starts the stopped node as a standby of primary and returns once
// it streams from it.
func (n *Node) follow(ctx context.Context, primary *Node) error {
	if err := n.t.configureStandby(n, primary); err != nil {
		return fmt.Errorf("routertest: %s: %w", n.Name, err)
	}
	if err := n.Start(ctx); err != nil {
		return err
	}
	if err := n.waitStreamingFrom(ctx, primary.Port); err != nil {
		return fmt.Errorf("following %s: %w", primary.Name, err)
	}
	return nil
}

// quoteLiteral quotes s as an SQL string literal (standard_conforming_strings
// is on in every supported version).
func quoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// timeoutSeconds turns ctx's deadline into pg_ctl's -t (and pg_promote's
// wait_seconds), at least one second.
func timeoutSeconds(ctx context.Context) string {
	secs := int(defaultTimeout / time.Second)
	if deadline, ok := ctx.Deadline(); ok {
		secs = max(1, int(time.Until(deadline)/time.Second))
	}
	return strconv.Itoa(secs)
}

// isPortInUse reports whether a failed start was a port collision: the log
// written since offset says the address was taken.
func (n *Node) isPortInUse(offset int64) bool {
	data, err := os.ReadFile(n.logPath())
	if err != nil || int64(len(data)) < offset {
		return false
	}
	return strings.Contains(string(data[offset:]), "Address already in use")
}

func (n *Node) logSize() int64 {
	info, err := os.Stat(n.logPath())
	if err != nil {
		return 0
	}
	return info.Size()
}
