package provider

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/pgsql"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

var lsnValue = knownvalue.StringRegexp(regexp.MustCompile(`^[0-9A-F]+/[0-9A-F]+$`))

// slotMovingHealth are health attributes measured against the server's
// current WAL location, which moves between the apply and the import: import
// verification cannot compare them (Read sets them every time; the other
// steps check them).
var slotMovingHealth = []string{"retained_wal_bytes", "safe_wal_size"}

func atLeastZero(v int64) error {
	if v < 0 {
		return fmt.Errorf("want a value >= 0, got %d", v)
	}
	return nil
}

// slotExists tells whether a persistent slot named name is on node n.
func slotExists(t *testing.T, n *routertest.Node, name string) bool {
	t.Helper()
	return queryValue[bool](t, n, "postgres", `SELECT EXISTS (SELECT FROM pg_replication_slots WHERE slot_name = $1)`, name)
}

// checkSlotsDropped is a CheckDestroy: the destroy really dropped the slots.
func checkSlotsDropped(t *testing.T, n *routertest.Node, names ...string) resource.TestCheckFunc {
	return func(*terraform.State) error {
		for _, name := range names {
			if slotExists(t, n, name) {
				return fmt.Errorf("replication slot %q is still on %s after destroy", name, n.Name)
			}
		}
		return nil
	}
}

// A physical slot: created with the WAL reserved, imported, unchanged by a
// write load (its health moves, the plan stays empty), updated in place, and
// recreated after a hand drop.
func TestAccReplicationSlot_physical(t *testing.T) {
	topo := testAccTopology(t)
	const addr = "pgreplication_replication_slot.this"
	const name = "tfacc_slot_physical"
	config := func(terminate bool) string {
		return providerConfig("primary", topo.Primary) + fmt.Sprintf(`
resource "pgreplication_replication_slot" "this" {
  provider                    = pgreplication.primary
  name                        = %q
  type                        = "physical"
  immediately_reserve         = true
  terminate_active_on_destroy = %t
}
`, name, terminate)
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy:             checkSlotsDropped(t, topo.Primary, name),
		Steps: []resource.TestStep{
			{
				Config: config(false),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("id"), knownvalue.StringExact(name)),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("type"), knownvalue.StringExact("physical")),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("database"), knownvalue.Null()),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("plugin"), knownvalue.Null()),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("two_phase"), knownvalue.Bool(false)),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("failover"), knownvalue.Bool(false)),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("active"), knownvalue.Bool(false)),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("active_pid"), knownvalue.Null()),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("restart_lsn"), lsnValue),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("confirmed_flush_lsn"), knownvalue.Null()),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("wal_status"), knownvalue.StringExact("reserved")),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("safe_wal_size"), knownvalue.Null()),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("retained_wal_bytes"), knownvalue.Int64Func(atLeastZero)),
				},
			},
			{
				ResourceName:            addr,
				ImportState:             true,
				ImportStateId:           name,
				ImportStateVerify:       true,
				ImportStateVerifyIgnore: slotMovingHealth,
			},
			{
				// The WAL moves on; the slot's restart_lsn does not. The
				// health attributes change, the plan stays empty.
				PreConfig: func() {
					execSQL(t, topo.Primary, "postgres", `CREATE TABLE IF NOT EXISTS tfacc_slot_physical_load (x int)`)
					execSQL(t, topo.Primary, "postgres", `INSERT INTO tfacc_slot_physical_load SELECT generate_series(1, 50000)`)
				},
				Config: config(false),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("retained_wal_bytes"), knownvalue.Int64Func(positive)),
				},
			},
			{
				Config: config(true),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate)},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("terminate_active_on_destroy"), knownvalue.Bool(true)),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("restart_lsn"), lsnValue),
				},
			},
			{
				PreConfig: func() {
					execSQL(t, topo.Primary, "postgres", `SELECT pg_drop_replication_slot($1)`, name)
				},
				Config: config(true),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{expectRecreate(addr)},
				},
			},
		},
	})
	execSQL(t, topo.Primary, "postgres", `DROP TABLE IF EXISTS tfacc_slot_physical_load`)
}

