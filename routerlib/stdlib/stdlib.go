// Package stdlib serves a [routerlib.Router] as a database/sql driver, so
// that code written against [database/sql] (GORM, sqlx, ent, bun, a plain
// [*sql.DB]) routes every statement as the Router's own methods do.
//
//	r, err := routerlib.Open(ctx, "/etc/myapp/router.json")
//	if err != nil {
//		return err
//	}
//	defer r.Close()
//	db := sql.OpenDB(stdlib.NewConnector(r))
//	defer db.Close()
//	db.ExecContext(ctx, "INSERT INTO books (title) VALUES ($1)", title) // the primary
//	db.QueryContext(ctx, "SELECT title FROM books")                      // a replica
//
// Each statement goes through [routerlib.Router.Exec] or
// [routerlib.Router.Query]: it is classified, follows the read policy, the
// context's [routerlib.Primary], [routerlib.Route] and [routerlib.Session],
// is retried on the primary after a replica rejects it as a write (SQLSTATE
// 25006) and elsewhere when a replica's connection fails, and follows
// failover and reloads of the router file. [sql.DB.BeginTx] with ReadOnly
// starts the transaction on a replica, any other on the primary, and every
// statement of the transaction runs on that one connection. A prepared
// [sql.Stmt] is routed at each execution, never at Prepare: preparing
// contacts no server.
//
// GORM takes the *sql.DB as its connection:
//
//	gdb, err := gorm.Open(postgres.New(postgres.Config{Conn: db}), &gorm.Config{})
//
// Run its AutoMigrate with a [routerlib.Primary] context: the DDL goes to
// the primary in any case, but AutoMigrate first reads the catalogs, and a
// standby may not have replayed the previous migration yet.
//
// Arguments go to pgx unchanged, and results come back converted as pgx's
// own database/sql driver ([github.com/jackc/pgx/v5/stdlib]) converts them:
// the same Go types for each PostgreSQL type and the same column types.
//
// # What a *sql.Conn is here
//
// database/sql pools connections and hands one out for [sql.DB.Conn], for a
// transaction, or for one statement. Here those are cheap handles: the real
// connections live in the Router's pools, one per node, and each statement
// outside a transaction takes whichever connection its route gives it. Two
// statements on the same [*sql.Conn] may therefore run on different servers,
// or on different connections of one server. Session state does not carry
// from one to the next: a SET, a temporary table, a session advisory lock or
// a prepared statement made with PREPARE is gone (or, worse, left on a
// connection some other request gets). Work that needs one session runs in a
// transaction ([sql.DB.BeginTx], with SET LOCAL and ON COMMIT DROP), which
// holds one real connection from Begin to Commit, or on a connection taken
// from the Router itself: [routerlib.Router.Acquire] (the primary's, held
// until Release; [Conn.Router] reaches the Router from [sql.Conn.Raw]), or
// [routerlib.Router.MigrationConn] for schema changes.
//
// # A write's rows and a context that ends
//
// Exec, a transaction's statements and Commit say what the Router says:
// a write or COMMIT that the context's end cut after it went out fails
// with [routerlib.ErrMaybeCommitted], which matches the context's error
// too. The rows of a write read through [sql.DB.QueryContext] (INSERT …
// RETURNING, and so GORM's Create on PostgreSQL) cannot say so: when the
// context ends before they are all read, database/sql closes them itself,
// [sql.Rows.Next] returns false and [sql.Rows.Err] returns the context's
// error, context.Canceled or context.DeadlineExceeded, before anything
// the driver returns (Go's database/sql, Rows.awaitDone and Rows.Err).
// Reading the rows within QueryContext would not change that: Err is the
// context's error all the same. So such an error, from the rows of a
// write that had begun to return them, means that it may have committed
// (the red team saw all 100 rows of an INSERT … RETURNING committed
// behind context.Canceled): read back before writing again, or keep the
// context alive until the rows are read, or use [routerlib.Router.Query],
// whose rows say [routerlib.ErrMaybeCommitted].
//
// database/sql's own pool settings count handles, not server connections:
// size the Router's pools (pool.max_conns in the router file) for the load,
// and leave [sql.DB.SetMaxOpenConns] unlimited or at least as large.
//
// A panic out of a pgx handler of the application's (OnNotice,
// OnNotification, OnPgError) during a statement leaves no server connection
// taken (the Router closes it), but database/sql keeps the handle the panic
// passed as busy for good, and inside a [sql.Tx] it keeps the transaction's
// lock too, so that a deferred Rollback waits forever (Go's database/sql,
// Tx.rollback). Recover such panics in the handler, not above the call.
package stdlib

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/internal/driverhook"
)

