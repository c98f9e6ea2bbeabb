package examples_test

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// Turning failover on for an enabled subscription is DISABLE, SET (failover
// = true), ENABLE. TestRed5InterruptedFailoverKeepsSubscriptionEnabled
// interrupts the SET; these interrupt the two other statements while the
// subscriber holds them (a synchronous standby away, a lock on
// pg_subscription) and the CLI gets SIGINT. pgx, when the apply's context
// is cancelled, closes the statement's connection and sends the server a
// cancel request: a statement waiting for a lock is rolled back, one whose
// commit waits for a synchronous standby is committed locally.

// lockSubscriptions opens a session on n that takes pg_subscription in
// EXCLUSIVE mode (ALTER SUBSCRIPTION waits for it; reading the catalog does
// not) and returns it with the lock requested in the background: locked
// receives the outcome once it is granted.
func lockSubscriptions(t *testing.T, n *routertest.Node) (session *pgx.Conn, locked <-chan error) {
	t.Helper()
	session, err := n.Connect(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = session.Close(context.Background()) })
	c := make(chan error, 1)
	go func() {
		_, err := session.Exec(t.Context(), `BEGIN; LOCK TABLE pg_subscription IN EXCLUSIVE MODE`)
		c <- err
	}()
	return session, c
}

// subscriptionEnabled is pg_subscription.subenabled of the subscription name
// on n, once no session runs an ALTER SUBSCRIPTION of it any more: one that
// the interrupted CLI left running on the server ends before it is read.
func subscriptionEnabled(t *testing.T, n *routertest.Node, name string) bool {
	t.Helper()
	waitFor(t, n, 30*time.Second, func() bool { return !subscriberRuns(t, n, `ALTER SUBSCRIPTION "`+name+`"`) },
		"the statements on subscription "+name+" to end")
	var enabled bool
	if err := n.QueryRow(t.Context(), `SELECT subenabled FROM pg_subscription WHERE subname = $1`, name).Scan(&enabled); err != nil {
		t.Fatal(err)
	}
	return enabled
}

// stateEnabled is the enabled attribute of pgreplication_subscription.sub in
// dir's state.
func stateEnabled(t *testing.T, cli *terraformCLI, dir string) bool {
	t.Helper()
	var show struct {
		Values struct {
			RootModule struct {
				Resources []struct {
					Address string         `json:"address"`
					Values  map[string]any `json:"values"`
				} `json:"resources"`
			} `json:"root_module"`
		} `json:"values"`
	}
	if err := json.Unmarshal([]byte(cli.run(t, dir, 0, "show", "-json", "-no-color")), &show); err != nil {
		t.Fatal(err)
	}
	for _, r := range show.Values.RootModule.Resources {
		if r.Address == "pgreplication_subscription.sub" {
			enabled, _ := r.Values["enabled"].(bool)
			return enabled
		}
	}
	t.Fatal("the state has no pgreplication_subscription.sub")
	return false
}

// runningPID is the PID of the session of n that runs a statement starting
// with prefix; 0 when none does.
func runningPID(t *testing.T, n *routertest.Node, prefix string) int {
	t.Helper()
	var pid int
	if err := n.QueryRow(t.Context(), `SELECT coalesce((SELECT pid FROM pg_stat_activity WHERE state = 'active' AND starts_with(query, $1) LIMIT 1), 0)`,
		prefix).Scan(&pid); err != nil {
		t.Fatal(err)
	}
	return pid
}

// waitStatementEnds waits until the session pid of n no longer runs a
// statement starting with prefix.
func waitStatementEnds(t *testing.T, n *routertest.Node, pid int, prefix string) {
	t.Helper()
	waitFor(t, n, 30*time.Second, func() bool {
		var running bool
		if err := n.QueryRow(t.Context(), `SELECT EXISTS (SELECT FROM pg_stat_activity WHERE pid = $1 AND state = 'active' AND starts_with(query, $2))`,
			pid, prefix).Scan(&running); err != nil {
			t.Fatal(err)
		}
		return !running
	}, fmt.Sprintf("session %d to end %s…", pid, prefix))
}