// Logical slots: one with every default (the provider's database, pgoutput),
// one with two_phase in a database whose name has every character that needs
// quoting. Both import, and a hand drop is recreated.
func TestAccReplicationSlot_logical(t *testing.T) {
	topo := testAccTopology(t)
	const database = `tfacc slot.DB/"Ünïcode" x`
	execSQL(t, topo.Primary, "postgres", `DROP DATABASE IF EXISTS `+pgsql.Ident(database))
	execSQL(t, topo.Primary, "postgres", `CREATE DATABASE `+pgsql.Ident(database))
	t.Cleanup(func() {
		execSQL(t, topo.Primary, "postgres", `DROP DATABASE IF EXISTS `+pgsql.Ident(database)+` WITH (FORCE)`)
	})

	const defaults, twoPhase = "pgreplication_replication_slot.defaults", "pgreplication_replication_slot.two_phase"
	config := providerConfig("primary", topo.Primary) + fmt.Sprintf(`
resource "pgreplication_replication_slot" "defaults" {
  provider = pgreplication.primary
  name     = "tfacc_slot_logical_defaults"
  type     = "logical"
}

resource "pgreplication_replication_slot" "two_phase" {
  provider  = pgreplication.primary
  name      = "tfacc_slot_logical_two_phase"
  type      = "logical"
  database  = %q
  plugin    = "pgoutput"
  two_phase = true
}
`, database)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy:             checkSlotsDropped(t, topo.Primary, "tfacc_slot_logical_defaults", "tfacc_slot_logical_two_phase"),
		Steps: []resource.TestStep{
			{
				Config: config,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(defaults, tfjsonpath.New("type"), knownvalue.StringExact("logical")),
					statecheck.ExpectKnownValue(defaults, tfjsonpath.New("database"), knownvalue.StringExact("postgres")),
					statecheck.ExpectKnownValue(defaults, tfjsonpath.New("plugin"), knownvalue.StringExact("pgoutput")),
					statecheck.ExpectKnownValue(defaults, tfjsonpath.New("two_phase"), knownvalue.Bool(false)),
					statecheck.ExpectKnownValue(defaults, tfjsonpath.New("immediately_reserve"), knownvalue.Bool(false)),
					statecheck.ExpectKnownValue(defaults, tfjsonpath.New("confirmed_flush_lsn"), lsnValue),
					statecheck.ExpectKnownValue(defaults, tfjsonpath.New("restart_lsn"), lsnValue),
					statecheck.ExpectKnownValue(defaults, tfjsonpath.New("active"), knownvalue.Bool(false)),
					statecheck.ExpectKnownValue(twoPhase, tfjsonpath.New("database"), knownvalue.StringExact(database)),
					statecheck.ExpectKnownValue(twoPhase, tfjsonpath.New("two_phase"), knownvalue.Bool(true)),
					statecheck.ExpectKnownValue(twoPhase, tfjsonpath.New("retained_wal_bytes"), knownvalue.Int64Func(atLeastZero)),
				},
			},
			{ResourceName: defaults, ImportState: true, ImportStateId: "tfacc_slot_logical_defaults", ImportStateVerify: true, ImportStateVerifyIgnore: slotMovingHealth},
			{ResourceName: twoPhase, ImportState: true, ImportStateId: "tfacc_slot_logical_two_phase", ImportStateVerify: true, ImportStateVerifyIgnore: slotMovingHealth},
			{
				// Recreated by hand with another plugin and without two_phase:
				// PostgreSQL cannot alter either, so the plan replaces it.
				PreConfig: func() {
					execSQL(t, topo.Primary, "postgres", `SELECT pg_drop_replication_slot('tfacc_slot_logical_two_phase')`)
					execSQL(t, topo.Primary, database, `SELECT pg_create_logical_replication_slot('tfacc_slot_logical_two_phase', 'test_decoding')`)
				},
				Config: config,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction(twoPhase, plancheck.ResourceActionDestroyBeforeCreate),
						plancheck.ExpectResourceAction(defaults, plancheck.ResourceActionNoop),
					},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(twoPhase, tfjsonpath.New("plugin"), knownvalue.StringExact("pgoutput")),
					statecheck.ExpectKnownValue(twoPhase, tfjsonpath.New("two_phase"), knownvalue.Bool(true)),
				},
			},
			{
				PreConfig: func() {
					execSQL(t, topo.Primary, "postgres", `SELECT pg_drop_replication_slot('tfacc_slot_logical_two_phase')`)
				},
				Config: config,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						expectRecreate(twoPhase),
						plancheck.ExpectResourceAction(defaults, plancheck.ResourceActionNoop),
					},
				},
			},
		},
	})
}

// A failover slot (cyrilgdn #662) on a PostgreSQL 17 primary.
func TestAccReplicationSlot_failover(t *testing.T) {
	topo := testAccTopology(t)
	if topo.Version < 17 {
		t.Skipf("failover slots need PostgreSQL 17; the shared topology runs %d (set ROUTERTEST_PGBIN)", topo.Version)
	}
	const addr = "pgreplication_replication_slot.failover"
	config := providerConfig("primary", topo.Primary) + `
resource "pgreplication_replication_slot" "failover" {
  provider  = pgreplication.primary
  name      = "tfacc_slot_failover"
  type      = "logical"
  failover  = true
  two_phase = true
}
`
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy:             checkSlotsDropped(t, topo.Primary, "tfacc_slot_failover"),
		Steps: []resource.TestStep{
			{
				Config: config,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("failover"), knownvalue.Bool(true)),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("two_phase"), knownvalue.Bool(true)),
				},
				Check: func(*terraform.State) error {
					if !queryValue[bool](t, topo.Primary, "postgres", `SELECT failover FROM pg_replication_slots WHERE slot_name = 'tfacc_slot_failover'`) {
						return fmt.Errorf("pg_replication_slots says tfacc_slot_failover is not a failover slot")
					}
					return nil
				},
			},
			{ResourceName: addr, ImportState: true, ImportStateId: "tfacc_slot_failover", ImportStateVerify: true, ImportStateVerifyIgnore: slotMovingHealth},
			{
				PreConfig: func() {
					execSQL(t, topo.Primary, "postgres", `SELECT pg_drop_replication_slot('tfacc_slot_failover')`)
				},
				Config: config,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{expectRecreate(addr)},
				},
			},
		},
	})
}

