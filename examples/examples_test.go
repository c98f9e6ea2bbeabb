// Package examples_test proves that the examples, which are the user
// documentation (tfplugindocs renders them into docs/), work: each one is
// applied with the real Terraform or OpenTofu CLI against real PostgreSQL
// (routertest topologies), `plan -detailed-exitcode` must then exit 0 (the
// servers are as declared and nothing drifts by itself), and `destroy` must
// succeed. examples/provider/provider.tf, which names fictional hosts and
// declares no resources, is only validated.
//
// The CLI is the one in $TF_ACC_TERRAFORM_PATH (make test runs them with
// Terraform, then OpenTofu: tools/test.sh); the test skips without TF_ACC,
// and fails in CI. It builds the provider into a temporary directory and
// points the CLI at it with dev_overrides, so no `init` and no registry are
// needed.
//
// Why not terraform-plugin-testing: in-process, every alias of a provider
// shares one provider server (see testAccProtoV6ProviderFactories in
// provider/provider_test.go), and the examples use several aliases
// (pgreplication.primary, .standby1, .subscriber). The real CLI starts one
// plugin process per alias, as it does for users.
//
// Each example is copied into a working directory of its own with a
// generated providers.tf that points its aliases at routertest nodes. What
// the examples name but a test server does not have is made real in two
// ways, both visible below: fixture SQL run before the examples (the app
// database, roles, tables, schemas, the publisher's publications), and a
// short replacement list per example for what SQL cannot provide (host
// names, ports, TLS, file paths, standby names).
package examples_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// An example is one example file (or directory) and what running it needs.
type example struct {
	path string // under examples/: a .tf file, or a directory whose *.tf files are copied
	// aliases maps each provider alias the example uses to its server; a
	// generated providers.tf declares them. An example directory (the
	// quickstart) declares its own providers.
	aliases map[string]server
	// replace is applied to the copied file, in order; each old string must
	// occur, so that an edit of the example cannot silently skip one.
	replace []replacement
	vars    map[string]string  // -var name=value for variables without a default
	before  func(t *testing.T) // fixture of this example alone, run first
	// logStandbySnapshots runs pg_log_standby_snapshot() on this primary
	// every 500ms while applying: creating a logical slot on a standby waits
	// for the primary's next running-xacts record, which an idle primary
	// writes only at a checkpoint.
	logStandbySnapshots *routertest.Node
	// needs is the PostgreSQL major version the example's features need
	// (0: any). On an older server (make test-matrix runs 15 and 16) the
	// example must be refused at plan time, naming the version, instead.
	needs int
	major int // the server's major version
}

type server struct {
	node     *routertest.Node
	database string
}

type replacement struct{ old, new string }

// appSchema is the application schema the examples publish and subscribe
// to: orders (published with a row filter on region and amount, which
// therefore belong to the replica identity), customers, and events,
// partitioned by kind (published through its root with a filter on kind).
const appSchema = `
CREATE TABLE orders (
    id         bigint NOT NULL,
    region     text NOT NULL,
    amount     numeric(12,2) NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    note       text,
    PRIMARY KEY (id, region, amount)
);
CREATE TABLE customers (
    id   bigint PRIMARY KEY,
    name text NOT NULL
);
CREATE TABLE events (
    id      bigint NOT NULL,
    kind    text NOT NULL,
    payload jsonb,
    PRIMARY KEY (id, kind)
) PARTITION BY LIST (kind);
CREATE TABLE events_debug PARTITION OF events FOR VALUES IN ('debug');
CREATE TABLE events_other PARTITION OF events DEFAULT;
`

