package provider

import (
	"fmt"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
)

// A publication name the publisher does not have (a typo, one not made
// yet) in a subscription's publications stopped the whole subscription
// before PostgreSQL 18: CREATE and ALTER SUBSCRIPTION only warn, the apply
// succeeded, the next plan was empty, and the publisher's WAL sender failed
// on every change ("publication … does not exist"). Seen by hand on 17: a
// row written after adding "nope_pub" had not arrived 4 s later, and came
// once it was taken out. On the old code step 2 applied without an error.
// Now the plan warns and the apply refuses, changing nothing, for an update
// and for a create.
func TestAccSubscription_missingPublicationRefused(t *testing.T) {
	topo := testAccTopology(t)
	if topo.Version >= 18 {
		t.Skipf("PostgreSQL %d skips a publication the publisher lacks; the plan only warns", topo.Version)
	}
	f := newSubscriptionFixture(t, topo.Primary, "sub_pub_missing", `CREATE PUBLICATION pub_there FOR TABLE t1;`, nil)
	config := func(publications, extra string) string {
		return subscriberProvider(f.sub) + fmt.Sprintf(`
resource "pgreplication_subscription" "this" {
  provider     = pgreplication.subscriber
  name         = "sub_pub_missing"
  conninfo     = %q
  publications = %s
}
%s`, f.conninfo(""), publications, extra)
	}
	insert := func(id int) func() {
		return func() { execSQL(t, f.pub, f.pubDB, `INSERT INTO t1 VALUES ($1, 'x')`, id) }
	}
	newSubscription := fmt.Sprintf(`
resource "pgreplication_subscription" "new" {
  provider     = pgreplication.subscriber
  name         = "sub_pub_missing_new"
  conninfo     = %q
  publications = ["pub_typo"]
}
`, f.conninfo(""))
	nothingMade := func(*terraform.State) error {
		if n := queryValue[int64](t, f.sub, "postgres", `SELECT count(*) FROM pg_subscription WHERE subname = 'sub_pub_missing_new'`); n != 0 {
			return fmt.Errorf("the subscription sub_pub_missing_new was created")
		}
		if n := queryValue[int64](t, f.pub, "postgres", `SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'sub_pub_missing_new'`); n != 0 {
			return fmt.Errorf("the publisher has a slot sub_pub_missing_new")
		}
		return nil
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				PreConfig: insert(1),
				Config:    config(`["pub_there"]`, ""),
				Check:     waitRows(t, f.sub, "postgres", "t1", 1),
			},
			{
				Config: config(`["pub_there", "pub_typo"]`, ""),
				ExpectError: errorText("Publication Not on the Publisher", `has no publication "pub_typo"`,
					`subscription "sub_pub_missing" would stream`, "This apply changed nothing."),
			},
			{
				// Nothing changed: the subscription still streams.
				PreConfig: insert(2),
				Config:    config(`["pub_there"]`, ""),
				Check:     waitRows(t, f.sub, "postgres", "t1", 2),
			},
			{
				Config:      config(`["pub_there"]`, newSubscription),
				ExpectError: errorText("Publication Not on the Publisher", `has no publication "pub_typo"`, "Nothing was created."),
			},
			{
				PreConfig: insert(3),
				Config:    config(`["pub_there"]`, ""),
				Check:     resource.ComposeTestCheckFunc(nothingMade, waitRows(t, f.sub, "postgres", "t1", 3)),
			},
		},
	})
}
