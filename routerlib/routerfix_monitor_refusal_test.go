package routerlib_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// TestRouterfixMonitorRefusalNamesMonitorConfig: when the server refuses
// the health monitor's own connection, whose user, password or database
// WithMonitorConfig set, the error (New's, NodeStat's LastError, the
// log) told to "fix user, password_env, passfile or WithPasswordFunc",
// the router file's settings, which were right. It now names
// WithMonitorConfig with the user and database it set, and never the
// password.
func TestRouterfixMonitorRefusalNamesMonitorConfig(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(1))
	ctx := context.Background()
	const mon, monPw, canary, noDB = "rf_mon", "mon-pw-7", "Canary9b2f", "rf_no_such_db"
	replica := topo.Standbys[0]
	passwordRoles(t, []*routertest.Node{topo.Primary, replica}, mon, monPw)
	a := steadyHealth(topo.Artifact(), 200*time.Millisecond)
	a.Health.ConnectTimeout, a.Health.Timeout = "30s", "30s" // SCRAM under load, as in TestReview11MonitorConfigOwnUserAndPassword
	for _, c := range []struct {
		name string
		set  func(cfg *pgx.ConnConfig)
		want []string
	}{
		{"wrong password", func(cfg *pgx.ConnConfig) { cfg.User, cfg.Password = mon, canary }, []string{"WithMonitorConfig", `user "` + mon + `"`, "28P01"}},
		{"missing database", func(cfg *pgx.ConnConfig) { cfg.Database = noDB }, []string{"WithMonitorConfig", `database "` + noDB + `"`, "3D000"}},
	} {
		check := func(t *testing.T, where, text string) {
			t.Helper()
			for _, w := range c.want {
				if !strings.Contains(text, w) {
					t.Errorf("%s does not name %s: %s", where, w, text)
				}
			}
			for _, bad := range []string{canary, "password_env"} {
				if strings.Contains(text, bad) {
					t.Errorf("%s shows %q: %s", where, bad, text)
				}
			}
		}
		on := func(name string) routerlib.Option {
			return routerlib.WithMonitorConfig(func(n artifact.Node, cfg *pgx.ConnConfig) {
				if n.Name == name {
					c.set(cfg)
				}
			})
		}
		t.Run(c.name+"/primary", func(t *testing.T) {
			logs := &syncBuffer{}
			r, err := routerlib.New(ctx, a, on(topo.Primary.Name),
				routerlib.WithLogger(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
			if err == nil {
				r.Close()
				t.Fatal("New took a primary whose monitor's connection is refused")
			}
			check(t, "New's error", err.Error())
			check(t, "the log", unquoted(logs))
		})
		t.Run(c.name+"/replica", func(t *testing.T) {
			logs := &syncBuffer{}
			r := newRouter(t, a, on(replica.Name),
				routerlib.WithLogger(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
			if eventuallyOK(20*time.Second, func() bool { return nodeStat(r, replica.Name).LastError != "" }) < 0 {
				t.Fatal("the replica's refused checks left no LastError")
			}
			check(t, "NodeStat's LastError", nodeStat(r, replica.Name).LastError)
			if eventuallyOK(10*time.Second, func() bool { return strings.Contains(logs.String(), "node does not answer") }) < 0 {
				t.Fatalf("nothing logged of the refused checks: %s", logs.String())
			}
			check(t, "the log", unquoted(logs))
			if s := nodeStat(r, topo.Primary.Name); !s.Writer {
				t.Errorf("the primary, whose monitor was left alone, does not take the writes: %s", s.LastError)
			}
		})
	}
}

// unquoted is the text logs hold, with the quotes slog's text handler
// escapes in a value put back.
func unquoted(logs *syncBuffer) string { return strings.ReplaceAll(logs.String(), `\"`, `"`) }

// passwordRoles creates on nodes[0], the primary, each role of pairs (a
// name, then its password) with a SCRAM password, and makes each of
// nodes ask those roles for it.
func passwordRoles(t *testing.T, nodes []*routertest.Node, pairs ...string) {
	t.Helper()
	ctx := context.Background()
	sql := "SET password_encryption = 'scram-sha-256'"
	for i := 0; i < len(pairs); i += 2 {
		sql += "; CREATE ROLE " + pairs[i] + " LOGIN PASSWORD '" + pairs[i+1] + "'"
	}
	if err := nodes[0].Exec(ctx, sql); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		for i := 0; i < len(pairs); i += 2 {
			if err := n.RequirePassword(ctx, pairs[i]); err != nil {
				t.Fatal(err)
			}
		}
	}
}
