package routerlib_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// TestServerDateStyleWithTextResults: a server whose DateStyle is not ISO
// (datestyle = 'SQL, DMY' in postgresql.conf) and a pool whose exec mode
// reads results as text (QueryExecModeExec or SimpleProtocol, the modes
// advised behind PgBouncer) made every node unreachable: the monitor read
// pg_postmaster_start_time() as a timestamptz, which pgx parses in ISO
// only ("invalid PostgreSQL date/time value"), so no write was taken
// (ErrNoPrimary) and no read was served. The monitor reads only numbers
// and text it parses itself, whatever the server's settings.
func TestServerDateStyleWithTextResults(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(1), routertest.WithSetting("datestyle", "SQL, DMY"))
	ctx := context.Background()
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeExec, pgx.QueryExecModeSimpleProtocol} {
		t.Run(mode.String(), func(t *testing.T) {
			a := steadyHealth(topo.Artifact(), 100*time.Millisecond)
			a.Consistency.Mode = artifact.ModeReadYourWrites
			r := newRouter(t, a, routerlib.WithPoolConfig(func(_ artifact.Node, cfg *pgxpool.Config) {
				cfg.ConnConfig.DefaultQueryExecMode = mode
			}))
			var style string
			if err := r.QueryRow(ctx, "SHOW datestyle").Scan(&style); err != nil || style != "SQL, DMY" {
				t.Fatalf("the servers' DateStyle reads %q (%v), want \"SQL, DMY\"", style, err)
			}
			var port int
			if err := r.QueryRow(ctx, "SELECT inet_server_port() FROM (SELECT pg_advisory_unlock_all()) s").Scan(&port); err != nil {
				t.Errorf("write: %v", err)
			} else if port != topo.Primary.Port {
				t.Errorf("write answered by port %d, want the primary's %d", port, topo.Primary.Port)
			}
			if got := serverPort(t, ctx, r); got != topo.Standbys[0].Port {
				t.Errorf("read answered by port %d, want the replica's %d", got, topo.Standbys[0].Port)
			}
			if mode == pgx.QueryExecModeCacheStatement {
				// As a direct pool in this mode reads it: in binary, so
				// DateStyle does not matter; the read_your_writes capture
				// of a write without arguments must not turn it to text.
				var at time.Time
				if err := r.QueryRow(ctx, "SELECT now() FROM (SELECT pg_advisory_unlock_all()) s").Scan(&at); err != nil {
					t.Errorf("a read on the primary that writes, returning a timestamptz: %v", err)
				}
				if _, err := r.Exec(ctx, "CREATE TABLE IF NOT EXISTS datestyle_t (at timestamptz)"); err != nil {
					t.Fatal(err)
				}
				if err := r.QueryRow(ctx, "INSERT INTO datestyle_t VALUES (now()) RETURNING at").Scan(&at); err != nil {
					t.Errorf("an INSERT returning a timestamptz: %v", err)
				}
			}
			for _, s := range r.Stat() {
				if !s.Healthy {
					t.Errorf("%s: %s", s.Name, s.LastError)
				}
			}
		})
	}
}
