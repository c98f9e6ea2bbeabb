package routerlib_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// TestReview11MonitorConfigOwnUserAndPassword: WithMonitorConfig may give
// the checks a User of their own (its documentation says so), and with it
// that role's password. The router's password hook (WithPasswordFunc, or
// the file's password_env) ran after it on every check's connection and
// put the application role's password back, so against a server that
// checks passwords every check failed (28P01) and no node ever served.
func TestReview11MonitorConfigOwnUserAndPassword(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(0))
	ctx := context.Background()
	const app, appPw, mon, monPw = "r11_app", "app-pw-1", "r11_mon", "mon-pw-2"
	passwordRoles(t, []*routertest.Node{topo.Primary}, app, appPw, mon, monPw)
	a := steadyHealth(topo.Artifact(), 200*time.Millisecond)
	a.Nodes[0].User = app
	a.Health.ConnectTimeout, a.Health.Timeout = "30s", "30s" // SCRAM under load, as in TestPasswordFromEnvAndPassfile
	r := newRouter(t, a,
		routerlib.WithPasswordFunc(func(context.Context, artifact.Node) (string, error) { return appPw, nil }),
		routerlib.WithMonitorConfig(func(_ artifact.Node, cfg *pgx.ConnConfig) { cfg.User, cfg.Password = mon, monPw }))
	if eventuallyOK(20*time.Second, func() bool { return nodeStat(r, topo.Primary.Name).Writer }) < 0 {
		t.Fatalf("the primary never took the writes with the monitor on a role of its own: %s", nodeStat(r, topo.Primary.Name).LastError)
	}
	var who string
	if err := r.QueryRow(routerlib.Primary(ctx), "SELECT current_user").Scan(&who); err != nil || who != app {
		t.Errorf("the application's calls ran as %q (%v), want %q", who, err, app)
	}
}
