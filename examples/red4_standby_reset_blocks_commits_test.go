package examples_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
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
	cli, topo, _ := oneStandby(t)
	dir := syncStandbyToReset(t, cli, topo, `FIRST 1 ("%s")`)
	if _, out := cli.exec(t, dir, tfArgs("plan", "-destroy")...); !strings.Contains(out, "Resetting Standby Would Block Commits") {
		t.Errorf("the destroy's plan does not warn that the reset blocks commits:\n%s", lastLines(out, 20))
	}
	code, out := cli.exec(t, dir, tfArgs("destroy")...)
	t.Logf("destroy exited %d:\n%s", code, lastLines(out, 12))
	if code == 0 || !strings.Contains(out, "Resetting Standby Would Block Commits") {
		t.Errorf("the destroy exits %d without refusing the reset", code)
	}
	if took, err := commitAfterReset(t, topo.Primary, "red4_after_reset"); err != nil || took > 9*time.Second {
		t.Errorf("after the destroy (exit %d) a commit on the primary does not finish in 10 s (%v, %v): it waits for the standby the destroy cut off", code, took.Round(time.Second), err)
	}
}

// A standby whose password lives in a passfile on its own host (what the
// provider advises for primary_conninfo): the provider, which connects with
// nothing of the standby host's files, cannot log in to the primary, and
// the primary has no synchronous standbys at all. Before 6d4af72 the
// destroy with reset_on_destroy = true reset the standby; 6d4af72 refused
// it ("Cannot Tell Whether Resetting Standby Blocks Commits") because the
// primary could not be asked. It must go ahead, with a warning that says
// what was not checked and what to check.
func TestStandbyResetPrimaryUnreachableFromTerraform(t *testing.T) {
	const pw = "stby§passfile-canary"
	cli, topo, role, dir, logPath := standbyResetSetup(t, "stby_passfile", pw)
	standby := topo.Standbys[0]
	pass := filepath.Join(standby.DataDir, "stby.pgpass")
	writeStandbyFile(t, standby, pass, fmt.Sprintf("%s:%d:*:%s:%s\n", topo.Primary.Host, topo.Primary.Port, role, pw))
	writeFile(t, filepath.Join(dir, "main.tf"), resetStandbyHCLAs(topo, standby.Name, role, fmt.Sprintf("  passfile         = %q\n", pass)))
	out := cli.run(t, dir, 0, tfArgs("apply")...)
	waitStreamingAs(t, topo.Primary, standby.Name, role)
	code, destroy := cli.exec(t, dir, tfArgs("destroy")...)
	t.Logf("destroy exited %d:\n%s", code, lastLines(destroy, 30))
	if code != 0 {
		t.Errorf("the destroy exits %d: a primary that Terraform's machine cannot log in to refuses a reset it cannot tell anything of", code)
	}
	for _, want := range []string{"Cannot Tell Whether Resetting Standby Blocks Commits", "was not checked", "SELECT application_name, state"} {
		if !strings.Contains(strings.Join(strings.Fields(destroy), " "), want) {
			t.Errorf("the destroy does not warn %q", want)
		}
	}
	if conninfo := currentSetting(t, standby, "primary_conninfo"); code == 0 && conninfo != "" {
		t.Errorf("after the destroy primary_conninfo is still %q: the reset did not happen", conninfo)
	}
	expectNoCanary(t, pw, dir, logPath, out+destroy)
}

