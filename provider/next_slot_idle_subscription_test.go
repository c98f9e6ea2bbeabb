package provider

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/pgsql"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// Destroying a logical pgoutput slot that a disabled subscription still
// names warns at plan, naming the slot, its database, its confirmed
// position, that no session streams from it and since when (PostgreSQL 17
// and later), and the fix. Before, the slot was dropped with nothing said;
// enabled again, the subscription failed on every start ("replication slot
// ... does not exist"). The drop still goes ahead: from the publisher the
// slot of a disabled subscription and one nobody uses look the same.
func TestAccReplicationSlot_destroyIdleSubscriptionSlotWarns(t *testing.T) {
	testAccPreCheck(t)
	topo := routertest.Start(t, routertest.WithStandbys(0), routertest.WithSetting("wal_level", "logical"))
	const src, dst, slot = "slot_idle_src", "slot_idle_dst", "slot_idle_sub"
	createDatabase(t, topo.Primary, src)
	createDatabase(t, topo.Primary, dst)
	execSQL(t, topo.Primary, src, `CREATE TABLE t (id bigint PRIMARY KEY); CREATE PUBLICATION p FOR TABLE t`)
	execSQL(t, topo.Primary, dst, `CREATE TABLE t (id bigint PRIMARY KEY)`)
	t.Cleanup(func() {
		for _, stmt := range []string{"ALTER SUBSCRIPTION %s DISABLE", "ALTER SUBSCRIPTION %s SET (slot_name = NONE)", "DROP SUBSCRIPTION %s"} {
			execSQL(t, topo.Primary, dst, fmt.Sprintf(stmt, pgsql.Ident(slot)))
		}
	})
	withSlot := providerConfigDB("primary", topo.Primary, src) + fmt.Sprintf(`
resource "pgreplication_replication_slot" "this" {
  provider = pgreplication.primary
  name     = %q
  type     = "logical"
}
`, slot)
	logPath := traceLog(t)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: withSlot,
				Check: func(*terraform.State) error {
					execSQL(t, topo.Primary, dst, fmt.Sprintf(`CREATE SUBSCRIPTION %s CONNECTION %s PUBLICATION p WITH (create_slot = false, slot_name = %s, copy_data = false)`,
						pgsql.Ident(slot), pgsql.Literal(fmt.Sprintf("host=%s port=%d dbname=%s user=postgres", topo.Primary.Host, topo.Primary.Port, src)),
						pgsql.Literal(slot)))
					waitFor(t, 30*time.Second, "the subscription to stream", func() bool {
						return queryValue[int64](t, topo.Primary, "postgres", `SELECT count(*) FROM pg_stat_replication WHERE application_name = $1 AND state = 'streaming'`, slot) == 1
					})
					execSQL(t, topo.Primary, dst, fmt.Sprintf(`ALTER SUBSCRIPTION %s DISABLE`, pgsql.Ident(slot)))
					waitFor(t, 30*time.Second, "the slot's WAL sender to end", func() bool {
						return queryValue[int64](t, topo.Primary, "postgres", `SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1 AND active`, slot) == 0
					})
					return os.Truncate(logPath, 0)
				},
			},
		},
		CheckDestroy: func(*terraform.State) error {
			// Quote-free phrases: the log may escape quotes.
			phrases := []string{"Replication Slot May Belong to a Disabled Subscription", slot, "destroying it", "plugin pgoutput in database",
				src, "confirmed_flush_lsn ", "No session streams from it now", "does not exist", "SET (slot_name = NONE)"}
			if queryValue[int](t, topo.Primary, "postgres", `SELECT current_setting('server_version_num')::int`) >= 170000 {
				phrases = append(phrases, "inactive since ")
			}
			if !logHasEntry(t, logPath, phrases...) {
				return fmt.Errorf("the destroy's plan did not warn %q", phrases)
			}
			if slotExists(t, topo.Primary, slot) {
				return fmt.Errorf("slot %s is still there: the warning must not stop the destroy", slot)
			}
			return nil
		},
	})
}
