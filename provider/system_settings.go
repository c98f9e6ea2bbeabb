package provider

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

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
// not go on writing a configuration it cannot finish. A value that holds a
// secret must be declared in ctx (statement.WithSecrets), so that a failure
// does not show it. A refusal for lack of privilege names the grant that
// fixes it. The reload is asynchronous: callers that read the settings back
// wait with pollUntil.
func (s *server) alterSystem(ctx context.Context, pool *pgxpool.Pool, settings []systemSetting) error {
	for _, setting := range settings {
		if err := s.alterSetting(ctx, pool, setting); err != nil {
			return err
		}
	}
	return s.reloadConf(ctx, pool)
}

// resetSystem resets settings (ALTER SYSTEM RESET) and reloads. It is the
// cleanup of a destroy: the settings are independent, so one that fails
// does not keep the others from being reset, and the error reports every
// failure, one per line (errors.Join).
func (s *server) resetSystem(ctx context.Context, pool *pgxpool.Pool, names ...string) error {
	var errs []error
	reset := 0
	for _, name := range names {
		if err := s.alterSetting(ctx, pool, resetSetting(name)); err != nil {
			errs = append(errs, err)
		} else {
			reset++
		}
	}
	if reset > 0 {
		if err := s.reloadConf(ctx, pool); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// alterSetting runs the one ALTER SYSTEM statement of setting.
func (s *server) alterSetting(ctx context.Context, pool *pgxpool.Pool, setting systemSetting) error {
	sql := "ALTER SYSTEM RESET " + pgsql.Ident(setting.Name)
	if setting.Value != nil {
		sql = "ALTER SYSTEM SET " + pgsql.Ident(setting.Name) + " = " + pgsql.Literal(*setting.Value)
	}
	if _, err := pool.Exec(ctx, sql); err != nil {
		return s.withGrants(ctx, statement.Error(ctx, sql, err), alterSystemPrivilege(setting.Name))
	}
	return nil
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
