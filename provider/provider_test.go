package provider

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/jackc/pgx/v5"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// testAccProtoV6ProviderFactories serves the provider in-process to the
// Terraform CLI that terraform-plugin-testing drives.
//
// In-process, the framework runs ONE provider server per provider name, and
// every alias of that name shares it: the last alias configured wins for all
// of them. (A real `terraform apply` starts one plugin process per provider
// configuration, so aliases are independent there.) A test configuration
// that talks to several servers therefore gives each server its own provider
// name, from testAccServerNames, rendered by serverProvider, and uses
// testAccMultiServerFactories. (Each served name costs every test step a
// little time, so single-server tests use the plain map.)
var testAccProtoV6ProviderFactories = map[string]func() (tfprotov6.ProviderServer, error){
	"pgreplication": providerserver.NewProtocol6WithError(New("test")()),
}

// testAccMultiServerFactories serves "pgreplication" and every name of
// testAccServerNames, each as its own provider server.
var testAccMultiServerFactories = func() map[string]func() (tfprotov6.ProviderServer, error) {
	f := map[string]func() (tfprotov6.ProviderServer, error){
		"pgreplication": providerserver.NewProtocol6WithError(New("test")()),
	}
	for _, name := range testAccServerNames {
		f[name] = providerserver.NewProtocol6WithError(New("test")())
	}
	return f
}()

// testAccServerNames are the extra provider names a multi-server test
// configuration may use, one per server: `provider = pgrstandby1`.
var testAccServerNames = []string{"pgrprimary", "pgrstandby1", "pgrstandby2", "pgrstandby3", "pgrpublisher", "pgrsubscriber"}

// serverProvider renders a provider block under its own provider name (one
// of testAccServerNames), for configurations that talk to several servers.
// Resources then say `provider = <name>`.
func serverProvider(name string, n *routertest.Node) string {
	return fmt.Sprintf(`
provider %q {
  host     = %q
  port     = %d
  username = "postgres"
  database = "postgres"
  sslmode  = "disable"
}
`, name, n.Host, n.Port)
}

// The acceptance tests of this package share one primary with two streaming
// standbys, started on first use and stopped by TestMain. Each test names its
// objects after itself so tests do not see each other's. A test that breaks
// its topology (promotes, stops a node) starts its own with routertest.Start.
var (
	sharedOnce sync.Once
	shared     *routertest.Topology
	sharedErr  error
)

func TestMain(m *testing.M) {
	// The records of router file replacements go to the user's cache
	// directory: a temporary one here, never the real ~/.cache.
	cache, err := os.MkdirTemp("", "pgreplication-cache-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := os.Setenv("XDG_CACHE_HOME", cache); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(cache)
	if shared != nil {
		if err := shared.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "closing the shared topology:", err)
		}
	}
	os.Exit(code)
}

// wrappedText is a regular expression matching text however the CLI
// wrapped its lines: each run of spaces may be any run of white space.
func wrappedText(text string) string {
	return strings.Join(strings.Fields(regexp.QuoteMeta(text)), `\s+`)
}

// testAccTopology returns the shared topology. Like routertest.Start it skips
// when there are no PostgreSQL binaries, except in CI, where it fails.
//
// Tests on the shared topology run one at a time. A test that starts the
// servers it uses (routertest.Start) or uses none, sets no environment
// (t.Setenv, t.Chdir: traceLog, canaryVariable) and bounds no time calls
// t.Parallel() first: such tests run after the others, -parallel at a time
// (GOMAXPROCS: 2 on CI's machine), where a serial test leaves a core idle
// while it waits on the CLI and the servers.
func testAccTopology(t *testing.T) *routertest.Topology {
	t.Helper()
	testAccPreCheck(t)
	sharedOnce.Do(func() {
		shared, sharedErr = routertest.New(context.Background(), routertest.WithStandbys(2))
	})
	if errors.Is(sharedErr, routertest.ErrNoBinaries) && os.Getenv("CI") != "true" {
		t.Skip(sharedErr)
	}
	if sharedErr != nil {
		t.Fatal(sharedErr)
	}
	return shared
}

// testAccPreCheck skips acceptance tests unless TF_ACC is set (make test and
// make testacc set it); in CI a missing TF_ACC is a failure, not a skip.
func testAccPreCheck(t *testing.T) {
	t.Helper()
	if os.Getenv("TF_ACC") == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("TF_ACC is not set: CI must run the acceptance tests (use make test)")
		}
		t.Skip("acceptance test: set TF_ACC=1 (make test does)")
	}
}

// providerConfig renders a provider block with the given alias for a node,
// or the default provider block (which resources use without a provider
// argument) when alias is "". Use it when the configuration talks to ONE
// server; for several, see serverProvider.
func providerConfig(alias string, n *routertest.Node) string {
	return providerConfigDB(alias, n, "postgres")
}

// providerConfigDB is providerConfig with the provider's default database.
func providerConfigDB(alias string, n *routertest.Node, database string) string {
	return providerBlock(alias, n, "postgres", database)
}

