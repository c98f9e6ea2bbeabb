package examples_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

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

// When the provider cannot look at the subscribed tables on the subscriber
// (here: one held under an ACCESS EXCLUSIVE lock, and the provider's role
// with lock_timeout = 1s), the plan used to replace the subscription anyway,
// with a caveat; not knowing whether they are empty, the copy may fail on
// their keys at every retry. It warns, and does not replace.
func TestSubfixLostSlotTablesUncheckedNotReplaced(t *testing.T) {
	cli := providerCLI(t)
	pub, sub := twoPrimaries(t, "subfix_unchecked")
	dir := configDir(t, map[string]server{"pub": {pub, "postgres"}, "sub": {sub, "postgres"}}, fmt.Sprintf(`
resource "pgreplication_publication" "pub" {
  provider = pgreplication.pub
  name     = "subfix_unchecked_pub"
  tables   = { "public.subfix_unchecked" = {} }
}

resource "pgreplication_subscription" "sub" {
  provider     = pgreplication.sub
  name         = "subfix_unchecked_sub"
  conninfo     = "host=%s port=%d user=postgres dbname=postgres sslmode=disable"
  publications = [pgreplication_publication.pub.name]
}
`, pub.Host, pub.Port))
	cli.run(t, dir, 0, tfArgs("apply")...)
	loseSubscriptionSlot(t, pub, sub, "subfix_unchecked_sub")
	execSQL(t, sub, "postgres", `ALTER ROLE postgres SET lock_timeout = '1s'`)
	holder, err := pgx.Connect(t.Context(), sub.DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close(t.Context())
	tx, err := holder.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(t.Context()) //nolint:errcheck // the test's end
	if _, err := tx.Exec(t.Context(), `LOCK TABLE subfix_unchecked IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}

	code, out := cli.exec(t, dir, tfArgs("plan", "-detailed-exitcode")...)
	flat := strings.Join(strings.Fields(out), " ")
	if code != 0 || !strings.Contains(flat, "could not check whether they are empty") || !strings.Contains(flat, "The plan does not replace it") {
		t.Fatalf("plan (exit %d) of a subscription whose slot is lost and whose table cannot be looked at, want no change and a warning:\n%s",
			code, lastLines(out, 30))
	}
}