// A slot's failover flag changed behind Terraform's back, as a subscription
// with failover = true does to its slot (ALTER_REPLICATION_SLOT), shows as
// that one field and is changed back in place: the slot keeps its consumer's
// position. Replacing it, as the provider did, dropped that position.
func TestAccReplicationSlot_failoverChangedInPlace(t *testing.T) {
	topo := testAccTopology(t)
	if topo.Version < 17 {
		t.Skipf("failover slots need PostgreSQL 17; the shared topology runs %d (set ROUTERTEST_PGBIN)", topo.Version)
	}
	const (
		addr = "pgreplication_replication_slot.this"
		slot = "tfacc_slot_failover_drift"
	)
	config := providerConfig("primary", topo.Primary) + `
resource "pgreplication_replication_slot" "this" {
  provider = pgreplication.primary
  name     = "` + slot + `"
  type     = "logical"
}
`
	confirmed := func() string {
		return queryValue[string](t, topo.Primary, "postgres", `SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1`, slot)
	}
	var before string
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy:             checkSlotsDropped(t, topo.Primary, slot),
		Steps: []resource.TestStep{
			{Config: config},
			{
				PreConfig: func() {
					ctx := context.Background()
					cfg, err := pgconn.ParseConfig(topo.Primary.DSN() + "&replication=database")
					if err != nil {
						t.Fatal(err)
					}
					conn, err := pgconn.ConnectConfig(ctx, cfg)
					if err != nil {
						t.Fatal(err)
					}
					defer conn.Close(ctx)
					if _, err := conn.Exec(ctx, `ALTER_REPLICATION_SLOT `+slot+` ( FAILOVER true )`).ReadAll(); err != nil {
						t.Fatal(err)
					}
					before = confirmed()
					// WAL moves on: a slot created again would start here.
					execSQL(t, topo.Primary, "postgres", `SELECT pg_logical_emit_message(true, 'tfacc', 'failover drift')`)
				},
				Config: config,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					expectDriftAt(addr, []string{"failover"}),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("failover"), knownvalue.Bool(false)),
				},
				Check: func(*terraform.State) error {
					if queryValue[bool](t, topo.Primary, "postgres", `SELECT failover FROM pg_replication_slots WHERE slot_name = $1`, slot) {
						return fmt.Errorf("%s is still a failover slot", slot)
					}
					if after := confirmed(); after != before {
						return fmt.Errorf("%s has confirmed_flush_lsn %s, was %s: it was dropped and created again", slot, after, before)
					}
					return nil
				},
			},
		},
	})
}

// turnTwoPhaseOn does to slot what the walsender does for a subscription
// with two_phase = true: it decodes with two-phase on, which turns the slot's
// two_phase on (without moving its confirmed_flush_lsn: a peek).
func turnTwoPhaseOn(t *testing.T, n *routertest.Node, slot string) {
	t.Helper()
	pub := "tfacc_pub_" + slot
	execSQL(t, n, "postgres", `CREATE PUBLICATION `+pub)
	t.Cleanup(func() { execSQL(t, n, "postgres", `DROP PUBLICATION IF EXISTS `+pub) })
	execSQL(t, n, "postgres", `SELECT count(*) FROM pg_logical_slot_peek_binary_changes($1, NULL, NULL,
  'proto_version', '3', 'publication_names', $2, 'two_phase', 'on')`, slot, pub)
	if !queryValue[bool](t, n, "postgres", `SELECT two_phase FROM pg_replication_slots WHERE slot_name = $1`, slot) {
		t.Fatalf("decoding with two_phase on did not turn on two_phase of %s", slot)
	}
}

// A consumer that decodes with two-phase on (a subscription with two_phase
// = true does) turns the slot's two_phase on, which PostgreSQL before 18
// cannot turn off in place: the plan replaces the slot, and warns that its
// consumer's position is lost and what to declare instead.
func TestAccReplicationSlot_twoPhaseTurnedOnByConsumer(t *testing.T) {
	topo := testAccTopology(t)
	if topo.Version >= 18 {
		topo = routertest.Start(t, routertest.WithVersion(17), routertest.WithStandbys(0))
	}
	const (
		addr = "pgreplication_replication_slot.this"
		slot = "tfacc_slot_two_phase_drift"
	)
	config := providerConfig("primary", topo.Primary) + `
resource "pgreplication_replication_slot" "this" {
  provider = pgreplication.primary
  name     = "` + slot + `"
  type     = "logical"
}
`
	logPath := traceLog(t)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy:             checkSlotsDropped(t, topo.Primary, slot),
		Steps: []resource.TestStep{
			{Config: config},
			{
				PreConfig:          func() { turnTwoPhaseOn(t, topo.Primary, slot) },
				Config:             config,
				PlanOnly:           true,
				ExpectNonEmptyPlan: true,
			},
			{
				Config: config,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(addr, plancheck.ResourceActionDestroyBeforeCreate),
				}},
			},
		},
	})
	b, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Replacing a Replication Slot Loses Its Position", "declare two_phase = true to keep the slot"} {
		if !strings.Contains(strings.Join(strings.Fields(string(b)), " "), want) {
			t.Errorf("the plan did not warn %q", want)
		}
	}
}