// waitReplicates inserts a row into table on pub and waits until sub has
// it.
func waitReplicates(t *testing.T, pub, sub *routertest.Node, table string) {
	t.Helper()
	execSQL(t, pub, "postgres", `INSERT INTO `+table+` VALUES (1)`)
	waitRows(t, sub, table, 1, 20*time.Second, "a row inserted on the publisher after the interrupted apply")
}

// The CLI is interrupted while DISABLE's commit waits for the subscriber's
// synchronous standby (away for a moment: a restart, a network partition;
// what makes an apply hang and its user press Ctrl-C). The cancel request
// ends the wait and the DISABLE stays committed: before, nothing enabled the
// subscription again (only a failed SET was undone), and it stayed
// disabled, replicating nothing, with the state still saying enabled.
func TestSubctlInterruptedDisableKeepsSubscriptionEnabled(t *testing.T) {
	cli := providerCLI(t)
	pub, sub, dir := failoverPlan(t, cli, "subctl_dis")
	setAndReload(t, sub, `ALTER SYSTEM SET synchronous_standby_names = 'subctl_away'`)
	t.Cleanup(func() {
		for _, sql := range []string{`ALTER SYSTEM RESET synchronous_standby_names`, `SELECT pg_reload_conf()`} {
			_ = sub.Exec(context.Background(), sql)
		}
	})
	const disable = `ALTER SUBSCRIPTION "subctl_dis_sub" DISABLE`
	var pid int
	code, out := interruptWhen(t, cli, dir, func() bool {
		pid = runningPID(t, sub, disable)
		return pid != 0
	}, func() {
		// The interrupted DISABLE ends (committed); then the standby is
		// back, so that an ENABLE that follows can commit.
		waitStatementEnds(t, sub, pid, disable)
		setAndReload(t, sub, `ALTER SYSTEM RESET synchronous_standby_names`)
	}, "apply", "-input=false", "-no-color", "failover.tfplan")
	t.Logf("interrupted apply exited %d:\n%s", code, lastLines(out, 16))
	if !subscriptionEnabled(t, sub, "subctl_dis_sub") {
		t.Fatalf("the apply interrupted during DISABLE (exit %d) left subscription subctl_dis_sub disabled: it does not replicate, "+
			"although its failover change was not made", code)
	}
	if !strings.Contains(strings.Join(strings.Fields(out), " "), "has been enabled again") {
		t.Errorf("the error does not say that the subscription was enabled again:\n%s", lastLines(out, 16))
	}
	waitReplicates(t, pub, sub, "subctl_dis")
}

// heldEnable holds the final ENABLE of failoverPlan's saved plan on a
// lock on pg_subscription, queued behind the SET (which the frozen
// publisher holds meanwhile), so that it is granted between the SET and the
// ENABLE.
type heldEnable struct {
	t        *testing.T
	pub, sub *routertest.Node
	name     string
	session  *pgx.Conn // holds the lock once taken
	locked   <-chan error
	pid      int // the session that runs the ENABLE
}

func newHeldEnable(t *testing.T, pub, sub *routertest.Node, name string) *heldEnable {
	t.Helper()
	if err := pub.Freeze(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pub.Thaw() })
	return &heldEnable{t: t, pub: pub, sub: sub, name: name}
}

// ready tells whether the ENABLE waits for the lock, taking the lock when
// the SET runs.
func (h *heldEnable) ready() bool {
	t := h.t
	if h.session == nil {
		if !subscriberRuns(t, h.sub, `ALTER SUBSCRIPTION "`+h.name+`" SET (failover`) {
			return false
		}
		h.session, h.locked = lockSubscriptions(t, h.sub)
		waitFor(t, h.sub, 10*time.Second, func() bool {
			var waiting bool
			if err := h.sub.QueryRow(t.Context(), `SELECT EXISTS (SELECT FROM pg_locks WHERE NOT granted
  AND relation = 'pg_catalog.pg_subscription'::regclass AND mode = 'ExclusiveLock')`).Scan(&waiting); err != nil {
				t.Fatal(err)
			}
			return waiting
		}, "the lock on pg_subscription to queue behind the SET")
		if err := h.pub.Thaw(); err != nil {
			t.Fatal(err)
		}
		if err := <-h.locked; err != nil {
			t.Fatal(err)
		}
		return false
	}
	h.pid = runningPID(t, h.sub, h.enable())
	return h.pid != 0
}

