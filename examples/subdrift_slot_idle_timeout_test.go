package examples_test

import (
	"strings"
	"testing"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// A slot that PostgreSQL 18 invalidated for being idle past
// idle_replication_slot_timeout (invalidation_reason = idle_timeout; its
// wal_status reads lost, as for every invalidated slot) drew the warning
// "the server removed WAL its consumer still needed": nothing was removed,
// and the user looks for the wrong cause. The warning names
// invalidation_reason.
func TestSubdriftSlotIdleTimeoutWarningNamesReason(t *testing.T) {
	cli := providerCLI(t)
	n := routertest.Start(t, routertest.WithStandbys(0)).Primary
	if v := currentSetting(t, n, "server_version_num"); v < "180000" {
		t.Skipf("the server runs %s; idle_replication_slot_timeout needs 18", v)
	}
	dir := configDir(t, map[string]server{"pg": {n, "postgres"}}, `
resource "pgreplication_replication_slot" "idle" {
  provider = pgreplication.pg
  name     = "subdrift_idle"
  type     = "logical"
  plugin   = "pgoutput"
}
`)
	cli.run(t, dir, 0, tfArgs("apply")...)
	execSQL(t, n, "postgres", `ALTER SYSTEM SET idle_replication_slot_timeout = '1s'`)
	execSQL(t, n, "postgres", `SELECT pg_reload_conf()`)
	waitFor(t, n, 60*time.Second, func() bool {
		execSQL(t, n, "postgres", `CHECKPOINT`)
		var why string
		if err := n.QueryRow(t.Context(), `SELECT coalesce(invalidation_reason, '') FROM pg_replication_slots WHERE slot_name = 'subdrift_idle'`).Scan(&why); err != nil {
			t.Fatal(err)
		}
		return why == "idle_timeout"
	}, "the slot to be invalidated for idle_timeout")
	out := cli.run(t, dir, 0, tfArgs("plan")...)
	if !strings.Contains(out, "invalidation_reason = idle_timeout") || strings.Contains(out, "removed WAL") {
		t.Errorf("the plan's warning of a slot invalidated for idle_timeout does not name invalidation_reason:\n%s", lastLines(out, 20))
	}
}
