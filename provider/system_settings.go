package provider

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/pgsql"
	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/statement"
)

// systemSetting is one server setting that a resource writes with ALTER
// SYSTEM. A nil Value resets it (ALTER SYSTEM RESET), so that
// postgresql.conf's value, or the built-in default, applies again.
type systemSetting struct {
	Name  string
	Value *string
}

func setTo(name, value string) systemSetting { return systemSetting{Name: name, Value: &value} }

func resetSetting(name string) systemSetting { return systemSetting{Name: name} }

// alterSystem writes settings to postgresql.auto.conf, one statement each
// (ALTER SYSTEM cannot run in a transaction block), then asks the server to
// reload its configuration. It stops at the first failure: an apply does
// not go on writing a configuration it cannot finish, and the settings it
// wrote before are written back as they were, because postgresql.auto.conf
// is read again by every reload, whoever sends it: a refused apply's first
// settings would otherwise take effect later, with no apply and nothing in
// the state (a standby's new primary_conninfo without its slot). A value
// that holds a secret must be declared in ctx (statement.WithSecrets), so
// that a failure does not show it (a secret keyword's value in a connection
// string, such as the settings written back may hold, is masked whether
// declared or not: package statement). A refusal for
// lack of privilege names the grant that fixes it. The reload is
// asynchronous: callers that read the settings back wait with pollUntil,
// and when the server does not take them (a configuration file with an
// error, a stopped postmaster) call notTaken with the returned change.
// wrote holds the values that the resource's prior state says its last
// apply wrote with ALTER SYSTEM (nil on create): see priorSettings.
func (s *server) alterSystem(ctx context.Context, pool *pgxpool.Pool, settings []systemSetting, wrote map[string]string) (systemChange, error) {
	names := make([]string, len(settings))
	for i, setting := range settings {
		names[i] = setting.Name
	}
	change, err := s.priorSettings(ctx, pool, names, wrote)
	if err != nil {
		return systemChange{}, err
	}
	for i, setting := range settings {
		if err := s.alterSetting(ctx, pool, setting); err != nil {
			return systemChange{}, s.undone(ctx, pool, systemChange{prior: change.prior[:i]}, err)
		}
	}
	if err := s.reloadConf(ctx, pool); err != nil {
		return systemChange{}, s.undone(ctx, pool, change, err)
	}
	return change, nil
}

// systemChange is what one alterSystem wrote: the settings as they were
// before it, which writeBack writes again.
type systemChange struct {
	prior []systemSetting
}

// names lists the settings of c for a message: "a", "a and b", "a, b and c".
func (c systemChange) names() string {
	names := make([]string, len(c.prior))
	for i, p := range c.prior {
		names[i] = p.Name
	}
	return andList(names)
}

