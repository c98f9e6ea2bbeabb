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

// The red team's tests each declare a small configuration on routertest
// nodes and run the CLI on it; what they share is here.

// providerCLI returns the CLI (findCLI: it skips without TF_ACC) set to run
// the provider built from this tree.
func providerCLI(t *testing.T) *terraformCLI {
	t.Helper()
	cli := findCLI(t)
	cli.configFile = buildProvider(t)
	return cli
}

// configDir returns a new directory holding providers.tf (one provider per
// alias) and mainTF as main.tf.
func configDir(t *testing.T, aliases map[string]server, mainTF string) string {
	t.Helper()
	dir := t.TempDir()
	writeProviders(t, dir, aliases)
	writeFile(t, filepath.Join(dir, "main.tf"), mainTF)
	return dir
}

// tfArgs returns a CLI command's arguments for a test: never asking
// (-auto-approve for apply and destroy, -input=false), without colour, then
// extra.
func tfArgs(command string, extra ...string) []string {
	args := []string{command}
	if command == "apply" || command == "destroy" {
		args = append(args, "-auto-approve")
	}
	return append(append(args, "-input=false", "-no-color"), extra...)
}

// oneStandby starts a primary with one standby, and returns them with the
// CLI set to run the provider built from this tree (providerCLI).
func oneStandby(t *testing.T) (*terraformCLI, *routertest.Topology, *routertest.Node) {
	t.Helper()
	cli := providerCLI(t)
	topo := routertest.Start(t, routertest.WithStandbys(1))
	return cli, topo, topo.Standbys[0]
}

// primaryAndStandby is the provider aliases primary and standby, on topo's
// primary and first standby.
func primaryAndStandby(topo *routertest.Topology) map[string]server {
	return map[string]server{"primary": {topo.Primary, "postgres"}, "standby": {topo.Standbys[0], "postgres"}}
}

// syncStandbyToReset applies a pgreplication_standby of topo's standby with
// reset_on_destroy (resetStandbyHCL), then makes it the primary's
// synchronous standby by hand, as another configuration would:
// synchronous_standby_names = fmt.Sprintf(names, the standby's name). It
// returns the configuration's directory once the standby is synchronous.
func syncStandbyToReset(t *testing.T, cli *terraformCLI, topo *routertest.Topology, names string) string {
	t.Helper()
	standby := topo.Standbys[0]
	dir := configDir(t, map[string]server{"standby": {standby, "postgres"}}, resetStandbyHCL(topo, standby.Name))
	cli.run(t, dir, 0, tfArgs("apply")...)
	releaseCommitsAtEnd(t, topo.Primary)
	setAndReload(t, topo.Primary, fmt.Sprintf(`ALTER SYSTEM SET synchronous_standby_names = '%s'`, fmt.Sprintf(names, standby.Name)))
	waitFor(t, topo.Primary, 30*time.Second, func() bool {
		var state string
		_ = topo.Primary.QueryRow(t.Context(), `SELECT coalesce((SELECT sync_state FROM pg_stat_replication WHERE application_name = $1), '')`, standby.Name).Scan(&state)
		return state == "sync"
	}, standby.Name+" to be the synchronous standby")
	return dir
}

// releaseCommitsAtEnd thaws primary and resets its synchronous_standby_names
// when the test ends, so that it commits again and the topology stops.
// (t.Context is done by then.)
func releaseCommitsAtEnd(t *testing.T, primary *routertest.Node) {
	t.Cleanup(func() {
		_ = primary.Thaw()
		for _, sql := range []string{`ALTER SYSTEM RESET synchronous_standby_names`, `SELECT pg_reload_conf()`} {
			if err := primary.Exec(context.Background(), sql); err != nil {
				t.Error(err)
			}
		}
	})
}

// commitAfterReset waits for a reset standby's reload (and a thawed
// primary's catch-up), then creates table on primary within 10 s, and
// returns how long that took. A commit whose wait for a synchronous standby
// is cancelled may still report success (with a warning): the time tells.
func commitAfterReset(t *testing.T, primary *routertest.Node, table string) (time.Duration, error) {
	t.Helper()
	time.Sleep(2 * time.Second)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	start := time.Now()
	err := primary.Exec(ctx, `CREATE TABLE `+table+` (id int)`)
	return time.Since(start), err
}

// waitStandbyStreams waits until standby's WAL receiver streams; what says
// what the test waits for.
func waitStandbyStreams(t *testing.T, standby *routertest.Node, what string) {
	t.Helper()
	waitFor(t, standby, 30*time.Second, func() bool {
		var status string
		_ = standby.QueryRow(t.Context(), `SELECT coalesce((SELECT status FROM pg_stat_wal_receiver), 'none')`).Scan(&status)
		return status == "streaming"
	}, what)
}

// twoPrimaries starts two primaries without standbys, a publisher and a
// subscriber, each with the table `table (id int PRIMARY KEY)`.
func twoPrimaries(t *testing.T, table string) (pub, sub *routertest.Node) {
	t.Helper()
	pub = routertest.Start(t, routertest.WithStandbys(0)).Primary
	sub = routertest.Start(t, routertest.WithStandbys(0)).Primary
	for _, n := range []*routertest.Node{pub, sub} {
		execSQL(t, n, "postgres", `CREATE TABLE `+table+` (id int PRIMARY KEY)`)
	}
	return pub, sub
}

// currentSetting returns the value n runs with for the setting name.
func currentSetting(t *testing.T, n *routertest.Node, name string) string {
	t.Helper()
	var v string
	if err := n.QueryRow(t.Context(), `SELECT current_setting($1)`, name).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
