package provider

import (
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// An apply whose standby settings do not stream leaves the standby as it
// was when it streamed before: the settings it had are written back and it
// streams again, so a mistake in the configuration (a wrong port here; a
// wrong password alike) does not cut a running standby off its primary and,
// were it synchronous, hold every commit there. Before, the new settings
// stayed in effect and the standby stopped streaming, both when the
// resource was created over a standby that streamed (an adoption without
// import) and when it was updated.
func TestAccStandby_failedApplyRestoresStreaming(t *testing.T) {
	t.Parallel()
	testAccPreCheck(t)
	topo := routertest.Start(t, routertest.WithStandbys(1))
	standby := topo.Standbys[0]
	port := freePort(t)
	config := func(primaryPort int) string {
		return providerConfig("standby1", standby) + standbyBlock("standby1", "127.0.0.1", primaryPort, replicaWaiting("10s"))
	}
	conninfoBefore := ""
	streamsFromPrimary := func() {
		t.Helper()
		var status string
		var senderPort int
		waitFor(t, 30*time.Second, "the standby to stream from the primary", func() bool {
			err := queryRow(standby, `SELECT coalesce((SELECT status FROM pg_stat_wal_receiver), ''), coalesce((SELECT sender_port FROM pg_stat_wal_receiver), 0)`, nil, &status, &senderPort)
			return err == nil && status == "streaming" && senderPort == topo.Primary.Port
		})
		if got := queryValue[string](t, standby, "postgres", `SELECT current_setting('primary_conninfo')`); got != conninfoBefore {
			t.Errorf("after the failed apply primary_conninfo is %q, want the one it had before, %q", got, conninfoBefore)
		}
	}
	// An apply to the port where nothing listens: refused, and the
	// standby's settings written back.
	toNowhere := resource.TestStep{
		PreConfig: func() {
			conninfoBefore = queryValue[string](t, standby, "postgres", `SELECT current_setting('primary_conninfo')`)
		},
		Config: config(port),
		ExpectError: errorText("Standby Is Not Streaming", fmt.Sprintf("does not stream from 127.0.0.1:%d", port),
			"The settings it had before are written back", fmt.Sprintf("it streams again from 127.0.0.1:%d", topo.Primary.Port)),
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			toNowhere, // created over the standby routertest started streaming
			{
				PreConfig: streamsFromPrimary,
				Config:    config(topo.Primary.Port),
			},
			toNowhere, // updated
			{
				// The server is as the state says: nothing to change.
				PreConfig:          streamsFromPrimary,
				Config:             config(topo.Primary.Port),
				PlanOnly:           true,
				ExpectNonEmptyPlan: false,
			},
		},
	})
}
