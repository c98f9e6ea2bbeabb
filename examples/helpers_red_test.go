package examples_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

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

// pubSubHCL declares, for the provider aliases pub and sub, the publication
// <prefix>_pub of the table public.<prefix> and the subscription
// <prefix>_sub of it, which reaches pub as postgres (options, e.g.
// "connect_timeout=30", appended to its conninfo when not empty) and has the
// further arguments args, one HCL line each. The subscription references
// the publication, unless an arg sets publications (by literal).
func pubSubHCL(pub *routertest.Node, prefix, options string, args ...string) string {
	conninfo := fmt.Sprintf("host=%s port=%d user=postgres dbname=postgres sslmode=disable", pub.Host, pub.Port)
	if options != "" {
		conninfo += " " + options
	}
	publications := "  publications = [pgreplication_publication.pub.name]\n"
	var more strings.Builder
	for _, a := range args {
		if strings.HasPrefix(a, "publications ") {
			publications = ""
		}
		more.WriteString("  " + a + "\n")
	}
	return fmt.Sprintf(`
resource "pgreplication_publication" "pub" {
  provider = pgreplication.pub
  name     = "%[1]s_pub"
  tables   = { "public.%[1]s" = {} }
}

resource "pgreplication_subscription" "sub" {
  provider     = pgreplication.sub
  name         = "%[1]s_sub"
  conninfo     = "%[2]s"
%[3]s%[4]s}
`, prefix, conninfo, publications, more.String())
}

// applyPubSub applies mainTF with the provider aliases pub and sub on the
// publisher and the subscriber, and returns its directory.
func applyPubSub(t *testing.T, cli *terraformCLI, pub, sub *routertest.Node, mainTF string) string {
	t.Helper()
	dir := configDir(t, map[string]server{"pub": {pub, "postgres"}, "sub": {sub, "postgres"}}, mainTF)
	cli.run(t, dir, 0, tfArgs("apply")...)
	return dir
}

// skipWithoutFailover skips the test unless the subscriber sub and the
// publisher pub both run PostgreSQL 17 or later, which failover slots need.
func skipWithoutFailover(t *testing.T, pub, sub *routertest.Node) {
	t.Helper()
	for _, n := range []struct {
		what string
		node *routertest.Node
	}{{"subscriber", sub}, {"publisher", pub}} {
		if v := currentSetting(t, n.node, "server_version_num"); v < "170000" {
			t.Skipf("the %s runs %s; failover needs 17", n.what, v)
		}
	}
}

// failoverPlan applies the subscription <prefix>_sub with failover = false
// (enabled, replicating <prefix> from pub to sub) and saves the plan that
// turns failover on, failover.tfplan, in the directory it returns.
func failoverPlan(t *testing.T, cli *terraformCLI, prefix string) (pub, sub *routertest.Node, dir string) {
	t.Helper()
	pub, sub = twoPrimaries(t, prefix)
	skipWithoutFailover(t, pub, sub)
	mainTF := func(failover bool) string {
		return pubSubHCL(pub, prefix, "connect_timeout=30", fmt.Sprintf("failover = %t", failover), `publisher_timeout = "50s"`)
	}
	dir = applyPubSub(t, cli, pub, sub, mainTF(false))
	writeFile(t, filepath.Join(dir, "main.tf"), mainTF(true))
	cli.run(t, dir, 2, tfArgs("plan", "-detailed-exitcode", "-out=failover.tfplan")...)
	return pub, sub, dir
}

// waitSlotReleased waits until no process on pub uses slot (its subscriber
// stopped, or its subscription disabled).
func waitSlotReleased(t *testing.T, pub *routertest.Node, slot string) {
	t.Helper()
	waitFor(t, pub, 30*time.Second, func() bool {
		var active bool
		if err := pub.QueryRow(t.Context(), `SELECT active FROM pg_replication_slots WHERE slot_name = $1`, slot).Scan(&active); err != nil {
			t.Fatal(err)
		}
		return !active
	}, "the slot to be released")
}

