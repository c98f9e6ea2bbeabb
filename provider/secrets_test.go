package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/conninfo"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// The tests of this file prove that no password leaves the provider (issue 8):
// not in a diagnostic, not in the CLI's or the provider's TRACE log, not to a
// host that a resource names. Their canary passwords carry canaryMark, a
// character nothing else in an error prints, so that "the error holds no
// part of the password" is a regular expression the real CLI's error text
// must match whole (terraform-plugin-testing only matches errors).
const canaryMark = "§"

// errorWithout matches an error that holds the phrases in order and no
// canaryMark anywhere.
func errorWithout(phrases ...string) *regexp.Regexp {
	quoted := make([]string, len(phrases))
	for i, p := range phrases {
		quoted[i] = wrappedText(p)
	}
	not := "[^" + canaryMark + "]*"
	return regexp.MustCompile(`^` + not + strings.Join(quoted, not) + not + `$`)
}

// traceLog sends the TRACE logs of the CLI and of the provider under test to
// one file, as TF_LOG=TRACE TF_LOG_PATH=… would for a user, and returns it.
func traceLog(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "trace.log")
	t.Setenv("TF_LOG", "TRACE")
	t.Setenv("TF_LOG_PATH", path)
	t.Setenv("TF_ACC_LOG", "TRACE")
	t.Setenv("TF_ACC_LOG_PATH", path)
	return path
}

// checkLogHasNo fails when the log at path holds any of the secrets, or
// lacks any of want: what proves the log was written at all.
func checkLogHasNo(t *testing.T, path string, secrets []string, want ...string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	log := string(b)
	for _, s := range secrets {
		if i := strings.Index(log, s); i >= 0 {
			t.Errorf("the TRACE log leaks %q: …%s…", s, log[max(0, i-300):min(len(log), i+100)])
		}
	}
	for _, w := range want {
		if !strings.Contains(log, w) {
			t.Errorf("the TRACE log (%d bytes) lacks %q: the check above proves nothing without it", len(log), w)
		}
	}
}

// canaryVariable declares the variable canary_password, sensitive, and
// gives it pw through the environment (TF_VAR_canary_password), the way a
// user passes a password: the configuration holds var.canary_password, so
// neither the CLI's source snippets nor the test harness's log of the
// configuration can show the value; only the provider and Terraform have it.
func canaryVariable(t *testing.T, pw string) string {
	t.Setenv("TF_VAR_canary_password", pw)
	return `
variable "canary_password" {
  type      = string
  sensitive = true
}
`
}

// canaryParts are the pieces of a canary password that must never be shown.
func canaryParts(pw string) []string {
	parts := []string{pw, canaryMark}
	for _, line := range strings.Split(pw, "\n") {
		if strings.TrimSpace(line) != "" {
			parts = append(parts, line)
		}
	}
	return parts
}

// createStandbyRole creates a login role on topo's primary that may read
// every setting and statistic but not ALTER SYSTEM them, and waits until
// the standbys have it.
func createStandbyRole(t *testing.T, topo *routertest.Topology, role string) {
	t.Helper()
	execSQL(t, topo.Primary, "postgres", "DROP ROLE IF EXISTS "+role)
	execSQL(t, topo.Primary, "postgres", "CREATE ROLE "+role+" LOGIN IN ROLE pg_read_all_settings, pg_read_all_stats")
	t.Cleanup(func() { execSQL(t, topo.Primary, "postgres", "DROP ROLE IF EXISTS "+role) })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := topo.WaitReplayed(ctx); err != nil {
		t.Fatalf("the role did not reach the standbys: %v", err)
	}
}

// canaryStandby is a pgreplication_standby on the provider standby1 whose
// primary_password is var.canary_password (see canaryVariable).
func canaryStandby(topo *routertest.Topology) string {
	return fmt.Sprintf(`
resource "pgreplication_standby" "this" {
  provider         = pgreplication.standby1
  primary_host     = %q
  primary_port     = %d
  primary_user     = "postgres"
  primary_password = var.canary_password
  primary_sslmode  = "disable"
}
`, topo.Primary.Host, topo.Primary.Port)
}

