package provider

import (
	"context"
	"errors"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/jackc/pgx/v5"

	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/pgsql"
)

// refuseMoveToClosedDatabase adds an error on database when a plan moves
// kind name from database from to database to on srv, and to cannot take
// it: it does not exist, it takes no connections (ALLOW_CONNECTIONS false,
// or invalid after an interrupted DROP DATABASE), or the provider's role
// may not connect to it. A move replaces the object, and Terraform runs
// the replacement's drop first: the apply would drop name from from, then
// fail to create it in to, and leave it in neither (a subscription's
// replication stopped, a publication's subscribers failing, a slot's
// position gone). Nothing is said when the server cannot be asked: the
// plan's other reads report that.
func refuseMoveToClosedDatabase(ctx context.Context, srv *server, kind, name, from, to string, diags *diag.Diagnostics) {
	if srv == nil || srv.unknown || from == to {
		return
	}
	pool, err := srv.Pool(ctx, "")
	if err != nil {
		return
	}
	var allowConn, valid, mayConnect bool
	var role string
	err = pool.QueryRow(ctx, `SELECT d.datallowconn, d.datconnlimit <> -2, has_database_privilege(d.oid, 'CONNECT'), current_user
  FROM pg_catalog.pg_database d WHERE d.datname = $1`, to).Scan(&allowConn, &valid, &mayConnect, &role)
	var why, fix string
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		why = fmt.Sprintf("database %q does not exist there", to)
		fix = fmt.Sprintf("Create database %q first (when this configuration creates it, in an apply of its own: terraform apply -target=<its address>)", to)
	case err != nil:
		return
	case !valid:
		why = fmt.Sprintf("database %q is invalid there (a DROP DATABASE of it was interrupted), and no one can connect to it", to)
		fix = fmt.Sprintf("Drop it (DROP DATABASE %s) and create it again", pgsql.Ident(to))
	case !allowConn:
		why = fmt.Sprintf("database %q takes no connections there (ALLOW_CONNECTIONS false)", to)
		fix = fmt.Sprintf("Run ALTER DATABASE %s ALLOW_CONNECTIONS true", pgsql.Ident(to))
	case !mayConnect:
		why = fmt.Sprintf("the provider's role %s may not connect to database %q there", pgsql.Ident(role), to)
		fix = fmt.Sprintf("Run GRANT CONNECT ON DATABASE %s TO %s", pgsql.Ident(to), pgsql.Ident(role))
	default:
		return
	}
	diags.AddAttributeError(path.Root("database"), "Cannot Move to Database",
		fmt.Sprintf("Moving %s %s from database %q to %q on %s replaces it, and Terraform drops the old one first, but %s: the apply "+
			"would drop %s from %q, then fail to create it in %q, and leave it in neither. %s, or keep database = %q; then plan again.",
			kind, pgsql.Ident(name), from, to, srv.describe(), why, pgsql.Ident(name), from, to, fix, from))
}