// primaryFixture is what the resource and data-source examples name on the
// primary: the roles, the app database with its tables, and the schemas
// that the "reporting" publication publishes.
var primaryFixture = []struct{ database, sql string }{
	{"postgres", `CREATE ROLE replication_admin LOGIN REPLICATION`},
	{"postgres", `CREATE ROLE replicator LOGIN REPLICATION`},
	{"postgres", `CREATE ROLE app LOGIN`},
	{"postgres", `CREATE DATABASE app`},
	{"app", appSchema + `
GRANT CREATE ON DATABASE app TO replication_admin;
GRANT SELECT ON orders, customers TO replicator;
CREATE SCHEMA reporting;
CREATE TABLE reporting.daily_sales (day date PRIMARY KEY, total numeric(14,2) NOT NULL);
CREATE SCHEMA billing;
CREATE TABLE billing.invoices (id bigint PRIMARY KEY, customer_id bigint NOT NULL, total numeric(12,2) NOT NULL);
-- What the subscription example subscribes to.
CREATE PUBLICATION orders FOR TABLE orders;
CREATE PUBLICATION customers FOR TABLE customers;
`},
}

// subscriberFixture is the subscriber's side of the subscription example:
// the reporting database with the tables the publications carry.
var subscriberFixture = []struct{ database, sql string }{
	{"postgres", `CREATE DATABASE reporting`},
	{"reporting", appSchema},
}