// A standby password with a line break (what file("pw") gives) is refused at
// plan time, and the refusal does not quote it.
func TestAccStandby_passwordWithLineBreakNeverShown(t *testing.T) {
	topo := testAccTopology(t)
	const pw = "canary" + canaryMark + "-line-one\ncanary-line-two\n"
	logPath := traceLog(t)
	config := canaryVariable(t, pw) + providerConfig("standby1", topo.Standbys[0]) + canaryStandby(topo)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config:      config,
			ExpectError: errorWithout("Password Contains a Line Break", "trimspace(file("),
		}},
	})
	checkLogHasNo(t, logPath, canaryParts(pw), "Password Contains a Line Break")
	if got := queryValue[string](t, topo.Standbys[0], "postgres", "SHOW primary_conninfo"); strings.Contains(got, "canary") {
		t.Errorf("the refused password reached the standby: primary_conninfo = %q", got)
	}
}

// A role that may read the settings but not ALTER SYSTEM them gets 42501;
// the error names the statement and the privilege to grant, not the
// password it would have written, and the TRACE log (which has every
// statement the provider ran) does not have it either.
func TestAccStandby_privilegeErrorNeverShowsPassword(t *testing.T) {
	topo := testAccTopology(t)
	const role = "secrets_nosuper"
	const pw = "canary" + canaryMark + "-standby-pw 'quoted' \\back"
	standby := topo.Standbys[0]
	createStandbyRole(t, topo, role)
	logPath := traceLog(t)
	config := canaryVariable(t, pw) + providerConfigAs("standby1", standby, role) + canaryStandby(topo)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config: config,
			ExpectError: errorWithout("Cannot Configure Standby", `ALTER SYSTEM SET "primary_conninfo"`, "password=''REDACTED''",
				"permission denied", "42501", "GRANT ALTER SYSTEM ON PARAMETER primary_conninfo"),
		}},
	})
	checkLogHasNo(t, logPath, canaryParts(pw), "pgreplication: running SQL", "ALTER SYSTEM SET", "pgreplication: SQL failed", "pgreplication_object")
}

// A subscription's password does not show when its publisher is unreachable
// or refuses the password, in the error nor in the TRACE log.
func TestAccSubscription_passwordNeverShown(t *testing.T) {
	topo := testAccTopology(t)
	refusing := startFakeServer(t, false)
	const pw = "canary" + canaryMark + "-sub-pw 'q' \\b"
	logPath := traceLog(t)
	variable := canaryVariable(t, strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(pw)) // quoted for a connection string
	config := func(port int) string {
		return variable + subscriberProvider(topo.Primary) + fmt.Sprintf(`
resource "pgreplication_subscription" "this" {
  provider     = pgreplication.subscriber
  name         = "sub_canary"
  conninfo     = "host=127.0.0.1 port=%d user=rep dbname=postgres password='${var.canary_password}'"
  publications = ["pub_a"]
}
`, port)
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{Config: config(1), ExpectError: errorWithout("Cannot Create Subscription", "password='REDACTED'", "could not connect")},
			{Config: config(refusing.Port), ExpectError: errorWithout("Cannot Create Subscription", "password='REDACTED'", "password authentication failed")},
		},
	})
	// The refusing publisher did get the password: from the plan-time
	// probe and from the subscriber. It was used, and never shown.
	if got := refusing.Passwords(); !slices.Contains(got, pw) {
		t.Errorf("the refusing publisher received %q, not the subscription's password: the test did not exercise it", got)
	}
	checkLogHasNo(t, logPath, canaryParts(pw), "pgreplication: running SQL", "CREATE SUBSCRIPTION", "pgreplication: SQL failed")
}

