package provider

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/pgsql"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// physicalSlotConfig is provider (a provider block with alias) and a
// reserved physical slot named slot on it: the configuration with the
// slot, and the one it is destroyed by (provider alone). terminate sets
// terminate_active_on_destroy, so that the drop of a slot a standby
// streams through reaches the synchronous check.
func physicalSlotConfig(provider, alias, slot string, terminate bool) (withSlot, withoutSlot string) {
	terminateLine := ""
	if terminate {
		terminateLine = "\n  terminate_active_on_destroy = true"
	}
	return provider + fmt.Sprintf(`
resource "pgreplication_replication_slot" "standby" {
  provider            = pgreplication.%s
  name                = %q
  type                = "physical"
  immediately_reserve = true%s
}
`, alias, slot, terminateLine), provider
}

// streamAsSynchronousStandby makes, by hand, standby stream through slot
// and be the primary's only synchronous standby, and waits until it does.
func streamAsSynchronousStandby(t *testing.T, primary, standby *routertest.Node, slot string) {
	t.Helper()
	alterSystemByHand(t, standby, "primary_slot_name", slot)
	alterSystemByHand(t, primary, "synchronous_standby_names", pgsql.Ident(standby.Name))
	waitFor(t, 30*time.Second, "the standby to stream through the slot as the synchronous standby", func() bool {
		var active bool
		var state string
		err := queryRow(primary, `SELECT coalesce((SELECT active FROM pg_replication_slots WHERE slot_name = $1), false),
  coalesce((SELECT sync_state FROM pg_stat_replication WHERE application_name = $2), '')`, []any{slot, standby.Name}, &active, &state)
		return err == nil && active && state == "sync"
	})
}

// requireSlotKept fails the test when a refused destroy dropped slot.
func requireSlotKept(t *testing.T, n *routertest.Node, slot string) {
	t.Helper()
	if !slotExists(t, n, slot) {
		t.Fatalf("the refused destroy dropped slot %q", slot)
	}
}

// slotDropped checks that the destroy dropped slot on n and, with
// commitsGo, that a commit on n still returns.
func slotDropped(t *testing.T, n *routertest.Node, slot string, commitsGo bool) resource.TestCheckFunc {
	return func(*terraform.State) error {
		if slotExists(t, n, slot) {
			return fmt.Errorf("slot %q is still there after the destroy", slot)
		}
		if commitsGo {
			return commitWithin(n, 10*time.Second)
		}
		return nil
	}
}

// A role without pg_read_all_stats sees NULL for the state of other roles'
// WAL senders. The check for the only synchronous standby counted those as
// not streaming and refused the drop of a synchronous standby's slot with
// "fewer than 1 other listed standbys stream" while another listed standby
// streamed. It now says it cannot tell, and which grant lets it tell; with
// that grant the same destroy goes through and commits go on (the other
// standby becomes synchronous). The old code: the first refusal lacked
// "Cannot Tell" and the grant.
func TestAccReplicationSlot_syncCheckHiddenStates(t *testing.T) {
	t.Parallel()
	testAccPreCheck(t)
	topo := routertest.Start(t, routertest.WithStandbys(2))
	standby := topo.Standbys[0]
	const slot, role = "sync_hidden_slot", "tfacc_slot_no_stats"
	// REPLICATION to manage slots; the standby streams as this role, so
	// that terminate_active_on_destroy may end its WAL sender.
	execSQL(t, topo.Primary, "postgres", "CREATE ROLE "+role+" LOGIN REPLICATION")
	withSlot, withoutSlot := physicalSlotConfig(providerConfigAs("limited", topo.Primary, role), "limited", slot, true)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy: func(*terraform.State) error {
			return commitWithin(topo.Primary, 10*time.Second)
		},
		Steps: []resource.TestStep{
			{Config: withSlot},
			{
				// replica-1 streams through the slot as the role and is the
				// synchronous standby; replica-2 streams too, listed second.
				PreConfig: func() {
					alterSystemByHand(t, standby, "primary_conninfo", fmt.Sprintf("host=%s port=%d user=%s application_name=%s sslmode=disable",
						topo.Primary.Host, topo.Primary.Port, role, standby.Name))
					alterSystemByHand(t, standby, "primary_slot_name", slot)
					alterSystemByHand(t, topo.Primary, "synchronous_standby_names",
						"FIRST 1 ("+pgsql.Ident(standby.Name)+", "+pgsql.Ident(topo.Standbys[1].Name)+")")
					waitFor(t, 30*time.Second, "replica-1 to stream through the slot as the synchronous standby, replica-2 as the potential one", func() bool {
						var active bool
						var sync, potential string
						err := queryRow(topo.Primary, `SELECT coalesce((SELECT active FROM pg_replication_slots WHERE slot_name = $1), false),
  coalesce((SELECT sync_state FROM pg_stat_replication WHERE application_name = $2 AND usename = $4), ''),
  coalesce((SELECT sync_state FROM pg_stat_replication WHERE application_name = $3), '')`,
							[]any{slot, standby.Name, topo.Standbys[1].Name, role}, &active, &sync, &potential)
						return err == nil && active && sync == "sync" && potential == "potential"
					})
				},
				Config: withoutSlot,
				ExpectError: errorText("Cannot Tell Whether Dropping Replication Slot Blocks Commits", fmt.Sprintf("%q", slot),
					fmt.Sprintf("standby %q", standby.Name), "Whether 1 other listed standbys stream", `GRANT pg_read_all_stats TO "`+role+`"`,
					"Nothing was changed"),
			},
			{
				PreConfig: func() {
					requireSlotKept(t, topo.Primary, slot)
					execSQL(t, topo.Primary, "postgres", "GRANT pg_read_all_stats TO "+role)
				},
				Config: withoutSlot,
				Check:  slotDropped(t, topo.Primary, slot, true),
			},
		},
	})
}