func TestExamples(t *testing.T) {
	cli := findCLI(t)
	ctx := t.Context()

	cli.configFile = buildProvider(t)

	t.Run("provider", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		copyExample(t, "provider/provider.tf", dir, nil)
		writeProviders(t, dir, nil)
		cli.run(t, dir, 0, "validate", "-no-color")
	})

	// The resource and data-source examples share one primary and two
	// standbys, and run one after the other: the synchronous replication
	// example needs both standbys streaming as routertest named them, and
	// the standby example, after it, reconfigures standby1; the subscription,
	// last, uses only the primary (as its publisher).
	t.Run("shared_topology", func(t *testing.T) {
		t.Parallel()
		topo := routertest.Start(t, routertest.WithStandbys(2))
		for _, f := range primaryFixture {
			execSQL(t, topo.Primary, f.database, f.sql)
		}
		// Standbys must have the app database before their providers connect to it.
		if err := topo.WaitReplayed(ctx); err != nil {
			t.Fatal(err)
		}
		primary := server{topo.Primary, "app"}
		standby1 := server{topo.Standbys[0], "app"}
		routerFile := filepath.Join(t.TempDir(), "router.json")

		examples := []example{
			{path: "data-sources/pgreplication_server/data-source.tf", aliases: map[string]server{"primary": primary}},
			{path: "data-sources/pgreplication_replication_status/data-source.tf", aliases: map[string]server{"primary": primary}},
			{path: "resources/pgreplication_publication/resource.tf", aliases: map[string]server{"primary": primary}},
			{
				path:                "resources/pgreplication_replication_slot/resource.tf",
				aliases:             map[string]server{"primary": primary, "standby1": standby1},
				logStandbySnapshots: topo.Primary,
				needs:               17, // a failover slot; a logical slot on a standby needs 16
				major:               topo.Version,
			},
			{
				path: "resources/pgreplication_router_config/resource.tf",
				// The file is written, not connected to: only its path must be real.
				replace: []replacement{{`"/etc/app/router.json"`, strconv.Quote(routerFile)}},
			},
			{
				path:    "resources/pgreplication_synchronous_replication/resource.tf",
				aliases: map[string]server{"primary": primary},
				// routertest's standbys report these application names.
				replace: []replacement{{`["standby1", "standby2"]`, fmt.Sprintf("[%q, %q]", topo.Standbys[0].Name, topo.Standbys[1].Name)}},
			},
			{
				path:    "resources/pgreplication_standby/resource.tf",
				aliases: map[string]server{"standby1": standby1},
				// The slot it streams through, which the replication slot
				// example declares (and has destroyed by now).
				before: func(t *testing.T) {
					execSQL(t, topo.Primary, "postgres", `SELECT pg_create_physical_replication_slot('standby_1', true)`)
				},
				// The primary listens on its own port and without TLS. The
				// passfile stays: trust authentication never reads it.
				replace: []replacement{
					{`"db-primary.internal"`, strconv.Quote(topo.Primary.Host)},
					{`primary_port    = 5432`, fmt.Sprintf("primary_port    = %d", topo.Primary.Port)},
					{`primary_sslmode = "verify-full"`, `primary_sslmode = "disable"`},
				},
			},
		}
		for _, ex := range examples {
			t.Run(exampleName(ex.path), func(t *testing.T) { cli.prove(t, ex) })
		}

		// The subscriber is a server of its own; the publisher is the
		// primary above, whose app database has the publications.
		t.Run("subscription", func(t *testing.T) {
			sub := routertest.Start(t, routertest.WithStandbys(0))
			for _, f := range subscriberFixture {
				execSQL(t, sub.Primary, f.database, f.sql)
			}
			cli.prove(t, example{
				path:    "resources/pgreplication_subscription/resource.tf",
				aliases: map[string]server{"subscriber": {sub.Primary, "postgres"}},
				replace: []replacement{
					{"host=db-primary.internal port=5432", fmt.Sprintf("host=%s port=%d", topo.Primary.Host, topo.Primary.Port)},
					{"sslmode=verify-full", "sslmode=disable"},
				},
				vars:  map[string]string{"replication_password": "unused-with-trust-auth"},
				needs: 16, // origin = "none"
				major: sub.Version,
			})
		})
	})

	// The quickstart declares its own providers and changes both standbys
	// (slots, application names, synchronous replication): a topology of
	// its own, as the sandbox gives it in make demo.
	t.Run("quickstart", func(t *testing.T) {
		t.Parallel()
		topo := routertest.Start(t, routertest.WithStandbys(2))
		execSQL(t, topo.Primary, "postgres", quickstartBooks)
		cli.prove(t, example{path: "quickstart", vars: quickstartVars(t, topo)})
	})

	// The quickstart again, applied, re-planned and destroyed by a role that
	// is not a superuser and holds exactly what the docs of its resources
	// list under "Privileges to apply", nothing more: the test takes the grants from
	// the generated docs, so docs that ask for too little fail here.
	t.Run("quickstart_least_privilege", func(t *testing.T) {
		t.Parallel()
		routertest.SkipBelow(t, 15, "granting ALTER SYSTEM (before, the standby and synchronous replication need a superuser)")
		topo := routertest.Start(t, routertest.WithStandbys(2))
		grants := documentedGrants(t, "publication", "replication_slot", "standby", "synchronous_replication")
		execSQL(t, topo.Primary, "postgres", quickstartBooks+`;
CREATE ROLE terraform LOGIN;
-- The standbys stream as a role that is not a superuser either: the
-- terraform role could not end a superuser's WAL sender (terminate_active_on_destroy).
CREATE ROLE replicator LOGIN REPLICATION;
`+strings.Join(grants, ";\n"))
		// Roles and grants reach the standbys by replication.
		if err := topo.WaitReplayed(ctx); err != nil {
			t.Fatal(err)
		}
		cli.prove(t, example{
			path: "quickstart",
			vars: quickstartVars(t, topo),
			replace: []replacement{
				{`username = "postgres"`, `username = "terraform"`},
				{`primary_user      = "postgres"`, `primary_user      = "replicator"`},
			},
		})
	})
}

// quickstartVars are the quickstart's variables for a topology of a
// primary and two standbys.
func quickstartVars(t *testing.T, topo *routertest.Topology) map[string]string {
	return map[string]string{
		"host":          topo.Primary.Host,
		"primary_port":  strconv.Itoa(topo.Primary.Port),
		"replica1_port": strconv.Itoa(topo.Standbys[0].Port),
		"replica2_port": strconv.Itoa(topo.Standbys[1].Port),
		"router_file":   filepath.Join(t.TempDir(), "router.json"),
	}
}

