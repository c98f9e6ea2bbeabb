package examples_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// auditRole is the drift-audit role of docs/guides/drift-audit.md: it may
// connect and read the server's settings and statistics, and nothing else.
const auditRole = "drift_audit"

// auditRoleSQL creates it, exactly as the guide says.
const auditRoleSQL = `
CREATE ROLE drift_audit LOGIN;
GRANT pg_monitor TO drift_audit;          -- pg_read_all_settings, pg_read_all_stats, pg_stat_scan_tables
GRANT CONNECT ON DATABASE postgres TO drift_audit;
`

// auditFixture is what the quickstart's publication publishes, and a table
// with a hostile name whose filter PostgreSQL rewrites when it stores it.
const auditFixture = `
CREATE TABLE books (
    id         bigserial PRIMARY KEY,
    title      text NOT NULL,
    author     text NOT NULL,
    published  boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE SCHEMA "Sales.EU ""x""/ß";
CREATE TABLE "Sales.EU ""x""/ß"."Order Lines/""Ö""" (
    id     bigint PRIMARY KEY,
    total  numeric(12,2) NOT NULL,
    region text NOT NULL,
    "Note)" text
);
`

// auditExtra is added to the quickstart: the hostile publication, a spare
// slot to drift, the replication status data source (the quickstart has
// the server one), and the provider's username as a variable, which is how a
// drift audit plans the same configuration with other credentials.
const auditExtra = `
variable "pg_user" {
  type    = string
  default = "postgres"
}

resource "pgreplication_publication" "hostile" {
  provider = pgreplication.primary
  name     = "Audit \"Pub\" ./ Ä"
  publish  = ["insert"]

  tables = {
    "\"Sales.EU \"\"x\"\"/ß\".\"Order Lines/\"\"Ö\"\"\"" = {
      columns = ["id", "total", "region", "Note)"]
      where   = "total > 0 AND region IN ('eu', 'uk') AND \"Note)\" <> ')'"
    }
  }
}

data "pgreplication_replication_status" "primary" {
  provider = pgreplication.primary
}

resource "pgreplication_replication_slot" "spare" {
  provider = pgreplication.primary
  name     = "audit_spare"
  type     = "physical"
}
`

// auditSubscription is the subscriber's side: a subscription of the
// quickstart's publication on a server of its own, which the audit role
// plans too. The subscription connects as books_reader, so that what it
// runs on the publisher (the plan's wal_level probe) is checked as well.
const auditSubscription = `
variable "subscriber_port" {
  type = number
}

provider "pgreplication" {
  alias    = "subscriber"
  host     = var.host
  port     = var.subscriber_port
  username = var.pg_user
  database = "postgres"
  sslmode  = "disable"
}

resource "pgreplication_subscription" "books" {
  provider     = pgreplication.subscriber
  name         = "books_copy"
  conninfo     = "host=${var.host} port=${var.primary_port} dbname=postgres user=books_reader sslmode=disable"
  publications = [pgreplication_publication.books.name]
}
`