// A Connector gives database/sql handles on a Router. Create the
// [*sql.DB] with sql.OpenDB(NewConnector(r)); closing the DB does not
// close the Router.
type Connector struct {
	r *routerlib.Router
}

var (
	_ driver.Connector = (*Connector)(nil)

	_ driver.Conn               = (*Conn)(nil)
	_ driver.ConnBeginTx        = (*Conn)(nil)
	_ driver.ConnPrepareContext = (*Conn)(nil)
	_ driver.ExecerContext      = (*Conn)(nil)
	_ driver.QueryerContext     = (*Conn)(nil)
	_ driver.Pinger             = (*Conn)(nil)
	_ driver.SessionResetter    = (*Conn)(nil)
	_ driver.Validator          = (*Conn)(nil)
	_ driver.NamedValueChecker  = (*Conn)(nil)

	_ driver.StmtExecContext  = (*Stmt)(nil)
	_ driver.StmtQueryContext = (*Stmt)(nil)
)

// NewConnector returns a Connector for r.
func NewConnector(r *routerlib.Router) *Connector { return &Connector{r: r} }

// Connect returns a new handle. It contacts no server.
func (c *Connector) Connect(context.Context) (driver.Conn, error) {
	return &Conn{r: c.r}, nil
}

// Driver returns a driver that opens nothing by name: a Router is built
// from a router file, not from a data source name.
func (c *Connector) Driver() driver.Driver { return noNameDriver{} }

type noNameDriver struct{}

func (noNameDriver) Open(string) (driver.Conn, error) {
	return nil, errors.New("routerlib/stdlib: there is no data source name for a Router; open the *sql.DB with sql.OpenDB(stdlib.NewConnector(router))")
}

// A Conn is database/sql's handle on the Router; see the package
// documentation for what that means for session state. database/sql uses a
// Conn from one goroutine at a time.
type Conn struct {
	r  *routerlib.Router
	tx *Tx // the transaction in progress, or nil; set by BeginTx, cleared by its end
	// txs serves the handle's transactions one after another, as rows
	// serves its statements: database/sql makes Commit and Rollback
	// under the handle's lock and never calls a driver's Tx after them,
	// and a handle has one transaction at a time.
	txs Tx
	// txsLent says that a database/sql Tx may still call txs: its
	// transaction was ended by the handle because its context had ended
	// (see endCancelled), and database/sql rolls such a transaction back
	// later, from a goroutine of its own. The handle's later transactions
	// then take a Tx of their own, which that Rollback cannot reach.
	txsLent bool
	scratch scratch // for its Rows' values
	// rows serves the handle's statements one after another: database/sql
	// makes every call on a handle under the handle's lock, Rows.Close
	// included, and never calls a driver's Rows after closing them, so
	// the next statement may take rows once the last one's are closed.
	// Rows still open when another statement runs on the same handle (a
	// *sql.Conn or a transaction reading two results at once) take a new
	// one. rowsOpen says whether rows are in use.
	rows     Rows
	rowsOpen bool
	// reader and args serve the handle's statements the same way: the
	// Router's reader of a read's rows (see driverhook), and room for a
	// statement's arguments, which its rows keep for a retry until they
	// are closed. Rows still open leave them to those rows.
	reader driverhook.Slot
	args   []any
}

// Router returns the Router the handle routes through, for use inside
// [sql.Conn.Raw].
func (c *Conn) Router() *routerlib.Router { return c.r }

// CheckNamedValue lets every argument through to pgx unchanged, as pgx's
// stdlib does: pgx encodes [driver.Valuer], slices, maps and its pgtype
// values itself.
func (c *Conn) CheckNamedValue(*driver.NamedValue) error { return nil }