// quickstartBooks is the table the quickstart publishes, as the bookstore's
// migrate creates it.
const quickstartBooks = `
CREATE TABLE IF NOT EXISTS books (
    id         bigserial PRIMARY KEY,
    title      text NOT NULL,
    author     text NOT NULL,
    published  boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now()
)`

// documentedGrants are the statements that docs/resources/<resource>.md list
// under "Privileges to apply" for a role named terraform, made to fit the quickstart
// (its database is postgres, its table public.books), without the ones the
// quickstart does not need (a superuser, for publishing all tables or a
// schema's).
func documentedGrants(t *testing.T, resources ...string) []string {
	t.Helper()
	bullet := regexp.MustCompile("(?m)^- `((?:GRANT|ALTER) [^`]+ terraform(?: [A-Z]+)?)`")
	var grants []string
	for _, r := range resources {
		doc, err := os.ReadFile(filepath.Join("..", "docs", "resources", r+".md"))
		if err != nil {
			t.Fatal(err)
		}
		found := bullet.FindAllStringSubmatch(string(doc), -1)
		if len(found) == 0 {
			t.Fatalf("docs/resources/%s.md lists no privileges", r)
		}
		for _, m := range found {
			if strings.HasSuffix(m[1], "SUPERUSER") {
				continue
			}
			grants = append(grants, strings.NewReplacer("DATABASE app", "DATABASE postgres").Replace(m[1]))
		}
	}
	return grants
}

// exampleName is the subtest name of an example: its resource or data source type.
func exampleName(path string) string {
	if strings.HasSuffix(path, ".tf") {
		return filepath.Base(filepath.Dir(path))
	}
	return filepath.Base(path)
}

// terraformCLI runs the Terraform or OpenTofu binary.
type terraformCLI struct {
	path       string
	configFile string // TF_CLI_CONFIG_FILE: the dev_overrides
}

// findCLI returns the CLI of $TF_ACC_TERRAFORM_PATH. Like the provider's
// acceptance tests it skips without TF_ACC, except in CI, where it fails.
func findCLI(t *testing.T) *terraformCLI {
	t.Helper()
	ci := os.Getenv("CI") == "true"
	if os.Getenv("TF_ACC") == "" {
		if ci {
			t.Fatal("TF_ACC is not set: CI must run the examples (use make test)")
		}
		t.Skip("acceptance test: set TF_ACC=1 and TF_ACC_TERRAFORM_PATH (make test does)")
	}
	path := os.Getenv("TF_ACC_TERRAFORM_PATH")
	if path == "" {
		if ci {
			t.Fatal("TF_ACC_TERRAFORM_PATH is not set: CI must run the examples with a CLI (use make test)")
		}
		t.Skip("set TF_ACC_TERRAFORM_PATH to the terraform or tofu binary (tools/tfcli.sh path prints it)")
	}
	return &terraformCLI{path: path}
}