// The plan-time wal_level probe of a subscription's publisher sends the
// publisher what the subscription's conninfo says and nothing of the user
// running Terraform: not PGPASSWORD, not the passfile, not a service file's
// password.
func TestAccSubscription_probeSendsOnlyConninfoCredentials(t *testing.T) {
	topo := testAccTopology(t)
	fake := startFakeServer(t, false)
	dir := t.TempDir()
	const envPW, fileHostPW, servicePW = "env-admin-pw", "passfile-admin-pw", "service-admin-pw"
	passfile := filepath.Join(dir, "pgpass")
	if err := os.WriteFile(passfile, []byte("*:*:*:*:"+fileHostPW+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	servicefile := filepath.Join(dir, "pg_service.conf")
	if err := os.WriteFile(servicefile, []byte("[admin]\npassword="+servicePW+"\nuser=admin\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The provider's own connection to the subscriber sees them too; its
	// server trusts it and never asks.
	t.Setenv("PGPASSWORD", envPW)
	t.Setenv("PGPASSFILE", passfile)
	t.Setenv("PGSERVICEFILE", servicefile)
	t.Setenv("PGSERVICE", "admin")
	config := func(extra string) string {
		return subscriberProvider(topo.Primary) + fmt.Sprintf(`
resource "pgreplication_subscription" "this" {
  provider     = pgreplication.subscriber
  name         = "sub_probe"
  conninfo     = "host=127.0.0.1 port=%d user=rep dbname=postgres%s"
  publications = ["pub_a"]
}
`, fake.Port, extra)
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			// No password in the conninfo: the probe has none to send.
			{Config: config(""), PlanOnly: true, ExpectNonEmptyPlan: true},
			// With one, it sends exactly that one.
			{Config: config(" password=sub-pw"), PlanOnly: true, ExpectNonEmptyPlan: true},
		},
	})
	got, users := fake.Passwords(), fake.Users()
	if len(got) == 0 {
		t.Fatal("the publisher probe never reached the fake publisher: the test proves nothing")
	}
	for i, pw := range got {
		if pw != "" && pw != "sub-pw" {
			t.Errorf("the fake publisher received password %q from user %q: only the conninfo's (\"sub-pw\") or none may be sent", pw, users[i])
		}
		if users[i] != "rep" {
			t.Errorf("the fake publisher saw user %q, not the conninfo's \"rep\"", users[i])
		}
	}
	if !slices.Contains(got, "sub-pw") {
		t.Errorf("the probe never sent the conninfo's password (got %q)", got)
	}
}

// A provider whose server accepts TCP and never answers fails the plan
// within the default connect timeout, naming the host and port, instead of
// hanging.
func TestAccProvider_hungServerFailsPlan(t *testing.T) {
	testAccPreCheck(t)
	hung := startFakeServer(t, true)
	t.Setenv("PGCONNECT_TIMEOUT", "")
	config := providerConfig("", hung.node()) + `
data "pgreplication_server" "this" {}
`
	start := time.Now()
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config:      config,
			ExpectError: errorText("Cannot Connect to PostgreSQL", fmt.Sprintf("127.0.0.1:%d", hung.Port), "timeout"),
		}},
	})
	checkHungBound(t, hung, "plan", time.Since(start))
}

// checkHungBound fails when the provider never reached the hung server, or
// when what failed against it took longer than the default connect_timeout
// allows, with room for what the CLI takes on a busy machine: without a
// bound, the test would hang until go test's deadline.
func checkHungBound(t *testing.T, hung *fakeServer, what string, elapsed time.Duration) {
	t.Helper()
	if hung.Connections() == 0 {
		t.Fatal("the provider never connected to the hung server: the test proves nothing")
	}
	if elapsed > 3*defaultConnectTimeout*time.Second+30*time.Second {
		t.Errorf("the %s took %s against a server that never answers, with the default connect_timeout (%d s)", what, elapsed, defaultConnectTimeout)
	}
	t.Logf("the %s failed after %s", what, elapsed)
}