// On PostgreSQL 18 a slot's two_phase, turned on by its consumer, is changed
// back in place (ALTER_REPLICATION_SLOT … TWO_PHASE): the plan names that one
// field, and the slot keeps its consumer's position. Before, the plan
// replaced the slot, which lost that position.
func TestAccReplicationSlot_twoPhaseChangedInPlace18(t *testing.T) {
	t.Parallel()
	testAccPreCheck(t)
	topo := routertest.Start(t, routertest.WithVersion(18), routertest.WithStandbys(0))
	const (
		addr = "pgreplication_replication_slot.this"
		slot = "tfacc_slot_two_phase_alter"
	)
	config := func(twoPhase bool) string {
		return providerConfig("primary", topo.Primary) + fmt.Sprintf(`
resource "pgreplication_replication_slot" "this" {
  provider  = pgreplication.primary
  name      = "`+slot+`"
  type      = "logical"
  two_phase = %t
}
`, twoPhase)
	}
	confirmed := func() string {
		return queryValue[string](t, topo.Primary, "postgres", `SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1`, slot)
	}
	twoPhaseIs := func(want bool) resource.TestCheckFunc {
		return func(*terraform.State) error {
			if got := queryValue[bool](t, topo.Primary, "postgres", `SELECT two_phase FROM pg_replication_slots WHERE slot_name = $1`, slot); got != want {
				return fmt.Errorf("%s has two_phase = %t, want %t", slot, got, want)
			}
			return nil
		}
	}
	var before string
	var release func()
	samePosition := func(*terraform.State) error {
		if after := confirmed(); after != before {
			return fmt.Errorf("%s has confirmed_flush_lsn %s, was %s: it was dropped and created again", slot, after, before)
		}
		return nil
	}
	// WAL moves on: a slot created again would start past before.
	moveWAL := func() {
		before = confirmed()
		execSQL(t, topo.Primary, "postgres", `SELECT pg_logical_emit_message(true, 'tfacc', 'two_phase drift')`)
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy:             checkSlotsDropped(t, topo.Primary, slot),
		Steps: []resource.TestStep{
			{Config: config(false)},
			{
				// The consumer turned it on: the plan turns it off in place.
				PreConfig: func() {
					turnTwoPhaseOn(t, topo.Primary, slot)
					moveWAL()
				},
				Config: config(false),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					expectDriftAt(addr, []string{"two_phase"}),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("two_phase"), knownvalue.Bool(false)),
				},
				Check: resource.ComposeAggregateTestCheckFunc(twoPhaseIs(false), samePosition),
			},
			{
				// Declared on, with failover: both in one command.
				PreConfig: moveWAL,
				Config:    strings.Replace(config(true), `type      = "logical"`, `type      = "logical"`+"\n  failover  = true", 1),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					expectDriftAt(addr, []string{"failover"}, []string{"two_phase"}),
				}},
				Check: resource.ComposeAggregateTestCheckFunc(twoPhaseIs(true), samePosition, func(*terraform.State) error {
					if !queryValue[bool](t, topo.Primary, "postgres", `SELECT failover FROM pg_replication_slots WHERE slot_name = $1`, slot) {
						return fmt.Errorf("%s is not a failover slot", slot)
					}
					return nil
				}),
			},
			{
				// A consumer holds the slot: PostgreSQL would wait for it;
				// the apply refuses, naming what to declare.
				PreConfig:   func() { release = holdSlot(t, topo.Primary, slot) },
				Config:      config(false),
				ExpectError: regexp.MustCompile(`(?s)Cannot Change an Active Replication Slot.*process \d+ does.*declare\s+failover\s+=\s+true\s+and\s+two_phase\s+=\s+true\s+here`),
			},
			{
				// Released, the same configuration applies, in place.
				PreConfig: func() {
					release()
					moveWAL()
				},
				Config: config(false),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					expectDriftAt(addr, []string{"failover"}, []string{"two_phase"}),
				}},
				Check: resource.ComposeAggregateTestCheckFunc(twoPhaseIs(false), samePosition),
			},
		},
	})
}

// holdSlot makes a logical consumer use slot until release is called (or
// the test ends): a replication connection streaming from it
// (START_REPLICATION). release returns once the slot is inactive again.
func holdSlot(t *testing.T, n *routertest.Node, slot string) (release func()) {
	t.Helper()
	return holdSlotIn(t, n, "postgres", slot)
}

