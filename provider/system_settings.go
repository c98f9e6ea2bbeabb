package provider

import (
	"context"
	"fmt"
	"time"

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
// reload its configuration; a value that holds a secret must be declared in
// ctx (statement.WithSecrets) so a failure does not show it. The reload is asynchronous: callers that read
// the settings back wait with pollUntil.
func alterSystem(ctx context.Context, pool *pgxpool.Pool, settings []systemSetting) error {
	for _, s := range settings {
		sql := "ALTER SYSTEM RESET " + pgsql.Ident(s.Name)
		if s.Value != nil {
			sql = "ALTER SYSTEM SET " + pgsql.Ident(s.Name) + " = " + pgsql.Literal(*s.Value)
		}
		if _, err := pool.Exec(ctx, sql); err != nil {
			return fmt.Errorf("%w (the provider's role needs to be a superuser or, on PostgreSQL 15 and later, to hold GRANT ALTER SYSTEM ON PARAMETER %s)", statement.Error(ctx, sql, err), s.Name)
		}
	}
	const reload = "SELECT pg_reload_conf()"
	if _, err := pool.Exec(ctx, reload); err != nil {
		return statement.Error(ctx, reload, err)
	}
	return nil
}

// pollUntil calls check every interval until it reports done, fails, or
// timeout passes; it returns whether check reported done. A server that
// reloads its configuration, or a standby that restarts its WAL receiver,
// gets there on its own time: this is how apply waits for it.
func pollUntil(ctx context.Context, timeout time.Duration, check func() (bool, error)) (bool, error) {
	const interval = 100 * time.Millisecond
	deadline := time.Now().Add(timeout)
	for {
		done, err := check()
		if err != nil || done {
			return done, err
		}
		if time.Now().After(deadline) {
			return false, nil
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(interval):
		}
	}
}