// providerConfigAs is providerConfig connecting as role (database postgres).
func providerConfigAs(alias string, n *routertest.Node, role string) string {
	return providerBlock(alias, n, role, "postgres")
}

func providerBlock(alias string, n *routertest.Node, role, database string) string {
	return providerBlockAt(alias, n.Host, n.Port, role, database, "disable")
}

// providerBlockAt is providerBlock for any address and sslmode: a proxy's
// port, a server that refuses TLS.
func providerBlockAt(alias, host string, port int, role, database, sslmode string) string {
	if alias != "" {
		alias = fmt.Sprintf("\n  alias    = %q", alias)
	}
	return fmt.Sprintf(`
provider "pgreplication" {%s
  host     = %q
  port     = %d
  username = %q
  database = %q
  sslmode  = %q
}
`, alias, host, port, role, database, sslmode)
}

// topologyProviders renders one provider per server of the topology, each
// under its own name (see testAccProtoV6ProviderFactories): pgrprimary,
// pgrstandby1, pgrstandby2.
func topologyProviders(topo *routertest.Topology) string {
	var b strings.Builder
	b.WriteString(serverProvider("pgrprimary", topo.Primary))
	for i, s := range topo.Standbys {
		b.WriteString(serverProvider(fmt.Sprintf("pgrstandby%d", i+1), s))
	}
	return b.String()
}

// execSQL runs statements on a node outside Terraform: how the drift tests
// change the servers "by hand".
func execSQL(t *testing.T, n *routertest.Node, database, sql string, args ...any) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, n.DSNFor(database))
	if err != nil {
		t.Fatalf("connecting to %s: %v", n.Name, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("on %s: %s: %v", n.Name, sql, err)
	}
}

// queryValue runs a one-row, one-column query on a node.
func queryValue[T any](t *testing.T, n *routertest.Node, database, sql string, args ...any) T {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, n.DSNFor(database))
	if err != nil {
		t.Fatalf("connecting to %s: %v", n.Name, err)
	}
	defer conn.Close(ctx)
	var v T
	if err := conn.QueryRow(ctx, sql, args...).Scan(&v); err != nil {
		t.Fatalf("on %s: %s: %v", n.Name, sql, err)
	}
	return v
}

// cliSupportsWriteOnly reports whether the CLI of the acceptance tests
// ($TF_ACC_TERRAFORM_PATH) accepts write-only arguments: Terraform 1.11 and
// OpenTofu 1.11 and later. Older ones get the framework's refusal, which the
// write-only tests require instead.
func cliSupportsWriteOnly(t *testing.T) bool {
	t.Helper()
	cli := os.Getenv("TF_ACC_TERRAFORM_PATH")
	if cli == "" {
		cli = "terraform"
	}
	out, err := exec.Command(cli, "version", "-json").Output()
	if err != nil {
		t.Fatalf("%s version -json: %v", cli, err)
	}
	var v struct {
		Version string `json:"terraform_version"` // OpenTofu prints the same key
	}
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("%s version -json: %v\n%s", cli, err, out)
	}
	var major, minor int
	if _, err := fmt.Sscanf(v.Version, "%d.%d", &major, &minor); err != nil {
		t.Fatalf("%s version %q: %v", cli, v.Version, err)
	}
	return major > 1 || major == 1 && minor >= 11
}

// expectNoSecret is a state check that fails when secret appears anywhere in
// what `terraform show -json` prints, or in the state file of the test's
// working directory (dir: the TestCase's WorkingDir), as written.
func expectNoSecret(dir, secret string) statecheck.StateCheck {
	return noSecretCheck{dir: dir, secret: secret}
}

type noSecretCheck struct{ dir, secret string }

func (c noSecretCheck) CheckState(_ context.Context, req statecheck.CheckStateRequest, resp *statecheck.CheckStateResponse) {
	shown, err := json.Marshal(req.State)
	if err != nil {
		resp.Error = err
		return
	}
	if strings.Contains(string(shown), c.secret) {
		resp.Error = fmt.Errorf("terraform show -json holds the password")
		return
	}
	// terraform.tfstate and its .backup, the state before the last apply.
	states, err := filepath.Glob(filepath.Join(c.dir, "*", "terraform.tfstate*"))
	if err != nil || !slices.ContainsFunc(states, func(f string) bool { return filepath.Base(f) == "terraform.tfstate" }) {
		resp.Error = fmt.Errorf("no state file under %s (%v)", c.dir, err)
		return
	}
	for _, f := range states {
		raw, err := os.ReadFile(f)
		if err != nil {
			resp.Error = err
			return
		}
		if filepath.Base(f) == "terraform.tfstate" && !strings.Contains(string(raw), `"resources"`) {
			resp.Error = fmt.Errorf("%s is not a state file with resources:\n%s", f, raw)
			return
		}
		if strings.Contains(string(raw), c.secret) {
			resp.Error = fmt.Errorf("the state file %s holds the password", f)
			return
		}
	}
}

// thaw resumes a node that Freeze stopped.
func thaw(t *testing.T, n *routertest.Node) {
	if err := n.Thaw(); err != nil {
		t.Error(err)
	}
}