// holdSlotIn is holdSlot for a slot of database db. Its release may run on
// another goroutine.
func holdSlotIn(t *testing.T, n *routertest.Node, db, slot string) (release func()) {
	t.Helper()
	ctx := context.Background()
	pub := "tfacc_hold_" + slot
	execSQL(t, n, db, `CREATE PUBLICATION `+pub)
	t.Cleanup(func() { execSQL(t, n, db, `DROP PUBLICATION IF EXISTS `+pub) })
	conn, err := pgconn.Connect(ctx, n.DSNFor(db)+"&replication=database")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(ctx) })
	conn.Frontend().Send(&pgproto3.Query{String: `START_REPLICATION SLOT ` + slot + ` LOGICAL 0/0 (proto_version '4', publication_names '` + pub + `')`})
	if err := conn.Frontend().Flush(); err != nil {
		t.Fatal(err)
	}
	for {
		msg, err := conn.ReceiveMessage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if e, ok := msg.(*pgproto3.ErrorResponse); ok {
			t.Fatalf("START_REPLICATION: %s", e.Message)
		}
		if _, ok := msg.(*pgproto3.CopyBothResponse); ok {
			break
		}
	}
	if !queryValue[bool](t, n, "postgres", `SELECT active FROM pg_replication_slots WHERE slot_name = $1`, slot) {
		t.Fatalf("%s is not active while streaming", slot)
	}
	return func() {
		_ = conn.Close(ctx)
		deadline := time.Now().Add(30 * time.Second)
		for queryValue[bool](t, n, "postgres", `SELECT active FROM pg_replication_slots WHERE slot_name = $1`, slot) {
			if time.Now().After(deadline) {
				t.Errorf("%s is still active after its consumer closed its connection", slot)
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// logStandbySnapshots makes the primary write a running-transactions record
// every half second until the test ends, which a logical slot being created
// on a standby waits for (an idle primary writes one only at checkpoints).
func logStandbySnapshots(t *testing.T, primary *routertest.Node) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			_ = primary.Exec(ctx, `SELECT pg_log_standby_snapshot()`)
			select {
			case <-ctx.Done():
				return
			case <-time.After(500 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

// A logical slot on a PostgreSQL 16+ standby (cyrilgdn #537): created
// without a transaction, imported, dropped by the framework's destroy.
func TestAccReplicationSlot_logicalOnStandby(t *testing.T) {
	topo := testAccTopology(t)
	if topo.Version < 16 {
		t.Skipf("logical slots on a standby need PostgreSQL 16; the shared topology runs %d", topo.Version)
	}
	logStandbySnapshots(t, topo.Primary)
	standby := topo.Standbys[0]
	const addr = "pgreplication_replication_slot.standby"
	config := topologyProviders(topo) + `
resource "pgreplication_replication_slot" "standby" {
  provider = pgrstandby1
  name     = "tfacc_slot_on_standby"
  type     = "logical"
}
`
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccMultiServerFactories,
		CheckDestroy:             checkSlotsDropped(t, standby, "tfacc_slot_on_standby"),
		Steps: []resource.TestStep{
			{
				Config: config,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("type"), knownvalue.StringExact("logical")),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("database"), knownvalue.StringExact("postgres")),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("restart_lsn"), lsnValue),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("retained_wal_bytes"), knownvalue.Int64Func(atLeastZero)),
				},
				Check: func(*terraform.State) error {
					if !slotExists(t, standby, "tfacc_slot_on_standby") {
						return fmt.Errorf("the slot is not on %s", standby.Name)
					}
					if slotExists(t, topo.Primary, "tfacc_slot_on_standby") {
						return fmt.Errorf("the slot is on the primary: it belongs on %s", standby.Name)
					}
					return nil
				},
			},
			{ResourceName: addr, ImportState: true, ImportStateId: "tfacc_slot_on_standby", ImportStateVerify: true, ImportStateVerifyIgnore: slotMovingHealth},
		},
	})
}

// Destroying a slot that a standby streams from fails and names the
// standby; with terminate_active_on_destroy the destroy cuts the standby off
// and drops the slot. The standby is a topology of this test's own.
func TestAccReplicationSlot_activeDestroy(t *testing.T) {
	t.Parallel()
	testAccPreCheck(t)
	topo := routertest.Start(t, routertest.WithStandbys(1))
	standby := topo.Standbys[0]
	const addr = "pgreplication_replication_slot.active"
	const name = "tfacc_slot_active"
	config := func(terminate bool) string {
		return providerConfig("primary", topo.Primary) + fmt.Sprintf(`
resource "pgreplication_replication_slot" "active" {
  provider                    = pgreplication.primary
  name                        = %q
  type                        = "physical"
  immediately_reserve         = true
  terminate_active_on_destroy = %t
}
`, name, terminate)
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy:             checkSlotsDropped(t, topo.Primary, name),
		Steps: []resource.TestStep{
			{
				Config: config(false),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("active"), knownvalue.Bool(false)),
				},
			},
			{
				// The standby starts streaming through the slot.
				PreConfig: func() {
					execSQL(t, standby, "postgres", `ALTER SYSTEM SET primary_slot_name = `+pgsql.Literal(name))
					execSQL(t, standby, "postgres", `SELECT pg_reload_conf()`)
					waitFor(t, 30*time.Second, "the slot to become active", func() bool {
						return queryValue[bool](t, topo.Primary, "postgres", `SELECT coalesce((SELECT active FROM pg_replication_slots WHERE slot_name = $1), false)`, name)
					})
				},
				Config: config(false),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("active"), knownvalue.Bool(true)),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("active_pid"), knownvalue.NotNull()),
				},
			},
			{
				Config:      config(false),
				Destroy:     true,
				ExpectError: regexp.MustCompile(`(?s)Cannot\s+Drop\s+Active\s+Replication\s+Slot.*` + name + `.*replica-1.*terminate_active_on_destroy`),
			},
			{
				Config: config(true),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate)},
				},
				Check: func(*terraform.State) error {
					if !slotExists(t, topo.Primary, name) {
						return fmt.Errorf("the failed destroy dropped the slot")
					}
					return nil
				},
			},
			// The test's final destroy terminates the standby's WAL sender and
			// drops the slot; CheckDestroy confirms it is gone.
		},
	})
}

