package provider

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/pgsql"
)

// The privileges the provider's role needs to apply each resource, and the
// statement that grants each one. The same values write the "Privileges to apply"
// paragraph of each resource's documentation and complete the error of a
// statement the server refused for lack of privilege (SQLSTATE 42501), so
// that the docs and the errors cannot disagree. A superuser has them all.

// A privilege is one thing the provider's role may lack, and how a superuser
// grants it.
type privilege struct {
	// grant is the statement that grants it, with %[1]s for the role.
	grant string
	// since is the first PostgreSQL major version that has it; before, only
	// a superuser can do what it allows. 0: every supported version.
	since int
}

var (
	replicationPrivilege        = privilege{grant: "ALTER ROLE %[1]s REPLICATION"}
	signalBackendPrivilege      = privilege{grant: "GRANT pg_signal_backend TO %[1]s"}
	reloadConfPrivilege         = privilege{grant: "GRANT EXECUTE ON FUNCTION pg_catalog.pg_reload_conf() TO %[1]s"}
	superuserPrivilege          = privilege{grant: "ALTER ROLE %[1]s SUPERUSER"}
	readAllSettingsPrivilege    = privilege{grant: "GRANT pg_read_all_settings TO %[1]s"}
	readAllStatsPrivilege       = privilege{grant: "GRANT pg_read_all_stats TO %[1]s"}
	createSubscriptionPrivilege = privilege{grant: "GRANT pg_create_subscription TO %[1]s", since: 16}
	subconninfoPrivilege        = privilege{grant: "GRANT SELECT (subconninfo) ON pg_catalog.pg_subscription TO %[1]s"}
	// readPublicationsPrivilege: every role may read these catalogs unless
	// a site revoked that from PUBLIC.
	readPublicationsPrivilege = privilege{grant: "GRANT SELECT ON pg_catalog.pg_publication, pg_catalog.pg_publication_rel, pg_catalog.pg_publication_namespace TO %[1]s"}
)

// alterSystemPrivilege is ALTER SYSTEM on parameters (PostgreSQL 15+).
func alterSystemPrivilege(parameters ...string) privilege {
	return privilege{grant: "GRANT ALTER SYSTEM ON PARAMETER " + strings.Join(parameters, ", ") + " TO %[1]s", since: 15}
}

// createOnDatabasePrivilege is CREATE on a database: creating publications
// and subscriptions in it.
func createOnDatabasePrivilege(database string) privilege {
	return privilege{grant: "GRANT CREATE ON DATABASE " + database + " TO %[1]s"}
}

// tableOwnerPrivilege is the ownership of a table: publishing it.
func tableOwnerPrivilege(table string) privilege {
	return privilege{grant: "ALTER TABLE " + table + " OWNER TO %[1]s"}
}

// statement is the statement that grants the privilege to role, or, on a
// server too old to have it, the one that makes role a superuser.
func (p privilege) statement(role string, major int) string {
	grant := fmt.Sprintf(p.grant, role) + ";"
	if major != 0 && major < p.since {
		return fmt.Sprintf("ALTER ROLE %s SUPERUSER;  -- PostgreSQL %d has no narrower privilege for this; %d and later: %s",
			role, major, p.since, grant)
	}
	return grant
}

// A requirement is a privilege and what needs it, for the docs.
type requirement struct {
	privilege
	why string
}

// privilegesText is the "Privileges to apply" paragraph of a resource's
// documentation: the statements that let a role that is not a superuser
// apply it.
func privilegesText(reqs ...requirement) string {
	var b strings.Builder
	b.WriteString("\n\n**Privileges to apply.** A superuser can apply it. A role that is not one needs what these statements grant " +
		"(run them on the primary, as a superuser; `terraform` stands for the provider's role, and a standby has the primary's roles " +
		"and grants through replication):\n")
	for _, r := range reqs {
		b.WriteString("\n- `" + fmt.Sprintf(r.grant, "terraform") + "`")
		if r.since != 0 {
			fmt.Fprintf(&b, " (PostgreSQL %d and later; before, only a superuser)", r.since)
		}
		b.WriteString(": " + r.why)
	}
	b.WriteString("\n\nAn apply that lacks one of them fails with the statement that grants it.")
	return b.String()
}

// planPrivilegesText is the "Privileges to plan" paragraph of a resource's
// docs: what a role needs to refresh and plan it. Planning only reads, so a
// drift audit can run with a role that may change nothing (the guide
// "Auditing drift with a read-only role" has the role and the job).
func planPrivilegesText(what string) string {
	return "\n\n**Privileges to plan.** " + what + " Planning only reads: see the guide on auditing drift with a read-only role."
}

// hiddenStatsError is what a statistics view does to a role without
// pg_read_all_stats: no error, but NULL where other roles' processes have
// their state. Readers that would misread those NULLs return it, and
// withGrants treats it as an insufficient privilege.
type hiddenStatsError struct{ view string }

func (e hiddenStatsError) Error() string {
	return e.view + " shows the provider's role NULL for the state of other roles' processes"
}

// withGrants completes err, when the server refused a statement for lack of
// privilege (SQLSTATE 42501) or hid what the provider must read, with the
// statements that grant privs to the provider's role: the privileges the
// operation that failed needs. Other errors come back as they are.
func (s *server) withGrants(ctx context.Context, err error, privs ...privilege) error {
	var pgErr *pgconn.PgError
	var hidden hiddenStatsError
	if err == nil || !(errors.As(err, &pgErr) && pgErr.Code == "42501") && !errors.As(err, &hidden) {
		return err
	}
	role := pgsql.Ident(s.role())
	major := 0
	if f, ferr := s.Facts(ctx); ferr == nil {
		major = f.Major()
	}
	grants := make([]string, len(privs))
	for i, p := range privs {
		grants[i] = p.statement(role, major)
	}
	return fmt.Errorf("%w\n\nThe provider's role %s lacks a privilege this needs. A superuser grants what it needs with:\n  %s",
		err, role, strings.Join(grants, "\n  "))
}

// role is the role the provider connects as.
func (s *server) role() string {
	if s.settings.Username != "" {
		return s.settings.Username
	}
	cfg, err := pgxpool.ParseConfig(s.settings.conninfo(""))
	if err != nil {
		return "<the provider's role>"
	}
	return cfg.ConnConfig.User
}
