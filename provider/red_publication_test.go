package provider

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/jackc/pgx/v5"

	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/pgsql"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// Switching a publication's all_tables while a subscription streams from it
// and the publisher is written to: every row reaches the subscriber. The
// switch used to replace the publication (DROP, then CREATE in another
// apply step), and a change committed in between stopped the subscription
// for good: the publisher's WAL sender decodes each change with the
// catalog as of that change, finds no publication there, fails
// ('publication "…" does not exist'), and the subscriber restarts from the
// same place (PostgreSQL 15 to 17; 18 skips the publication instead, so
// those changes never reach the subscriber). The subscription is made by
// hand, on the same server, in another database.
func TestAccPublication_allTablesSwitchKeepsSubscribers(t *testing.T) {
	topo := testAccTopology(t)
	const src, dst = "red_pub_switch_src", "red_pub_switch_dst"
	const pub, sub = "red_pub_switch", "red_sub_switch"
	createDatabase(t, topo.Primary, src)
	createDatabase(t, topo.Primary, dst)
	t.Cleanup(func() {
		// A database with a subscription cannot be dropped: drop it first,
		// without its slot, which goes with its database.
		execSQL(t, topo.Primary, dst, fmt.Sprintf(`DO $$BEGIN
  ALTER SUBSCRIPTION %[1]s DISABLE;
  ALTER SUBSCRIPTION %[1]s SET (slot_name = NONE);
  DROP SUBSCRIPTION %[1]s;
EXCEPTION WHEN undefined_object THEN NULL;
END$$`, pgsql.Ident(sub)))
		execSQL(t, topo.Primary, "postgres", "DROP DATABASE IF EXISTS "+pgsql.Ident(dst)+" WITH (FORCE)")
		execSQL(t, topo.Primary, "postgres", `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1`, sub)
		execSQL(t, topo.Primary, "postgres", "DROP DATABASE IF EXISTS "+pgsql.Ident(src)+" WITH (FORCE)")
	})
	execSQL(t, topo.Primary, src, `CREATE TABLE written (id bigserial PRIMARY KEY)`)
	execSQL(t, topo.Primary, dst, `CREATE TABLE written (id bigint PRIMARY KEY)`)
	config := func(body string) string {
		return providerConfigDB("primary", topo.Primary, src) + `
resource "pgreplication_publication" "switch" {
  provider = pgreplication.primary
  name     = "` + pub + `"
` + body + `
}
`
	}
	var w *writer
	startWriting := func() { w = startWriter(t, topo.Primary, src) }
	allRowsArrive := func(*terraform.State) error {
		if err := w.stop(); err != nil {
			return fmt.Errorf("writing on the publisher during the apply: %v", err)
		}
		written := queryValue[int64](t, topo.Primary, src, `SELECT count(*) FROM written`)
		if written == 0 {
			return fmt.Errorf("no row was written during the apply: the test proves nothing")
		}
		var got int64
		ok, _ := pollUntil(context.Background(), 30*time.Second, func(context.Context) (bool, error) {
			got = queryValue[int64](t, topo.Primary, dst, `SELECT count(*) FROM written`)
			return got == written, nil
		})
		if !ok {
			return fmt.Errorf("%d rows were written on the publisher, %d reached the subscriber 30s after the apply "+
				"(the publisher's log says why: publication %q does not exist?)", written, got, pub)
		}
		return nil
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: config(`tables = { "public.written" = {} }`),
				Check: func(*terraform.State) error {
					execSQL(t, topo.Primary, src, `SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, sub)
					execSQL(t, topo.Primary, dst, fmt.Sprintf(`CREATE SUBSCRIPTION %s CONNECTION %s PUBLICATION %s WITH (create_slot = false, slot_name = %s, copy_data = false)`,
						pgsql.Ident(sub), pgsql.Literal(fmt.Sprintf("host=%s port=%d dbname=%s user=postgres", topo.Primary.Host, topo.Primary.Port, src)),
						pgsql.Ident(pub), pgsql.Literal(sub)))
					return nil
				},
			},
			{
				PreConfig: startWriting,
				Config:    config(`all_tables = true`),
				Check:     allRowsArrive,
			},
			{
				PreConfig: startWriting,
				Config:    config(`tables = { "public.written" = {} }`),
				Check:     allRowsArrive,
			},
		},
	})
}

// writer inserts rows into the table written of a database, one every few
// milliseconds, until stopped.
type writer struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	err    error
}

func startWriter(t *testing.T, n *routertest.Node, database string) *writer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	conn, err := pgx.Connect(ctx, n.DSNFor(database))
	if err != nil {
		cancel()
		t.Fatalf("connecting to %s: %v", n.Name, err)
	}
	w := &writer{cancel: cancel}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		defer conn.Close(context.Background())
		for ctx.Err() == nil {
			if _, err := conn.Exec(ctx, `INSERT INTO written DEFAULT VALUES`); err != nil {
				if ctx.Err() == nil {
					w.err = err
				}
				return
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	t.Cleanup(func() { _ = w.stop() })
	return w
}

// stop ends the writing and returns the error that ended it early, if any.
func (w *writer) stop() error {
	w.cancel()
	w.wg.Wait()
	return w.err
}
