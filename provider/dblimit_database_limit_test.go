package provider

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/pgsql"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// A role without a CONNECTION LIMIT, its database of CONNECTION LIMIT 2,
// used by the provider (its pool of that database, sized 2 by the
// database's limit) and named by a subscription's conninfo (the probe's
// pool, in the same database): the role's room held nothing (no role
// limit), and nothing counted the probe's sessions against the database's
// limit, so the two together opened more than 2 and the server refused
// one (53300, too many connections for database). Three probes and three
// statements at once, five rounds: on the old code 15 of 15 probes
// refused on PostgreSQL 17 (the provider's two idle connections filled
// the database's places, and the probe, admitted by a room that held
// nothing, closed none of them). The connections of every role in a
// database now take a place in the database's room too (dbRoom).
func TestDblimitProbeAndProviderShareTheDatabaseLimit(t *testing.T) {
	n := testAccTopology(t).Primary
	const role = "dblimit_shared"
	pool, dbs := poolOfDatabaseOfLimit2(t, n, role)
	connection := fmt.Sprintf("host=%s port=%d user=%s dbname=%s", n.Host, n.Port, role, dbs[0])
	probeBesideStatements(t, pool, connection, "the database's CONNECTION LIMIT 2")
	logSessionsOnFailure(t, n, dbs[0])
}

// The same, the subscription's conninfo naming another role (of no
// CONNECTION LIMIT either): the database's limit counts every role's
// sessions there, so the probe's, as another role's, share its room with
// the provider's. On the old code 15 of 15 probes were refused (53300).
func TestDblimitProbeOfAnotherRoleSharesTheDatabaseLimit(t *testing.T) {
	n := testAccTopology(t).Primary
	const role, other = "dblimit_owner", "dblimit_other"
	pool, dbs := poolOfDatabaseOfLimit2(t, n, role)
	execSQL(t, n, "postgres", `CREATE ROLE `+other+` LOGIN`)
	t.Cleanup(func() { execSQL(t, n, "postgres", `DROP ROLE IF EXISTS `+other) })
	connection := fmt.Sprintf("host=%s port=%d user=%s dbname=%s", n.Host, n.Port, other, dbs[0])
	probeBesideStatements(t, pool, connection, "the database's CONNECTION LIMIT 2 (the probe as another role)")
	logSessionsOnFailure(t, n, dbs[0])
}

// poolOfDatabaseOfLimit2 is the provider's pool, logged in as role (of no
// CONNECTION LIMIT), of the first of role's databases (roleServer), of
// CONNECTION LIMIT 2.
func poolOfDatabaseOfLimit2(t *testing.T, n *routertest.Node, role string) (*pgxpool.Pool, []string) {
	t.Helper()
	s, dbs := roleServer(t, n, role, -1, 5)
	execSQL(t, n, "postgres", `ALTER DATABASE `+dbs[0]+` CONNECTION LIMIT 2`)
	return testPool(t, s, dbs[0]), dbs
}

// logSessionsOnFailure logs, when t has failed, the sessions the server
// counts in database: a session of no pool of the process (an autovacuum
// worker counts against a database's CONNECTION LIMIT before PostgreSQL
// 18) takes a place the rooms do not know of.
func logSessionsOnFailure(t *testing.T, n *routertest.Node, database string) {
	t.Helper()
	if !t.Failed() {
		return
	}
	t.Logf("sessions in %s after the failures: %s", database, queryValue[string](t, n, "postgres",
		`SELECT coalesce(string_agg(format('%s %s %s %s', pid, usename, backend_type, state), '; '), 'none') FROM pg_stat_activity WHERE datname = $1`, database))
}

// The provider's own statements holding both places of the database's
// CONNECTION LIMIT 2 (its role has none): the probe's connection waits
// for one, within the probe's bound, and the probe fails naming the
// database's CONNECTION LIMIT and how to raise it, not the role's, nor
// that the publisher did not answer. On the old code the server refused
// the probe (53300, "too many connections for database").
func TestDblimitProbeWaitingForAPlaceNamesTheDatabaseLimit(t *testing.T) {
	n := testAccTopology(t).Primary
	const role = "dblimit_full"
	pool, dbs := poolOfDatabaseOfLimit2(t, n, role)
	ctx := context.Background()
	holdConns(t, pool, 2)
	connection := fmt.Sprintf("host=%s port=%d user=%s dbname=%s", n.Host, n.Port, role, dbs[0])
	_, _, err := publisherPools.reach(ctx, &server{}, connection)
	if err == nil {
		t.Fatal("the probe connected while the provider held both places of the database's CONNECTION LIMIT 2")
	}
	for _, want := range []string{"the CONNECTION LIMIT of database " + pgsql.Ident(dbs[0]), "ALTER DATABASE " + pgsql.Ident(dbs[0]) + " CONNECTION LIMIT"} {
		if err == errPublisherSilent || !strings.Contains(err.Error(), want) {
			t.Errorf("the probe, waiting for a place the provider's statements held, failed with %q; want it to say %q", err, want)
		}
	}
}

// The provider configured with host = "localhost", a subscription's
// conninfo naming the same server as host=127.0.0.1, the role of
// CONNECTION LIMIT 3: keyed by the names as written, they were two rooms,
// the probe's connections counted in neither of the provider's, and the
// server refused the probe (53300, "too many connections for role"). The
// loopback names of a port are now one server's.
func TestDblimitLocalhostAndLoopbackAddressShareTheRoom(t *testing.T) {
	n := testAccTopology(t).Primary
	const role = "dblimit_loopback"
	s, dbs := roleServer(t, n, role, 3, 5)
	s.settings.Host = "localhost"
	pool := testPool(t, s, dbs[0])
	connection := fmt.Sprintf("host=127.0.0.1 port=%d user=%s dbname=%s", n.Port, role, dbs[1])
	probeBesideStatements(t, pool, connection, "the role's CONNECTION LIMIT 3 (the provider at localhost, the probe at 127.0.0.1)")
}