// An inactive physical slot whose standby is away while
// synchronous_standby_names needs it (commits already wait) was dropped:
// the standby could then never connect again, and the wait lasted until
// someone changed synchronous_standby_names. The drop is now refused, naming
// the standby; synchronous_commit = local on the server does not change
// that (sessions that set it to on still wait), and the refusal says so.
// Once the standby is no longer listed, the destroy goes through. The old
// code: the step expecting the refusal dropped the slot.
func TestAccReplicationSlot_dropInactiveSlotOfAwaySynchronousStandbyRefused(t *testing.T) {
	t.Parallel()
	testAccPreCheck(t)
	topo := routertest.Start(t, routertest.WithStandbys(1))
	standby := topo.Standbys[0]
	const slot = "sync_away_slot"
	withSlot, withoutSlot := physicalSlotConfig(providerConfig("primary", topo.Primary), "primary", slot, false)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{Config: withSlot},
			{
				PreConfig: func() {
					streamAsSynchronousStandby(t, topo.Primary, standby, slot)
					// The standby goes away (a restart, a network fault): its
					// slot is inactive, and the server's own commits no longer
					// wait for it.
					if err := standby.Stop(context.Background()); err != nil {
						t.Fatal(err)
					}
					waitFor(t, 30*time.Second, "the slot to be inactive", func() bool {
						return queryValue[bool](t, topo.Primary, "postgres", `SELECT NOT active FROM pg_replication_slots WHERE slot_name = $1`, slot)
					})
					alterSystemByHand(t, topo.Primary, "synchronous_commit", "local")
				},
				Config: withoutSlot,
				ExpectError: errorText("Dropping Replication Slot Would Block Commits", fmt.Sprintf("%q", slot), "is inactive",
					fmt.Sprintf("standby %q is not connected", standby.Name), "synchronous_commit is local", "remote_apply",
					"Nothing was changed", "Bring that standby back"),
			},
			{
				PreConfig: func() {
					requireSlotKept(t, topo.Primary, slot)
					alterSystemByHand(t, topo.Primary, "synchronous_standby_names", "")
				},
				Config: withoutSlot,
				Check:  slotDropped(t, topo.Primary, slot, false),
			},
		},
	})
}

// A standby waits for no standby, whatever synchronous_standby_names its
// configuration holds (a standby often carries the primary's, for after a
// failover): the inactive slot of a cascading standby on it is dropped as
// asked. Without the recovery check the drop was refused for a listed
// standby that was not connected to it.
func TestAccReplicationSlot_dropOnStandbyIgnoresSynchronousStandbyNames(t *testing.T) {
	t.Parallel()
	testAccPreCheck(t)
	topo := routertest.Start(t, routertest.WithStandbys(1))
	standby := topo.Standbys[0]
	const slot = "sync_cascade_slot"
	alterSystemByHand(t, standby, "synchronous_standby_names", "FIRST 1 (cascaded)")
	withSlot := providerConfig("standby1", standby) + fmt.Sprintf(`
resource "pgreplication_replication_slot" "cascade" {
  provider = pgreplication.standby1
  name     = %q
  type     = "physical"
}
`, slot)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy:             checkSlotsDropped(t, standby, slot),
		Steps:                    []resource.TestStep{{Config: withSlot}},
	})
}