// A drift audit plans with a role that can only read (issue 12): the
// quickstart's topology, plus filters written in a form PostgreSQL rewrites
// and hostile names, is applied by the admin; then `plan -detailed-exitcode`
// with the provider configured for the read-only role exits 0, and after
// drift made by hand (a row filter, a slot, a standby setting,
// synchronous_standby_names) exits 2 naming each field. With log_statement
// = 'all' on every server, what the read-only plans ran is reads only, and
// the primary's transaction ID counter does not move.
func TestDriftAuditPlanIsReadOnly(t *testing.T) {
	cli := findCLI(t)
	cli.configFile = buildProvider(t)
	ctx := t.Context()
	topo := routertest.Start(t, routertest.WithStandbys(2))
	nodes := append([]*routertest.Node{topo.Primary}, topo.Standbys...)
	execSQL(t, topo.Primary, "postgres", auditFixture+auditRoleSQL+
		`CREATE ROLE books_reader LOGIN REPLICATION; GRANT SELECT ON books TO books_reader;`)
	sub := routertest.Start(t, routertest.WithStandbys(0))
	nodes = append(nodes, sub.Primary)
	// The subscriber's table, and the audit role there: a subscription's
	// connection string is readable only with the column grant.
	execSQL(t, sub.Primary, "postgres", `CREATE TABLE books (id bigint PRIMARY KEY, title text, author text, published boolean, created_at timestamptz);`+
		auditRoleSQL+`GRANT SELECT (subconninfo) ON pg_catalog.pg_subscription TO drift_audit;`)

	dir := t.TempDir()
	copyExample(t, "quickstart", dir, []replacement{{`username = "postgres"`, `username = var.pg_user`}})
	writeFile(t, filepath.Join(dir, "audit.tf"), auditExtra)
	writeFile(t, filepath.Join(dir, "subscription.tf"), auditSubscription)
	vars := []string{
		"-var", "host=" + topo.Primary.Host,
		"-var", "primary_port=" + strconv.Itoa(topo.Primary.Port),
		"-var", "replica1_port=" + strconv.Itoa(topo.Standbys[0].Port),
		"-var", "replica2_port=" + strconv.Itoa(topo.Standbys[1].Port),
		"-var", "router_file=" + filepath.Join(t.TempDir(), "router.json"),
		"-var", "subscriber_port=" + strconv.Itoa(sub.Primary.Port),
	}
	cli.run(t, dir, 0, append([]string{"apply", "-auto-approve", "-input=false", "-no-color"}, vars...)...)
	defer func() {
		if code, out := cli.exec(t, dir, append([]string{"destroy", "-auto-approve", "-input=false", "-no-color"}, vars...)...); code != 0 {
			t.Errorf("destroy exited %d, want 0:\n%s", code, out)
		}
	}()

	// Every statement, with the role that ran it. Autovacuum off: an
	// automatic ANALYZE takes a transaction ID of its own, which the
	// counter below would blame on the plan.
	for _, n := range nodes {
		setAndReload(t, n, `ALTER SYSTEM SET log_statement = 'all'`, `ALTER SYSTEM SET log_line_prefix = '%m [%p] user=%u app=%a '`,
			`ALTER SYSTEM SET autovacuum = off`)
	}
	// The subscription's initial copy runs on the publisher as
	// books_reader (COPY … TO STDOUT) a moment after apply returns; it is
	// not the plan's, so wait until every table is synchronised.
	waitSubscriptionReady(t, sub.Primary)
	if err := topo.WaitReplayed(ctx); err != nil {
		t.Fatal(err)
	}

	auditPlan := func(wantCode int) string {
		t.Helper()
		marks := make([]int64, len(nodes))
		for i, n := range nodes {
			marks[i] = logSize(t, n)
		}
		before := currentXactID(t, topo.Primary)
		planFile := filepath.Join(dir, "audit.tfplan")
		code, out := cli.exec(t, dir, append([]string{"plan", "-detailed-exitcode", "-input=false", "-no-color", "-out", planFile, "-var", "pg_user=" + auditRole}, vars...)...)
		after := currentXactID(t, topo.Primary)
		if code != wantCode {
			t.Fatalf("the read-only plan exited %d, want %d:\n%s", code, wantCode, out)
		}
		// The admin's own pg_current_xact_id() takes one ID; the
		// audit's plan, none.
		if after != before+1 {
			t.Errorf("the primary's transaction ID went from %d to %d during the read-only plan; want %d (the admin's own read)", before, after, before+1)
		}
		for i, n := range nodes {
			checkReadsOnly(t, n, marks[i])
		}
		return cli.run(t, dir, 0, "show", "-json", planFile)
	}

	// As applied: nothing to change, with credentials that can change nothing.
	auditPlan(0)

	// Drift by hand, as the admin.
	execSQL(t, topo.Primary, "postgres", `ALTER PUBLICATION "Audit ""Pub"" ./ Ä" SET TABLE ONLY "Sales.EU ""x""/ß"."Order Lines/""Ö""" (id, total, region, "Note)") WHERE (total > 5 AND region IN ('eu', 'uk') AND "Note)" <> ')')`)
	execSQL(t, topo.Primary, "postgres", `SELECT pg_drop_replication_slot('audit_spare')`)
	setAndReload(t, topo.Standbys[0], `ALTER SYSTEM SET hot_standby_feedback = off`)
	setAndReload(t, topo.Primary, `ALTER SYSTEM SET synchronous_standby_names = 'FIRST 1 ("replica-2")'`)

	changes := plannedChanges(t, auditPlan(2))
	t.Logf("the read-only plan after drift: %v", changes)
	for addr, want := range map[string][]string{
		"pgreplication_publication.hostile":             {"tables"},
		"pgreplication_replication_slot.spare":          {"create"},
		"pgreplication_standby.replica1":                {"hot_standby_feedback"},
		"pgreplication_synchronous_replication.primary": {"standby_names"},
		"pgreplication_replication_slot.replica1":       nil,
		"pgreplication_publication.books":               nil,
		"pgreplication_standby.replica2":                nil,
		"pgreplication_router_config.app":               nil,
		"pgreplication_subscription.books":              nil,
	} {
		got := changes[addr]
		for _, field := range want {
			if !slices.Contains(got, field) {
				t.Errorf("the read-only plan does not name %s of %s; it plans %v", field, addr, got)
			}
		}
		if want == nil && got != nil {
			t.Errorf("the read-only plan changes %s, which did not drift: %v", addr, got)
		}
	}
}

