package provider

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/conninfo"
	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/pgsql"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// The reset probe of a standby that does not stream asks the hosts of its
// primary_conninfo for the primary, whose synchronous_standby_names is the
// one that holds commits. Before, it connected as pgx does to a host list
// with target_session_attrs=any, within one 5 s: (a) a live standby listed
// before the primary answered, in recovery, and the reset went ahead
// though the primary's synchronous_standby_names needs the standby; (b) a
// frozen host listed first took the whole 5 s, the primary was never
// asked, and the reset was refused as "does not answer" whatever the
// primary says. The standby here does not stream because its slot does not
// exist (primary_slot_name), not because its primary is gone. A role that
// may only replicate is asked over a replication connection, which runs no
// pg_is_in_recovery(): the server's in_hot_standby tells a standby there.
func TestStandbyResetProbeFindsThePrimaryInAHostList(t *testing.T) {
	testAccPreCheck(t)
	topo := routertest.Start(t, routertest.WithStandbys(2))
	primary, standby, other := topo.Primary, topo.Standbys[0], topo.Standbys[1]
	ctx := context.Background()
	const canary = "stbyfix-canary" + canaryMark + "pw"
	t.Cleanup(func() {
		_ = other.Thaw()
		// The names first: the GRANT's commit waits for the standby while they list it.
		for _, sql := range []string{`ALTER SYSTEM RESET synchronous_standby_names`, `SELECT pg_reload_conf()`,
			`GRANT CONNECT ON DATABASE postgres TO PUBLIC`} {
			_ = primary.Exec(ctx, sql)
		}
	})
	// A role that may only replicate: the probe reads the setting over a
	// replication connection, where no pg_is_in_recovery() runs.
	execSQL(t, primary, "postgres", `CREATE ROLE stbyfix_repl LOGIN REPLICATION`)
	execSQL(t, primary, "postgres", `REVOKE CONNECT ON DATABASE postgres FROM PUBLIC`)
	if err := topo.WaitReplayed(ctx); err != nil {
		t.Fatal(err)
	}
	execSQL(t, standby, "postgres", `ALTER SYSTEM SET primary_slot_name = 'stbyfix_no_such_slot'`)
	conninfoAs := func(user string) {
		p := conninfo.Params{"host": other.Host + "," + primary.Host, "port": strconv.Itoa(other.Port) + "," + strconv.Itoa(primary.Port),
			"user": user, "password": canary, "sslmode": "disable", "application_name": standby.Name, "connect_timeout": "2"}
		execSQL(t, standby, "postgres", `ALTER SYSTEM SET primary_conninfo = `+pgsql.Literal(p.String()))
		execSQL(t, standby, "postgres", `SELECT pg_reload_conf()`)
		waitFor(t, 30*time.Second, standby.Name+" to stop streaming", func() bool {
			return queryValue[string](t, standby, "postgres", `SELECT coalesce((SELECT status FROM pg_stat_wal_receiver), 'none')`) != "streaming" &&
				queryValue[string](t, standby, "postgres", `SHOW primary_conninfo`) == p.String()
		})
	}
	r := &standbyResource{server: newServer(connSettings{Host: standby.Host, Port: int64(standby.Port), Database: "postgres", Username: "postgres", SSLMode: "disable"})}
	pool, err := r.server.Pool(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeTestPool(pool) })
	primaryAt := fmt.Sprintf("%s:%d", primary.Host, primary.Port)
	setNames := func(names string) {
		execSQL(t, primary, "postgres", `ALTER SYSTEM SET synchronous_standby_names = `+pgsql.Literal(names))
		execSQL(t, primary, "postgres", `SELECT pg_reload_conf()`)
		waitFor(t, 10*time.Second, "synchronous_standby_names in effect", func() bool {
			return queryValue[string](t, primary, "postgres", `SHOW synchronous_standby_names`) == names
		})
	}
	for _, c := range []struct {
		what    string
		user    string
		frozen  bool
		names   string
		summary string // "": not refused, no warning
	}{
		{"a standby listed first, the primary needs it", "postgres", false, pgsql.Ident(standby.Name), "Resetting Standby Would Block Commits"},
		{"replication only, a standby listed first, the primary needs it", "stbyfix_repl", false, pgsql.Ident(standby.Name),
			"Resetting Standby Would Block Commits"},
		{"a frozen host listed first, the primary needs it", "postgres", true, pgsql.Ident(standby.Name), "Resetting Standby Would Block Commits"},
		{"a frozen host listed first, the primary does not need it", "postgres", true, "", ""},
	} {
		t.Run(c.what, func(t *testing.T) {
			conninfoAs(c.user)
			setNames(c.names)
			if c.frozen {
				if err := other.Freeze(); err != nil {
					t.Fatal(err)
				}
			}
			start := time.Now()
			look := r.resetBlocksCommits(ctx, pool)
			took := time.Since(start)
			if look.summary != c.summary || look.refuses() != (c.summary != "") {
				t.Errorf("got %q (refuses %v, silent %v, unchecked %v), want %q:\n%s", look.summary, look.refuses(), look.silent,
					look.unchecked, c.summary, look.detail)
			}
			if c.summary != "" && !strings.Contains(look.detail, "where the primary is "+primaryAt) {
				t.Errorf("the refusal does not name the primary that answered, %s:\n%s", primaryAt, look.detail)
			}
			if text := look.summary + look.detail + fmt.Sprint(look); strings.Contains(text, canary) {
				t.Errorf("the look shows primary_conninfo's password:\n%s", look.detail)
			}
			if limit := publisherProbeTimeout + 3*time.Second; took > limit {
				t.Errorf("the look took %s: a frozen host costs its own %s, once", took.Round(time.Millisecond), publisherProbeTimeout)
			}
			t.Logf("%s after %s: %s", c.what, took.Round(time.Millisecond), look.summary)
		})
	}
}