// A role with the slot's documented privileges (LOGIN REPLICATION) sees
// which standbys are connected (pg_stat_replication's rows and their
// application_name) but not their state. Dropping an unused inactive
// physical slot was refused, "Cannot Tell Whether Dropping Replication Slot
// Blocks Commits", asking for pg_read_all_stats: under
// synchronous_standby_names = '*' with a standby connected (and named "not
// connected", as "a standby that "*" matches"), and under ANY 1 with one
// listed standby away and the other connected. Commits are not known to
// wait when as many listed standbys are connected as it needs: the drop
// goes through. When fewer are connected, commits wait for certain, and
// the drop is refused as before, without asking for a grant.
func TestAccReplicationSlot_dropInactiveSlotLimitedRole(t *testing.T) {
	t.Parallel()
	testAccPreCheck(t)
	topo := routertest.Start(t, routertest.WithStandbys(1))
	standby := topo.Standbys[0]
	const role = "tfacc_slot_inactive"
	execSQL(t, topo.Primary, "postgres", "CREATE ROLE "+role+" LOGIN REPLICATION")
	slots := func(names ...string) string {
		config := providerConfigAs("limited", topo.Primary, role)
		for _, name := range names {
			config += fmt.Sprintf(`
resource "pgreplication_replication_slot" %q {
  provider            = pgreplication.limited
  name                = %q
  type                = "physical"
  immediately_reserve = true
}
`, name, name)
		}
		return config
	}
	syncNames := func(value string) func() {
		return func() {
			alterSystemByHand(t, topo.Primary, "synchronous_standby_names", value)
			waitFor(t, 30*time.Second, "the standby's sync_state to follow synchronous_standby_names", func() bool {
				state := queryValue[string](t, topo.Primary, "postgres", `SELECT coalesce((SELECT sync_state FROM pg_stat_replication WHERE application_name = $1), '')`,
					standby.Name)
				return state != "" && (state == "async") == (value == "")
			})
		}
	}
	quorum := func(n int) string {
		return fmt.Sprintf("ANY %d (%s, away)", n, pgsql.Ident(standby.Name))
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{Config: slots("star", "quorum", "waits")},
			{PreConfig: syncNames("*"), Config: slots("quorum", "waits")},
			{PreConfig: syncNames(quorum(1)), Config: slots("waits")},
			{
				PreConfig: syncNames(quorum(2)),
				Config:    slots(),
				ExpectError: errorText("Dropping Replication Slot Would Block Commits", `"waits"`, "is inactive",
					`standby "away" is not connected`, "Nothing was changed"),
			},
			{
				PreConfig: func() {
					requireSlotKept(t, topo.Primary, "waits")
					syncNames("")()
				},
				Config: slots(),
			},
		},
	})
}

// The plan's advice for a slot that lost its WAL is to recreate it
// (terraform apply -replace), but the drop was refused when commits waited
// for a listed standby that is away: the slot "may be the one it streams
// through". No standby can stream through an invalidated slot: its drop, a
// destroy or the first half of a replacement, goes through. The old code:
// "Dropping Replication Slot Would Block Commits".
func TestAccReplicationSlot_dropLostSlotWhileCommitsWait(t *testing.T) {
	t.Parallel()
	testAccPreCheck(t)
	topo := routertest.Start(t, routertest.WithStandbys(1))
	const slot = "sync_lost_slot"
	withSlot, withoutSlot := physicalSlotConfig(providerConfig("primary", topo.Primary), "primary", slot, false)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{Config: withSlot},
			{
				PreConfig: func() {
					alterSystemByHand(t, topo.Primary, "max_slot_wal_keep_size", "1MB")
					waitFor(t, 30*time.Second, "the slot to lose its WAL", func() bool {
						// WAL without a transaction, and a checkpoint that
						// removes what the slot keeps beyond 1MB.
						execSQL(t, topo.Primary, "postgres", "SELECT pg_logical_emit_message(false, 'fill', repeat('x', 1024*1024))")
						execSQL(t, topo.Primary, "postgres", "SELECT pg_switch_wal()")
						execSQL(t, topo.Primary, "postgres", "CHECKPOINT")
						return queryValue[string](t, topo.Primary, "postgres", `SELECT coalesce(wal_status, '') FROM pg_replication_slots WHERE slot_name = $1`, slot) == "lost"
					})
					// Commits wait for a listed standby that is away.
					alterSystemByHand(t, topo.Primary, "synchronous_standby_names", "FIRST 1 (away)")
				},
				Config: withoutSlot,
				Check:  slotDropped(t, topo.Primary, slot, false),
			},
		},
	})
}
