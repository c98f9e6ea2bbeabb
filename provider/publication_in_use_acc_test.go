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

// A publication that a subscription streams is neither dropped nor
// renamed: the plan warns and the apply refuses, naming the subscription,
// with nothing changed. Before, DROP PUBLICATION succeeded and the WAL
// sender failed on the next change with "publication ... does not exist":
// the subscriber retried for ever and no row arrived again (PostgreSQL 17:
// a row written after the destroy had not arrived 30 s later). Once the
// subscription is gone the destroy goes ahead.
func TestAccPublication_streamedNotDroppedOrRenamed(t *testing.T) {
	testAccPreCheck(t)
	topo := routertest.Start(t, routertest.WithStandbys(0), routertest.WithSetting("wal_level", "logical"))
	const src, dst = "pub_streamed_src", "pub_streamed_dst"
	const pub, sub, idleSlot = "pub_streamed", "sub_streamed", "pub_streamed_idle"
	createDatabase(t, topo.Primary, src)
	createDatabase(t, topo.Primary, dst)
	execSQL(t, topo.Primary, src, `CREATE TABLE written (id bigserial PRIMARY KEY)`)
	execSQL(t, topo.Primary, dst, `CREATE TABLE written (id bigint PRIMARY KEY)`)
	withPublication := func(name string) string {
		return providerConfigDB("primary", topo.Primary, src) + fmt.Sprintf(`
resource "pgreplication_publication" "this" {
  provider = pgreplication.primary
  name     = %q
  tables   = { "public.written" = {} }
}
`, name)
	}
	withoutPublication := providerConfigDB("primary", topo.Primary, src)
	logPath := traceLog(t)
	warned := func(phrases ...string) func() {
		return func() {
			t.Helper()
			if !logHasEntry(t, logPath, phrases...) {
				t.Errorf("the plan did not warn %q", phrases)
			}
			if err := os.Truncate(logPath, 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	rows := func(want int64) {
		t.Helper()
		execSQL(t, topo.Primary, src, `INSERT INTO written DEFAULT VALUES`)
		waitFor(t, 60*time.Second, fmt.Sprintf("row %d to reach the subscriber", want), func() bool {
			return queryValue[int64](t, topo.Primary, dst, `SELECT count(*) FROM written`) == want
		})
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: withPublication(pub),
				Check: func(*terraform.State) error {
					// The slot first: CREATE SUBSCRIPTION that creates it on its
					// own cluster waits for its own transaction.
					execSQL(t, topo.Primary, src, `SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, sub)
					execSQL(t, topo.Primary, dst, fmt.Sprintf(`CREATE SUBSCRIPTION %s CONNECTION %s PUBLICATION %s WITH (create_slot = false, slot_name = %s, copy_data = false)`,
						pgsql.Ident(sub), pgsql.Literal(fmt.Sprintf("host=%s port=%d dbname=%s user=postgres", topo.Primary.Host, topo.Primary.Port, src)),
						pgsql.Ident(pub), pgsql.Literal(sub)))
					waitFor(t, 30*time.Second, "the subscription to stream", func() bool {
						return queryValue[int64](t, topo.Primary, "postgres", `SELECT count(*) FROM pg_stat_replication WHERE application_name = $1 AND state = 'streaming'`, sub) == 1
					})
					rows(1)
					return os.Truncate(logPath, 0)
				},
			},
			{
				Config:      withPublication(pub + "_renamed"),
				ExpectError: errorText("Publication In Use", "Renaming publication", pub, "application_name", sub, "ALTER SUBSCRIPTION", "The publication is unchanged"),
			},
			{
				PreConfig:   warned("Publication In Use", "Renaming publication", sub, "The apply will refuse it"),
				Config:      withoutPublication,
				ExpectError: errorText("Publication In Use", "Dropping publication", pub, "application_name", sub, "The publication is unchanged"),
			},
			{
				// Nothing was renamed or dropped: the subscription still
				// streams; once it is gone, the destroy goes ahead.
				PreConfig: func() {
					warned("Publication In Use", "Dropping publication", sub)()
					rows(2)
					for _, stmt := range []string{"ALTER SUBSCRIPTION %s DISABLE", "ALTER SUBSCRIPTION %s SET (slot_name = NONE)", "DROP SUBSCRIPTION %s"} {
						execSQL(t, topo.Primary, dst, fmt.Sprintf(stmt, pgsql.Ident(sub)))
					}
					waitFor(t, 30*time.Second, "the slot's WAL sender to end", func() bool {
						return queryValue[int64](t, topo.Primary, "postgres", `SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1 AND active`, sub) == 0
					})
					execSQL(t, topo.Primary, "postgres", `SELECT pg_drop_replication_slot($1)`, sub)
					// A slot no session streams from (a disabled
					// subscription's, say): the destroy goes ahead, and
					// the plan names it.
					execSQL(t, topo.Primary, src, `SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, idleSlot)
				},
				Config: withoutPublication,
				Check: func(*terraform.State) error {
					warned("Publication Subscribers Not Streaming", "Dropping publication", idleSlot)()
					if n := queryValue[int64](t, topo.Primary, src, `SELECT count(*) FROM pg_publication WHERE pubname = $1`, pub); n != 0 {
						return fmt.Errorf("publication %s is still there after its subscription was dropped", pub)
					}
					return nil
				},
			},
		},
	})
}
