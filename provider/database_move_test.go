package provider

import (
	"fmt"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/pgsql"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// A logical slot moved to a database that cannot take it (missing, or one
// the provider's role may not connect to) is refused at plan: the old code
// planned the replacement, and the apply dropped the slot, with its
// position, then failed to create the new one.
func TestAccReplicationSlot_moveToClosedDatabaseRefused(t *testing.T) {
	testAccPreCheck(t)
	n := routertest.Start(t, routertest.WithStandbys(0)).Primary
	const role, from, locked = "tfacc_slotmv", "slotmv_from", "slotmv_locked"
	execSQL(t, n, "postgres", `CREATE ROLE `+role+` LOGIN REPLICATION`)
	createDatabase(t, n, from)
	createDatabase(t, n, locked)
	execSQL(t, n, "postgres", `REVOKE CONNECT ON DATABASE `+locked+` FROM PUBLIC`)
	// A name with a quote, a semicolon, a backslash, upper case and a
	// non-ASCII letter, that takes no connections: the fix the refusal
	// gives must be SQL that runs, and the move must round-trip.
	const hostile = `Mv "Ø"; x\`
	createDatabase(t, n, hostile)
	execSQL(t, n, "postgres", `ALTER DATABASE `+pgsql.Ident(hostile)+` ALLOW_CONNECTIONS false`)
	config := func(db string) string {
		return providerConfigAs("primary", n, role) + fmt.Sprintf(`
resource "pgreplication_replication_slot" "this" {
  provider = pgreplication.primary
  name     = "slotmv"
  type     = "logical"
  database = %q
}
`, db)
	}
	var confirmed string
	slotKept := func(*terraform.State) error {
		got := queryValue[string](t, n, "postgres", `SELECT database || ' ' || confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = 'slotmv'`)
		if confirmed == "" {
			confirmed = got
		} else if got != confirmed {
			return fmt.Errorf("slot slotmv is now %q, was %q", got, confirmed)
		}
		return nil
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{Config: config(from), Check: slotKept},
			{Config: config("slotmv_missing"), ExpectError: errorText("Cannot Move to Database",
				`Moving replication slot "slotmv" from database "slotmv_from" to "slotmv_missing"`, `database "slotmv_missing" does not exist there`,
				"leave it in neither", `Create database "slotmv_missing" first`)},
			{Config: config(locked), ExpectError: errorText("Cannot Move to Database",
				`the provider's role "tfacc_slotmv" may not connect to database "slotmv_locked"`, `GRANT CONNECT ON DATABASE "slotmv_locked" TO "tfacc_slotmv"`)},
			{Config: config(hostile), ExpectError: errorText("Cannot Move to Database",
				`to "Mv \"Ø\"; x\\"`, "takes no connections there", `Run ALTER DATABASE "Mv ""Ø""; x\" ALLOW_CONNECTIONS true`)},
			{Config: config(from), PlanOnly: true, Check: slotKept},
			{Config: config(from), Check: slotKept},
			{
				// The fix, as the refusal gave it, and the move.
				PreConfig: func() { execSQL(t, n, "postgres", `ALTER DATABASE "Mv ""Ø""; x\" ALLOW_CONNECTIONS true`) },
				Config:    config(hostile),
				Check: func(*terraform.State) error {
					if got := queryValue[string](t, n, "postgres", `SELECT database FROM pg_replication_slots WHERE slot_name = 'slotmv'`); got != hostile {
						return fmt.Errorf("slot slotmv is in database %q after the move, want %q", got, hostile)
					}
					return nil
				},
			},
			{Config: config(hostile), PlanOnly: true},
		},
	})
}

// A subscription moved to a subscriber database that does not exist is
// refused at plan: the old code planned the replacement, and the apply
// dropped the subscription (and its slot on the publisher), then failed to
// create the new one, and replication stopped.
func TestAccSubscription_moveToMissingDatabaseRefused(t *testing.T) {
	topo := testAccTopology(t)
	f := newSubscriptionFixture(t, topo.Primary, "sub_pub_move", `CREATE PUBLICATION pub_move FOR TABLE t1;`, nil)
	config := func(db string) string {
		return subscriberProvider(f.sub) + fmt.Sprintf(`
resource "pgreplication_subscription" "this" {
  provider     = pgreplication.subscriber
  name         = "sub_move"
  database     = %q
  conninfo     = %q
  publications = ["pub_move"]
}
`, db, f.conninfo(""))
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{Config: config("postgres")},
			{Config: config("submv_missing"), ExpectError: errorText("Cannot Move to Database",
				`Moving subscription "sub_move" from database "postgres" to "submv_missing"`, `database "submv_missing" does not exist there`)},
			{
				// Still there, still replicating.
				PreConfig: func() { execSQL(t, f.pub, f.pubDB, `INSERT INTO t1 VALUES (1, 'after')`) },
				Config:    config("postgres"),
				PlanOnly:  true,
			},
			{Config: config("postgres"), Check: waitRows(t, f.sub, "postgres", "t1", 1)},
		},
	})
}
