package provider

import (
	"fmt"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
)

// Review of 1dcea24: publisherSlotGone reads "does not exist" in the
// subscriber's error when the provider cannot reach the publisher either.
// When the subscription's role is gone from the publisher (a role resource
// named by literal, destroyed first by the same run), DROP SUBSCRIPTION
// fails with 08006 "could not connect to publisher when attempting to drop
// replication slot …: FATAL: role … does not exist", the probe fails the
// same way, and Delete drops the subscription without its slot: the slot,
// which exists, is left on the publisher retaining WAL, under a warning
// that says "Nothing is left to leak". The destroy must fail instead.
func TestAccReviewSubscriptionSlotLeakedWhenRoleGone(t *testing.T) {
	topo := testAccTopology(t)
	f := newSubscriptionFixture(t, topo.Primary, "sub_review_leak",
		`CREATE ROLE review_rep LOGIN REPLICATION; GRANT SELECT ON t1 TO review_rep; CREATE PUBLICATION pub_review_leak FOR TABLE t1;`, nil)
	t.Cleanup(func() { execSQL(t, f.pub, "postgres", `DROP ROLE IF EXISTS review_rep`) })
	sub := subscriberProvider(f.sub) + fmt.Sprintf(`
resource "pgreplication_subscription" "this" {
  provider     = pgreplication.subscriber
  name         = "sub_review_leak"
  conninfo     = %q
  publications = ["pub_review_leak"]
}
`, fmt.Sprintf("host=127.0.0.1 port=%d user=review_rep dbname=%s", f.pub.Port, f.pubDB))
	slotLeft := func() bool {
		return queryValue[bool](t, f.pub, "postgres", `SELECT EXISTS (SELECT FROM pg_replication_slots WHERE slot_name = 'sub_review_leak')`)
	}
	t.Cleanup(func() {
		if left, subs := slotLeft(), queryValue[int64](t, f.sub, "postgres", `SELECT count(*) FROM pg_subscription`); left && subs == 0 {
			t.Errorf("LEAK: the subscription was dropped and its slot sub_review_leak is still on the publisher")
		}
	})
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{Config: sub},
			{
				PreConfig: func() {
					execSQL(t, f.pub, f.pubDB, `REVOKE SELECT ON t1 FROM review_rep`)
					execSQL(t, f.pub, "postgres", `DROP ROLE review_rep`)
					t.Logf("before the destroy: slot on the publisher: %v", slotLeft())
				},
				Config:      subscriberProvider(f.sub),
				ExpectError: errorText("Cannot Drop Subscription"),
			},
			{
				PreConfig: func() {
					if !slotLeft() {
						t.Error("the slot sub_review_leak is gone")
					}
					execSQL(t, f.pub, "postgres", `CREATE ROLE review_rep LOGIN REPLICATION`)
				},
				Config: subscriberProvider(f.sub),
			},
		},
	})
}