// andList joins names for a message: "a", "a and b", "a, b and c".
func andList(names []string) string {
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

// priorSettings reads names as postgresql.auto.conf has them now, in the
// form writeBack writes them: a setting the file has is set to its value
// there again, and one it does not have is reset. pg_file_settings shows the
// file itself, to superusers (and roles granted it). Other roles read
// pg_settings: a setting whose value comes from postgresql.auto.conf is set
// to that value again, one that comes from elsewhere (a default,
// postgresql.conf) is reset, so that postgresql.conf's value applies again
// as it did. pg_settings names the file (sourcefile) only to roles with
// pg_read_all_settings: for a role without it, a setting that comes from a
// configuration file is postgresql.auto.conf's when its value is the one
// wrote says the resource's last apply put there (ALTER SYSTEM), and is set
// to it again; any other cannot be written back either way, and the change
// is refused before it writes anything, with the grant. Were that value
// postgresql.conf's after all (written there by hand, with the same value,
// and the line ALTER SYSTEM wrote reset), writing it back keeps in effect
// the value in effect before the apply, which is what a failed apply owes.
func (s *server) priorSettings(ctx context.Context, pool *pgxpool.Pool, names []string, wrote map[string]string) (systemChange, error) {
	// A configuration file with an error stops the reading of the files
	// (postgresql.auto.conf comes last): pg_file_settings then says nothing
	// of the settings, only the error, and pg_settings is read instead.
	const fileSQL = `SELECT coalesce(name, ''), coalesce(setting, ''), error IS NOT NULL FROM pg_file_settings
WHERE name = ANY($1) AND sourcefile LIKE '%/postgresql.auto.conf' AND setting IS NOT NULL OR error IS NOT NULL ORDER BY seqno`
	prior := map[string]systemSetting{}
	if rows, err := pool.Query(ctx, fileSQL, names); err == nil {
		broken := false
		for rows.Next() {
			var name, value string
			if err := rows.Scan(&name, &value, &broken); err != nil || broken {
				broken = true
				break
			}
			prior[name] = setTo(name, value) // the last line of a name wins, as in the server
		}
		rows.Close()
		if rows.Err() == nil && !broken {
			var c systemChange
			for _, name := range names {
				p, ok := prior[name]
				if !ok {
					p = resetSetting(name)
				}
				c.prior = append(c.prior, p)
			}
			return c, nil
		}
		clear(prior)
	}
	const sql = `SELECT name, current_setting(name), source = 'configuration file', sourcefile FROM pg_settings WHERE name = ANY($1)`
	rows, err := pool.Query(ctx, sql, names)
	if err != nil {
		return systemChange{}, s.queryError(ctx, sql, err, readAllSettingsPrivilege)
	}
	var hidden []string
	for rows.Next() {
		var name, value string
		var fromFile bool
		var sourcefile *string
		if err := rows.Scan(&name, &value, &fromFile, &sourcefile); err != nil {
			rows.Close()
			return systemChange{}, s.queryError(ctx, sql, err, readAllSettingsPrivilege)
		}
		switch {
		case !fromFile:
			prior[name] = resetSetting(name)
		case sourcefile == nil && wroteValue(wrote, name, value):
			// The value this resource wrote with ALTER SYSTEM: the
			// first apply's, which pg_settings hides the file of ever
			// after from a role with only the documented grants.
			prior[name] = setTo(name, value)
		case sourcefile == nil:
			// postgresql.conf or postgresql.auto.conf: setting the value
			// would copy postgresql.conf's into postgresql.auto.conf, where
			// it outlives later edits of postgresql.conf; resetting would
			// lose an ALTER SYSTEM value. Neither is safe to write back.
			hidden = append(hidden, name)
		case strings.HasSuffix(*sourcefile, "/postgresql.auto.conf"):
			prior[name] = setTo(name, value)
		default:
			// postgresql.auto.conf, read last, would have won.
			prior[name] = resetSetting(name)
		}
	}
	if err := rows.Err(); err != nil {
		return systemChange{}, s.queryError(ctx, sql, err, readAllSettingsPrivilege)
	}
	if len(hidden) > 0 {
		return systemChange{}, s.withGrants(ctx, hiddenSourceError{names: andList(hidden)}, readAllSettingsPrivilege)
	}
	var c systemChange
	for _, name := range names {
		p, ok := prior[name]
		if !ok {
			// pg_settings hides a superuser-only setting from other roles.
			return systemChange{}, s.queryError(ctx, sql, fmt.Errorf("pg_settings does not show %s to the provider's role", name), readAllSettingsPrivilege)
		}
		c.prior = append(c.prior, p)
	}
	return c, nil
}

// wroteValue tells whether wrote holds value for name.
func wroteValue(wrote map[string]string, name, value string) bool {
	w, ok := wrote[name]
	return ok && w == value
}

// hiddenSourceError is pg_settings hiding from a role without
// pg_read_all_settings which file a setting comes from (sourcefile): a lack
// of privilege, which withGrants completes with the grant.
type hiddenSourceError struct{ names string }

func (e hiddenSourceError) Error() string {
	return fmt.Sprintf("pg_settings shows the provider's role that a configuration file sets %s, but not which one: postgresql.conf, "+
		"or postgresql.auto.conf, which ALTER SYSTEM writes. Should the apply fail after writing, it could not write back what "+
		"postgresql.auto.conf held, so it writes nothing: nothing was changed", e.names)
}

// As makes it a hiddenStatsError for withGrants.
func (e hiddenSourceError) As(target any) bool {
	h, ok := target.(*hiddenStatsError)
	if ok {
		*h = hiddenStatsError{view: "pg_settings"}
	}
	return ok
}

// writeBack writes the settings of c as they were before it, and reloads:
// what an apply does when the server did not take its settings, so that the
// next reload does not apply them later.
func (s *server) writeBack(ctx context.Context, pool *pgxpool.Pool, c systemChange) error {
	for _, p := range c.prior {
		if err := s.alterSetting(ctx, pool, p); err != nil {
			return err
		}
	}
	return s.reloadConf(ctx, pool)
}

// notTaken writes back the settings of c, which the server did not take,
// and says so for the apply's error, with what to do; left is true when
// the write-back failed, so that the settings stay written.
func (s *server) notTaken(ctx context.Context, pool *pgxpool.Pool, c systemChange) (msg string, left bool) {
	if err := s.writeBack(ctx, pool, c); err != nil {
		return fmt.Sprintf("Writing back the settings it had failed (%v), so postgresql.auto.conf holds this apply's, and the next reload "+
			"that the server takes puts them in effect. Fix the cause and apply again, or have a superuser run ALTER SYSTEM RESET for %s.", err, c.names()), true
	}
	return "The settings it had are written back (ALTER SYSTEM), so that no later reload puts this apply's in effect: this apply changed nothing. " +
		"Fix the cause and apply again.", false
}

// undone is err, the failure of an alterSystem after it wrote the settings
// of c, followed by what became of them: written back, or, when that failed
// too, still waiting in postgresql.auto.conf and how to remove them.
func (s *server) undone(ctx context.Context, pool *pgxpool.Pool, c systemChange, err error) error {
	if len(c.prior) == 0 {
		return err
	}
	verb, was := "is", "it was"
	if len(c.prior) > 1 {
		verb, was = "are", "they were"
	}
	if werr := s.writeBack(ctx, pool, c); werr != nil {
		return settingsLeftError{fmt.Errorf("%w\n\n%s, written before, could not be written back as %s (%v): postgresql.auto.conf of %s holds this apply's values, "+
			"which the next reload puts in effect. Apply again once the cause is fixed, or have a superuser run ALTER SYSTEM RESET for them",
			err, c.names(), was, werr, s.describe())}
	}
	return fmt.Errorf("%w\n\n%s, written before, %s written back as %s: nothing of this apply is left in postgresql.auto.conf for a later reload to apply",
		err, c.names(), verb, was)
}

// settingsLeftError is the error of an alterSystem whose settings, written
// before it failed, could not be written back: they stay in
// postgresql.auto.conf (in effect, or waiting for the next reload), so a
// create that fails so has left something on the server (settingsLeft).
type settingsLeftError struct{ error }

func (e settingsLeftError) Unwrap() error { return e.error }

// settingsLeft tells whether err, an alterSystem's, left its settings
// written.
func settingsLeft(err error) bool {
	var left settingsLeftError
	return errors.As(err, &left)
}

// alterSetting runs the one ALTER SYSTEM statement of setting.
func (s *server) alterSetting(ctx context.Context, pool *pgxpool.Pool, setting systemSetting) error {
	sql := "ALTER SYSTEM RESET " + pgsql.Ident(setting.Name)
	if setting.Value != nil {
		sql = "ALTER SYSTEM SET " + pgsql.Ident(setting.Name) + " = " + pgsql.Literal(*setting.Value)
	}
	if err := alterOnSession(ctx, pool, setting.Name, sql); err != nil {
		return s.withGrants(ctx, statement.Error(ctx, sql, err), alterSystemPrivilege(setting.Name))
	}
	return nil
}

// alterOnSession runs sql, the ALTER SYSTEM statement of setting name. A
// custom setting (a name with a dot, such as the owner tokens of
// system_settings_owner.go) that no loaded library defines exists in a
// session only once something set it there, and PostgreSQL 15 and 16
// refuse ALTER SYSTEM of one the session does not have ("unrecognized
// configuration parameter"), a superuser's too (17 takes it). So the
// statement runs on a session that sets it first, for that transaction
// only: set_config needs no privilege for a custom setting, and leaves
// nothing behind but the name.
func alterOnSession(ctx context.Context, pool *pgxpool.Pool, name, sql string) error {
	if !strings.Contains(name, ".") {
		_, err := pool.Exec(ctx, sql)
		return err
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT set_config($1, '', true)`, name); err != nil {
		return err
	}
	_, err = conn.Exec(ctx, sql)
	return err
}

func (s *server) reloadConf(ctx context.Context, pool *pgxpool.Pool) error {
	const reload = "SELECT pg_reload_conf()"
	if _, err := pool.Exec(ctx, reload); err != nil {
		return s.withGrants(ctx, statement.Error(ctx, reload, err), reloadConfPrivilege)
	}
	return nil
}

// pollUntil calls check every interval until it reports done, fails, or
// timeout passes; it returns whether check reported done. A server that
// reloads its configuration, or a standby that restarts its WAL receiver,
// gets there on its own time: this is how apply waits for it.
//
// timeout bounds the whole wait, statements included: no check starts after
// it, and a check still running when it passes gets pollGrace more to
// answer. A slow answer is still an answer (on a loaded machine a check in
// flight at the deadline was cut, and the wait said the server did not
// answer where it had only been slow), while a server that stopped answering
// (a frozen host) fails the wait pollGrace after it ends, not when
// statement_timeout would. A check that fails because the server went away
// for a while (a restart: no SQLSTATE, or class 08 or 57) is tried again
// until the deadline; any other error ends the wait at once. A wait whose
// last check failed returns that error, saying the server did not answer in
// time when that is why.
func pollUntil(ctx context.Context, timeout time.Duration, check func(context.Context) (bool, error)) (bool, error) {
	const interval = 100 * time.Millisecond
	deadline := time.Now().Add(timeout)
	checkCtx, cancel := context.WithDeadline(ctx, deadline.Add(pollGrace))
	defer cancel()
	for {
		done, err := check(checkCtx)
		if done {
			return true, nil
		}
		if err != nil && (checkCtx.Err() != nil || !serverAway(err)) {
			if checkCtx.Err() != nil && ctx.Err() == nil {
				return false, fmt.Errorf("no answer within %s: %w", timeout, err)
			}
			return false, err
		}
		wait := time.NewTimer(min(interval, time.Until(deadline)))
		select {
		case <-ctx.Done():
			wait.Stop()
			return false, ctx.Err()
		case <-wait.C:
		}
		if !time.Now().Before(deadline) {
			if err != nil {
				return false, fmt.Errorf("no answer within %s: %w", timeout, err)
			}
			return false, nil
		}
	}
}

// pollGrace is how long pollUntil lets a check that was running when the
// wait ended still answer.
const pollGrace = 2 * time.Second

// serverAway reports whether err says the server could not be reached or
// ended the session (a restart, a shutdown, a dropped connection) rather
// than refused or failed a statement: a failure that waiting may cure.
// query_canceled (57014) is not one: it is the statement running past the
// provider's statement_timeout (or a cancel), the user's own bound on a
// statement, which a wait would only meet again and again until its end.
func serverAway(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return strings.HasPrefix(pgErr.Code, "08") || strings.HasPrefix(pgErr.Code, "57") && pgErr.Code != "57014"
	}
	var connErr *pgconn.ConnectError
	var netErr net.Error
	return errors.As(err, &connErr) || errors.As(err, &netErr) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		pgconn.SafeToRetry(err)
}

// settingInEffect is a server setting as a new session sees it and where
// that value comes from: "postgresql.auto.conf line 3" where pg_settings
// names the file (roles with pg_read_all_settings), otherwise its source
// ("configuration file", "command line", …). found is false for a setting
// at its default, or one pg_settings hides from the provider's role.
func settingInEffect(ctx context.Context, pool *pgxpool.Pool, name string) (value, from string, found bool) {
	const sql = `SELECT setting, CASE WHEN sourcefile IS NULL THEN source ELSE sourcefile || ' line ' || sourceline END
FROM pg_settings WHERE name = $1 AND source <> 'default'`
	if err := pool.QueryRow(ctx, sql, name).Scan(&value, &from); err != nil || value == "" {
		return "", "", false
	}
	return value, from, true
}

// overwriteWarning is the warning of a create's plan that will write over
// setting, which the server has from somewhere else (settingInEffect), for
// resource typ: what is lost, that destroy will not bring it back, and the
// import that adopts the value instead.
func overwriteWarning(typ, importID, setting, shown, from string) diag.Diagnostic {
	return diag.NewWarningDiagnostic("Create Writes Over Existing "+setting,
		fmt.Sprintf("This plan creates a %s, and the server already has %s = %s (from %s), set by hand, by another configuration, or by "+
			"this resource's own earlier apply when it is being replaced. The apply writes over it with ALTER SYSTEM, and a later "+
			"destroy resets the setting rather than bringing that value back. To manage the value that is there instead, adopt it "+
			"before applying: terraform import <address> %s (or an import block), then declare what the next plan shows.",
			typ, setting, shown, from, importID))
}

// readFileSettingsPrivilege lets a role read pg_file_settings, which
// PostgreSQL shows only to superusers unless granted.
var (
	readFileSettingsPrivilege    = privilege{grant: "GRANT SELECT ON pg_catalog.pg_file_settings TO %[1]s"}
	showFileSettingsPrivilege    = privilege{grant: "GRANT EXECUTE ON FUNCTION pg_catalog.pg_show_all_file_settings() TO %[1]s"}
	pendingSettingsPrivilegeList = []privilege{readFileSettingsPrivilege, showFileSettingsPrivilege}
)

// pendingSettingsSQL reads, for the string and enum settings among $1, the
// value the configuration files hold now (the last line of a name wins, as
// in the server; none: the built-in default) beside the value in effect,
// where the two differ. Numbers and booleans are left out: the files hold
// them as written ("1min"), pg_settings in its own unit.
const pendingSettingsSQL = `SELECT s.name, coalesce(f.setting, s.boot_val), coalesce(f.sourcefile, 'the built-in default')
FROM pg_settings s LEFT JOIN (
  SELECT DISTINCT ON (name) name, setting, sourcefile FROM pg_file_settings WHERE error IS NULL ORDER BY name, seqno DESC
) f ON f.name = s.name
WHERE s.name = ANY($1) AND s.vartype IN ('string', 'enum') AND s.source IN ('default', 'configuration file')
  AND NOT EXISTS (SELECT FROM pg_file_settings WHERE error IS NOT NULL)
  AND lower(coalesce(f.setting, s.boot_val)) IS DISTINCT FROM lower(s.setting)`

// pendingSetting is a value written to a configuration file (ALTER SYSTEM,
// or an edit of postgresql.conf) and not reloaded yet.
type pendingSetting struct{ name, value, file string }

// pendingWarning warns, at plan, of settings among names that a
// configuration file has changed since the last reload: Read shows the
// values in effect, which the plan compares, while the next reload (by
// anyone: pg_ctl reload, a configuration tool, a restart) puts the file's in
// effect. shown renders a value for the message (a conninfo redacted). A
// role that cannot read pg_file_settings is not warned (see below); another
// failure of the read is, with the statement's error.
func (s *server) pendingWarning(ctx context.Context, pool *pgxpool.Pool, object string, names []string, shown func(name, value string) string) diag.Diagnostics {
	var diags diag.Diagnostics
	rows, err := pool.Query(ctx, pendingSettingsSQL, names)
	var pending []pendingSetting
	if err == nil {
		for rows.Next() {
			var p pendingSetting
			if err = rows.Scan(&p.name, &p.value, &p.file); err != nil {
				break
			}
			pending = append(pending, p)
		}
		rows.Close()
		if err == nil {
			err = rows.Err()
		}
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42501" {
		// insufficient_privilege: the documented least-privilege roles
		// cannot read pg_file_settings (superuser only unless granted). A
		// warning on every plan of theirs would teach users to skip the
		// plan's warnings, so this check is a superuser's or a granted
		// role's only, silently.
		return nil
	}
	if err != nil {
		diags.AddWarning("Cannot Check for Settings Not Yet Reloaded",
			fmt.Sprintf("The plan compares %s's settings in effect (%s) with the configuration, but cannot tell whether a configuration "+
				"file holds other values that the next reload puts in effect (an ALTER SYSTEM not reloaded yet): %v",
				object, andList(names), s.queryError(ctx, pendingSettingsSQL, err, pendingSettingsPrivilegeList...)))
		return diags
	}
	for _, p := range pending {
		diags.AddWarning(p.name+" Changed, Not Yet Reloaded",
			fmt.Sprintf("%s on %s is in effect as the plan shows, but %s now sets it to %s: the next reload of the server, by anyone "+
				"(pg_reload_conf(), pg_ctl reload, a restart), puts that value in effect, and this plan does not see it. If the change "+
				"was not meant, have a superuser run ALTER SYSTEM RESET %s (or set it back) on %s; apply does not undo it unless the "+
				"configuration changes the setting.", p.name, object, p.file, shown(p.name, p.value), pgsql.Ident(p.name), s.describe()))
	}
	return diags
}
