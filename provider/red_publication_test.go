package provider

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
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
// hand, on the same server, in another database. Besides the rows, the
// publisher's log must not show its WAL sender finding the publication
// missing (the error of 15 to 17, the warning of 18), so that a failure
// says its cause.
func TestAccPublication_allTablesSwitchKeepsSubscribers(t *testing.T) {
	topo := testAccTopology(t)
	const src, dst = "red_pub_switch_src", "red_pub_switch_dst"
	const pub, sub = "red_pub_switch", "red_sub_switch"
	createDatabase(t, topo.Primary, src)
	createDatabase(t, topo.Primary, dst)
	// The subscription goes before the publication's destroy, which is
	// refused while it streams, and before its database, which cannot be
	// dropped with it: without its slot, dropped apart once free.
	dropSubscription := func() {
		execSQL(t, topo.Primary, dst, fmt.Sprintf(`DO $$BEGIN
  ALTER SUBSCRIPTION %[1]s DISABLE;
  ALTER SUBSCRIPTION %[1]s SET (slot_name = NONE);
  DROP SUBSCRIPTION %[1]s;
EXCEPTION WHEN undefined_object THEN NULL;
END$$`, pgsql.Ident(sub)))
		waitFor(t, 30*time.Second, "the subscription's WAL sender to end", func() bool {
			return queryValue[int64](t, topo.Primary, "postgres", `SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1 AND active`, sub) == 0
		})
		execSQL(t, topo.Primary, "postgres", `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1`, sub)
	}
	t.Cleanup(func() {
		dropSubscription()
		execSQL(t, topo.Primary, "postgres", "DROP DATABASE IF EXISTS "+pgsql.Ident(dst)+" WITH (FORCE)")
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
	var logFrom int64
	startWriting := func() {
		logFrom = logSize(t, topo.Primary)
		w = startWriter(t, topo.Primary, src)
	}
	allRowsArrive := func(s *terraform.State) error {
		if err := w.stop(); err != nil {
			return fmt.Errorf("writing on the publisher during the apply: %v", err)
		}
		written := queryValue[int64](t, topo.Primary, src, `SELECT count(*) FROM written`)
		if written == 0 {
			return fmt.Errorf("no row was written during the apply: the test proves nothing")
		}
		// The WAL sender never found the publication missing: PostgreSQL
		// 15 to 17 fail the subscription, 18 skips the changes with a
		// warning, and either says so in the log.
		for _, missing := range []string{`publication "` + pub + `" does not exist`, `skipped loading publication "` + pub + `"`} {
			if line := logLineWith(t, topo.Primary, logFrom, missing); line != "" {
				return fmt.Errorf("the publisher's WAL sender found publication %s missing during the switch: %s", pub, line)
			}
		}
		return waitRows(t, topo.Primary, dst, "written", written)(s)
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
				Check: func(s *terraform.State) error {
					err := allRowsArrive(s)
					dropSubscription()
					return err
				},
			},
		},
	})
}

// writer inserts rows into the table written of a database, one every few
// milliseconds, until stopped.
type writer struct {
	stopping chan struct{}
	once     sync.Once
	wg       sync.WaitGroup
	err      error
}

func startWriter(t *testing.T, n *routertest.Node, database string) *writer {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), n.DSNFor(database))
	if err != nil {
		t.Fatalf("connecting to %s: %v", n.Name, err)
	}
	w := &writer{stopping: make(chan struct{})}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		defer conn.Close(context.Background())
		for {
			select {
			case <-w.stopping:
				return
			default:
			}
			// Never cut short: an INSERT whose wait was cancelled still
			// commits on the server, after the count it should be in.
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			_, err := conn.Exec(ctx, `INSERT INTO written DEFAULT VALUES`)
			cancel()
			if err != nil {
				w.err = err
				return
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	t.Cleanup(func() { _ = w.stop() })
	return w
}

// stop ends the writing once the INSERT under way has committed, so that
// every row it wrote is in a count taken afterwards, and returns the error
// that ended it early, if any.
func (w *writer) stop() error {
	w.once.Do(func() { close(w.stopping) })
	w.wg.Wait()
	return w.err
}

// logSize is how far n's server log goes now: where logLineWith starts.
func logSize(t *testing.T, n *routertest.Node) int64 {
	t.Helper()
	info, err := os.Stat(filepath.Join(n.DataDir, "postgresql.log"))
	if err != nil {
		t.Fatal(err)
	}
	return info.Size()
}

// logLineWith returns the first line of n's server log after offset that
// holds text, or "".
func logLineWith(t *testing.T, n *routertest.Node, offset int64, text string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(n.DataDir, "postgresql.log"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b[min(offset, int64(len(b))):]), "\n") {
		if strings.Contains(line, text) {
			return line
		}
	}
	return ""
}

// A writer's stop returns once its last INSERT has committed, so that a
// count taken after it holds every row written. Its backend is stopped
// (SIGSTOP) as a busy machine deschedules it, with an INSERT on the way. The
// old stop cancelled the INSERT's wait and returned at once; the server
// committed the row after the count, the subscriber then had one row more
// than written, and TestAccPublication_allTablesSwitchKeepsSubscribers
// waited its 30 s for counts that could never be equal (10 of 10 rounds
// committed a row after stop returned).
func TestAccWriter_stopWaitsForItsInsert(t *testing.T) {
	topo := testAccTopology(t)
	const db = "writer_stop"
	createDatabase(t, topo.Primary, db)
	execSQL(t, topo.Primary, db, `CREATE TABLE written (id bigserial PRIMARY KEY)`)
	for round := range 3 {
		w := startWriter(t, topo.Primary, db)
		var pid int
		waitFor(t, 10*time.Second, "the writer's backend", func() bool {
			pid = queryValue[int](t, topo.Primary, db, `SELECT coalesce((SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'INSERT INTO written%' AND pid <> pg_backend_pid() LIMIT 1), 0)`)
			return pid != 0
		})
		if err := stopProcess(pid); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond) // the next INSERT goes to the stopped backend
		stopped := make(chan error, 1)
		go func() { stopped <- w.stop() }()
		var counted int64
		select {
		case err := <-stopped:
			counted = queryValue[int64](t, topo.Primary, db, `SELECT count(*) FROM written`)
			_ = continueProcess(pid)
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(200 * time.Millisecond):
			if err := continueProcess(pid); err != nil {
				t.Fatal(err)
			}
			if err := <-stopped; err != nil {
				t.Fatal(err)
			}
			counted = queryValue[int64](t, topo.Primary, db, `SELECT count(*) FROM written`)
		}
		time.Sleep(300 * time.Millisecond)
		if later := queryValue[int64](t, topo.Primary, db, `SELECT count(*) FROM written`); later != counted {
			t.Fatalf("round %d: %d rows counted after stop, %d 300 ms later: stop returned before its INSERT committed", round, counted, later)
		}
	}
}
