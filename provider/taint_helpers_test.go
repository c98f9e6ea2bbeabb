//go:build linux

package provider

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// The set-up of the taint tests: a create that reaches its settle (the wait
// for its owner token) on n, which is frozen there.

// settleProvider is the provider block of a taint test on n: bounded
// connections and statements, a canary password.
func settleProvider(n *routertest.Node) string {
	return fmt.Sprintf(`
provider "pgreplication" {
  host              = %q
  port              = %d
  username          = "postgres"
  password          = "taint-canary%sZq8"
  database          = "postgres"
  sslmode           = "disable"
  connect_timeout   = 2
  statement_timeout = "2s"
}
`, n.Host, n.Port, canaryMark)
}

// breakConf writes a syntax error into n's postgresql.conf, so that n
// ignores the create's reload and its token does not take effect: the
// settle goes on polling. restore puts the file back (reload it after).
func breakConf(t *testing.T, n *routertest.Node) (restore func()) {
	t.Helper()
	conf := filepath.Join(n.DataDir, "postgresql.conf")
	good, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	restore = func() {
		if err := os.WriteFile(conf, good, 0o600); err != nil {
			t.Error(err)
		}
	}
	t.Cleanup(restore)
	if err := os.WriteFile(conf, append(append([]byte{}, good...), "\n= taint settle: a syntax error\n"...), 0o600); err != nil {
		t.Fatal(err)
	}
	return restore
}

// settleHang is how long freezeInSettle leaves n frozen if nothing thaws
// it before: longer than an apply that does not hang takes.
const settleHang = 150 * time.Second

// freezeInSettle freezes n once a create's settle has begun: its first
// read of the token after the create's reload, in n's log after offset
// (logStatements; logSize gives it). n is thawed after settleHang if
// nothing thaws it before, and at the end of the test. frozenAt tells when
// n froze (the zero time until it has).
func freezeInSettle(t *testing.T, n *routertest.Node, offset int64) (frozenAt func() time.Time) {
	t.Cleanup(func() { _ = n.Thaw() })
	var at atomic.Pointer[time.Time]
	go func() {
		for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Error("the create's settle did not begin within 60s")
				return
			}
			b, _ := os.ReadFile(filepath.Join(n.DataDir, "postgresql.log"))
			_, after, reloaded := strings.Cut(string(b[min(int(offset), len(b)):]), "SELECT pg_reload_conf()")
			if reloaded && strings.Contains(after, "current_setting($1, true)") {
				break
			}
		}
		if err := n.Freeze(); err != nil {
			t.Error(err)
			return
		}
		now := time.Now()
		at.Store(&now)
		time.AfterFunc(settleHang, func() { _ = n.Thaw() }) // if the apply hangs
	}()
	return func() time.Time {
		if p := at.Load(); p != nil {
			return *p
		}
		return time.Time{}
	}
}

// ghostSyncConfig sets on n by hand, as an earlier object did, the values
// of the synchronous replication it returns the configuration of (settle
// provider): synchronous_standby_names = FIRST 1 ("ghost"), whose standby
// never comes, and synchronous_commit = local. Its create finds them in
// effect, so its own wait ends at once and it reaches the settle.
func ghostSyncConfig(t *testing.T, n *routertest.Node) string {
	t.Helper()
	execSQL(t, n, "postgres", `ALTER SYSTEM SET synchronous_standby_names = 'FIRST 1 ("ghost")'`)
	execSQL(t, n, "postgres", `ALTER SYSTEM SET synchronous_commit = 'local'`)
	execSQL(t, n, "postgres", `SELECT pg_reload_conf()`)
	waitFor(t, 10*time.Second, "the hand-set synchronous_standby_names in effect", func() bool {
		return queryValue[string](t, n, "postgres", `SHOW synchronous_standby_names`) == `FIRST 1 ("ghost")`
	})
	return settleProvider(n) + `
resource "pgreplication_synchronous_replication" "this" {
  standby_names      = ["ghost"]
  synchronous_commit = "local"
  allow_unavailable  = true
}
`
}

// forgottenStandby starts a primary with one standby, n (its own: it is
// frozen), and returns the steps that apply a first pgreplication_standby
// of n and forget it (removed from the configuration, reset_on_destroy
// unset), so that its settings and token stay in effect, and the
// configuration of a create with the same values and reset_on_destroy,
// which finds them in effect and reaches the settle.
func forgottenStandby(t *testing.T) (topo *routertest.Topology, n *routertest.Node, forget []resource.TestStep, config string) {
	t.Helper()
	topo = routertest.Start(t, routertest.WithStandbys(1))
	n = topo.Standbys[0]
	provider := settleProvider(n)
	body := "  application_name = \"replica-1\"\n  wait_timeout     = \"30s\"\n"
	forget = []resource.TestStep{
		{Config: provider + standbyBlock("", topo.Primary.Host, topo.Primary.Port, body)},
		{Config: provider}, // forgets: reset_on_destroy is unset
	}
	return topo, n, forget, provider + standbyBlock("", topo.Primary.Host, topo.Primary.Port, body+"  reset_on_destroy = true\n")
}
