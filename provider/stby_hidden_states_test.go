package provider

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/conninfo"
	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/pgsql"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// The reset check's middle case: the primary answers, lists the standby,
// and another listed standby is connected, but pg_stat_replication hides
// that one's state from the role of the standby's primary_conninfo (no
// pg_read_all_stats). Whether commits would wait cannot be told: a warning,
// not a refusal (6d4af72 refused it, and the destroy that worked before was
// stopped). Granted the role, the other standby is seen streaming: nothing
// to say. Listed alone, the standby is needed whatever is hidden: refused.
func TestAccStandbyReset_hiddenStatesWarn(t *testing.T) {
	testAccPreCheck(t)
	t.Parallel()
	topo := routertest.Start(t, routertest.WithStandbys(2))
	primary, standby, other := topo.Primary, topo.Standbys[0], topo.Standbys[1]
	ctx := context.Background()
	const role = "stby_hidden"
	r, pool, setNames := standbyStreamingAs(t, primary, standby, role)

	setNames(fmt.Sprintf(`FIRST 1 (%s, %s)`, pgsql.Ident(standby.Name), pgsql.Ident(other.Name)))
	look := r.resetBlocksCommits(ctx, pool)
	if look.refuses() || !look.unchecked || !strings.Contains(look.detail, "hides their state") {
		t.Errorf("another listed standby's state hidden: refuses %v, unchecked %v; want a warning that says the state is hidden:\n%s %s",
			look.refuses(), look.unchecked, look.summary, look.detail)
	}
	execSQL(t, primary, "postgres", `GRANT pg_read_all_stats TO `+role)
	if look := r.resetBlocksCommits(ctx, pool); look.summary != "" {
		t.Errorf("with pg_read_all_stats the other listed standby is seen streaming; want nothing, got %s: %s", look.summary, look.detail)
	}
	execSQL(t, primary, "postgres", `REVOKE pg_read_all_stats FROM `+role)
	setNames(pgsql.Ident(standby.Name))
	if look := r.resetBlocksCommits(ctx, pool); !look.refuses() || look.summary != "Resetting Standby Would Block Commits" {
		t.Errorf("listed alone the standby is needed whatever is hidden; want the refusal, got %q (unchecked %v)", look.summary, look.unchecked)
	}
}

// standbyStreamingAs has standby stream from primary as role, created LOGIN
// REPLICATION with no other privilege, and returns the pgreplication_standby
// resource of standby with its pool, and a function that sets the primary's
// synchronous_standby_names (reset when the test ends).
func standbyStreamingAs(t *testing.T, primary, standby *routertest.Node, role string) (*standbyResource, *pgxpool.Pool, func(string)) {
	t.Helper()
	ctx := context.Background()
	t.Cleanup(func() {
		for _, sql := range []string{`ALTER SYSTEM RESET synchronous_standby_names`, `SELECT pg_reload_conf()`} {
			_ = primary.Exec(ctx, sql)
		}
	})
	execSQL(t, primary, "postgres", `CREATE ROLE `+role+` LOGIN REPLICATION`)
	p := conninfo.Params{"host": primary.Host, "port": fmt.Sprint(primary.Port), "user": role, "sslmode": "disable", "application_name": standby.Name}
	execSQL(t, standby, "postgres", `ALTER SYSTEM SET primary_conninfo = `+pgsql.Literal(p.String()))
	execSQL(t, standby, "postgres", `SELECT pg_reload_conf()`)
	waitFor(t, 30*time.Second, standby.Name+" to stream as "+role, func() bool {
		return queryValue[bool](t, primary, "postgres", `SELECT EXISTS (SELECT FROM pg_stat_replication WHERE application_name = $1 AND usename = $2 AND state = 'streaming')`,
			standby.Name, role)
	})
	r := &standbyResource{server: newServer(connSettings{Host: standby.Host, Port: int64(standby.Port), Database: "postgres", Username: "postgres", SSLMode: "disable"})}
	pool, err := r.server.Pool(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeTestPool(pool) })
	return r, pool, func(value string) {
		execSQL(t, primary, "postgres", `ALTER SYSTEM SET synchronous_standby_names = `+pgsql.Literal(value))
		execSQL(t, primary, "postgres", `SELECT pg_reload_conf()`)
		time.Sleep(500 * time.Millisecond)
	}
}