// waitFor polls cond until it holds, or fails the test after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if ok, _ := pollUntil(context.Background(), timeout, func(context.Context) (bool, error) { return cond(), nil }); !ok {
		t.Fatalf("timed out after %s waiting for %s", timeout, what)
	}
}

// On PostgreSQL 15, a logical slot on a standby and a failover slot are
// refused at plan time, naming the feature and the server's version.
func TestAccReplicationSlot_versionGates15(t *testing.T) {
	t.Parallel()
	testAccPreCheck(t)
	topo := routertest.Start(t, routertest.WithVersion(15), routertest.WithStandbys(1))
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccMultiServerFactories,
		Steps: []resource.TestStep{
			{
				Config: topologyProviders(topo) + `
resource "pgreplication_replication_slot" "standby" {
  provider = pgrstandby1
  name     = "tfacc_slot_standby15"
  type     = "logical"
}
`,
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)Feature\s+Needs\s+a\s+Newer\s+PostgreSQL.*logical\s+replication\s+slot\s+on\s+a\s+standby.*PostgreSQL\s+16.*PostgreSQL\s+15\.`),
			},
			{
				Config: topologyProviders(topo) + `
resource "pgreplication_replication_slot" "failover" {
  provider = pgrprimary
  name     = "tfacc_slot_failover15"
  type     = "logical"
  failover = true
}
`,
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)failover\s+slot.*PostgreSQL\s+17.*PostgreSQL\s+15\.`),
			},
			{
				// two_phase (14+) is available on 15.
				Config: topologyProviders(topo) + `
resource "pgreplication_replication_slot" "two_phase" {
  provider  = pgrprimary
  name      = "tfacc_slot_two_phase15"
  type      = "logical"
  two_phase = true
}
`,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("pgreplication_replication_slot.two_phase", tfjsonpath.New("two_phase"), knownvalue.Bool(true)),
					statecheck.ExpectKnownValue("pgreplication_replication_slot.two_phase", tfjsonpath.New("failover"), knownvalue.Bool(false)),
				},
			},
		},
	})
}

// A logical slot on a primary with wal_level = replica is refused at plan
// time, naming wal_level and the fix.
func TestAccReplicationSlot_walLevel(t *testing.T) {
	t.Parallel()
	testAccPreCheck(t)
	topo := routertest.Start(t, routertest.WithStandbys(0), routertest.WithSetting("wal_level", "replica"))
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config: providerConfig("primary", topo.Primary) + `
resource "pgreplication_replication_slot" "logical" {
  provider = pgreplication.primary
  name     = "tfacc_slot_wal_level"
  type     = "logical"
}
`,
			PlanOnly:    true,
			ExpectError: regexp.MustCompile(`(?s)Logical\s+Replication\s+Needs\s+wal_level\s+=\s+logical.*wal_level\s+=\s+replica.*ALTER\s+SYSTEM\s+SET\s+wal_level\s+=\s+logical`),
		}},
	})
}

