package provider

import (
	"fmt"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
)

// A replacement under create_before_destroy creates the new object while
// the old one still exists. A subscription moved to another database keeps
// its name, and its slot (slot_name defaults to the name) is still the old
// subscription's on the publisher: CREATE SUBSCRIPTION fails, and the old
// subscription stays. The provider cannot tell that lifecycle setting at
// plan, so the schema description says it; this checks what it says, with
// the real CLI.
func TestAccSubscription_createBeforeDestroySameNameFails(t *testing.T) {
	topo := testAccTopology(t)
	f := newSubscriptionFixture(t, topo.Primary, "sub_cbd", `CREATE PUBLICATION pub_cbd FOR TABLE t1;`, nil, "postgres", "sub_cbd_moved")
	config := func(database string) string {
		return subscriberProvider(f.sub) + fmt.Sprintf(`
resource "pgreplication_subscription" "this" {
  provider     = pgreplication.subscriber
  database     = %q
  name         = "sub_cbd"
  conninfo     = %q
  publications = ["pub_cbd"]
  lifecycle {
    create_before_destroy = true
  }
}
`, database, f.conninfo(""))
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{Config: config("postgres")},
			{
				Config:      config("sub_cbd_moved"),
				ExpectError: errorText(`replication slot "sub_cbd" already exists`),
			},
			{
				// The old subscription stayed, and streams.
				PreConfig: func() { execSQL(t, f.pub, f.pubDB, `INSERT INTO t1 VALUES (1, 'x')`) },
				Config:    config("postgres"),
				Check:     waitRows(t, f.sub, "postgres", "t1", 1),
			},
		},
	})
}