// The probe of the standby's primary fails in every way it can, with a
// canary password in the standby's primary_conninfo: the primary refuses
// the password (rotated since the standby connected), allows the role only
// replication connections, and stops answering (SIGSTOP). Neither a
// refused password nor a replication-only role refuses the destroy, but a
// primary that answers and shows the standby needed does; so does a frozen
// primary, which accepted the connection and comes back, needing the
// standby, once the grace has passed without an answer: the refusal costs
// the probes' timeouts and the grace, not a hang. The canary shows
// nowhere: not in the CLI's output, the TRACE log or the state.
func TestStandbyResetProbeFailures(t *testing.T) {
	const pw = "stby§conninfo-canary"
	cli, topo, role, dir, logPath := standbyResetSetup(t, "stby_canary", pw)
	standby := topo.Standbys[0]
	t.Setenv("TF_VAR_canary_password", pw)
	// Write-only where the CLI has it (Terraform and OpenTofu 1.11): the
	// state keeps no password, so a canary there is a leak. Before, the
	// state holds primary_password by design, and the canary's check of the
	// state is left out.
	password, stateHolds := "  primary_password_wo = var.canary_password\n  primary_password_wo_version = 1\n", ""
	if !cli.acceptsWriteOnly(t) {
		password, stateHolds = "  primary_password = var.canary_password\n", "primary_password"
	}
	writeFile(t, filepath.Join(dir, "main.tf"), `
variable "canary_password" {
  type      = string
  sensitive = true
}
`+resetStandbyHCLAs(topo, standby.Name, role, password))
	var outs strings.Builder
	outs.WriteString(cli.run(t, dir, 0, tfArgs("apply")...))
	waitStreamingAs(t, topo.Primary, standby.Name, role)
	releaseCommitsAtEnd(t, topo.Primary)
	only := fmt.Sprintf(`ALTER SYSTEM SET synchronous_standby_names = '"%s"'`, standby.Name)
	setPrimary := func(sql string) {
		execSQL(t, topo.Primary, "postgres", sql)
		execSQL(t, topo.Primary, "postgres", `SELECT pg_reload_conf()`)
		time.Sleep(500 * time.Millisecond)
	}
	planWarns := func(what string, want ...string) {
		t.Helper()
		code, out := cli.exec(t, dir, tfArgs("plan", "-destroy")...)
		outs.WriteString(out)
		flat := strings.Join(strings.Fields(out), " ")
		for _, w := range want {
			if code != 0 || !strings.Contains(flat, w) {
				t.Errorf("%s: plan -destroy exited %d, want 0 and %q:\n%s", what, code, w, lastLines(out, 30))
			}
		}
	}

	// Refused: the role's password changed after the standby logged in.
	execSQL(t, topo.Primary, "postgres", `ALTER ROLE `+role+` PASSWORD 'rotated'`)
	setPrimary(only)
	planWarns("password refused", "Cannot Tell Whether Resetting Standby Blocks Commits", "password authentication failed")
	execSQL(t, topo.Primary, "postgres", fmt.Sprintf(`ALTER ROLE %s PASSWORD '%s'`, role, pw))

	// Replication only: the list alone tells when no other name makes
	// up num_sync; it cannot with another listed name.
	prependHBA(t, topo.Primary, fmt.Sprintf("host all %s 127.0.0.1/32 reject\n", role))
	planWarns("replication only, needed", "Resetting Standby Would Block Commits")
	setPrimary(fmt.Sprintf(`ALTER SYSTEM SET synchronous_standby_names = 'FIRST 1 ("%s", other)'`, standby.Name))
	planWarns("replication only, another listed", "Cannot Tell Whether Resetting Standby Blocks Commits", "only a replication connection")

	// Frozen during the destroy, with a setting that needs the standby:
	// the probe's timeout, the grace, then the refusal; the standby still
	// streams.
	setPrimary(only)
	if err := topo.Primary.Freeze(); err != nil {
		t.Fatal(err)
	}
	planWarns("frozen", "Standby's Primary Does Not Answer", "did not answer within 5s", "Apply asks again")
	start := time.Now()
	code, out := cli.exec(t, dir, tfArgs("destroy")...)
	took := time.Since(start)
	outs.WriteString(out)
	t.Logf("destroy with the primary frozen exited %d in %s:\n%s", code, took.Round(time.Second), lastLines(out, 20))
	flat := strings.Join(strings.Fields(out), " ")
	for _, want := range []string{"Standby's Primary Does Not Answer", "accepted the connection", "did not answer within 5s",
		"Wait for the primary to answer and run the destroy again", "reset_on_destroy = false", "did not answer then either"} {
		if code == 0 || !strings.Contains(flat, want) {
			t.Errorf("with the primary frozen the destroy exits %d; want a refusal that says %q", code, want)
		}
	}
	// The plan's probe and the apply's (publisherProbeTimeout, 5 s each),
	// the grace (syncRiskGrace, 10 s), and the CLI's own work on a busy
	// machine.
	if took > 45*time.Second {
		t.Errorf("with the primary frozen the destroy took %s; want about two probe timeouts and the grace (20 s)", took.Round(time.Second))
	}
	if err := topo.Primary.Thaw(); err != nil {
		t.Fatal(err)
	}
	if conninfo := currentSetting(t, standby, "primary_conninfo"); conninfo == "" {
		t.Errorf("the refused destroy reset primary_conninfo")
	}
	if stateHolds != "" {
		t.Logf("%s has no write-only arguments: the state holds %s by design, and is not checked for the canary", filepath.Base(cli.path), stateHolds)
		dir = ""
	}
	expectNoCanary(t, pw, dir, logPath, outs.String())
}