// Configurations PostgreSQL would refuse are refused before anything is
// created: a name with characters slot names cannot have, and attributes
// that do not belong to the slot's type.
func TestAccReplicationSlot_invalidConfig(t *testing.T) {
	topo := testAccTopology(t)
	slot := func(body string) string {
		return providerConfig("primary", topo.Primary) + `
resource "pgreplication_replication_slot" "bad" {
  provider = pgreplication.primary
` + body + `
}
`
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config:      slot(`name = "Bad-Name"` + "\n" + `type = "physical"`),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)Invalid\s+Replication\s+Slot\s+Name.*lower-case\s+letters`),
			},
			{
				Config:      slot(`name = "tfacc_slot_bad"` + "\n" + `type = "physical"` + "\n" + `plugin = "pgoutput"`),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)Attribute\s+Does\s+Not\s+Apply\s+to\s+This\s+Slot\s+Type.*plugin\s+does\s+not\s+apply\s+to\s+a\s+physical`),
			},
			{
				Config:      slot(`name = "tfacc_slot_bad"` + "\n" + `type = "logical"` + "\n" + `immediately_reserve = true`),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)immediately_reserve\s+does\s+not\s+apply\s+to\s+a\s+logical`),
			},
			{
				Config:      slot(`name = "tfacc_slot_bad"` + "\n" + `type = "physical"` + "\n" + `create_timeout = "soon"`),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`Invalid\s+Duration`),
			},
		},
	})
}

// A slot made by hand before the apply: the error says to import it, and
// quotes the statement that failed with the server's message and SQLSTATE
// (statement.Error, like every statement error of the provider).
func TestAccReplicationSlot_alreadyExists(t *testing.T) {
	topo := testAccTopology(t)
	const name = "tfacc_slot_taken"
	execSQL(t, topo.Primary, "postgres", `SELECT pg_create_physical_replication_slot('`+name+`')`)
	t.Cleanup(func() { execSQL(t, topo.Primary, "postgres", `SELECT pg_drop_replication_slot('`+name+`')`) })
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config: providerConfig("primary", topo.Primary) + `
resource "pgreplication_replication_slot" "taken" {
  provider = pgreplication.primary
  name     = "` + name + `"
  type     = "physical"
}
`,
			ExpectError: regexp.MustCompile(`(?s)Replication\s+Slot\s+Already\s+Exists.*terraform\s+import\s+<address>\s+` + name +
				`.*SELECT\s+pg_create_physical_replication_slot\(\$1,\s+\$2\):\s+ERROR:\s+replication\s+slot\s+"` + name + `"\s+already\s+exists\s+\(SQLSTATE\s+42710\)`),
		}},
	})
}

// Creating a logical slot on a standby waits for WAL the standby has not
// replayed; create_timeout bounds the wait and the error says what to do.
// Replay is paused so the wait is certain. No slot is left behind.
func TestAccReplicationSlot_standbyCreateTimeout(t *testing.T) {
	t.Parallel()
	testAccPreCheck(t)
	routertest.SkipBelow(t, 16, "a logical slot on a standby")
	topo := routertest.Start(t, routertest.WithStandbys(1))
	standby := topo.Standbys[0]
	ctx := context.Background()
	if err := standby.PauseReplay(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = standby.ResumeReplay(ctx) })
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			PreConfig: func() { execSQL(t, topo.Primary, "postgres", `SELECT pg_log_standby_snapshot()`) },
			Config: providerConfig("standby", standby) + `
resource "pgreplication_replication_slot" "slow" {
  provider       = pgreplication.standby
  name           = "tfacc_slot_slow"
  type           = "logical"
  create_timeout = "3s"
}
`,
			ExpectError: regexp.MustCompile(`(?s)Timed\s+Out\s+Creating\s+Replication\s+Slot.*tfacc_slot_slow.*create_timeout\s+\(3s\).*pg_log_standby_snapshot\(\)`),
		}},
	})
	if slotExists(t, standby, "tfacc_slot_slow") {
		t.Error("the timed-out creation left the slot on the standby")
	}
}

// The server creates the slot but its answer never reaches the provider: a
// network that fails after the server did the work, or an apply interrupted
// at that moment (Ctrl-C under -parallelism=10 left 2 of 20 slots so). The
// slot must end up in the state: otherwise it holds WAL with no owner, and
// the next apply fails with "already exists".
func TestAccReplicationSlot_createAnswerLost(t *testing.T) {
	topo := testAccTopology(t)
	const name = "tfacc_slot_answer_lost"
	const addr = "pgreplication_replication_slot.answer_lost"
	proxy := topo.Primary.NewProxy(t)
	proxy.HoldAnswers("pg_create_physical_replication_slot", "pg_create_physical_replication_slot")
	t.Cleanup(func() {
		if slotExists(t, topo.Primary, name) {
			execSQL(t, topo.Primary, "postgres", `SELECT pg_drop_replication_slot('`+name+`')`)
		}
	})
	slot := fmt.Sprintf(`
resource "pgreplication_replication_slot" "answer_lost" {
  provider            = pgreplication.primary
  name                = %q
  type                = "physical"
  immediately_reserve = true
  create_timeout      = "3s"
}
`, name)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy:             checkSlotsDropped(t, topo.Primary, name),
		Steps: []resource.TestStep{
			{
				Config: fmt.Sprintf(`
provider "pgreplication" {
  alias    = "primary"
  host     = %q
  port     = %d
  username = "postgres"
  database = "postgres"
  sslmode  = "disable"
}
`, topo.Primary.Host, proxy.Port()) + slot,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("id"), knownvalue.StringExact(name)),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("type"), knownvalue.StringExact("physical")),
				},
			},
			{
				Config: providerConfig("primary", topo.Primary) + slot,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
			},
		},
	})
}

// A slot whose WAL the server removed (max_slot_wal_keep_size) reads back as
// wal_status = lost on the next refresh, without making the plan non-empty:
// the plan warns instead, and the user decides to replace it.
func TestAccReplicationSlot_lost(t *testing.T) {
	t.Parallel()
	testAccPreCheck(t)
	topo := routertest.Start(t, routertest.WithStandbys(0), routertest.WithSetting("max_slot_wal_keep_size", "1MB"), routertest.WithSetting("wal_keep_size", "0"))
	const addr = "pgreplication_replication_slot.lost"
	config := providerConfig("primary", topo.Primary) + `
