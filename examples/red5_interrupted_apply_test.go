package examples_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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
	pub, sub, dir := failoverPlan(t, cli, "red5_int")
	if err := pub.Freeze(); err != nil {
		t.Fatal(err)
	}
	code, out := interruptWhen(t, cli, dir, func() bool {
		return subscriberRuns(t, sub, `ALTER SUBSCRIPTION "red5_int_sub" SET (failover`)
	}, nil, "apply", "-input=false", "-no-color", "failover.tfplan")
	t.Logf("interrupted apply exited %d:\n%s", code, lastLines(out, 16))
	if err := pub.Thaw(); err != nil {
		t.Fatal(err)
	}
	if !subscriptionEnabled(t, sub, "red5_int_sub") {
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
// ready() is true, calls interrupted (when not nil), and returns the CLI's
// exit code and output.
func interruptWhen(t *testing.T, c *terraformCLI, dir string, ready func() bool, interrupted func(), args ...string) (int, string) {
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
	if interrupted != nil {
		interrupted()
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

// An apply interrupted while it creates a subscription with an owner:
// CREATE SUBSCRIPTION is done (with its slot on the publisher) and ALTER
// SUBSCRIPTION … OWNER TO waits (on a lock here; a busy catalog, a slow
// server do the same). The CLI cancels the provider's context, the ALTER
// fails with "context canceled", and the undo that should drop the new
// subscription runs on that same context and fails at once: the
// subscription and its slot stay, outside the state, and the next plan
// fails with "Subscription Already Exists" (the error also blames the
// owner role: "The new owner must exist ..."). A create either completes
// or leaves nothing: the undo now runs on a context of its own, and the
// error says the apply was interrupted.
func TestRed5InterruptedSubscriptionCreateLeavesNothing(t *testing.T) {
	cli := providerCLI(t)
	pub, sub := twoPrimaries(t, "red5_cu")
	execSQL(t, pub, "postgres", `CREATE PUBLICATION red5_cu_pub FOR TABLE red5_cu`)
	dir := configDir(t, map[string]server{"sub": {sub, "postgres"}}, fmt.Sprintf(`
resource "pgreplication_subscription" "sub" {
  provider     = pgreplication.sub
  name         = "red5_cu_sub"
  owner        = "postgres"
  conninfo     = "host=%s port=%d user=postgres dbname=postgres sslmode=disable"
  publications = ["red5_cu_pub"]
  copy_data    = false
}
`, pub.Host, pub.Port))
	cli.run(t, dir, 2, tfArgs("plan", "-detailed-exitcode", "-out=create.tfplan")...)

	// A write transaction open on the publisher holds CREATE SUBSCRIPTION in
	// its slot's creation, long enough to queue, behind it, a lock on
	// pg_subscription that lets it finish but holds the ALTER … OWNER TO.
	ctx := t.Context()
	xact, err := pub.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer xact.Close(ctx)
	if _, err := xact.Exec(ctx, `BEGIN; INSERT INTO red5_cu VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	locker, err := sub.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer locker.Close(ctx)
	locked := make(chan error, 1)
	queued := false
	code, out := interruptWhen(t, cli, dir, func() bool {
		if !queued && subscriberRuns(t, sub, `CREATE SUBSCRIPTION "red5_cu_sub"`) {
			queued = true
			go func() {
				_, err := locker.Exec(ctx, `BEGIN; LOCK TABLE pg_subscription IN EXCLUSIVE MODE`)
				locked <- err
			}()
			waitFor(t, sub, 10*time.Second, func() bool {
				var waiting bool
				if err := sub.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_locks WHERE NOT granted
  AND relation = 'pg_catalog.pg_subscription'::regclass AND mode = 'ExclusiveLock')`).Scan(&waiting); err != nil {
					t.Fatal(err)
				}
				return waiting
			}, "the lock on pg_subscription to queue")
			if _, err := xact.Exec(ctx, `ROLLBACK`); err != nil {
				t.Fatal(err)
			}
			return false
		}
		return queued && subscriberRuns(t, sub, `ALTER SUBSCRIPTION "red5_cu_sub" OWNER TO`)
	}, func() {
		// The interrupted ALTER ends; then the lock goes, so that an undo
		// that still runs can drop the subscription.
		waitFor(t, sub, 30*time.Second, func() bool { return !subscriberRuns(t, sub, `ALTER SUBSCRIPTION "red5_cu_sub" OWNER TO`) },
			"the interrupted ALTER … OWNER TO to end")
		if err := <-locked; err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		if _, err := locker.Exec(ctx, `COMMIT`); err != nil {
			t.Fatal(err)
		}
	}, "apply", "-input=false", "-no-color", "create.tfplan")
	t.Logf("interrupted apply exited %d:\n%s", code, lastLines(out, 20))

	var subs, slots int
	if err := sub.QueryRow(ctx, `SELECT count(*)::int FROM pg_subscription WHERE subname = 'red5_cu_sub'`).Scan(&subs); err != nil {
		t.Fatal(err)
	}
	if err := pub.QueryRow(ctx, `SELECT count(*)::int FROM pg_replication_slots WHERE slot_name = 'red5_cu_sub'`).Scan(&slots); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "The apply was interrupted") {
		t.Errorf("the error of the interrupted create does not say that the apply was interrupted:\n%s", lastLines(out, 20))
	}
	if subs != 0 || slots != 0 {
		t.Errorf("the interrupted create (exit %d) left %d subscription(s) red5_cu_sub on the subscriber and %d slot(s) on the publisher, "+
			"outside the state: want nothing", code, subs, slots)
	}
}