// standbyResetSetup starts a primary and a standby, creates role with
// password pw on the primary (createPasswordRole), and returns the CLI on
// the provider built from this tree, the configuration's directory (its
// providers.tf written, alias standby) and the TRACE log the CLI writes.
func standbyResetSetup(t *testing.T, role, pw string) (*terraformCLI, *routertest.Topology, string, string, string) {
	t.Helper()
	cli, topo, _ := oneStandby(t)
	createPasswordRole(t, topo, role, pw)
	dir := t.TempDir()
	logPath := filepath.Join(t.TempDir(), "trace.log")
	t.Setenv("TF_LOG", "TRACE")
	t.Setenv("TF_LOG_PATH", logPath)
	writeProviders(t, dir, map[string]server{"standby": {topo.Standbys[0], "postgres"}})
	return cli, topo, role, dir, logPath
}

// createPasswordRole creates a replication role with password pw
// (scram-sha-256), which the primary checks on every TCP connection.
func createPasswordRole(t *testing.T, topo *routertest.Topology, role, pw string) {
	t.Helper()
	execSQL(t, topo.Primary, "postgres", fmt.Sprintf(`SET password_encryption = 'scram-sha-256'; CREATE ROLE %s LOGIN REPLICATION PASSWORD '%s'`, role, pw))
	if err := topo.Primary.RequirePassword(t.Context(), role); err != nil {
		t.Fatal(err)
	}
}

// writeStandbyFile writes a file the standby's server reads, owned by the
// user the server runs as (the data directory's owner), mode 0600 as libpq
// wants of a passfile.
func writeStandbyFile(t *testing.T, n *routertest.Node, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(n.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		if err := os.Chown(path, int(st.Uid), int(st.Gid)); err != nil {
			t.Fatal(err)
		}
	}
}

// prependHBA puts rules ahead of n's pg_hba.conf and reloads it.
func prependHBA(t *testing.T, n *routertest.Node, rules string) {
	t.Helper()
	hba := filepath.Join(n.DataDir, "pg_hba.conf")
	old, err := os.ReadFile(hba)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(hba, append([]byte(rules), old...), 0o600); err != nil {
		t.Fatal(err)
	}
	execSQL(t, n, "postgres", `SELECT pg_reload_conf()`)
	time.Sleep(time.Second) // the postmaster rereads pg_hba.conf when it handles the signal
}

// waitStreamingAs waits until the standby app streams from primary as role.
func waitStreamingAs(t *testing.T, primary *routertest.Node, app, role string) {
	t.Helper()
	waitFor(t, primary, 60*time.Second, func() bool {
		var n int
		_ = primary.QueryRow(t.Context(), `SELECT count(*)::int FROM pg_stat_replication WHERE application_name = $1 AND usename = $2 AND state = 'streaming'`,
			app, role).Scan(&n)
		return n == 1
	}, app+" to stream as "+role)
}

// expectNoCanary fails when the canary shows in the CLI's output, the
// TRACE log or a state file of dir (none when dir is "").
func expectNoCanary(t *testing.T, canary, dir, logPath, output string) {
	t.Helper()
	if strings.Contains(output, canary) {
		t.Errorf("the CLI's output holds the canary")
	}
	log, err := os.ReadFile(logPath)
	if err != nil || len(log) == 0 {
		t.Fatalf("no TRACE log at %s (%v)", logPath, err)
	}
	if !strings.Contains(string(log), "Resetting Standby") {
		t.Errorf("the TRACE log lacks the reset's diagnostics: the canary check proves nothing")
	}
	if i := strings.Index(string(log), canary); i >= 0 {
		t.Errorf("the TRACE log holds the canary: …%s…", log[max(0, i-300):min(len(log), i+50)])
	}
	if dir == "" {
		return
	}
	states, _ := filepath.Glob(filepath.Join(dir, "terraform.tfstate*"))
	if len(states) == 0 {
		t.Errorf("no state file in %s", dir)
	}
	for _, f := range states {
		if b, err := os.ReadFile(f); err != nil || strings.Contains(string(b), canary) {
			t.Errorf("the state file %s holds the canary (%v)", f, err)
		}
	}
}
