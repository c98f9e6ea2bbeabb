package examples_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// A primary that is frozen (SIGSTOP: a stalled VM, a long GC-like pause,
// a host under swap) during the destroy of a pgreplication_standby with
// reset_on_destroy = true, while its synchronous_standby_names needs that
// standby. The probe of the primary times out, which stbyfix ("standby: a primary Terraform cannot ask never refuses reset_on_destroy")
// treats like a primary Terraform's machine cannot reach at all: it warns
// and resets. Once the primary thaws, every commit there waits for the
// standby the destroy cut off, with no end. A timeout on an address the
// standby was streaming from a moment ago is not "unreachable from here":
// the primary is there and will come back; the reset should be refused (or
// looked at again within the grace) as it is for a primary that answers.
func TestReviewStandbyResetFrozenPrimaryBlocksCommits(t *testing.T) {
	cli := findCLI(t)
	cli.configFile = buildProvider(t)
	topo := routertest.Start(t, routertest.WithStandbys(1))
	standby := topo.Standbys[0]
	dir := t.TempDir()
	writeProviders(t, dir, map[string]server{"standby": {standby, "postgres"}})
	writeFile(t, filepath.Join(dir, "main.tf"), fmt.Sprintf(`
resource "pgreplication_standby" "standby" {
  provider         = pgreplication.standby
  primary_host     = %q
  primary_port     = %d
  primary_user     = "postgres"
  primary_sslmode  = "disable"
  application_name = %q
  reset_on_destroy = true
}
`, topo.Primary.Host, topo.Primary.Port, standby.Name))
	cli.run(t, dir, 0, "apply", "-auto-approve", "-input=false", "-no-color")
	execSQL(t, topo.Primary, "postgres", fmt.Sprintf(`ALTER SYSTEM SET synchronous_standby_names = '"%s"'`, standby.Name))
	execSQL(t, topo.Primary, "postgres", `SELECT pg_reload_conf()`)
	t.Cleanup(func() {
		_ = topo.Primary.Thaw()
		for _, sql := range []string{`ALTER SYSTEM RESET synchronous_standby_names`, `SELECT pg_reload_conf()`} {
			if err := topo.Primary.Exec(context.Background(), sql); err != nil {
				t.Error(err)
			}
		}
	})
	waitFor(t, topo.Primary, 30*time.Second, func() bool {
		var state string
		_ = topo.Primary.QueryRow(t.Context(), `SELECT coalesce((SELECT sync_state FROM pg_stat_replication WHERE application_name = $1), '')`, standby.Name).Scan(&state)
		return state == "sync"
	}, standby.Name+" to be the synchronous standby")

	if err := topo.Primary.Freeze(); err != nil {
		t.Fatal(err)
	}
	code, out := cli.exec(t, dir, "destroy", "-auto-approve", "-input=false", "-no-color")
	if err := topo.Primary.Thaw(); err != nil {
		t.Fatal(err)
	}
	t.Logf("destroy with the primary frozen exited %d:\n%s", code, lastLines(out, 20))
	var conninfo string
	_ = standby.QueryRow(t.Context(), `SELECT current_setting('primary_conninfo')`).Scan(&conninfo)
	time.Sleep(2 * time.Second) // the standby's reload, the primary's catch-up
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	start := time.Now()
	err := topo.Primary.Exec(ctx, `CREATE TABLE review_after_frozen_reset (id int)`)
	if took := time.Since(start); err != nil || took > 9*time.Second {
		t.Errorf("the destroy ran while the primary was frozen (exit %d, primary_conninfo now %q); after it thawed, a commit there does not "+
			"finish in 10 s (%v, %v): it waits for the standby the destroy cut off", code, conninfo, took.Round(time.Second), err)
	}
	if code == 0 && !strings.Contains(out, "Resetting Standby") {
		t.Errorf("the destroy exits 0 and says nothing of the reset's risk")
	}
}