// buildProvider builds the provider into a temporary directory and
// returns a CLI configuration file whose dev_overrides point at it, under
// both registry addresses, so that the configuration works with Terraform
// and OpenTofu alike.
func buildProvider(t *testing.T) string {
	t.Helper()
	bin := t.TempDir()
	build := exec.CommandContext(t.Context(), "go", "build", "-o", filepath.Join(bin, "terraform-provider-pgreplication"), ".")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the provider: %v\n%s", err, out)
	}
	rc := filepath.Join(bin, "dev.tfrc")
	writeFile(t, rc, fmt.Sprintf(`provider_installation {
  dev_overrides {
    "registry.terraform.io/pgreplication/pgreplication" = %[1]q
    "registry.opentofu.org/pgreplication/pgreplication" = %[1]q
  }
  direct {}
}
`, bin))
	return rc
}

// waitSubscriptionReady waits until every table of every subscription on
// n is synchronised (pg_subscription_rel state r, ready).
func waitSubscriptionReady(t *testing.T, n *routertest.Node) {
	t.Helper()
	var pending int
	waitFor(t, n, 60*time.Second, func() bool {
		err := n.QueryRow(t.Context(), `SELECT count(*)::int FROM pg_subscription_rel WHERE srsubstate <> 'r'`).Scan(&pending)
		if err != nil {
			t.Fatal(err)
		}
		return pending == 0
	}, "the subscription's tables to be synchronised")
}

// setAndReload runs ALTER SYSTEM statements on n as the admin, reloads, and
// waits until a new session has read the configuration again.
func setAndReload(t *testing.T, n *routertest.Node, stmts ...string) {
	t.Helper()
	for _, s := range stmts {
		execSQL(t, n, "postgres", s)
	}
	var before, now time.Time
	if err := n.QueryRow(t.Context(), `SELECT pg_conf_load_time()`).Scan(&before); err != nil {
		t.Fatal(err)
	}
	execSQL(t, n, "postgres", `SELECT pg_reload_conf()`)
	waitFor(t, n, 10*time.Second, func() bool {
		if err := n.QueryRow(t.Context(), `SELECT pg_conf_load_time()`).Scan(&now); err != nil {
			t.Fatal(err)
		}
		return now.After(before)
	}, "the reload")
}

