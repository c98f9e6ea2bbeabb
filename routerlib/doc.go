// Package routerlib sends an application's reads to PostgreSQL hot-standby
// replicas and its writes to the primary, exactly as the router file written
// by the pgreplication Terraform provider declares.
//
// A [Router] has [pgxpool.Pool]'s query surface, so it replaces a pool, or
// serves as sqlc's DBTX, without other changes:
//
//	r, err := routerlib.Open(ctx, "/etc/myapp/router.json")
//	if err != nil {
//		return err
//	}
//	defer r.Close()
//	r.Exec(ctx, "INSERT INTO books (title) VALUES ($1)", title) // the primary
//	rows, err := r.Query(ctx, "SELECT title FROM books")         // a replica
//
// # How a call is routed
//
// To the primary: writes, DDL and [Router.CopyFrom]; locking reads (FOR
// UPDATE, FOR SHARE…); SELECT … INTO; CTEs that modify data; calls to
// functions that change server or session state or cannot run on a standby
// (see below); every [Router.Begin], and [Router.BeginTx] unless it is read
// only and not serializable; a batch with any write, or that begins a
// transaction that is not so; anything the classifier does not recognise.
// To a replica: SELECT, VALUES, TABLE, SHOW and EXPLAIN of those, and
// [Router.BeginTx] with [pgx.ReadOnly] at read committed or repeatable
// read, and a batch of reads that begins such a transaction
// ([pgx.Batch.BeginTx], or BEGIN … READ ONLY first). A read-only
// serializable transaction, deferrable or not, goes to the primary: a hot
// standby refuses serializable mode (SQLSTATE 0A000). Each SQL string is
// classified once, by a lexer that understands comments, string constants
// (standard, E'…', U&'…'), dollar quoting and quoted identifiers, and the
// result is cached.
// The lexer assumes standard_conforming_strings is on, PostgreSQL's default
// and what pgx requires.
//
// A call to a function that changes state goes to the primary, because a
// standby accepts it without error and acts on whichever replica the read
// landed on: nextval, setval, currval; set_config and setseed (session
// settings on a pooled connection); advisory locks; replication slots
// (pg_create_*_replication_slot, pg_drop_replication_slot, …); recovery
// control (pg_wal_replay_pause and _resume, pg_promote: run these on a
// connection to the standby you mean); pg_terminate_backend,
// pg_cancel_backend, pg_reload_conf, pg_stat_reset*; large objects;
// txid_current and pg_current_wal_*. Every volatile function in pg_catalog
// is either one of these or on a reviewed read-safe list (random,
// clock_timestamp, pg_sleep, pg_is_in_recovery, size and file readers…),
// and a test reads pg_proc on every supported major version to keep it so.
// A user-defined function is not known: if it writes, the safety net below
// catches it; if it changes only session or server state, call it with
// [Primary].
//
// Replica pools run with default_transaction_read_only, so a write the
// classifier cannot see (a user function that inserts) fails there with
// SQLSTATE 25006; the router retries it on the primary and remembers it as
// a write. A standby refuses it anyway; the setting matters once someone
// else promotes the replica, until the router's next check sees it. When
// a pooler drops the setting (PgBouncer, below), which the server shows
// at connect (PostgreSQL 14 on), each Query, QueryRow, Exec and SendBatch
// on that replica's pool goes with
// set_config('transaction_read_only', 'on', true) before it, in the same
// round trip and implicit transaction, so the promoted replica refuses
// the write all the same. A read whose replica connection fails is retried on another
// node: no read fails because one replica died. A read the primary serves
// (the fallback, or read-your-writes) runs on its read-write session,
// where such a function's write succeeds: it is retried only if the
// connection failed before the statement was sent, never on the node that
// failed.
//
// [Primary] forces the primary for one context, [Route] picks a route
// declared in the file, and [Router.MigrationConn] gives a connection that is
// only ever the primary's.
//
// # Session state
//
// As with [pgxpool.Pool], each call through [Router.Exec] or
// [Router.Query] runs on whichever pooled connection is free: a SET, a
// temporary table, a session advisory lock or a LISTEN made that way lands
// on an arbitrary primary connection, where a later, unrelated call may
// meet it. For work that needs one session, [Router.Acquire] returns a
// primary connection held until Release, like [pgxpool.Pool.Acquire];
// [Router.MigrationConn] does the same for migrations and shows in a
// [Tracer] as [OpMigrate]. In read_your_writes mode, releasing either
// records the primary's position in the context's [Session], so the next
// read sees the migration or the session's writes.
//
// # Health and failover
//
// A monitor checks every node each health.interval, each node on its own
// schedule so that one that hangs delays no other's checks: reachability,
// role, replay position and lag. Setting up a connection, for the checks
// and the pools alike, is bounded by health.connect_timeout (dial, TLS and
// authentication; 2s by default), a check's query by health.timeout (1s).
// A call on the writer that needs a new connection which the server
// refuses for want of room (SQLSTATE 53300: max_connections, or the
// role's or database's CONNECTION LIMIT, taken by other clients) was not
// sent, and waits for room (a connection of the pool coming back, or the
// server taking a new session), within the caller's context and
// health.connect_timeout; then it fails naming the limit and the fix
// (raise it, or lower pool.max_conns). The primary stays as it is: it
// answered, it is full, not down. A wait ends early when the checks take
// the writes from the node meanwhile (it was demoted, or seen in
// recovery): the call, not sent, goes to the node taking them now, or
// fails with [ErrNoPrimary] when none does. A replica that refuses so
// leaves read rotation at once instead, and the read runs elsewhere.
// A node fails one check for each interval in which it does not answer
// within health.timeout, so a node that hangs (a frozen VM, a network black
// hole) is ejected within eject_after × interval + timeout: 3 × 1s + 1s =
// 4s with the defaults. A late check of a node that answered a call on the
// pools' sessions within health.timeout during that interval (a reply or
// an ERROR: a FATAL that ends the session, the server's or PgBouncer's,
// is no answer) fails nothing: the node neither hangs nor answers slowly,
// and its check is late because the machine is busy (a client starved of
// CPU); ejecting it would fail the reads it serves, or move them all to
// the primary. A node
// that hangs answers on no session, and one that answers slowly (a
// latency spike) answers no call in time. A node that answers calls but
// none of its checks for an interval and eject_after × interval + timeout
// (the monitor's connection lost by a firewall or NAT, a check waiting on
// a stalled pg_wal volume; each interval checks on a new session) has an
// unknown role: it may have been promoted, so no other node takes over
// the writes until a check of it answers (the writer in place keeps
// them). A replica with max_lag leaves rotation at once when no check has
// answered for max_lag and an interval: its lag is unknown. On an ejection every connection still open to the node is closed
// (one with a call in flight first gets the cancel request pgx sends for
// a call that failed, so that its statement does not run on once the node
// answers again, through PgBouncer too):
// reads in flight there run again on another node, and a write in flight
// there (Exec, Query, QueryRow, CopyFrom, a batch outside a transaction)
// fails with [ErrMaybeCommitted] (it is never replayed), as does the
// Commit of a transaction from [Router.BeginTx] whose connection fails
// after the COMMIT went out (a statement of such a transaction says it did
// not commit). Calls the caller's own deadline or cancel ends are never
// retried; a write or COMMIT it cuts after it went out is an
// [ErrMaybeCommitted] too (the cancel request pgx then sends the server
// can come after the commit). [Router.Close] returns within health.timeout and a second, even
// with calls stuck on a node that hangs or connections, rows and
// transactions the application still holds (their next use then fails);
// a call still waiting then (for a pool's connection the application
// holds, for a replica to replay a session's writes, for a restarted
// primary, for a Ping's answer) ends with [ErrClosed].
//
// A replica leaves rotation after eject_after failed checks, at once when
// its lag exceeds max_lag or max_lag_bytes (max_lag is the age of the
// last transaction it replayed, read on the primary's clock: the monitor
// takes each server's clock offset from the router's, as its checks see
// it, off, so a standby whose clock runs slow is not taken for caught
// up), or at once when a query or a batch of reads finds its connection
// broken (the read goes to another node); it returns after readmit_after good checks in a
// row (answered within health.timeout: a late answer is none). When
// a pool could not connect to a standby, its next checks connect anew
// rather than use the monitor's session, which a postmaster that hangs
// (or refuses new sessions) leaves answering: it stays out until the node
// takes new sessions again. Two ways a server ends a session are
// exceptions to leaving at once. FATAL 57P01 (admin_shutdown):
// pg_terminate_backend() sends it to one session of a healthy server, and
// a shutdown to every session, so the node is checked at once instead. A
// good check keeps the node. A check the server refuses (a shutting-down
// server answers new connections with 57P03, or nothing listens) takes it
// out of rotation, and from the writes, at once; one that does not answer
// within health.timeout, or whose own sessions the server ends each time
// too (an operator's script ending the application's sessions), counts as
// one failed check toward eject_after, as on schedule, since a busy
// machine answers late. The read runs again (a batch of reads outside a
// transaction the caller holds too, whole, while none of its results was
// read), on the same node too when no other can take it, on a session made
// after the ending; a write is not (it may have committed). A read on the
// primary's read-write session (the fallback, a read_your_writes read
// that sticks to the primary, a read-only batch there) runs again only
// when none of it went out (for a batch, pgx met the ending in the round
// trip in which it prepares the batch's statements): once it went out, a
// function it called may have written, and its error says it was not run
// again for that reason. FATAL 57P05 (idle_session_timeout, PostgreSQL 14 on): the
// server ends a session idle longer than the timeout while it waits for
// the next command, and the statement that then meets the closed session
// never ran: reads and writes alike run again (a batch outside a
// transaction too, sent whole again when its first result meets it, and
// a batch of reads that begins a read-only transaction; a CopyFrom when
// pgx had read nothing of its source yet, which it reads only as it sends
// the COPY statement; a CopyFrom whose source pgx had read, and a write
// batch that begins a transaction, say they did not run, or commit), and
// the node stays as it was. After either, each of the node's sessions is pinged before its
// next use, those in use at the time too (a statement that had its reply
// before the server ended its session hands back a session that is gone),
// so that the call that runs again does not meet another one that was
// ended: a read fails only if its session is ended again on each of its
// attempts. A check whose own session was ended runs again on a new one
// before it counts as failed. (pgxpool pings a session idle more than a
// second before handing it out, so only an idle_session_timeout under a
// second is ever met.) Only a failure of the node or of the connection to
// it counts: an error the server sent for the statement (whatever its
// SQLSTATE, such as class 08 when dblink inside the server cannot
// connect) is the caller's, returned
// as is and never retried elsewhere; so is the server ending the session
// because the statement's transaction ran past transaction_timeout or
// idle_in_transaction_session_timeout (FATAL 25P04, 25P03), which rolled
// it back. A replica that is down at start joins when it comes up. Writes go to the node the servers report out of
// recovery, whatever role the file declares; while there is none they fail
// with [ErrNoPrimary] and never reach a replica. For eject_after × interval
// + timeout after the checks took the writes off a node (4s with the
// defaults), a write that finds none (and so [Router.Acquire],
// [Router.MigrationConn], [Router.Ping], and a [SessionMiddleware] asking
// the primary its position) asks for a check now of each unreachable node
// last seen out of recovery and waits for it, at most health.timeout and
// never past its context; a reload meanwhile does not end the wait, which
// goes on on the new topology within the same bound. So a primary
// restarted fast (pg_ctl restart, or its postmaster killed and started
// again) takes the write as soon as a check sees it back, with every rule
// below applied, rather than at the next scheduled check. No such wait
// when a rule below keeps the writes from every node.
//
// Split brain: when more than one declared node is out of recovery (an old
// primary restarted after a standby was promoted, and nobody fenced it),
// writes go to the one on the highest WAL timeline, which a promotion
// starts, read from its current WAL file name. A node that was last seen
// out of recovery on a later timeline, even if unreachable now, keeps an
// old primary from taking writes. When the timelines are equal, or one
// cannot be read, no node takes writes: [ErrNoPrimary] names both nodes,
// an error is logged, and [NodeStat].SplitBrain says why, until one is
// fenced. A node that loses the writes has its connections closed as soon
// as a check finds it answering out of recovery while another holds them
// (at once if it still answers, or when it comes back from a freeze or a
// restart), on every server the router knows at its address, including
// one a reload replaced or took out of the file once another server holds
// the writes: a connection the application holds there ([Router.Acquire],
// [Router.MigrationConn], a transaction begun before) fails at its next
// use, with the node and why, instead of writing to the fork; acquire or
// begin again. A statement in flight there gets [ErrMaybeCommitted]. The
// node opens no new connection until it has the writes again or answers
// in recovery. A reload keeps what the router knows, so it never moves writes
// back to an old primary. A router started while the newer primary is
// unreachable has no such memory, but the standbys that followed the
// promotion have its timeline: the one their WAL receiver receives, and a
// timeline history file in pg_wal, which stays after the promoted node goes
// down. A node out of recovery takes no writes while a standby shows a
// later timeline than its own. A standby behind a healthy primary is on
// the primary's timeline or an earlier one, so this never stops writes to
// it; a standby left on a later timeline (a promotion that was undone)
// does, until it is cloned again or leaves the router file, and so does a
// history file that restore_command fetched from a WAL archive after an
// abandoned promotion (the error names the file to remove). The router's
// user needs pg_monitor (or superuser) for the standbys to show either:
// without it the veto never applies, and a router started while the
// promoted node is down may write to an old primary that came back. A
// standby that never followed the promotion shows nothing either: fence
// old primaries.
//
// The standbys' pg_wal also keeps reads off a standby that does not follow
// the primary's timeline: its replay position cannot be compared with the
// new primary's, and past the point where the new timeline forked it holds
// writes the promotion lost and lacks every write since. A standby that
// follows the primary has a WAL segment file of the primary's timeline in
// pg_wal (it streams or restores WAL into one, and keeps the one it
// replays), so one whose primary is away, or that replays from a WAL
// archive, stays in rotation. One left on an older timeline (not yet
// pointed at a promoted node) has no history file of the primary's
// timeline either, and leaves rotation ([EjectOldTimeline]); so does one
// pointed at the promoted node while it streams the old timeline up to the
// fork, until it receives WAL of the new one. One that fetched the history
// file but receives no WAL of the primary's timeline cannot follow it: it
// replayed its own timeline past the fork, such as an old primary restarted
// as a standby of the promoted node without pg_rewind, which PostgreSQL
// keeps serving reads of its diverged data. It leaves rotation
// ([EjectDiverged]), with an error logged that says what it shows (the
// fork and its replay position when its WAL receiver streamed the old
// timeline up to the fork), and comes back once it receives WAL of the
// primary's timeline: rewind it with pg_rewind or clone it again. A
// standby that lost its upstream while it streamed the old timeline
// towards the fork shows the same but is only old: it follows the primary
// once it streams again. The router tells it by the fork its WAL receiver
// showed at an earlier check (the end of the old timeline): replayed no
// further, it is out as [EjectOldTimeline], with no error; one whose
// receiver never showed the fork to a check reads as diverged, until it
// streams again. A standby is judged
// at each of its checks, and one in rotation again when the writes move to
// a promoted node, before they do, from its last check. These checks need
// pg_monitor (or superuser), as the veto does; without it the router logs
// once per standby that it cannot see its timelines and what to grant.
//
// A node of another cluster (another initdb: a wrong host in the router
// file, a standby cloned from another primary) is told by its system
// identifier (pg_control_system(), which every user may read), whatever
// its timeline: the cluster is the identifier most nodes that answer
// share (at least two, no other as common; remembered while they are
// down), else the primary's. A node whose identifier differs takes no
// reads and no writes ([EjectOtherCluster]; an error logged with both
// identifiers and the fix), so a "primary" of another cluster whose
// standbys are not in the file while the primary's are takes no writes
// ([ErrNoPrimary] names both identifiers). With one primary and one
// standby that disagree there is no majority: a Router that saw them
// agree keeps the identifier it remembers (a primary initialised again
// takes no writes; a standby of another cluster takes no reads), and one
// that did not (it has just started) cannot tell a primary initialised
// again from a standby of another cluster, so the standby takes no reads
// and no node takes writes ([ErrNoPrimary] names both identifiers and
// the fixes): writes never go to a node that may be of the wrong cluster.
// Clusters copied from one data directory (an image, a template) share an
// identifier and are not told apart by it; but a replica of the file out
// of recovery on the very timeline of the declared primary, while that
// primary takes the writes (or nothing does yet), was not promoted from
// it (a promotion starts a later timeline): it is such a copy started as
// a primary of its own (a standby rebuilt from the image), takes no reads
// and no writes ([EjectOtherCluster]; an error logged with the fix), and
// the primary keeps the writes; after a failover, or on another timeline,
// it is a promotion: a split brain, or an old primary, as above. On
// timeline 1, the cluster's first, which no promotion leads to, a replica
// of the file out of recovery was never promoted: while no node shows a
// later timeline (out of recovery now or when last seen, or a standby's
// WAL), whatever the declared primary shows (down, in recovery, or a
// Router just started that remembers nothing of it), it is a copy, the
// primary with the file's roles the wrong way round, or an old primary
// whose promoted node the Router cannot see, which nothing tells apart;
// it takes no reads and no writes, and [ErrNoPrimary] names it with the
// fix of each. Once a node shows a later timeline (a file updated after a
// failover declares the promoted node the primary and the old one a
// replica), it is an old primary behind the promotion, as above, and the
// message says to fence it. A standby promoted in a failover is on
// timeline 2 or later and takes the writes.
// Nor are two names of one server in
// the file (localhost and 127.0.0.1, a DNS alias), which its own check
// cannot see: nodes with the same identifier and postmaster start time
// are one server, taken once, and an error is logged.
// Not detected: a standby that diverged on a timeline of the same number
// as the primary's: two standbys promoted separately from one timeline
// are each on the next one (both out of recovery, that is split brain
// above), and when one is then pointed at the other without pg_rewind,
// it has WAL of the primary's timeline number and reads as following.
// Only the fork points in the two nodes' timeline history files differ,
// and reading those takes pg_read_server_files (or superuser), which the
// router does not ask for; PostgreSQL itself compares timeline numbers,
// not forks, and then stops replaying where the WAL does not line up,
// which max_lag or max_lag_bytes catch as lag once the primary writes.
// [Router.Stat] and a [Tracer] show what the router sees and decides.
//
// # Read-your-writes
//
// With consistency mode read_your_writes, a write made with a [Session] in
// its context records the primary's WAL position after it commits, in the
// same round trip: an INSERT, UPDATE, DELETE or MERGE (or a writing SELECT
// or WITH) goes as BEGIN, the write, COMMIT and the position query before
// one Sync; other single statements (DDL, VACUUM, CALL) as the write, a
// Sync, the position query and a second Sync; a transaction's Commit as
// COMMIT and the position query (afterwards the transaction refuses every
// call with [pgx.ErrTxClosed], as pgx's own does, its large objects
// included; on a connection with a query tracer of the application's set
// through [WithPoolConfig], the COMMIT goes through pgx, which that tracer
// sees, and the position query in a round trip of its own after it); a
// COMMIT of the transaction's own (queued in the batch
// that began it, or sent in a batch or a string of several statements
// through its Exec or SendBatch) reads the position in a round trip of
// its own once that batch or statement returns, on the transaction's
// connection (not one sent through its Query or Conn). A string of
// several statements, a batch,
// [Router.CopyFrom], and a call with pgx's query options (NamedArgs, an
// exec mode, result formats, which routerlib/stdlib's queries pass) read
// the position in a round trip of their own after the write. A write that
// fails but may have committed part of its work first (a procedure that
// commits and then raises, several statements with a COMMIT among them)
// still records a position past it; one whose outcome is unknown (its
// connection failed) or that committed but whose position could not be
// read (which returns no error: it is done) makes the session's next read
// ask the primary for its position first; so does a panic out of a handler
// of the application's (OnNotice, OnNotification, OnPgError) while the
// reply of a write or of a Commit is read, which the panic passes on, the
// connection released to the pool (which drops it). Such a cut write's
// backend may still be running its COMMIT (a deferred trigger's work, a
// lock it waits on), so the session settles only once the primary no
// longer runs the backends of its own connections cut with a call in
// flight (other sessions' cuts, and those of writes with no session, it
// does not wait for): until then its reads go to the primary, and
// [SessionMiddleware] holds the response (writing its header) until they
// ended, bounded by the request's context and 30 s after each cut. The
// router sends the server a cancel request for a connection it closes
// mid-reply, as pgx does for one whose context ended (and for a call in
// flight on a node cut off), so such a wait is short unless the cancel
// cannot reach the server. Through PgBouncer the backend cannot be told,
// so nothing is awaited there beyond the cancel, which PgBouncer forwards. A panic out of such a handler while any call's reply is
// read (Query, QueryRow, their rows'
// Close, Exec, a batch) passes on too and leaves no connection taken: the
// connection, its reply half read, is closed and the pool opens another.
// No write is sent twice unless
// the server refused, at its Bind, a statement the capture path prepared.
// Reads in that session go to a replica that has replayed that far, or to
// the primary until one has: there is no fixed time window. A read the
// primary serves so (or as the fallback) runs on its read-write session,
// where a user-defined function that writes, called in a SELECT, succeeds
// (a replica would refuse it: 25006, then run and recorded as a write). So
// such a read goes with a query of pg_current_xact_id_if_assigned() before
// the same Sync (one implicit transaction, one round trip; a sticky read
// took 1.2 times a strong-mode read's time), and when it wrote, the
// position after its commit is read and recorded (a second round trip, on
// those reads only). So does a batch of reads (the query queued last in
// the batch, one implicit transaction; one sent again there from a
// replica that failed under it too), a string of several statements
// through Exec (the query appended to the string, one simple query, as
// pgx sends it), named arguments (rewritten first, as pgx does), an
// exec mode, the call's or the pool's default (each sent as pgx sends it in that mode,
// [pgx.QueryResultFormatsByOID] applied where pgx applies it), and
// a string of several statements through Query in the simple protocol
// (the query appended to the string, as through Exec; the rows are its
// first statement's, as from pgx; in the other modes the server refuses
// to prepare it). Not so a string of several statements with arguments,
// which pgx interpolates into the text on the client, in code it does not
// export: capturing it would take a second implementation of that
// quoting of literals, where a slip is an injection, or a round trip of
// its own after every such read, wrote it or not. Nor a function that
// writes through another session (dblink) or leaves no transaction ID (a
// sequence). Call those with [Primary] (or in a transaction), which
// records them as writes, whatever they did. Like
// the captured writes, these reads go out through pgconn, beneath pgx: a
// pgx query tracer set with [WithPoolConfig] does not see them (a
// [Tracer] does). A read waits up to wait_timeout for a replica to catch
// up, and the reads waiting on one replica share one query of its replay
// position every 5ms, however many they are; with wait_timeout 0s a read
// goes to the primary at once when no replica has caught up. When none
// has after that wait and the primary itself is behind the session's
// position (a failover lost the write, or it was made on another
// cluster), the read goes to a replica that has replayed the primary's
// position, not to the primary. The session keeps its position (it may
// serve a Router of the other cluster too), so each such read waits
// wait_timeout first, until the new primary has written as much.
// A [SessionMiddleware] carries the session between HTTP requests: in a
// cookie for browsers, or in a request and response header for APIs. The
// value is signed with one of several keys of at least 32 bytes (the first
// signs, all verify, for rotation), carries its issue time and expires after
// MaxAge (five minutes by default), and is ignored when its LSN is ahead of
// the primary's position, so that no value can pin a user's reads to the
// primary: the position of the primary taking writes now, since after a
// failover that lost WAL, or a reload to another cluster, a new primary
// may be behind the old one's. The cookie is Secure by default, also behind a load balancer
// that terminates TLS.
//
// # Reload and observability
//
// [Open] watches the router file: a new version is validated, checked and
// replaces the old one atomically. A node whose connection settings did not
// change keeps its pools, its monitor connection and its health (the
// writer, ejections, replay positions, its health check in flight) and is
// not checked again, so a reload neither waits for it when it hangs nor
// delays its ejection. A new or changed node gets new pools (a changed one
// at the same address keeps its health) and is checked before the swap: the
// reload waits for that check up to 2 × health.connect_timeout +
// health.timeout (for a node that hangs, health.connect_timeout: its
// connection's bound), after which a check still running goes on in the
// background.
// The pools of a removed or changed node close once the queries using them,
// on this topology or an older one, finish; it is checked until then, and
// if it stops answering (it froze as the file dropped it) its connections
// are cut after eject_after failed checks, so that those queries run
// elsewhere instead of waiting for it. An invalid file, or one whose
// declared primary refuses its user, password or database (as [New]
// refuses it), is reported through [WithOnReloadError] and the log, and
// the old configuration stays; it is read again when it next changes
// (its size, modification time, or status-change time: a chmod that makes
// it readable counts) or on [Router.Reload].
// [Router.Stat] reports each node; the promcollector subpackage exports it
// to Prometheus; [WithLogger] takes a [log/slog] logger.
//
// # Through PgBouncer
//
// A node in the router file may be a PgBouncer in front of the server, in
// transaction pooling mode; routing, health checks, failover, the 25006
// retry and read-your-writes work through it (the tests run them through
// Debian's PgBouncer 1.18). What the application sets:
//
//   - pgx's exec mode, with [WithPoolConfig]: cfg.ConnConfig.DefaultQueryExecMode
//     = [pgx.QueryExecModeExec]. PgBouncer before 1.21 (or with
//     max_prepared_statements = 0) keeps no prepared statement from one
//     transaction to the next, and pgx's default mode prepares every
//     statement. The read-your-writes capture follows the pool's mode: in
//     any mode but the default it sends unnamed statements, still in one
//     round trip.
//   - In pgbouncer.ini: pool_mode = transaction, and
//     ignore_startup_parameters = default_transaction_read_only (replica
//     pools send it, and PgBouncer refuses a startup parameter it does not
//     know). PgBouncer then drops it: the router sees so at connect and
//     sends each read on that pool read only (see above), which needs
//     PostgreSQL 14 or later behind PgBouncer (an older server does not
//     report the setting, and a replica promoted behind the router's back
//     takes writes sent as reads until the next check). PgBouncer's
//     connect_query is no substitute: it applies to every server session
//     of the database, which the primary's write pool shares once a
//     replica is promoted.
//   - A user or database the server does not have: PgBouncer 1.18
//     reports them with its own SQLSTATE 08P01, not the server's 28P01,
//     28000 or 3D000, so [New] cannot tell them from an outage and does
//     not refuse them; the node stays unreachable, and
//     [ErrNoPrimary] and [Router.Stat] carry PgBouncer's message (such
//     as database "x" does not exist).
//   - PgBouncer's refusals of a call it never forwarded to a server (the
//     server's logins fail: "server login has been failing"; it cannot
//     connect; query_wait_timeout; max_client_conn), FATAL 08P01 with
//     PgBouncer's own message, fail a write with "the write was not
//     sent", never "may have committed", and a read runs again elsewhere.
//     They are no answer of the server: a primary's write so refused has
//     it checked at once, and neither they nor PgBouncer's answers to a
//     client's startup (it answers them itself while the server is down)
//     excuse a late check, with or without TLS to PgBouncer.
//   - PgBouncer before 1.19 (Debian 12's 1.18 included) exits, FATAL "bad
//     client state: 0" (pgbouncer#801), when the client of a cancel request
//     hangs up before the server has answered it, as a client giving up on
//     its cancel to a server that hangs does. Every cancel request of a
//     pool's connection stays open until the server answers it, up to 5
//     minutes, whoever gives up on it: pgx's own when a call's context
//     ends mid-reply (pgx waits 15 s for it), that of
//     [pgconn.CancelRequestContextWatcherHandler] if the application sets
//     it, and the router's for a connection it closes mid-reply (the call
//     waits 500 ms for it); nor does the router's cut-off of a node that
//     stopped answering close it. So none takes the PgBouncer down when a
//     frozen node comes back. The health monitor's own connection is not
//     covered (its check would have to be running on the server as it
//     froze): run PgBouncer 1.19 or later, or under a service manager that
//     restarts it (Restart=on-failure; Debian's unit sets none).
//   - PgBouncer's query_timeout (FATAL 08P01 "query timeout") is the
//     statement's, as statement_timeout's 57014 is: the node stays in
//     rotation and keeps the writes, and a read is not run again (it
//     would run as long on the next node): one slow read took every
//     replica out in turn before. The node is checked at once, so a
//     server that hangs behind PgBouncer, whose calls meet the timeout
//     too, leaves rotation as any node that hangs does, within
//     eject_after × interval + timeout; a read there fails after
//     query_timeout meanwhile. PgBouncer closes the server
//     session but the server runs the statement to its end, so a write
//     so ended fails with [ErrMaybeCommitted], and may commit after the
//     error: a read back at once showed no row, one 2 s later the row.
//   - A pg_terminate_backend() pass over a replica's server sessions: a
//     read whose session it ended runs again on a new client session,
//     which PgBouncer may hand a server session the same pass ends next,
//     so the retry goes to another replica when one can serve the read.
//     With a single replica it goes back, and one pass can end two
//     attempts of one read (1 read in 154 that ran again in a test of 100
//     passes under six readers; none failed: a read has as many attempts
//     as there are nodes, plus one). PgBouncer's server_check_delay = 0 checks a
//     server session before each transaction, which the pass may reach
//     just after, and costs a round trip per transaction: it does not
//     close this (5 in 455 with its default of 30 s in the same test).
//   - Sizes: per process, each node takes up to pool.max_conns client
//     connections from its PgBouncer (twice on a promoted replica, which
//     keeps its read pool) plus one for the health monitor, so
//     max_client_conn must cover processes × (max_conns + 1); the server
//     connections are PgBouncer's default_pool_size.
//   - The health checks share those server connections: when the
//     application's transactions hold all default_pool_size of them, a
//     check waits behind them, and one that waits past health.timeout is
//     a node that does not answer (eject_after of them eject it and cut
//     its calls off, failing long writes on a healthy primary with
//     [ErrMaybeCommitted]). Declare a PgBouncer database of the checks'
//     own for each server, and point the monitor at it with
//     [WithMonitorConfig].
//
// Outside a transaction each statement may run on another server session,
// so session state (SET, advisory locks, temporary tables, LISTEN) needs a
// transaction, and migrations that need a session should run in one or
// connect to the server directly. routertest.WithPgBouncer starts a
// PgBouncer per node for tests, with the settings in
// routertest.PgBouncerSettings.
//
// # What it deliberately does not do
//
//   - It does not promote standbys, fence an old primary or repoint
//     replication: that is the job of Patroni, the operator or the
//     pgreplication provider. It only follows what the servers report.
//   - It does not parse SQL fully. The classifier errs towards the primary,
//     and the 25006 safety net catches writes it cannot see. That net does
//     not catch a user-defined function that changes only session or server
//     state, which a standby accepts: send such calls with [Primary].
//   - It does not replay writes: a write whose connection fails is returned
//     to the caller, never retried, because it may have committed
//     ([ErrMaybeCommitted]).
//   - It does not balance connections across processes or pool for other
//     languages; it is a library inside one Go process, not a proxy.
//   - It does not read passwords from the router file: they come from the
//     environment variable it names, libpq's passfile, or [WithPasswordFunc].
//   - It does not take a node's role from $PGTARGETSESSIONATTRS, which pgx
//     reads for every connection (an application that used libpq's
//     multi-host failover may still set it): the router ignores it and
//     learns each node's role from the server. The other PG* variables pgx
//     reads (PGOPTIONS, PGAPPNAME, PGSSLCERT…) apply to every node;
//     a router file's field wins over its variable.
package routerlib