// The default connect timeout bounds a connection that nothing configured.
func TestConnectTimeoutDefault(t *testing.T) {
	t.Setenv("PGCONNECT_TIMEOUT", "")
	for _, tc := range []struct {
		configured int64
		env        string
		want       int64
	}{
		{0, "", defaultConnectTimeout},
		{0, "7", 7},
		{3, "7", 3},
		{1, "", 2}, // libpq: 1 means 2
	} {
		t.Setenv("PGCONNECT_TIMEOUT", tc.env)
		if got := (connSettings{ConnectTimeout: tc.configured}).connectTimeout(); got != tc.want {
			t.Errorf("connect_timeout %d, PGCONNECT_TIMEOUT %q: %d, want %d", tc.configured, tc.env, got, tc.want)
		}
	}
}

// A primary_conninfo_params key that is not a libpq keyword, such as one
// that smuggles another keyword in, is refused at plan time on the
// attribute, and nothing reaches the server: the provider here points at a
// listener that counts connections.
func TestAccStandby_conninfoParamInjectionRefused(t *testing.T) {
	t.Parallel()
	testAccPreCheck(t)
	listener := startFakeServer(t, true)
	for _, tc := range []struct{ key, want string }{
		{"keepalives=1 host", "is not a libpq connection keyword"},
		{"hostaddr", "overrides the address of primary_host"},
		{"service", "a service file can set the host"},
		{"sslpassword", "its value is a secret"},
		{"host", "has an attribute for it"},
	} {
		config := providerConfig("", listener.node()) + fmt.Sprintf(`
resource "pgreplication_standby" "this" {
  primary_host = "db1"
  primary_user = "rep"
  primary_conninfo_params = { %q = "evil.example" }
}
`, tc.key)
		resource.Test(t, resource.TestCase{
			ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
			Steps: []resource.TestStep{{
				Config:      config,
				PlanOnly:    true,
				ExpectError: errorText("Invalid Connection Parameter", "primary_conninfo_params", tc.want),
			}},
		})
	}
	if n := listener.Connections(); n != 0 {
		t.Errorf("the provider connected %d time(s) to its server: a refused configuration must reach no server", n)
	}
}

// The keywords primary_conninfo_params accepts are libpq's, less those with
// their own attribute, those that override them and secrets.
func TestStandbyConninfoParams(t *testing.T) {
	ok := standbyConninfoParams()
	for _, k := range []string{"keepalives_idle", "sslrootcert", "target_session_attrs", "dbname", "options"} {
		if !slices.Contains(ok, k) {
			t.Errorf("%q is refused; it is a libpq keyword without an attribute of its own", k)
		}
	}
	for _, k := range []string{"host", "hostaddr", "port", "user", "password", "passfile", "sslmode", "application_name", "service", "replication", "sslpassword", "keepalives=1 host", "Host", ""} {
		if slices.Contains(ok, k) || standbyParamProblem(k) == "" {
			t.Errorf("%q is accepted", k)
		}
	}
}

