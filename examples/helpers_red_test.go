package examples_test

import (
	"path/filepath"
	"strings"
	"testing"

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