// prove applies an example, requires the plan after it to be empty (or to
// show exactly its known diff), and destroys it.
func (c *terraformCLI) prove(t *testing.T, ex example) {
	t.Helper()
	if ex.before != nil {
		ex.before(t)
	}
	dir := t.TempDir()
	copyExample(t, ex.path, dir, ex.replace)
	if strings.HasSuffix(ex.path, ".tf") { // a directory (the quickstart) declares its own providers
		writeProviders(t, dir, ex.aliases)
	}
	var vars []string
	for name, value := range ex.vars {
		vars = append(vars, "-var", name+"="+value)
	}
	if ex.needs > ex.major {
		// The version gate must stop the plan, before anything is applied.
		code, out := c.exec(t, dir, append([]string{"plan", "-input=false", "-no-color"}, vars...)...)
		if code == 0 || !regexp.MustCompile(`needs PostgreSQL 1[0-9] or later`).MatchString(out) {
			t.Errorf("on PostgreSQL %d, plan of an example that needs %d exited %d; want a plan-time error naming the version:\n%s", ex.major, ex.needs, code, out)
		}
		return
	}

	// Destroy whatever happens to apply or plan: the servers are shared
	// with the next example, and a partial apply leaves objects too.
	defer func() {
		began := time.Now()
		args := append([]string{"destroy", "-auto-approve", "-input=false", "-no-color"}, vars...)
		if code, out := c.exec(t, dir, args...); code != 0 {
			t.Errorf("destroy exited %d, want 0:\n%s", code, out)
		}
		t.Logf("destroy: %v", time.Since(began).Round(time.Millisecond))
	}()

	stop := func() {}
	if ex.logStandbySnapshots != nil {
		stop = logStandbySnapshots(t, ex.logStandbySnapshots)
		defer stop() // when apply fails; stop may be called twice
	}
	began := time.Now()
	out := c.run(t, dir, 0, append([]string{"apply", "-auto-approve", "-input=false", "-no-color"}, vars...)...)
	stop()
	t.Logf("apply: %v", time.Since(began).Round(time.Millisecond))
	failedChecks(t, "apply", out)

	// Exit code 2 is a change: the servers do not read back as declared (a
	// resource bug), or the example outputs a value that changes by itself.
	code, out := c.exec(t, dir, append([]string{"plan", "-detailed-exitcode", "-input=false", "-no-color"}, vars...)...)
	if code != 0 {
		t.Errorf("plan -detailed-exitcode after apply exited %d, want 0 (no changes):\n%s", code, out)
	}
	failedChecks(t, "plan", out)
	c.proveImport(t, ex, dir, vars)
}

// proveImport runs the command of the example's import.sh (which
// tfplugindocs puts under "Import" on the resource's page) as a user would:
// the resource, forgotten by the state, comes back by its import ID, and
// after an apply (the import notes say which first plans change something,
// and that such an apply changes nothing on the server) the plan is empty.
func (c *terraformCLI) proveImport(t *testing.T, ex example, dir string, vars []string) {
	t.Helper()
	script := filepath.Join(filepath.Dir(ex.path), "import.sh")
	if !strings.HasPrefix(ex.path, "resources/") {
		return
	}
	b, err := os.ReadFile(script)
	if err != nil {
		t.Fatalf("examples/%s: every resource example has an import.sh beside it: %v", script, err)
	}
	address, id := importCommand(t, script, string(b))
	for _, r := range ex.replace { // the ID names what the example names: the same replacements
		id = strings.ReplaceAll(id, strings.Trim(r.old, `"`), strings.Trim(r.new, `"`))
	}
	c.run(t, dir, 0, "state", "rm", "-no-color", address)
	c.run(t, dir, 0, append([]string{"import", "-input=false", "-no-color"}, append(vars, address, id)...)...)
	c.run(t, dir, 0, append([]string{"apply", "-auto-approve", "-input=false", "-no-color"}, vars...)...)
	if code, out := c.exec(t, dir, append([]string{"plan", "-detailed-exitcode", "-input=false", "-no-color"}, vars...)...); code != 0 {
		t.Errorf("examples/%s: after `terraform import %s %s` and an apply, plan -detailed-exitcode exited %d, want 0:\n%s", script, address, id, code, out)
	}
}

// importCommand is the address and the ID of the one `terraform import`
// line of an import.sh, its words unquoted as a shell would.
func importCommand(t *testing.T, script, text string) (address, id string) {
	t.Helper()
	word := `('[^']*'|[^\s']+)`
	line := regexp.MustCompile(`(?m)^terraform import ` + word + ` ` + word + `\s*$`)
	m := line.FindAllStringSubmatch(text, -1)
	if len(m) != 1 {
		t.Fatalf("examples/%s: want one line `terraform import ADDRESS ID`, found %d", script, len(m))
	}
	return strings.Trim(m[0][1], "'"), strings.Trim(m[0][2], "'")
}