// A secret typed into the router file by hand never reaches the state or
// the plan: the refresh keeps a placeholder in content, and the plan
// rewrites the file with the declared one. Two hand edits:
//   - a password added to a node;
//   - the mistake password_env's description warns about: the password
//     typed where the variable's name goes (the refresh and the plan would
//     otherwise show a changed password_env field by field).
func TestAccRouterConfig_handTypedPasswordNeverShown(t *testing.T) {
	t.Parallel()
	testAccPreCheck(t)
	for _, tc := range []struct {
		name, canary string
		old, new     string // the edit: new holds %s, the canary
		notFound     string
	}{
		{"password_added", "canary-router-s3cret", `"role": "replica",`, `"role": "replica", "password": "%s",`, "the router file has no replica to add a password to"},
		{"password_as_password_env", "canary-Router-s3cret", `"PGREPLICATION_APP_PASSWORD"`, `"%s"`, "the router file has no password_env to edit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "router.json")
			var declared []byte
			resource.Test(t, resource.TestCase{
				ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
				Steps: []resource.TestStep{
					{
						Config: routerConfigGolden(file, 75),
						Check: func(*terraform.State) error {
							var err error
							declared, err = os.ReadFile(file)
							return err
						},
					},
					{
						PreConfig: func() {
							edited := bytes.Replace(declared, []byte(tc.old), []byte(fmt.Sprintf(tc.new, tc.canary)), 1)
							if bytes.Equal(edited, declared) {
								t.Fatal(tc.notFound)
							}
							if err := os.WriteFile(file, edited, 0o640); err != nil {
								t.Fatal(err)
							}
						},
						Config: routerConfigGolden(file, 75),
						ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
							plancheck.ExpectResourceAction(routerConfigAddr, plancheck.ResourceActionUpdate),
							planHasNo(tc.canary, "router.json"),
						}},
						Check: func(s *terraform.State) error { return fileEquals(file, declared, 0o640)(s) },
					},
				},
			})
		})
	}
}

// planHasNo fails when secret appears anywhere in the plan, its prior
// state (what Read stored) included, and when the plan lacks proof: text
// that shows the plan is about the object that holds the secret.
func planHasNo(secret, proof string) plancheck.PlanCheck { return planSecretCheck{secret, proof} }

type planSecretCheck struct{ secret, proof string }

func (c planSecretCheck) CheckPlan(_ context.Context, req plancheck.CheckPlanRequest, resp *plancheck.CheckPlanResponse) {
	b, err := json.Marshal(req.Plan)
	if err != nil {
		resp.Error = err
		return
	}
	if !strings.Contains(string(b), c.proof) {
		resp.Error = fmt.Errorf("the plan does not mention %q: the check proves nothing", c.proof)
		return
	}
	if i := strings.Index(string(b), c.secret); i >= 0 {
		resp.Error = fmt.Errorf("the plan holds the secret: …%s…", b[max(0, i-200):min(len(b), i+50)])
	}
}

// Resetting a standby on destroy is a cleanup of independent settings: when
// the role may reset none of them, the error names every one, with the
// privilege to grant for each, instead of stopping at the first.
func TestAccStandby_resetOnDestroyReportsEveryFailure(t *testing.T) {
	t.Parallel()
	testAccPreCheck(t)
	topo := routertest.Start(t, routertest.WithStandbys(1)) // reconfigured: not the shared one
	standby := topo.Standbys[0]
	const role = "reset_nosuper"
	createStandbyRole(t, topo, role)
	config := func(user string) string {
		return fmt.Sprintf(`
provider "pgreplication" {
  host     = %q
  port     = %d
  username = %q
  database = "postgres"
  sslmode  = "disable"
}
resource "pgreplication_standby" "this" {
  primary_host     = %q
  primary_port     = %d
  primary_user     = "postgres"
  primary_sslmode  = "disable"
  reset_on_destroy = true
}
`, standby.Host, standby.Port, user, topo.Primary.Host, topo.Primary.Port)
	}
	var phrases []string
	for _, name := range standbySettings {
		phrases = append(phrases, fmt.Sprintf(`ALTER SYSTEM RESET "%s"`, name), "GRANT ALTER SYSTEM ON PARAMETER "+name)
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{Config: config("postgres")},
			{
				Config:      config(role),
				Destroy:     true,
				ExpectError: errorText(append([]string{"Cannot Reset Standby Configuration"}, phrases...)...),
			},
			// The superuser destroys it for real (the post-test destroy).
			{Config: config("postgres")},
		},
	})
}

