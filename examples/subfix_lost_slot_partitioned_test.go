package examples_test

import (
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
	dir := applyPubSub(t, cli, pub, sub, pubSubHCL(pub, "wip_part", "", "copy_data = true"))
	waitRows(t, sub, "wip_part", 10, 60*time.Second, "the 10 rows to be copied into the partitioned table")
	loseSubscriptionSlot(t, pub, sub, "wip_part_sub")

	planRefusesCopyIntoRows(t, cli, dir, "wip_part",
		"a copy_data = true subscription whose slot is invalidated and whose partitioned table has 10 rows on the subscriber")
}

// When the provider cannot look at the subscribed tables on the subscriber
// (here: one held under an ACCESS EXCLUSIVE lock, and the provider's role
// with lock_timeout = 1s), the plan used to replace the subscription anyway,
// with a caveat; not knowing whether they are empty, the copy may fail on
// their keys at every retry. It warns, and does not replace.
func TestSubfixLostSlotTablesUncheckedNotReplaced(t *testing.T) {
	cli := providerCLI(t)
	pub, sub := twoPrimaries(t, "subfix_unchecked")
	dir := applyPubSub(t, cli, pub, sub, pubSubHCL(pub, "subfix_unchecked", ""))
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