resource "pgreplication_replication_slot" "lost" {
  provider            = pgreplication.primary
  name                = "tfacc_slot_lost"
  type                = "physical"
  immediately_reserve = true
}
`
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: config,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("wal_status"), knownvalue.StringExact("reserved")),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("safe_wal_size"), knownvalue.NotNull()),
				},
			},
			{
				PreConfig: func() {
					execSQL(t, topo.Primary, "postgres", `CREATE TABLE tfacc_slot_lost_load (x int)`)
					for range 3 {
						execSQL(t, topo.Primary, "postgres", `INSERT INTO tfacc_slot_lost_load SELECT generate_series(1, 1000)`)
						execSQL(t, topo.Primary, "postgres", `SELECT pg_switch_wal()`)
					}
					execSQL(t, topo.Primary, "postgres", `CHECKPOINT`)
				},
				Config: config,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("wal_status"), knownvalue.StringExact("lost")),
				},
			},
		},
	})
}

// Adopting a slot: a physical slot made by hand with its WAL reserved (so it
// has a restart_lsn) imports with a configuration that leaves
// immediately_reserve at its default and writes create_timeout in other
// units: the import plans nothing. Setting immediately_reserve afterwards
// updates the state only; the slot is never replaced, and its restart_lsn
// stays where it was.
func TestAccReplicationSlot_importCreateTimeOnly(t *testing.T) {
	topo := testAccTopology(t)
	const addr = "pgreplication_replication_slot.adopted"
	const name = "tfacc_slot_adopted"
	execSQL(t, topo.Primary, "postgres", `SELECT pg_create_physical_replication_slot($1, true)`, name)
	restartLSN := queryValue[string](t, topo.Primary, "postgres", `SELECT restart_lsn::text FROM pg_replication_slots WHERE slot_name = $1`, name)
	// The default provider, unaliased: the import block that
	// -generate-config-out writes from names no provider.
	provider := fmt.Sprintf(`
provider "pgreplication" {
  host     = %q
  port     = %d
  username = "postgres"
  sslmode  = "disable"
}
`, topo.Primary.Host, topo.Primary.Port)
	config := func(extra string) string {
		return provider + fmt.Sprintf(`
resource "pgreplication_replication_slot" "adopted" {
  name           = %q
  type           = "physical"
  create_timeout = "300s" # the default is "5m"
  %s
}
`, name, extra)
	}
	unchanged := func(*terraform.State) error {
		got := queryValue[string](t, topo.Primary, "postgres", `SELECT coalesce(restart_lsn::text, 'NULL') FROM pg_replication_slots WHERE slot_name = $1`, name)
		if got != restartLSN {
			return fmt.Errorf("the slot's restart_lsn is %s, was %s: it was recreated", got, restartLSN)
		}
		return nil
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy:             checkSlotsDropped(t, topo.Primary, name),
		Steps: []resource.TestStep{
			{
				// An import block: the plan must be a no-op import.
				Config:          config(""),
				ResourceName:    addr,
				ImportState:     true,
				ImportStateKind: resource.ImportBlockWithID,
				ImportStateId:   name,
			},
			{
				Config:             config(""),
				ResourceName:       addr,
				ImportState:        true,
				ImportStateId:      name,
				ImportStatePersist: true,
			},
			{
				// terraform plan -generate-config-out: the generated
				// configuration plans nothing either.
				Config:          provider,
				ResourceName:    addr,
				ImportState:     true,
				ImportStateKind: resource.ImportBlockWithID,
				ImportStateId:   name,
				GenerateConfig:  true,
			},
			{
				Config: config(""),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("immediately_reserve"), knownvalue.Bool(true)),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("create_timeout"), knownvalue.StringExact(defaultSlotCreateTimeout)),
				},
				Check: unchanged,
			},
			{
				Config: config("immediately_reserve = false"),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{expectDrift(addr, "immediately_reserve")},
				},
				Check: unchanged,
			},
			{
				// Left out again: the slot keeps the value it has.
				Config: config(""),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				Check: unchanged,
			},
		},
	})
}

// A create whose read-back fails still records the slot (with a warning),
// so that the next apply does not fail with "already exists"; the next
// refresh reads its health.
func TestAccReplicationSlot_readBackFails(t *testing.T) {
	topo := testAccTopology(t)
	const addr = "pgreplication_replication_slot.unread"
	const name = "tfacc_slot_unread"
	failReadBack := func() {
		slotReadBack = func(*replicationSlotResource, context.Context, string) (slotRow, bool, error) {
			return slotRow{}, false, fmt.Errorf("connection lost (injected by the test)")
		}
	}
	restore := func() { slotReadBack = (*replicationSlotResource).readSlot }
	t.Cleanup(restore)
	config := providerConfig("primary", topo.Primary) + fmt.Sprintf(`
resource "pgreplication_replication_slot" "unread" {
  provider            = pgreplication.primary
  name                = %q
  type                = "physical"
  immediately_reserve = true
}
`, name)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy:             checkSlotsDropped(t, topo.Primary, name),
		Steps: []resource.TestStep{
			{
				PreConfig: failReadBack,
				Config:    config,
				Check: func(*terraform.State) error {
					restore()
					if !slotExists(t, topo.Primary, name) {
						return fmt.Errorf("the slot is not on the server")
					}
					return nil
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("id"), knownvalue.StringExact(name)),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("restart_lsn"), knownvalue.Null()),
				},
			},
			{
				Config: config,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("restart_lsn"), lsnValue),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("wal_status"), knownvalue.StringExact("reserved")),
				},
			},
		},
	})
}
