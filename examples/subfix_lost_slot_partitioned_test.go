package examples_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// A subscription with copy_data = true whose slot the publisher invalidated
// is replaced only when its tables are empty on the subscriber: a new one
// copies them again, and rows already there make the copy fail on their
// keys at every retry. A table that is partitioned on the subscriber (the
// publisher's plain table routed into partitions, which logical replication
// does since PostgreSQL 13) keeps its rows in its partitions, and
// subscribedTablesWithRows asks SELECT EXISTS (SELECT FROM ONLY t), which
// for a partitioned parent is always false: the plan says the tables "are
// empty on the subscriber" and replaces the subscription, whose table sync
// then fails on the primary key at every retry.
func TestSubfixLostSlotPartitionedTableWithRows(t *testing.T) {
	cli := providerCLI(t)
	pub := routertest.Start(t, routertest.WithStandbys(0)).Primary
	sub := routertest.Start(t, routertest.WithStandbys(0)).Primary
	execSQL(t, pub, "postgres", `CREATE TABLE wip_part (id int PRIMARY KEY)`)
	execSQL(t, pub, "postgres", `INSERT INTO wip_part SELECT generate_series(1, 10)`)
	execSQL(t, sub, "postgres", `CREATE TABLE wip_part (id int PRIMARY KEY) PARTITION BY RANGE (id)`)
	execSQL(t, sub, "postgres", `CREATE TABLE wip_part_all PARTITION OF wip_part FOR VALUES FROM (MINVALUE) TO (MAXVALUE)`)
	dir := configDir(t, map[string]server{"pub": {pub, "postgres"}, "sub": {sub, "postgres"}}, fmt.Sprintf(`
resource "pgreplication_publication" "pub" {
  provider = pgreplication.pub
  name     = "wip_part_pub"
  tables   = { "public.wip_part" = {} }
}

resource "pgreplication_subscription" "sub" {
  provider     = pgreplication.sub
  name         = "wip_part_sub"
  conninfo     = "host=%s port=%d user=postgres dbname=postgres sslmode=disable"
  publications = [pgreplication_publication.pub.name]
  copy_data    = true
}
`, pub.Host, pub.Port))
	cli.run(t, dir, 0, tfArgs("apply")...)
	waitFor(t, sub, 60*time.Second, func() bool {
		var n int
		if err := sub.QueryRow(t.Context(), `SELECT count(*) FROM wip_part`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == 10
	}, "the 10 rows to be copied into the partitioned table")

	if err := sub.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, pub, 30*time.Second, func() bool {
		var active bool
		if err := pub.QueryRow(t.Context(), `SELECT active FROM pg_replication_slots WHERE slot_name = 'wip_part_sub'`).Scan(&active); err != nil {
			t.Fatal(err)
		}
		return !active
	}, "the slot to be released")
	loseSlot(t, pub, "wip_part_sub")
	if err := sub.Start(t.Context()); err != nil {
		t.Fatal(err)
	}

	code, out := cli.exec(t, dir, tfArgs("plan", "-detailed-exitcode")...)
	// The CLI wraps diagnostics: compare with single spaces.
	if code != 1 || !strings.Contains(strings.Join(strings.Fields(out), " "), `"wip_part" already have rows`) {
		t.Fatalf("plan (exit %d) of a copy_data = true subscription whose slot is invalidated and whose partitioned table has 10 rows "+
			"on the subscriber does not refuse the replacement:\n%s", code, lastLines(out, 30))
	}
}