// waitFor polls done every 50 ms until it holds, failing the test after limit.
func waitFor(t *testing.T, n *routertest.Node, limit time.Duration, done func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !done() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: still waiting for %s after %v", n.Name, what, limit)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func currentXactID(t *testing.T, n *routertest.Node) int64 {
	t.Helper()
	var id int64
	if err := n.QueryRow(t.Context(), `SELECT pg_current_xact_id()::text::bigint`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}

func logSize(t *testing.T, n *routertest.Node) int64 {
	t.Helper()
	st, err := os.Stat(filepath.Join(n.DataDir, "postgresql.log"))
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// loggedStatement is a statement in a server log with log_statement = 'all':
// `statement: …` (simple protocol) or `execute <name>: …` (extended).
var loggedStatement = regexp.MustCompile(`user=(\S*) app=(.*?) LOG:  (?:statement|execute [^:]*): (.*)`)

// reads are how a read-only statement starts; anything else (CREATE, ALTER,
// DROP, SAVEPOINT, INSERT, UPDATE, DELETE, SET, a function that writes) in
// the audit role's sessions fails the test.
var reads = regexp.MustCompile(`(?is)^\s*(SELECT|EXPLAIN \(COSTS OFF\) WITH|WITH|SHOW)\b`)

// writingCalls are functions a SELECT could call to change a server.
var writingCalls = regexp.MustCompile(`(?i)pg_(create|drop|reload|terminate|cancel|switch|promote|log_standby|replication_origin_create|advisory)|set_config|nextval|setval|lo_`)

// isRead reports whether a logged statement only reads.
func isRead(stmt string) bool {
	if strings.TrimSpace(stmt) == "-- ping" {
		return true // pgxpool's health check of an idle connection: a comment, it runs nothing
	}
	return reads.MatchString(stmt) && !writingCalls.MatchString(stmt) && !explainAnalyze.MatchString(stmt)
}

// explainAnalyze runs the statement it explains.
var explainAnalyze = regexp.MustCompile(`(?i)\bEXPLAIN\s*\([^)]*ANALY[SZ]E`)

// The read check can fail: each kind of write the issue names is not a read.
func TestIsRead(t *testing.T) {
	for _, s := range []string{
		"SELECT current_setting('wal_level')",
		`EXPLAIN (COSTS OFF) WITH "t" AS MATERIALIZED (SELECT NULL::integer AS "id") SELECT FROM "t" WHERE (id > 0)`,
		"SHOW wal_level",
		"-- ping",
	} {
		if !isRead(s) {
			t.Errorf("isRead(%q) = false, want true", s)
		}
	}
	for _, s := range []string{
		"CREATE PUBLICATION p", "ALTER SYSTEM SET x = 1", "DROP PUBLICATION p", "SAVEPOINT row_filter",
		"INSERT INTO t VALUES (1)", "UPDATE t SET a = 1", "DELETE FROM t", "SET LOCAL lock_timeout = '2s'",
		"SELECT pg_create_physical_replication_slot('s')", "SELECT pg_reload_conf()", "SELECT set_config('a', 'b', false)",
		"EXPLAIN (ANALYZE) DELETE FROM t", "BEGIN", "ROLLBACK TO SAVEPOINT row_filter", "-- ping\nDROP TABLE t",
	} {
		if isRead(s) {
			t.Errorf("isRead(%q) = true, want false", s)
		}
	}
}

// checkReadsOnly reads n's server log from offset on: every statement of
// the audit role is a read, and there is at least one (or the log proves
// nothing).
func checkReadsOnly(t *testing.T, n *routertest.Node, offset int64) {
	t.Helper()
	where := fmt.Sprintf("%s (port %d)", n.Name, n.Port)
	f, err := os.Open(filepath.Join(n.DataDir, "postgresql.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Seek(offset, 0); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	text := string(data[offset:])
	// A statement may span lines: the log's continuation lines start
	// with a tab; join them to their statement.
	text = strings.ReplaceAll(text, "\n\t", " ")
	count := 0
	for _, line := range strings.Split(text, "\n") {
		m := loggedStatement.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		switch m[1] {
		case auditRole:
			count++
		case "books_reader": // the subscription's own connection to its publisher
		case "", "postgres": // the test's admin reads, before and after
			continue
		default:
			t.Errorf("%s: a statement by role %q during the read-only plan: %s", where, m[1], m[3])
			continue
		}
		if !isRead(m[3]) {
			t.Errorf("%s: the read-only plan ran a statement that is not a read: %s", where, m[3])
		}
	}
	t.Logf("%s: %d statements of %s during the read-only plan", where, count, auditRole)
	if count == 0 {
		t.Errorf("%s: the server log shows no statement of %s during the read-only plan; log_statement = 'all' did not take, and the check proves nothing:\n%s", where, auditRole, text)
	}
}

// plannedChanges maps each resource the plan changes to the top-level
// attributes that change ("create" or "delete" for those actions).
func plannedChanges(t *testing.T, showJSON string) map[string][]string {
	t.Helper()
	var plan struct {
		ResourceChanges []struct {
			Address string `json:"address"`
			Mode    string `json:"mode"`
			Change  struct {
				Actions []string                   `json:"actions"`
				Before  map[string]json.RawMessage `json:"before"`
				After   map[string]json.RawMessage `json:"after"`
				Unknown map[string]json.RawMessage `json:"after_unknown"`
			} `json:"change"`
		} `json:"resource_changes"`
	}
	if err := json.Unmarshal([]byte(showJSON[strings.Index(showJSON, "{"):]), &plan); err != nil {
		t.Fatalf("show -json: %v\n%s", err, showJSON)
	}
	out := map[string][]string{}
	for _, rc := range plan.ResourceChanges {
		if rc.Mode != "managed" || slices.Equal(rc.Change.Actions, []string{"no-op"}) || slices.Equal(rc.Change.Actions, []string{"read"}) {
			continue
		}
		if !slices.Contains(rc.Change.Actions, "update") {
			out[rc.Address] = rc.Change.Actions
			continue
		}
		var changed []string
		for k, b := range rc.Change.Before {
			a, ok := rc.Change.After[k]
			if !ok || string(a) != string(b) {
				changed = append(changed, k)
			}
		}
		slices.Sort(changed)
		out[rc.Address] = changed
	}
	return out
}
