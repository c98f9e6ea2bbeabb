package provider

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/jackc/pgx/v5"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// Destroying, with terminate_active_on_destroy, the physical slot that the
// only synchronous standby streams through ended its WAL sender and dropped
// the slot: the standby could not stream again (its primary_slot_name
// names a slot that is gone), and every commit on the primary waited for it
// from then on, with the apply reporting success. The drop is now refused,
// naming the standby and the order that works (take it out of
// synchronous_standby_names first); the slot and commits stay as they were.
// Once it is no longer synchronous, the same destroy goes through. The old
// code: the step expecting the refusal applied, and a commit on the primary
// did not return within 10s.
func TestAccReplicationSlot_dropUnderSynchronousStandbyRefused(t *testing.T) {
	t.Parallel()
	testAccPreCheck(t)
	// Server-wide settings that can block commits: not the shared topology.
	topo := routertest.Start(t, routertest.WithStandbys(1))
	standby := topo.Standbys[0]
	const slot = "red_sync_slot"
	withSlot, withoutSlot := physicalSlotConfig(providerConfig("primary", topo.Primary), "primary", slot, true)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy: func(*terraform.State) error {
			return commitWithin(topo.Primary, 10*time.Second)
		},
		Steps: []resource.TestStep{
			{Config: withSlot},
			{
				// By hand: the standby streams through the slot, and is
				// the primary's only synchronous standby.
				PreConfig: func() {
					streamAsSynchronousStandby(t, topo.Primary, standby, slot)
				},
				Config: withoutSlot,
				ExpectError: errorText("Dropping Replication Slot Would Block Commits", fmt.Sprintf("%q", slot),
					fmt.Sprintf("standby %q", standby.Name), "synchronous_standby_names", "Nothing was changed", "pgreplication_synchronous_replication"),
			},
			{
				PreConfig: func() {
					requireSlotKept(t, topo.Primary, slot)
					if err := commitWithin(topo.Primary, 10*time.Second); err != nil {
						t.Fatal(err)
					}
					// The order the refusal asks for: no longer synchronous, then the slot goes.
					alterSystemByHand(t, topo.Primary, "synchronous_standby_names", "")
				},
				Config: withoutSlot,
				Check:  slotDropped(t, topo.Primary, slot, true),
			},
		},
	})
}

// terraform destroy deletes a pgreplication_synchronous_replication and the
// slots in parallel when nothing orders them (its standby names written as
// literals, or synchronous_standby_names changed by hand): which comes first
// was chance, and a slot's drop that came first was refused though the same
// apply was taking its standby out of synchronous_standby_names (CI, stop 22:
// the drift audit's destroy failed with OpenTofu, passed with Terraform).
// The drop now looks again for up to syncRiskGrace. Here the other resource
// is played by a session that resets synchronous_standby_names 2 s into the
// apply. The old code: the step failed with "Dropping Replication Slot Would
// Block Commits" at once.
func TestAccReplicationSlot_dropWaitsForSynchronousChangeOfSameApply(t *testing.T) {
	t.Parallel()
	testAccPreCheck(t)
	topo := routertest.Start(t, routertest.WithStandbys(1))
	standby := topo.Standbys[0]
	const slot = "sync_grace_slot"
	withSlot, withoutSlot := physicalSlotConfig(providerConfig("primary", topo.Primary), "primary", slot, true)
	reset := make(chan error, 1)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy: func(*terraform.State) error {
			return commitWithin(topo.Primary, 10*time.Second)
		},
		Steps: []resource.TestStep{
			{Config: withSlot},
			{
				PreConfig: func() {
					streamAsSynchronousStandby(t, topo.Primary, standby, slot)
					go func() {
						time.Sleep(2 * time.Second)
						ctx := context.Background()
						conn, err := pgx.Connect(ctx, topo.Primary.DSNFor("postgres"))
						if err == nil {
							_, err = conn.Exec(ctx, `ALTER SYSTEM RESET synchronous_standby_names`)
							if err == nil {
								_, err = conn.Exec(ctx, `SELECT pg_reload_conf()`)
							}
							conn.Close(ctx)
						}
						reset <- err
					}()
				},
				Config: withoutSlot,
				Check: func(*terraform.State) error {
					if err := <-reset; err != nil {
						return fmt.Errorf("resetting synchronous_standby_names during the apply: %v", err)
					}
					return slotDropped(t, topo.Primary, slot, true)(nil)
				},
			},
		},
	})
}
