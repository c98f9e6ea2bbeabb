package provider

import (
	"context"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/jackc/pgx/v5"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// Review of 7fc4605: dropRiskAfterGrace looks again for 10 s with the pid
// read at the first look. When that WAL sender ends during the grace (a
// network blip, wal_sender_timeout, the standby's walreceiver restarting),
// dropBlocksCommits finds no row for the pid (self == nil) and says "no
// risk", although the only synchronous standby is merely reconnecting
// (wal_retrieve_retry_interval, 5 s by default). Delete then drops the
// slot, the standby cannot come back, and every commit waits: exactly what
// the first look refused. The first look must not be overturned by the
// holder vanishing, only by synchronous_standby_names changing.
func TestAccReviewSlotGraceHolderReconnecting(t *testing.T) {
	t.Parallel()
	testAccPreCheck(t)
	topo := routertest.Start(t, routertest.WithStandbys(1))
	standby := topo.Standbys[0]
	const slot = "review_grace_slot"
	withSlot, withoutSlot := physicalSlotConfig(providerConfig("primary", topo.Primary), "primary", slot, true)
	blip := make(chan error, 1)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{Config: withSlot},
			{
				PreConfig: func() {
					alterSystemByHand(t, standby, "wal_retrieve_retry_interval", "5s") // PostgreSQL's default
					streamAsSynchronousStandby(t, topo.Primary, standby, slot)
					go func() {
						// A flaky link 2 s into the grace: the WAL sender ends,
						// and the standby's reconnections fail for 2 s.
						time.Sleep(2 * time.Second)
						ctx := context.Background()
						conn, err := pgx.Connect(ctx, topo.Primary.DSNFor("postgres"))
						if err == nil {
							for end := time.Now().Add(2 * time.Second); err == nil && time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
								_, err = conn.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_replication WHERE application_name = $1`, standby.Name)
							}
							conn.Close(ctx)
						}
						blip <- err
					}()
				},
				Config:      withoutSlot,
				ExpectError: errorText("Dropping Replication Slot Would Block Commits"),
			},
			{
				PreConfig: func() {
					if err := <-blip; err != nil {
						t.Fatal(err)
					}
					requireSlotKept(t, topo.Primary, slot)
					if err := commitWithin(topo.Primary, 5*time.Second); err != nil {
						t.Error(err)
					}
					alterSystemByHand(t, topo.Primary, "synchronous_standby_names", "")
				},
				Config: withoutSlot,
				Check:  slotDropped(t, topo.Primary, slot, true),
			},
		},
	})
}
