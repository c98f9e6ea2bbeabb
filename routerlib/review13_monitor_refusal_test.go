package routerlib_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// TestReview13MonitorRefusalBlamesWhatItSet: WithMonitorConfig sets the
// monitor's database alone, and the router file's password (from
// WithPasswordFunc) is wrong: the server refuses the monitor with 28P01,
// the password the monitor shares with the pools. The error must tell to
// fix the router file's password (WithPasswordFunc), not "the User and
// Password" WithMonitorConfig set, which set neither.
func TestReview13MonitorRefusalBlamesWhatItSet(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(0))
	ctx := context.Background()
	const app, appPw, monDB = "r13_app", "app-pw-3", "r13_mondb"
	passwordRoles(t, []*routertest.Node{topo.Primary}, app, appPw)
	if err := topo.Primary.Exec(ctx, "CREATE DATABASE "+monDB); err != nil {
		t.Fatal(err)
	}
	a := steadyHealth(topo.Artifact(), 200*time.Millisecond)
	a.Health.ConnectTimeout, a.Health.Timeout = "30s", "30s"
	a.Nodes[0].User = app
	const canary = "Canary4e1d"
	r, err := routerlib.New(ctx, a,
		routerlib.WithPasswordFunc(func(context.Context, artifact.Node) (string, error) { return canary, nil }),
		routerlib.WithMonitorConfig(func(_ artifact.Node, cfg *pgx.ConnConfig) { cfg.Database = monDB }))
	if err == nil {
		r.Close()
		t.Fatal("New took a primary that refuses the router file's password")
	}
	t.Logf("New: %v", err)
	if !strings.Contains(err.Error(), "WithPasswordFunc") || strings.Contains(err.Error(), "User and Password it sets") {
		t.Errorf("the error does not tell to fix the router file's password, which the server refused: %v", err)
	}
	if strings.Contains(err.Error(), canary) {
		t.Errorf("the error shows the password: %v", err)
	}
}
