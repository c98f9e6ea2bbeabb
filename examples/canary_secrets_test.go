package examples_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// canarySecret is a password of the configuration, or one set on a server
// by hand, that must never leave the provider: not in the CLI's output, the
// TRACE log (TF_LOG=TRACE, the CLI's and the provider's), the state, the
// router file or any other file the run writes.
type canarySecret struct {
	role  string // the login role whose password it is
	value string
	// inState: the configuration gives it in an attribute that is not
	// write-only (conninfo, primary_password: the CLI has no write-only
	// arguments), so Terraform itself keeps it in the state, as documented.
	inState bool
}

// newCanary is a password whose core, "Canary" and random hex, survives
// every encoding a leak could take (quoted for a connection string or an
// SQL literal, percent-encoded, JSON- or Go-escaped), followed by the
// characters each of those encodings changes. Finding the core anywhere is
// a leak.
func newCanary(role string) canarySecret {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return canarySecret{role: role, value: "Canary" + hex.EncodeToString(b) + `-'"\$$ %`}
}

func (s canarySecret) core() string { return s.value[:len("Canary")+16] }

// sqlLiteral is the secret as an SQL string literal.
func sqlLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// conninfoQuoted is the secret as a quoted connection-string value.
func conninfoQuoted(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// canaryEnv is one run of a case: its servers, its directory and every
// output the CLI gave.
type canaryEnv struct {
	cli                 *terraformCLI
	topo                *routertest.Topology
	dir                 string
	provider, sub, stby canarySecret
	hand                canarySecret // set on a server by hand, never in the configuration
	typo                canarySecret // a password under a misspelt keyword (pasword=…)
	writeOnly           bool         // the CLI takes write-only arguments
	outputs             []string
	subscriberHost      string          // the provider's host for the subscriber, when not the node's
	made                map[string]bool // the subscriber databases made
	major               int             // the servers' PostgreSQL
}

// step runs the CLI in the case's directory, fails unless it exits with
// want (-1: any) and its output holds every phrase of expect (the proof that
// the path under test fired), and keeps the output for the leak check.
func (e *canaryEnv) step(t *testing.T, want int, expect []string, args ...string) string {
	t.Helper()
	code, out := e.cli.exec(t, e.dir, append(args, "-input=false", "-no-color")...)
	e.outputs = append(e.outputs, out)
	flat := strings.Join(strings.Fields(strings.ReplaceAll(out, "│", " ")), " ")
	if want >= 0 && code != want {
		t.Fatalf("%s exited %d, want %d:\n%s", args[0], code, want, lastLines(out, 40))
	}
	for _, phrase := range expect {
		if !strings.Contains(flat, phrase) {
			t.Fatalf("%s (exit %d) does not say %q: the path under test did not fire:\n%s", args[0], code, phrase, lastLines(out, 40))
		}
	}
	if len(expect) > 0 {
		t.Logf("%s exited %d:\n%s", args[0], code, lastLines(out, 30))
	}
	return out
}

// config writes main.tf: the case's resources after one provider block per
// alias, each logging in as the role whose password is the provider's
// canary, and the variables that carry the canaries (sensitive, given
// through TF_VAR_…, as a user passes passwords).
func (e *canaryEnv) config(t *testing.T, aliases map[string]server, resources string) {
	t.Helper()
	var b strings.Builder
	b.WriteString(`terraform {
  required_providers {
    pgreplication = { source = "pgreplication/pgreplication" }
  }
}
`)
	for _, v := range []string{"provider", "sub", "stby", "typo"} {
		fmt.Fprintf(&b, "variable %q {\n  type      = string\n  sensitive = true\n}\n", "canary_"+v)
	}
	for alias, s := range aliases {
		host := s.node.Host
		if alias == "sub" && e.subscriberHost != "" {
			host = e.subscriberHost
		}
		fmt.Fprintf(&b, `
provider "pgreplication" {
  alias    = %q
  host     = %q
  port     = %d
  username = %q
  password = var.canary_provider
  database = %q
  sslmode  = "disable"
}
`, alias, host, s.node.Port, e.provider.role, s.database)
	}
	writeFile(t, filepath.Join(e.dir, "main.tf"), b.String()+resources)
}

// subscriptionConfig writes main.tf for a case's subscription <db>_sub,
// made in database db of the primary (subscriberDB) and streaming from its
// postgres database, from the slot <db>_slot made here: create_slot =
// false, as a subscription on its publisher's own server needs. Beside it
// the publication <db>_pub of public.canary_t, which publications (HCL)
// names by literal, or by reference when "". attrs are more of the
// subscription's attributes, extra more keywords of its conninfo.
func (e *canaryEnv) subscriptionConfig(t *testing.T, db, publications, attrs, extra string) {
	t.Helper()
	p := e.topo.Primary
	if !e.made[db] {
		subscriberDB(t, p, db)
		execSQL(t, p, "postgres", fmt.Sprintf(`SELECT pg_create_logical_replication_slot('%s_slot', 'pgoutput')`, db))
		e.made[db] = true
	}
	if publications == "" {
		publications = "[pgreplication_publication.pub.name]"
	}
	if !strings.Contains(attrs, "slot_name") {
		attrs += fmt.Sprintf("\n  slot_name = %q", db+"_slot")
	}
	e.config(t, map[string]server{"pub": {p, "postgres"}, "sub": {p, db}}, fmt.Sprintf(`
resource "pgreplication_publication" "pub" {
  provider = pgreplication.pub
  name     = "%[1]s_pub"
  tables   = { "public.canary_t" = {} }
}

resource "pgreplication_subscription" "sub" {
  provider     = pgreplication.sub
  name         = "%[1]s_sub"
  %[2]s
  publications = %[3]s
  create_slot  = false
  copy_data    = false
  %[4]s
}
`, db, e.subscriptionConninfo(extra), publications, attrs))
}

// subscriptionConninfo is a subscription's conninfo and password as its
// block says them: password_wo where the CLI takes it, otherwise a password
// in conninfo, quoted for a connection string (extra: more keywords).
func (e *canaryEnv) subscriptionConninfo(extra string) string {
	p := e.topo.Primary
	base := fmt.Sprintf("host=%s port=%d user=%s dbname=postgres sslmode=disable%s", p.Host, p.Port, e.sub.role, extra)
	if e.writeOnly {
		return fmt.Sprintf("conninfo = \"%s\"\n  password_wo = var.canary_sub\n  password_wo_version = 1", base)
	}
	return fmt.Sprintf(`conninfo = "%s password=%s"`, base, conninfoVar("canary_sub"))
}

// standbyPassword is what a standby's block says of its password:
// primary_password_wo where the CLI takes it, otherwise primary_password.
func (e *canaryEnv) standbyPassword() string {
	if e.writeOnly {
		return "primary_password_wo = var.canary_stby\n  primary_password_wo_version = 1"
	}
	return "primary_password = var.canary_stby"
}

// conninfoVar is an HCL template of variable name quoted for a connection
// string.
func conninfoVar(name string) string {
	return fmt.Sprintf(`'${replace(replace(var.%s, "\\", "\\\\"), "'", "\\'")}'`, name)
}

// canaryCases are the error and warning paths added by the session after
// 59775e1, each made to fire against real servers with the real CLI.
var canaryCases = []struct {
	name  string
	major int // the PostgreSQL version the path needs
	run   func(t *testing.T, e *canaryEnv)
}{
	{"slot already gone", 0, func(t *testing.T, e *canaryEnv) {
		// DROP SUBSCRIPTION's 08006 quoting the publisher's reply, and
		// the drop without the slot that follows.
		p := e.topo.Primary
		e.subscriptionConfig(t, "canary_gone", "", "enabled = false", "")
		e.step(t, 0, nil, "apply", "-auto-approve")
		execSQL(t, p, "postgres", `SELECT pg_drop_replication_slot('canary_gone_slot')`)
		// First the drop without the slot is refused by a hook.
		refusingHook(t, p, "canary_gone")
		execSQL(t, p, "canary_gone", `INSERT INTO canary_refuse VALUES ('DISABLE')`)
		e.step(t, 1, []string{"Cannot Drop Subscription", "refused by a hook"}, "destroy", "-auto-approve")
		execSQL(t, p, "canary_gone", `DROP EVENT TRIGGER canary_refuse`)
		e.step(t, 0, []string{"Replication Slot Already Gone", "canary_gone_slot"}, "destroy", "-auto-approve")
	}},
	{"failover change refused, re-enabled or not", 17, func(t *testing.T, e *canaryEnv) {
		// A hook on the subscriber refuses the SET (failover = true)
		// between the DISABLE and the ENABLE, then the ENABLE too.
		p := e.topo.Primary
		e.subscriptionConfig(t, "canary_fo", "", "failover = false", "")
		refusingHook(t, p, "canary_fo")
		e.step(t, 0, nil, "apply", "-auto-approve")
		e.subscriptionConfig(t, "canary_fo", "", "failover = true", "")
		execSQL(t, p, "canary_fo", `INSERT INTO canary_refuse VALUES ('failover')`)
		e.step(t, 1, []string{"Cannot Alter Subscription", "refused by a hook", "has been enabled again"}, "apply", "-auto-approve")
		execSQL(t, p, "canary_fo", `INSERT INTO canary_refuse VALUES ('\mENABLE\M')`)
		e.step(t, 1, []string{"Cannot Alter Subscription", "enabling it again failed too", "refused by a hook"}, "apply", "-auto-approve")
		execSQL(t, p, "canary_fo", `DROP EVENT TRIGGER canary_refuse`)
		e.step(t, 0, nil, "destroy", "-auto-approve")
	}},
	{"publication missing, refused after the grace", 0, func(t *testing.T, e *canaryEnv) {
		if e.major >= 18 {
			t.Skip("PostgreSQL 18 and later skip a missing publication: a warning, not this refusal")
		}
		e.subscriptionConfig(t, "canary_miss", `["canary_absent_pub"]`, "", "")
		e.step(t, 1, []string{"Publication Not on the Publisher", "Checked again for"}, "apply", "-auto-approve")
		e.step(t, 0, nil, "destroy", "-auto-approve")
	}},
	{"publisher probe elsewhere warns", 0, func(t *testing.T, e *canaryEnv) {
		// The provider reaches the subscriber by this machine's name,
		// which is not a loopback address as written; conninfo names
		// 127.0.0.1. The probe finds the publication and the slot
		// missing: warnings (publisherProbe.warn and refuse), at plan
		// and at apply, then the slot gone at destroy.
		p := e.topo.Primary
		e.subscriberHost = localName(t)
		e.subscriptionConfig(t, "canary_else", `["canary_absent_pub"]`, `slot_name = "canary_absent_slot"`, " connect_timeout=5")
		execSQL(t, p, "postgres", `SELECT pg_drop_replication_slot('canary_else_slot')`)
		want := []string{"Subscription Would Not Replicate", "Publication Not on the Publisher", "this is a warning, not a refusal"}
		// At plan a create's missing publication may be this apply's:
		// "Not Yet", and apply's check says it is not there.
		e.step(t, 2, []string{"Subscription Would Not Replicate", "Publication Not Yet on the Publisher", "this is a warning, not a refusal"},
			"plan", "-detailed-exitcode")
		e.step(t, 0, want, "apply", "-auto-approve")
		e.step(t, 0, []string{"Replication Slot Already Gone"}, "destroy", "-auto-approve")
	}},
	{"publication in use", 0, func(t *testing.T, e *canaryEnv) {
		p := e.topo.Primary
		e.subscriptionConfig(t, "canary_use", `["canary_use_pub"]`, "", " application_name=canary_use_app")
		e.step(t, 0, nil, "apply", "-auto-approve", "-target=pgreplication_publication.pub")
		e.step(t, 0, nil, "apply", "-auto-approve")
		waitFor(t, p, 30*time.Second, func() bool {
			var n int
			if err := p.QueryRow(t.Context(), `SELECT count(*)::int FROM pg_replication_slots WHERE slot_name = 'canary_use_slot' AND active`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n == 1
		}, "the subscription to stream")
		e.step(t, 1, []string{"Publication In Use", "canary_use_slot", "Checked again for"}, "destroy", "-auto-approve", "-target=pgreplication_publication.pub")
		e.step(t, 0, nil, "destroy", "-auto-approve", "-target=pgreplication_subscription.sub")
		e.step(t, 0, nil, "destroy", "-auto-approve")
	}},
	{"slot already exists", 0, func(t *testing.T, e *canaryEnv) {
		p := e.topo.Primary
		execSQL(t, p, "postgres", `SELECT pg_create_logical_replication_slot('canary_taken', 'pgoutput')`)
		t.Cleanup(func() { _ = p.Exec(context.Background(), `SELECT pg_drop_replication_slot('canary_taken')`) })
		e.config(t, map[string]server{"pub": {p, "postgres"}}, `
resource "pgreplication_replication_slot" "slot" {
  provider = pgreplication.pub
  name     = "canary_taken"
  type     = "logical"
}
`)
		e.step(t, 1, []string{"Replication Slot Already Exists", "create_before_destroy"}, "apply", "-auto-approve")
	}},
	{"standby: create overwrites, then a pending ALTER SYSTEM", 0, func(t *testing.T, e *canaryEnv) {
		// The standby's primary_conninfo, set by hand with a password
		// (a URI, percent-encoded), is what the create's plan warns it
		// overwrites; then one set by hand and not reloaded (keyword
		// form, quoted) is what the plan warns the next reload takes.
		p, s := e.topo.Primary, e.topo.Standbys[0]
		setAndReload(t, s, fmt.Sprintf(`ALTER SYSTEM SET primary_conninfo = %s`, sqlLiteral(fmt.Sprintf(
			"postgresql://%s:%s@%s:%d/postgres?application_name=%s&sslmode=disable",
			e.hand.role, url.PathEscape(e.hand.value), p.Host, p.Port, s.Name))))
		e.config(t, map[string]server{"primary": {p, "postgres"}, "standby": {s, "postgres"}}, fmt.Sprintf(`
resource "pgreplication_standby" "standby" {
  provider         = pgreplication.standby
  primary_host     = %[1]q
  primary_port     = %[2]d
  primary_user     = %[3]q
  %[4]s
  primary_sslmode  = "disable"
  application_name = %[5]q
}

resource "pgreplication_router_config" "app" {
  path = "${path.module}/router.json"
  primary {
    name         = "primary"
    host         = %[1]q
    port         = %[2]d
    database     = "postgres"
    user         = %[3]q
    password_env = "CANARY_APP_PASSWORD"
  }
  replica {
    name         = pgreplication_standby.standby.application_name
    host         = %[6]q
    port         = %[7]d
    database     = "postgres"
    user         = %[3]q
    password_env = "CANARY_APP_PASSWORD"
  }
}
`, p.Host, p.Port, e.stby.role, e.standbyPassword(), s.Name, s.Host, s.Port))
		e.step(t, 2, []string{"Create Writes Over Existing primary_conninfo", "REDACTED"}, "plan", "-detailed-exitcode")
		e.step(t, 0, nil, "apply", "-auto-approve")
		applied := currentSetting(t, s, "primary_conninfo")
		execSQL(t, s, "postgres", fmt.Sprintf(`ALTER SYSTEM SET primary_conninfo = %s`, sqlLiteral(fmt.Sprintf(
			"host=192.0.2.1 port=1 user=%s password=%s application_name=%s", e.hand.role, conninfoQuoted(e.hand.value), s.Name))))
		e.step(t, -1, []string{"primary_conninfo Changed, Not Yet Reloaded", "REDACTED"}, "plan", "-detailed-exitcode")
		execSQL(t, s, "postgres", `ALTER SYSTEM SET primary_conninfo = `+sqlLiteral(applied))
		e.step(t, 0, nil, "destroy", "-auto-approve")
	}},
	{"a misspelt password keyword", 0, func(t *testing.T, e *canaryEnv) {
		// conninfo.Params.Redacted masks only the secret keywords, and
		// the statements' masking only their values: a password under a
		// misspelt keyword (pasword=…), which conninfo.Changes hides as
		// "a keyword nobody knows (a misspelt password)", shows in clear.
		// On the standby, set by hand: the create's plan warning.
		p, s := e.topo.Primary, e.topo.Standbys[0]
		was := currentSetting(t, s, "primary_conninfo")
		setAndReload(t, s, `ALTER SYSTEM SET primary_conninfo = `+sqlLiteral(fmt.Sprintf("host=%s port=%d user=%s pasword=%s",
			p.Host, p.Port, e.hand.role, conninfoQuoted(e.typo.value))))
		t.Cleanup(func() {
			_ = s.Exec(context.Background(), `ALTER SYSTEM SET primary_conninfo = `+sqlLiteral(was))
			_ = s.Exec(context.Background(), `SELECT pg_reload_conf()`)
		})
		// On the subscriber, in conninfo: the plan's refusal.
		subscriberDB(t, p, "canary_typo")
		execSQL(t, p, "postgres", `CREATE PUBLICATION canary_typo_pub FOR TABLE canary_t`)
		e.config(t, map[string]server{"standby": {s, "postgres"}, "sub": {p, "canary_typo"}}, fmt.Sprintf(`
resource "pgreplication_standby" "standby" {
  provider        = pgreplication.standby
  primary_host    = %q
  primary_port    = %d
  primary_user    = %q
  %s
  primary_sslmode = "disable"
}

resource "pgreplication_subscription" "sub" {
  provider     = pgreplication.sub
  name         = "canary_typo_sub"
  %s
  publications = ["canary_typo_pub"]
  create_slot  = false
  enabled      = false
  slot_name    = "NONE"
}
`, p.Host, p.Port, e.stby.role, e.standbyPassword(), e.subscriptionConninfo(" pasword="+conninfoVar("canary_typo"))))
		// The misspelt keyword is refused at plan time (conninfo.Params.Check):
		// nothing is applied, so there is nothing to destroy.
		e.step(t, 1, []string{"Create Writes Over Existing primary_conninfo", "Invalid Connection String", `"pasword" is not a libpq connection keyword`}, "apply", "-auto-approve")
	}},
}

// TestCanarySecretsInNewDiagnostics makes each error and warning path that
// the session after 59775e1 added fire against real servers with the real
// CLI, with a canary in every password (the provider's, the subscription's,
// the standby's, and one set on the standby by hand), the passwords checked
// by the servers (scram-sha-256), and TF_LOG=TRACE: no canary may show in
// the CLI's output, the TRACE log, the state (its private data decoded),
// the router file or any file of the run.
func TestCanarySecretsInNewDiagnostics(t *testing.T) {
	cli := providerCLI(t)
	topo := routertest.Start(t, routertest.WithStandbys(1))
	p := topo.Primary
	major := 0
	if err := p.QueryRow(t.Context(), `SELECT current_setting('server_version_num')::int / 10000`).Scan(&major); err != nil {
		t.Fatal(err)
	}
	e := canaryEnv{cli: cli, topo: topo, writeOnly: cli.acceptsWriteOnly(t), major: major,
		provider: newCanary("canary_admin"), sub: newCanary("canary_sub"), stby: newCanary("canary_stby"), hand: newCanary("canary_hand"),
		typo: newCanary("pasword")}
	e.sub.inState, e.stby.inState, e.typo.inState = !e.writeOnly, !e.writeOnly, true
	execSQL(t, p, "postgres", `SET password_encryption = 'scram-sha-256';
CREATE ROLE canary_admin LOGIN SUPERUSER PASSWORD `+sqlLiteral(e.provider.value)+`;
CREATE ROLE canary_sub LOGIN REPLICATION PASSWORD `+sqlLiteral(e.sub.value)+`;
CREATE ROLE canary_stby LOGIN REPLICATION PASSWORD `+sqlLiteral(e.stby.value)+`;
CREATE ROLE canary_hand LOGIN REPLICATION PASSWORD `+sqlLiteral(e.hand.value)+`;
CREATE TABLE canary_t (id int PRIMARY KEY);
GRANT SELECT ON canary_t TO canary_sub`)
	if err := topo.WaitReplayed(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, n := range []*routertest.Node{p, topo.Standbys[0]} {
		requirePasswords(t, n, "canary_admin", "canary_sub", "canary_stby", "canary_hand")
	}
	e.setVariables(t)
	for _, c := range canaryCases {
		t.Run(c.name, func(t *testing.T) {
			if major < c.major {
				t.Skipf("needs PostgreSQL %d, the servers run %d", c.major, major)
			}
			run := e
			run.dir, run.outputs, run.made = t.TempDir(), nil, map[string]bool{}
			log := traceLog(t)
			c.run(t, &run)
			run.checkNoLeak(t, log)
		})
	}
}

// requirePasswords makes each of roles log in to n by its password only,
// so that the server checks the canary the CLI gives.
func requirePasswords(t *testing.T, n *routertest.Node, roles ...string) {
	t.Helper()
	for _, role := range roles {
		if err := n.RequirePassword(t.Context(), role); err != nil {
			t.Fatal(err)
		}
	}
}

// setVariables gives the CLI the canaries as TF_VAR_canary_…, the
// variables config declares, as a user passes passwords.
func (e *canaryEnv) setVariables(t *testing.T) {
	t.Setenv("TF_VAR_canary_provider", e.provider.value)
	t.Setenv("TF_VAR_canary_sub", e.sub.value)
	t.Setenv("TF_VAR_canary_stby", e.stby.value)
	t.Setenv("TF_VAR_canary_typo", e.typo.value)
}

// traceLog sends the CLI's TRACE log (TF_LOG=TRACE, the provider's with
// it) to a new file, for checkNoLeak, and returns its path.
func traceLog(t *testing.T) string {
	path := filepath.Join(t.TempDir(), "trace.log")
	t.Setenv("TF_LOG", "TRACE")
	t.Setenv("TF_LOG_PATH", path)
	return path
}

// checkNoLeak fails when any canary's core shows in the CLI's outputs, the
// TRACE log, or a file of the run's directory (the state's private data
// base64-decoded), except a secret Terraform keeps in the state because the
// configuration gave it there (inState).
func (e *canaryEnv) checkNoLeak(t *testing.T, log string) {
	t.Helper()
	secrets := []canarySecret{e.provider, e.sub, e.stby, e.hand, e.typo}
	look := func(where, text string, state bool) {
		for _, s := range secrets {
			if state && s.inState {
				continue
			}
			if i := strings.Index(text, s.core()); i >= 0 {
				t.Errorf("%s leaks the password of %s: …%s…", where, s.role, text[max(0, i-300):min(len(text), i+80)])
			}
		}
	}
	for i, out := range e.outputs {
		look(fmt.Sprintf("the output of CLI command %d", i+1), out, false)
	}
	b, err := os.ReadFile(log)
	if err != nil || len(b) == 0 {
		t.Fatalf("no TRACE log at %s (%v): the check proves nothing without it", log, err)
	}
	look("the TRACE log", string(b), false)
	err = filepath.WalkDir(e.dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		state := strings.Contains(d.Name(), ".tfstate")
		look(path, string(b), state)
		if state {
			look(path+" (private data)", statePrivate(t, b), true)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// statePrivate is the provider's private data of every resource instance
// of a state file, which the state holds base64-encoded.
func statePrivate(t *testing.T, state []byte) string {
	var s struct {
		Resources []struct {
			Instances []struct {
				Private string `json:"private"`
			} `json:"instances"`
		} `json:"resources"`
	}
	if err := json.Unmarshal(state, &s); err != nil {
		t.Fatalf("reading the state: %v", err)
	}
	var b strings.Builder
	for _, r := range s.Resources {
		for _, i := range r.Instances {
			d, err := base64.StdEncoding.DecodeString(i.Private)
			if err != nil {
				t.Fatalf("the state's private data is not base64: %v", err)
			}
			b.Write(d)
		}
	}
	return b.String()
}

// refusingHook makes an event trigger in database db of n refuse every
// ALTER or DROP SUBSCRIPTION whose text matches a regular expression of the
// table canary_refuse, quoting the statement and the subscriptions'
// connections in its message, as an audit hook may: whole, quoted, and the
// password alone, which no "password=" gives away.
func refusingHook(t *testing.T, n *routertest.Node, db string) {
	t.Helper()
	execSQL(t, n, db, `
CREATE TABLE canary_refuse (what text);
CREATE FUNCTION canary_refuse() RETURNS event_trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT FROM canary_refuse WHERE current_query() ~* what) THEN
    RAISE EXCEPTION 'refused by a hook: % (connection %, quoted %, its secret %)', current_query(),
      (SELECT string_agg(subconninfo, ', ') FROM pg_subscription),
      (SELECT string_agg(quote_literal(subconninfo), ', ') FROM pg_subscription),
      (SELECT string_agg(split_part(subconninfo, 'password=', 2), ', ') FROM pg_subscription);
  END IF;
END $$;
CREATE EVENT TRIGGER canary_refuse ON ddl_command_start WHEN TAG IN ('ALTER SUBSCRIPTION', 'DROP SUBSCRIPTION')
  EXECUTE FUNCTION canary_refuse();`)
}

// subscriberDB creates database name on n, with the table the case's
// publication publishes, for a subscription on the same server: its slot
// is made beforehand (create_slot = false), as CREATE SUBSCRIPTION on the
// publisher's own server requires.
func subscriberDB(t *testing.T, n *routertest.Node, name string) {
	t.Helper()
	execSQL(t, n, "postgres", "CREATE DATABASE "+name)
	execSQL(t, n, name, `CREATE TABLE canary_t (id int PRIMARY KEY)`)
}

// localName is a name of this machine that resolves to 127.0.0.1 and is not
// a loopback address as written (its host name, from /etc/hosts), or skips.
func localName(t *testing.T) string {
	t.Helper()
	name, err := os.Hostname()
	if err != nil {
		t.Skip(err)
	}
	addrs, err := net.LookupHost(name)
	if err != nil || !strings.Contains(strings.Join(addrs, " "), "127.0.0.1") {
		t.Skipf("the host name %q does not resolve to 127.0.0.1 (%v, %v)", name, addrs, err)
	}
	return name
}

// acceptsWriteOnly reports whether the CLI takes write-only arguments
// (Terraform and OpenTofu 1.11 and later).
func (c *terraformCLI) acceptsWriteOnly(t *testing.T) bool {
	t.Helper()
	var v struct {
		Version string `json:"terraform_version"` // OpenTofu prints the same key
	}
	if err := json.Unmarshal([]byte(c.run(t, t.TempDir(), 0, "version", "-json")), &v); err != nil {
		t.Fatal(err)
	}
	var major, minor int
	if _, err := fmt.Sscanf(v.Version, "%d.%d", &major, &minor); err != nil {
		t.Fatalf("version %q: %v", v.Version, err)
	}
	return major > 1 || minor >= 11
}
