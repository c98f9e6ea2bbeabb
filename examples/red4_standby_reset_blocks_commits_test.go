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

// Destroying a pgreplication_standby with reset_on_destroy = true while the
// primary's synchronous_standby_names needs that standby: the reset takes
// primary_conninfo away, the standby stops streaming, and every commit on
// the primary waits for it, with no end. The plan says nothing of it and
// the destroy exits 0. A replication slot's drop that would do the same is
// refused (resource_replication_slot.go: "Dropping Replication Slot Would
// Block Commits"); the standby's reset, which blocks commits as surely, is
// neither refused nor warned of. Here synchronous_standby_names is set by
// hand, as it is when another configuration (or a person) manages the
// primary. By hand (PostgreSQL 17, Terraform 1.11.4): CREATE TABLE on the
// primary still waited after 8 s.
func TestRed4StandbyResetBlocksCommits(t *testing.T) {
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
	execSQL(t, topo.Primary, "postgres", fmt.Sprintf(`ALTER SYSTEM SET synchronous_standby_names = 'FIRST 1 ("%s")'`, standby.Name))
	execSQL(t, topo.Primary, "postgres", `SELECT pg_reload_conf()`)
	t.Cleanup(func() {
		// Let the primary commit again, so that the topology stops.
		// (t.Context is done by now.)
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
	if _, out := cli.exec(t, dir, "plan", "-destroy", "-input=false", "-no-color"); !strings.Contains(out, "Resetting Standby Would Block Commits") {
		t.Errorf("the destroy's plan does not warn that the reset blocks commits:\n%s", lastLines(out, 20))
	}
	code, out := cli.exec(t, dir, "destroy", "-auto-approve", "-input=false", "-no-color")
	t.Logf("destroy exited %d:\n%s", code, lastLines(out, 12))
	if code == 0 || !strings.Contains(out, "Resetting Standby Would Block Commits") {
		t.Errorf("the destroy exits %d without refusing the reset", code)
	}
	time.Sleep(2 * time.Second) // the reload
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	start := time.Now()
	err := topo.Primary.Exec(ctx, `CREATE TABLE red4_after_reset (id int)`)
	// A commit whose wait is cancelled may still report success (with a
	// warning): the time it took tells.
	if took := time.Since(start); err != nil || took > 9*time.Second {
		t.Errorf("after the destroy (exit %d) a commit on the primary does not finish in 10 s (%v, %v): it waits for the standby the destroy cut off", code, took.Round(time.Second), err)
	}
}