// loseSlot makes n invalidate its inactive slot: max_slot_wal_keep_size as
// small as it goes, WAL written past it, a checkpoint.
func loseSlot(t *testing.T, n *routertest.Node, slot string) {
	t.Helper()
	execSQL(t, n, "postgres", `ALTER SYSTEM SET max_slot_wal_keep_size = '1MB'`)
	execSQL(t, n, "postgres", `ALTER SYSTEM SET wal_keep_size = 0`)
	execSQL(t, n, "postgres", `SELECT pg_reload_conf()`)
	execSQL(t, n, "postgres", `CREATE TABLE red5_filler (v text)`)
	waitFor(t, n, 60*time.Second, func() bool {
		execSQL(t, n, "postgres", `INSERT INTO red5_filler SELECT repeat('x', 1000) FROM generate_series(1, 2000)`)
		execSQL(t, n, "postgres", `SELECT pg_switch_wal()`)
		execSQL(t, n, "postgres", `CHECKPOINT`)
		var status string
		if err := n.QueryRow(t.Context(), `SELECT coalesce(wal_status, '') FROM pg_replication_slots WHERE slot_name = $1`, slot).Scan(&status); err != nil {
			t.Fatal(err)
		}
		return status == "lost"
	}, "slot "+slot+" to be invalidated (wal_status = lost)")
}

// loseSubscriptionSlot has the publisher pub invalidate slot, the slot of
// an enabled subscription on sub: the subscriber down, the publisher past
// max_slot_wal_keep_size (loseSlot), the subscriber up again.
func loseSubscriptionSlot(t *testing.T, pub, sub *routertest.Node, slot string) {
	t.Helper()
	if err := sub.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	waitSlotReleased(t, pub, slot)
	loseSlot(t, pub, slot)
	if err := sub.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// turnOffSlotFailover turns failover off, on the publisher pub, for the
// slot of sub's enabled subscription name, as a hand on the publisher does
// (ALTER_REPLICATION_SLOT … (FAILOVER false)): the subscription is disabled
// while the slot is altered and enabled again after; pg_subscription still
// says subfailover = true.
func turnOffSlotFailover(t *testing.T, pub, sub *routertest.Node, name string) {
	t.Helper()
	execSQL(t, sub, "postgres", `ALTER SUBSCRIPTION `+name+` DISABLE`)
	waitSlotReleased(t, pub, name)
	cfg, err := pgconn.ParseConfig(pub.DSN())
	if err != nil {
		t.Fatal(err)
	}
	cfg.RuntimeParams["replication"] = "database"
	repl, err := pgconn.ConnectConfig(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := repl.Exec(t.Context(), `ALTER_REPLICATION_SLOT `+name+` (FAILOVER false)`).ReadAll(); err != nil {
		t.Fatal(err)
	}
	_ = repl.Close(t.Context())
	execSQL(t, sub, "postgres", `ALTER SUBSCRIPTION `+name+` ENABLE`)
}

// waitRows waits up to limit for table on n to hold want rows; what says
// what the test waits for.
func waitRows(t *testing.T, n *routertest.Node, table string, want int, limit time.Duration, what string) {
	t.Helper()
	waitFor(t, n, limit, func() bool {
		var have int
		if err := n.QueryRow(t.Context(), `SELECT count(*) FROM `+table).Scan(&have); err != nil {
			t.Fatal(err)
		}
		return have == want
	}, what)
}

// planRefusesCopyIntoRows plans dir, the configuration of a subscription
// whose slot is lost, and wants the plan to refuse its replacement, which
// would copy into the rows table has on the subscriber, naming the table;
// what says what the plan is of.
func planRefusesCopyIntoRows(t *testing.T, cli *terraformCLI, dir, table, what string) {
	t.Helper()
	code, out := cli.exec(t, dir, tfArgs("plan", "-detailed-exitcode")...)
	// The CLI wraps diagnostics: compare with single spaces.
	if code != 1 || !strings.Contains(strings.Join(strings.Fields(out), " "), `"`+table+`" already have rows`) {
		t.Fatalf("plan (exit %d) of %s, want a refusal of the replacement naming the table:\n%s", code, what, lastLines(out, 30))
	}
}
