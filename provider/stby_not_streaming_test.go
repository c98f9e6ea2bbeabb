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

// A standby in recovery that does not stream now has its primary asked
// where its primary_conninfo says (TestReview2StandbyResetPrimaryFrozenPastReceiverTimeout
// shows why): a primary there that nobody listens for (crashed, stopped)
// cannot be asked, and the reset warns and goes ahead, as for a streaming
// standby whose primary Terraform's machine cannot reach; one that accepts
// the connection and does not answer, or refuses it for now, refuses the
// reset. The messages say that the standby does not stream, name the
// addresses of primary_conninfo (a host list too), and never its password.
func TestStandbyResetNotStreamingAsksPrimaryConninfo(t *testing.T) {
	testAccPreCheck(t)
	topo := routertest.Start(t, routertest.WithStandbys(1))
	standby := topo.Standbys[0]
	ctx := context.Background()
	const canary = "canary-5f3a9e-password"
	silentPort, closedPort := strconv.Itoa(silentListener(t)), strconv.Itoa(closedPort(t))
	busyPort := strconv.Itoa(refusingServer(t, "53300"))

	r := &standbyResource{server: newServer(connSettings{Host: standby.Host, Port: int64(standby.Port), Database: "postgres", Username: "postgres", SSLMode: "disable"})}
	pool, err := r.server.Pool(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeTestPool(pool) })
	for _, c := range []struct {
		what, host, port string
		refuses          bool
		want             []string
	}{
		{"nobody listens", "127.0.0.1", closedPort, false, []string{"Cannot Tell Whether Resetting Standby Blocks Commits",
			"which does not stream now (its primary_conninfo names 127.0.0.1:" + closedPort + ")", "connection refused"}},
		{"accepts and does not answer", "127.0.0.1", silentPort, true, []string{"Standby's Primary Does Not Answer",
			"does not stream now, and its primary_conninfo names 127.0.0.1:" + silentPort + ", which accepted", "did not answer within 5s"}},
		{"refuses for now", "127.0.0.1", busyPort, true, []string{"Standby's Primary Does Not Answer",
			"its primary_conninfo names 127.0.0.1:" + busyPort, "refused it for now", "53300"}},
		{"host list", "127.0.0.1,127.0.0.1", closedPort + "," + silentPort, true, []string{"Standby's Primary Does Not Answer",
			"its primary_conninfo names 127.0.0.1:" + closedPort + " or 127.0.0.1:" + silentPort + ", which accepted"}},
	} {
		t.Run(c.what, func(t *testing.T) {
			p := conninfo.Params{"host": c.host, "port": c.port, "user": "postgres", "password": canary, "sslmode": "disable",
				"application_name": standby.Name, "connect_timeout": "2"}
			execSQL(t, standby, "postgres", `ALTER SYSTEM SET primary_conninfo = `+pgsql.Literal(p.String()))
			execSQL(t, standby, "postgres", `SELECT pg_reload_conf()`)
			waitFor(t, 30*time.Second, standby.Name+" to stop streaming", func() bool {
				return queryValue[string](t, standby, "postgres", `SELECT coalesce((SELECT status FROM pg_stat_wal_receiver), 'none')`) != "streaming"
			})
			start := time.Now()
			look := r.resetBlocksCommits(ctx, pool)
			took := time.Since(start)
			if look.refuses() != c.refuses || look.silent != c.refuses {
				t.Errorf("refuses %v (silent %v), want %v: %s\n%s", look.refuses(), look.silent, c.refuses, look.summary, look.detail)
			}
			text := look.summary + "\n" + look.detail
			for _, w := range c.want {
				if !strings.Contains(text, w) {
					t.Errorf("the message does not say %q:\n%s", w, text)
				}
			}
			if strings.Contains(text, canary) || strings.Contains(fmt.Sprint(look), canary) {
				t.Errorf("the message shows primary_conninfo's password:\n%s", text)
			}
			if took > publisherProbeTimeout+2*time.Second {
				t.Errorf("the look took %s: a primary that does not answer costs the probe's %s once", took.Round(time.Millisecond), publisherProbeTimeout)
			}
		})
	}
}
