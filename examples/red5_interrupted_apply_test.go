package examples_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// An apply interrupted (Ctrl-C, SIGINT to the CLI) while it turns failover
// on for an enabled subscription: the provider has run DISABLE and waits on
// SET (failover = true), which reaches the publisher (frozen here, so the
// statement is still running when the interrupt comes). The CLI cancels the
// provider's context; the SET fails with "context canceled", and the step
// that should enable the subscription again runs on that same cancelled
// context and fails at once. The subscription is left disabled: it stops
// replicating although nothing the user asked for was applied. Nothing
// is half applied now: the re-enable runs on a context of its own.
func TestRed5InterruptedFailoverKeepsSubscriptionEnabled(t *testing.T) {
	cli := providerCLI(t)
	pub, sub := twoPrimaries(t, "red5_int")
	mainTF := func(failover bool) string {
		return fmt.Sprintf(`
resource "pgreplication_publication" "pub" {
  provider = pgreplication.pub
  name     = "red5_int_pub"
  tables   = { "public.red5_int" = {} }
}

resource "pgreplication_subscription" "sub" {
  provider          = pgreplication.sub
  name              = "red5_int_sub"
  conninfo          = "host=%s port=%d user=postgres dbname=postgres sslmode=disable connect_timeout=30"
  publications      = [pgreplication_publication.pub.name]
  failover          = %t
  publisher_timeout = "50s"
}
`, pub.Host, pub.Port, failover)
	}
	dir := configDir(t, map[string]server{"pub": {pub, "postgres"}, "sub": {sub, "postgres"}}, mainTF(false))
	cli.run(t, dir, 0, tfArgs("apply")...)
	writeFile(t, filepath.Join(dir, "main.tf"), mainTF(true))
	cli.run(t, dir, 2, tfArgs("plan", "-detailed-exitcode", "-out=failover.tfplan")...)
	if err := pub.Freeze(); err != nil {
		t.Fatal(err)
	}
	code, out := interruptWhen(t, cli, dir, func() bool {
		return subscriberRuns(t, sub, `ALTER SUBSCRIPTION "red5_int_sub" SET (failover`)
	}, "apply", "-input=false", "-no-color", "failover.tfplan")
	t.Logf("interrupted apply exited %d:\n%s", code, lastLines(out, 16))
	if err := pub.Thaw(); err != nil {
		t.Fatal(err)
	}
	var enabled bool
	if err := sub.QueryRow(t.Context(), `SELECT subenabled FROM pg_subscription WHERE subname = 'red5_int_sub'`).Scan(&enabled); err != nil {
		t.Fatal(err)
	}
	if !enabled {
		t.Errorf("the interrupted apply (exit %d) left subscription red5_int_sub disabled: it does not replicate, "+
			"although its failover change was not made", code)
	}
}

// subscriberRuns tells whether a session of n runs a statement that starts
// with prefix.
func subscriberRuns(t *testing.T, n *routertest.Node, prefix string) bool {
	t.Helper()
	var running bool
	if err := n.QueryRow(t.Context(), `SELECT EXISTS (SELECT FROM pg_stat_activity WHERE state = 'active' AND starts_with(query, $1))`,
		prefix).Scan(&running); err != nil {
		t.Fatal(err)
	}
	return running
}

// interruptWhen runs the CLI in dir, sends it SIGINT (as Ctrl-C does) once
// ready() is true, and returns its exit code and output.
func interruptWhen(t *testing.T, c *terraformCLI, dir string, ready func() bool, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(c.path, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "TF_CLI_CONFIG_FILE="+c.configFile, "TF_IN_AUTOMATION=1", "CHECKPOINT_DISABLE=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	deadline := time.Now().Add(60 * time.Second)
	for !ready() {
		select {
		case err := <-done:
			t.Fatalf("%s %s ended (%v) before it could be interrupted:\n%s", filepath.Base(c.path), args[0], err, out.String())
		default:
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-done
			t.Fatalf("%s %s: the moment to interrupt did not come in 60 s:\n%s", filepath.Base(c.path), args[0], out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(90 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("%s %s did not end within 90 s of SIGINT:\n%s", filepath.Base(c.path), args[0], out.String())
	}
	return cmd.ProcessState.ExitCode(), out.String()
}