func (h *heldEnable) enable() string { return `ALTER SUBSCRIPTION "` + h.name + `" ENABLE` }

// release lets ALTER SUBSCRIPTION run again once the interrupted ENABLE
// has ended (rolled back by the cancel request).
func (h *heldEnable) release() {
	waitStatementEnds(h.t, h.sub, h.pid, h.enable())
	if _, err := h.session.Exec(h.t.Context(), `COMMIT`); err != nil {
		h.t.Error(err)
	}
}

// subscriptionFailover is pg_subscription.subfailover of name on n.
func subscriptionFailover(t *testing.T, n *routertest.Node, name string) bool {
	t.Helper()
	var failover bool
	if err := n.QueryRow(t.Context(), `SELECT subfailover FROM pg_subscription WHERE subname = $1`, name).Scan(&failover); err != nil {
		t.Fatal(err)
	}
	return failover
}

// The CLI is interrupted while the final ENABLE waits for the lock (or just
// before it runs: it fails at once then, on the cancelled context), and the
// cancel request rolls it back: before, the subscription stayed disabled
// after its failover change, and did not replicate.
func TestSubctlInterruptedEnableKeepsSubscriptionEnabled(t *testing.T) {
	cli := providerCLI(t)
	pub, sub, dir := failoverPlan(t, cli, "subctl_ena")
	held := newHeldEnable(t, pub, sub, "subctl_ena_sub")
	code, out := interruptWhen(t, cli, dir, held.ready, held.release, "apply", "-input=false", "-no-color", "failover.tfplan")
	t.Logf("interrupted apply exited %d:\n%s", code, lastLines(out, 16))
	if !subscriptionEnabled(t, sub, "subctl_ena_sub") {
		t.Fatalf("the apply interrupted during its final ENABLE (exit %d) left subscription subctl_ena_sub disabled "+
			"(failover = %t): it does not replicate", code, subscriptionFailover(t, sub, "subctl_ena_sub"))
	}
	waitReplicates(t, pub, sub, "subctl_ena")
}

// When the subscription cannot be enabled again (the lock outlasts the
// provider's wait), the error says that it is disabled, names it and says
// how to enable it; the state says enabled = false, so that the next plan
// enables it, with a refresh or without. Before, the error was ENABLE's
// "context canceled" and the state still said enabled.
func TestSubctlFailoverEnableThatCannotRunSaysDisabled(t *testing.T) {
	cli := providerCLI(t)
	pub, sub, dir := failoverPlan(t, cli, "subctl_off")
	held := newHeldEnable(t, pub, sub, "subctl_off_sub")
	code, out := interruptWhen(t, cli, dir, held.ready, nil, "apply", "-input=false", "-no-color", "failover.tfplan")
	t.Logf("interrupted apply exited %d:\n%s", code, lastLines(out, 20))
	held.release()
	if subscriptionEnabled(t, sub, "subctl_off_sub") {
		t.Fatal("the subscription is enabled: the lock did not outlast the provider's wait, and this test tests nothing")
	}
	flat := strings.Join(strings.Fields(out), " ")
	for _, want := range []string{`"subctl_off_sub"`, "is disabled now and does not replicate", `ALTER SUBSCRIPTION "subctl_off_sub" ENABLE`} {
		if !strings.Contains(flat, want) {
			t.Errorf("the error does not say %q:\n%s", want, lastLines(out, 20))
		}
	}
	if stateEnabled(t, cli, dir) {
		t.Error("the state says enabled = true for the subscription left disabled")
	}
	plan := cli.run(t, dir, 2, tfArgs("plan", "-detailed-exitcode", "-refresh=false")...)
	if !regexp.MustCompile(`enabled\s+= false -> true`).MatchString(plan) {
		t.Errorf("the plan without refresh does not enable the subscription:\n%s", plan)
	}
	cli.run(t, dir, 0, tfArgs("apply")...)
	if !subscriptionEnabled(t, sub, "subctl_off_sub") {
		t.Error("the next apply did not enable the subscription")
	}
}