// failedChecks fails the test when a check block of the example failed:
// the CLI only warns, but a check that fails on a healthy topology is a
// wrong example.
func failedChecks(t *testing.T, command, out string) {
	t.Helper()
	if strings.Contains(out, "assertion failed") {
		t.Errorf("a check block failed during %s:\n%s", command, out)
	}
}

// run runs the CLI in dir, fails the test unless it exits with want, and
// returns its output.
func (c *terraformCLI) run(t *testing.T, dir string, want int, args ...string) string {
	t.Helper()
	code, out := c.exec(t, dir, args...)
	if code != want {
		t.Fatalf("%s %s exited %d, want %d:\n%s", filepath.Base(c.path), args[0], code, want, out)
	}
	return out
}

// exec runs the CLI in dir and returns its exit code and combined output.
func (c *terraformCLI) exec(t *testing.T, dir string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), c.path, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"TF_CLI_CONFIG_FILE="+c.configFile,
		"TF_IN_AUTOMATION=1",
		"CHECKPOINT_DISABLE=1",
	)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, out.String()
	case errors.As(err, &exit):
		return exit.ExitCode(), out.String()
	default:
		t.Fatalf("running %s: %v", c.path, err)
		return -1, ""
	}
}

// copyExample copies an example file, or every .tf file of an example
// directory, into dir, applying the replacements to each file.
func copyExample(t *testing.T, path, dir string, replace []replacement) {
	t.Helper()
	files := []string{path}
	if !strings.HasSuffix(path, ".tf") {
		var err error
		if files, err = filepath.Glob(filepath.Join(path, "*.tf")); err != nil || len(files) == 0 {
			t.Fatalf("no .tf files in examples/%s (%v)", path, err)
		}
	}
	used := make([]bool, len(replace))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		text := string(b)
		for i, r := range replace {
			if strings.Contains(text, r.old) {
				text = strings.ReplaceAll(text, r.old, r.new)
				used[i] = true
			}
		}
		writeFile(t, filepath.Join(dir, filepath.Base(f)), text)
	}
	for i, r := range replace {
		if !used[i] {
			t.Fatalf("examples/%s no longer contains %q: update the replacement in examples_test.go", path, r.old)
		}
	}
}

// writeProviders writes providers.tf: the provider's source and one
// provider block per alias, on its routertest node.
func writeProviders(t *testing.T, dir string, aliases map[string]server) {
	t.Helper()
	var b strings.Builder
	b.WriteString(`terraform {
  required_providers {
    pgreplication = {
      source = "pgreplication/pgreplication"
    }
  }
}
`)
	for alias, s := range aliases {
		fmt.Fprintf(&b, `
provider "pgreplication" {
  alias    = %q
  host     = %q
  port     = %d
  username = "postgres"
  database = %q
  sslmode  = "disable"
}
`, alias, s.node.Host, s.node.Port, s.database)
	}
	writeFile(t, filepath.Join(dir, "providers.tf"), b.String())
}

// logStandbySnapshots calls pg_log_standby_snapshot() on the primary every
// 500ms until the returned stop is called.
func logStandbySnapshots(t *testing.T, primary *routertest.Node) (stop func()) {
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for {
			// An error (a server busy restarting) is not the test's
			// concern: the apply that waits for the record reports it.
			_ = primary.Exec(ctx, `SELECT pg_log_standby_snapshot()`)
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return func() { cancel(); <-done }
}

// execSQL runs statements on a node's database.
func execSQL(t *testing.T, n *routertest.Node, database, sql string) {
	t.Helper()
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, n.DSNFor(database))
	if err != nil {
		t.Fatalf("connecting to %s: %v", n.Name, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("on %s, database %s: %v\n%s", n.Name, database, err, sql)
	}
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}
