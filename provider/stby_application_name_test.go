package provider

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/conninfo"
	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/pgsql"
	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/syncrep"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// PostgreSQL matches a WAL sender's application_name against each name of
// synchronous_standby_names with pg_strcasecmp (SyncRepGetStandbyPriority in
// syncrep.c), quoted names and bare alike: ASCII letters fold, nothing else
// does. And it has cleaned application_name first: what is not printable
// ASCII is replaced ('?' before PostgreSQL 16, \xNN since), so a non-ASCII
// name never matches. Unicode case folding (strings.EqualFold) made the
// reset check refuse a reset that blocks nothing (the Kelvin sign folds to
// "k"; "STÄNBY" folds to "stänby") and, on the standby's own WAL sender,
// look for a name the primary never shows.
func TestSyncNamesMatchAsThePrimary(t *testing.T) {
	for _, tc := range []struct {
		name, app string
		want      bool
	}{
		{"stby upper", "Stby Upper", true},
		{"*", "anything", true},
		{`it's \ "q"`, `IT'S \ "Q"`, true},
		{"\u212Aelvin", "kelvin", false},
		{"STÄNBY", "stänby", false},
		{"stby", "stby2", false},
	} {
		if got := syncrep.Matches(tc.name, tc.app); got != tc.want {
			t.Errorf("Matches(%q, %q) = %v, want %v", tc.name, tc.app, got, tc.want)
		}
	}
}

// The server's cleaning of application_name, by version: '?' for each
// byte that is not printable ASCII before PostgreSQL 16, \xNN since.
func TestPrimaryApplicationName(t *testing.T) {
	for _, tc := range []struct{ app, version, want string }{
		{"stänby", "15.4 (Debian 15.4-1.pgdg120+1)", "st??nby"},
		{"stänby", "16.0", `st\xc3\xa4nby`},
		{"stänby", "18beta1", `st\xc3\xa4nby`},
		{"tab\there", "17.2", `tab\x09here`},
		{`it's \ "q"`, "17.2", `it's \ "q"`},
	} {
		if got := primaryApplicationName(tc.app, tc.version); got != tc.want {
			t.Errorf("primaryApplicationName(%q, %q) = %q, want %q", tc.app, tc.version, got, tc.want)
		}
	}
}

// The reset check against the real primary: for each hostile
// application_name of the standby (quotes, backslash, spaces, upper case,
// non-ASCII, the Kelvin sign) and a synchronous_standby_names that lists
// it in another spelling, the primary's own verdict (sync_priority of the
// standby's WAL sender) and the check's agree: the reset is refused exactly
// when the primary counts the standby as synchronous.
func TestAccStandbyReset_applicationNameMatchedAsThePrimary(t *testing.T) {
	testAccPreCheck(t)
	t.Parallel()
	topo := routertest.Start(t, routertest.WithStandbys(1))
	primary, standby := topo.Primary, topo.Standbys[0]
	ctx := context.Background()
	t.Cleanup(func() {
		for _, sql := range []string{`ALTER SYSTEM RESET synchronous_standby_names`, `SELECT pg_reload_conf()`} {
			_ = primary.Exec(ctx, sql)
		}
	})
	r := &standbyResource{server: newServer(connSettings{Host: standby.Host, Port: int64(standby.Port), Database: "postgres", Username: "postgres", SSLMode: "disable"})}
	pool, err := r.server.Pool(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeTestPool(pool) })
	for _, tc := range []struct{ app, setting string }{
		{"Stby Upper", `FIRST 1 ("stby upper")`},   // quoted, another case: PostgreSQL matches
		{"stbybare", `FIRST 1 (StbyBare)`},         // bare, another case
		{`it's \ "q"`, `FIRST 1 ("IT'S \ ""Q""")`}, // quote, backslash, double quote
		{"stänby", `FIRST 1 ("STÄNBY")`},           // non-ASCII: cleaned by the primary, no match
		{"stänby", `FIRST 1 ("stänby")`},           // the same bytes: no match either
		{"kelvin", "FIRST 1 (\"\u212Aelvin\")"},    // folds to k in Unicode only
		{"Stby Upper", `ANY 1 ("stby upper", other)`},
	} {
		execSQL(t, primary, "postgres", `ALTER SYSTEM RESET synchronous_standby_names`)
		execSQL(t, primary, "postgres", `SELECT pg_reload_conf()`)
		p := conninfo.Params{"host": primary.Host, "port": fmt.Sprint(primary.Port), "user": "postgres", "sslmode": "disable", "application_name": tc.app}
		execSQL(t, standby, "postgres", `ALTER SYSTEM SET primary_conninfo = `+pgsql.Literal(p.String()))
		execSQL(t, standby, "postgres", `SELECT pg_reload_conf()`)
		shown := queryValue[string](t, primary, "postgres", `SELECT left(set_config('application_name', $1, false), 63)`, tc.app)
		waitFor(t, 30*time.Second, "the standby to stream as "+shown, func() bool {
			return queryValue[bool](t, primary, "postgres", `SELECT EXISTS (SELECT FROM pg_stat_replication WHERE application_name = $1 AND state = 'streaming')`, shown)
		})
		execSQL(t, primary, "postgres", `ALTER SYSTEM SET synchronous_standby_names = `+pgsql.Literal(tc.setting))
		execSQL(t, primary, "postgres", `SELECT pg_reload_conf()`)
		// The WAL sender takes its priority at the reload: listed when it
		// is above 0 within 3 s.
		listed := false
		deadline := time.Now().Add(3 * time.Second)
		for !listed && time.Now().Before(deadline) {
			listed = queryValue[bool](t, primary, "postgres", `SELECT coalesce((SELECT sync_priority > 0 FROM pg_stat_replication WHERE application_name = $1), false)`, shown)
			time.Sleep(100 * time.Millisecond)
		}
		look := r.resetBlocksCommits(ctx, pool)
		if look.refuses() != listed {
			t.Errorf("application_name %q (the primary shows %q), %s: the primary lists it: %v; the reset check refuses: %v (%s)",
				tc.app, shown, tc.setting, listed, look.refuses(), look.summary)
		}
	}
}