// A destroy against a server that stopped answering fails within the
// default connect timeout too, naming the host and port.
func TestAccProvider_hungServerFailsDestroy(t *testing.T) {
	topo := testAccTopology(t)
	hung := startFakeServer(t, true)
	t.Setenv("PGCONNECT_TIMEOUT", "")
	config := func(n *routertest.Node) string {
		return providerConfig("", n) + `
resource "pgreplication_replication_slot" "this" {
  name = "hung_destroy_slot"
  type = "physical"
}
`
	}
	var started time.Time
	var elapsed time.Duration
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{Config: config(topo.Primary)},
			{
				PreConfig:   func() { started = time.Now() },
				Config:      config(hung.node()),
				Destroy:     true,
				ExpectError: errorText(fmt.Sprintf("127.0.0.1:%d", hung.Port), "timeout"),
			},
			{
				// The server answers again: the post-test destroy drops the slot.
				PreConfig: func() { elapsed = time.Since(started) },
				Config:    config(topo.Primary),
			},
		},
	})
	checkHungBound(t, hung, "destroy", elapsed)
}

// Every session of the provider runs with the statement_timeout of its
// configuration, 5min unless set.
func TestAccProvider_statementTimeout(t *testing.T) {
	topo := testAccTopology(t)
	for _, tc := range []struct{ set, want string }{{"", "5min"}, {"1234ms", "1234ms"}} {
		s := newServer(connSettings{Host: topo.Primary.Host, Port: int64(topo.Primary.Port), Username: "postgres", Database: "postgres",
			SSLMode: "disable", StatementTimeout: tc.set})
		var diags diag.Diagnostics
		pool := s.PoolOrDiag(context.Background(), "", &diags)
		if pool == nil {
			t.Fatal(diags)
		}
		var got string
		if err := pool.QueryRow(context.Background(), "SHOW statement_timeout").Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != tc.want {
			t.Errorf("statement_timeout %q: the session has %s, want %s", tc.set, got, tc.want)
		}
	}
}

// A server that stops answering in the middle of a session (frozen: its
// statement_timeout cannot fire) fails the statement statementGrace after
// statement_timeout, instead of hanging: the provider's own bound.
func TestAccProvider_frozenServerFailsStatement(t *testing.T) {
	testAccPreCheck(t)
	topo := routertest.Start(t, routertest.WithStandbys(0)) // frozen: not the shared one
	s := newServer(connSettings{Host: topo.Primary.Host, Port: int64(topo.Primary.Port), Username: "postgres", Database: "postgres",
		SSLMode: "disable", StatementTimeout: "1s"})
	var diags diag.Diagnostics
	pool := s.PoolOrDiag(context.Background(), "", &diags)
	if pool == nil {
		t.Fatal(diags)
	}
	ctx := context.Background()
	if _, err := pool.Exec(ctx, "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	if err := topo.Primary.Freeze(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := topo.Primary.Thaw(); err != nil {
			t.Error(err)
		}
	}()
	start := time.Now()
	_, err := pool.Exec(ctx, "SELECT 1") // on the pooled connection: no connect timeout helps
	elapsed := time.Since(start)
	if err == nil {
		t.Fatal("a statement on a frozen server succeeded")
	}
	if want := time.Second + statementGrace; elapsed < want-time.Second || elapsed > want+20*time.Second {
		t.Errorf("the statement failed after %s (%v); want about %s", elapsed, err, want)
	}
	t.Logf("the statement failed after %s: %v", elapsed, err)
}