// Prepare returns a statement that is routed when it executes.
func (c *Conn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

// PrepareContext returns a statement that is routed at each execution,
// like the same SQL run directly; it contacts no server.
func (c *Conn) PrepareContext(_ context.Context, query string) (driver.Stmt, error) {
	return &Stmt{conn: c, sql: query}, nil
}

// Close ends the handle. A transaction still open is rolled back.
func (c *Conn) Close() error {
	if c.tx != nil {
		return c.tx.Rollback()
	}
	return nil
}

// Begin starts a transaction on the primary.
func (c *Conn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

// BeginTx starts a transaction with [routerlib.Router.BeginTx]: on a
// replica when opts.ReadOnly is set, otherwise on the primary.
func (c *Conn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	c.endCancelled()
	if c.tx != nil {
		return nil, errors.New("routerlib/stdlib: a transaction is already in progress on this connection")
	}
	var o pgx.TxOptions
	switch sql.IsolationLevel(opts.Isolation) {
	case sql.LevelDefault:
	case sql.LevelReadUncommitted:
		o.IsoLevel = pgx.ReadUncommitted
	case sql.LevelReadCommitted:
		o.IsoLevel = pgx.ReadCommitted
	case sql.LevelRepeatableRead, sql.LevelSnapshot:
		o.IsoLevel = pgx.RepeatableRead
	case sql.LevelSerializable:
		o.IsoLevel = pgx.Serializable
	default:
		return nil, fmt.Errorf("routerlib/stdlib: isolation level %v: PostgreSQL has read uncommitted, read committed, repeatable read (snapshot) and serializable", sql.IsolationLevel(opts.Isolation))
	}
	if opts.ReadOnly {
		o.AccessMode = pgx.ReadOnly
	}
	tx, err := c.r.BeginTx(ctx, o)
	if err != nil {
		return nil, err
	}
	t := &c.txs
	if c.txsLent {
		t = new(Tx)
	}
	*t = Tx{ctx: ctx, tx: tx, conn: c}
	c.tx = t
	return t, nil
}

// endCancelled rolls back the handle's transaction when its context has
// ended, and says so in an error that matches [sql.ErrTxDone]; it returns
// nil, and does nothing, otherwise. database/sql rolls such a transaction
// back itself, but from a goroutine of its own, after Commit has already
// returned the context's error: until then a statement on the
// [*sql.Conn] the transaction was begun on reaches the handle as if it
// were one of the transaction's, and a write succeeded there, then
// vanished with the rollback. A statement can be either, so it runs in
// neither.
func (c *Conn) endCancelled() error {
	if c.tx == nil { // inlined: every statement outside a transaction asks
		return nil
	}
	return c.endCancelledTx()
}

// endCancelledTx is endCancelled for a handle in a transaction.
func (c *Conn) endCancelledTx() error {
	t := c.tx
	if t.ctx.Err() == nil {
		return nil
	}
	cause := context.Cause(t.ctx)
	c.txsLent = true
	// Under the ended context the ROLLBACK is not sent: pgx closes the
	// connection instead, and the server rolls the transaction back.
	_ = t.Rollback()
	return fmt.Errorf("routerlib/stdlib: the transaction on this connection was ended by its context (%v) and is rolled back; the statement did not run, in it or outside it (send it again if it was not the transaction's): %w", cause, sql.ErrTxDone)
}

// ExecContext runs query in the transaction in progress, or routes it with
// [routerlib.Router.Exec].
func (c *Conn) ExecContext(ctx context.Context, query string, named []driver.NamedValue) (driver.Result, error) {
	if err := c.endCancelled(); err != nil {
		return nil, err
	}
	args := c.arguments(0, named)
	var tag pgconn.CommandTag
	var err error
	if c.tx != nil {
		tag, err = c.tx.tx.Exec(ctx, query, args...)
	} else {
		tag, err = c.r.Exec(ctx, query, args...)
	}
	c.release(args)
	if err != nil {
		return nil, err
	}
	return driver.RowsAffected(tag.RowsAffected()), nil
}

// QueryContext runs query in the transaction in progress, or routes it
// with [routerlib.Router.Query]. It reads the first row before returning,
// so that a read whose replica fails before answering is retried elsewhere
// within this call.
func (c *Conn) QueryContext(ctx context.Context, query string, named []driver.NamedValue) (driver.Rows, error) {
	if err := c.endCancelled(); err != nil {
		return nil, err
	}
	args := c.arguments(1, named)
	args[0] = resultFormats
	var rows pgx.Rows
	var err error
	switch {
	case c.tx != nil:
		rows, err = c.tx.tx.Query(ctx, query, args...)
	case c.rowsOpen:
		rows, err = c.r.Query(ctx, query, args...)
	default:
		rows, err = driverhook.Query(c.r, ctx, query, args, &c.reader)
	}
	if err != nil {
		c.release(args)
		return nil, err
	}
	// Rows that gave a row have no error yet: only those that did not
	// are asked.
	more := rows.Next()
	if !more {
		if err := rows.Err(); err != nil {
			rows.Close()
			c.release(args)
			return nil, err
		}
	}
	r := &c.rows
	if c.rowsOpen {
		r = new(Rows)
	}
	c.rowsOpen = true
	r.rows, r.preloaded, r.more, r.ended, r.first, r.names, r.cols, r.conn = rows, true, more, false, true, nil, nil, c
	return r, nil
}

// Ping checks that the primary answers ([routerlib.Router.Ping]).
func (c *Conn) Ping(ctx context.Context) error { return c.r.Ping(ctx) }

// ResetSession keeps the handle: it holds no session state between uses.
// A handle returned with its transaction still open is discarded.
func (c *Conn) ResetSession(context.Context) error {
	if c.tx != nil {
		return driver.ErrBadConn
	}
	return nil
}

// IsValid reports whether database/sql may keep the handle: it may unless
// a transaction is still open on it. Implementing it (with ResetSession)
// also tells database/sql that a transaction rolled back because its
// context ended leaves the handle usable: without it, database/sql closes
// the handle then, and a [*sql.Conn] whose transaction's context was
// cancelled fails every later call with [sql.ErrConnDone], though a
// handle holds no session of its own.
func (c *Conn) IsValid() bool { return c.tx == nil }

// arguments returns the values of named, in order, after room for lead
// options: pgx numbers parameters $1, $2…, and like pgx's stdlib ignores
// their names. They take the handle's room when no rows of the handle are
// open (an allocation only when it grows), else a slice of their own.
func (c *Conn) arguments(lead int, named []driver.NamedValue) []any {
	n := lead + len(named)
	var args []any
	if c.rowsOpen {
		args = make([]any, n)
	} else {
		if cap(c.args) < n {
			c.args = make([]any, n)
		}
		args = c.args[:n]
		c.args = args
		clear(args[:lead]) // release left them nil; this is a statement's one or none
	}
	for i := range named { // by index: each NamedValue is five words
		args[lead+i] = named[i].Value
	}
	return args
}

// release lets go of the values in args once the statement is done with
// them, when args are the handle's room, so that the handle does not keep
// them alive until its next statement.
func (c *Conn) release(args []any) {
	if len(args) > 0 && len(c.args) > 0 && &args[0] == &c.args[0] {
		for i := range c.args { // a statement's few: cheaper than clear
			c.args[i] = nil
		}
		c.args = c.args[:0]
	}
}

// A Tx is a transaction on one of the Router's connections.
type Tx struct {
	ctx  context.Context // BeginTx's, which database/sql also watches
	tx   pgx.Tx
	conn *Conn
}

// Commit commits the transaction; in read_your_writes mode it records the
// commit's position in the context's session, as [routerlib.Router.BeginTx]
// does. When the connection fails after the COMMIT went out, the error is
// [routerlib.ErrMaybeCommitted]: the transaction may have committed.
func (t *Tx) Commit() error {
	ctx, tx := t.end()
	if tx == nil {
		return sql.ErrTxDone
	}
	return tx.Commit(ctx)
}

// Rollback rolls the transaction back.
func (t *Tx) Rollback() error {
	ctx, tx := t.end()
	if tx == nil {
		return sql.ErrTxDone
	}
	return tx.Rollback(ctx)
}

// end clears the handle's transaction, so that the handle keeps neither
// it nor its context once it is over, and returns what ending it needs.
func (t *Tx) end() (context.Context, pgx.Tx) {
	ctx, tx := t.ctx, t.tx
	t.conn.tx = nil
	*t = Tx{conn: t.conn}
	return ctx, tx
}

// A Stmt is SQL that database/sql prepared. It is routed at each
// execution, so a statement prepared once serves reads on every replica and
// follows failover.
type Stmt struct {
	conn *Conn
	sql  string
}

// Close does nothing: nothing was prepared on a server.
func (s *Stmt) Close() error { return nil }

// NumInput returns -1: the count is not known without asking a server, and
// the server checks it at execution.
func (s *Stmt) NumInput() int { return -1 }

// Exec is database/sql's old interface; ExecContext replaces it.
func (s *Stmt) Exec(args []driver.Value) (driver.Result, error) {
	return s.conn.ExecContext(context.Background(), s.sql, namedValues(args))
}

// Query is database/sql's old interface; QueryContext replaces it.
func (s *Stmt) Query(args []driver.Value) (driver.Rows, error) {
	return s.conn.QueryContext(context.Background(), s.sql, namedValues(args))
}

// ExecContext runs the statement like [Conn.ExecContext].
func (s *Stmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	return s.conn.ExecContext(ctx, s.sql, args)
}

// QueryContext runs the statement like [Conn.QueryContext].
func (s *Stmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	return s.conn.QueryContext(ctx, s.sql, args)
}

func namedValues(args []driver.Value) []driver.NamedValue {
	named := make([]driver.NamedValue, len(args))
	for i, v := range args {
		named[i] = driver.NamedValue{Ordinal: i + 1, Value: v}
	}
	return named
}