// A secret keyword that someone added to a standby's primary_conninfo by
// hand (sslpassword: primary_conninfo_params refuses it) shows in the plan
// as that key of primary_conninfo_params going away, never with its value:
// not in the plan, the state or the TRACE log. Apply then writes
// primary_conninfo without it, and the standby keeps streaming.
func TestAccStandby_handAddedSecretNeverShown(t *testing.T) {
	testAccPreCheck(t)
	topo := routertest.Start(t, routertest.WithStandbys(1)) // reconfigured: not the shared one
	standby := topo.Standbys[0]
	const canary = "canary" + canaryMark + "-sslpassword"
	const addr = "pgreplication_standby.this"
	dir := t.TempDir()
	config := standbyConfig(topo, `  application_name = "replica-1"`)
	handConninfo := fmt.Sprintf("host=127.0.0.1 port=%d user=postgres sslmode=disable application_name=replica-1 sslpassword=%s",
		topo.Primary.Port, conninfo.Quote(canary))
	logPath := traceLog(t)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		WorkingDir:               dir,
		Steps: []resource.TestStep{
			{Config: config},
			{
				PreConfig: func() { alterSystemByHand(t, standby, "primary_conninfo", handConninfo) },
				Config:    config,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					planHasNo(canary, "sslpassword"),
					expectDriftAt(addr, []string{"primary_conninfo_params"}),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					expectNoSecret(dir, canary),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("primary_conninfo_params"), knownvalue.Null()),
				},
				Check: func(*terraform.State) error {
					if got := queryValue[string](t, standby, "postgres", "SHOW primary_conninfo"); strings.Contains(got, "sslpassword") {
						return fmt.Errorf("primary_conninfo still has the hand-added sslpassword after apply")
					}
					return waitStreamingFrom(standby, topo.Primary.Port)
				},
			},
		},
	})
	checkLogHasNo(t, logPath, canaryParts(canary), "sslpassword", "Secret in primary_conninfo Not Read")
}

// A subscription whose conninfo holds a password and an sslpassword is
// created, refreshed, changed and refreshed again with the TRACE logs on: no
// log line holds either. The framework logs a value of a type with semantic
// equality (conninfo's) at TRACE whenever it compares two, through the
// value's String, which showed the whole connection string.
func TestAccSubscription_passwordNeverLogged(t *testing.T) {
	topo := testAccTopology(t)
	f := newSubscriptionFixture(t, topo.Primary, "sub_pub_log", `CREATE PUBLICATION pub_log FOR TABLE t1;`, nil)
	const pw = "canary" + canaryMark + "-sub-log"
	logPath := traceLog(t)
	dir := t.TempDir()
	config := func(binary bool) string {
		return canaryVariable(t, pw) + subscriberProvider(f.sub) + fmt.Sprintf(`
resource "pgreplication_subscription" "this" {
  provider     = pgreplication.subscriber
  name         = "sub_log"
  conninfo     = "%s password='${var.canary_password}' sslpassword='${var.canary_password}-ssl'"
  publications = ["pub_log"]
  binary       = %t
}
`, f.conninfo(""), binary)
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		WorkingDir:               dir,
		Steps: []resource.TestStep{
			{Config: config(false)},
			{Config: config(true)},
			{Config: config(true), PlanOnly: true},
		},
	})
	checkLogHasNo(t, logPath, canaryParts(pw), "SemanticEquals", "ALTER SUBSCRIPTION")
}

// A secret keyword given twice in a subscription's conninfo (libpq uses the
// last value) is masked in both places: the error quoted the first value,
// because the declared secrets are the parsed string's (one value per
// keyword), and the undeclared safety net knew only "password=". Found with
// PostgreSQL 17, whose libpq refuses scram_client_key (PostgreSQL 18's takes
// it and fails to connect); both fail the create.
func TestAccSubscription_secretKeywordTwiceNeverShown(t *testing.T) {
	topo := testAccTopology(t)
	const pw = "canary" + canaryMark + "-twice"
	logPath := traceLog(t)
	config := canaryVariable(t, pw) + subscriberProvider(topo.Primary) + `
resource "pgreplication_subscription" "this" {
  provider     = pgreplication.subscriber
  name         = "sub_twice"
  conninfo     = "host=127.0.0.1 port=1 user=rep dbname=postgres scram_client_key='${var.canary_password}-1' scram_client_key='${var.canary_password}-2'"
  publications = ["pub_a"]
}
`
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{Config: config, ExpectError: errorWithout("Cannot Create Subscription", "scram_client_key='REDACTED'", "CREATE SUBSCRIPTION")},
		},
	})
	checkLogHasNo(t, logPath, canaryParts(pw), "pgreplication: SQL failed", "CREATE SUBSCRIPTION")
}
