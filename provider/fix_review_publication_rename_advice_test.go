package provider

import (
	"fmt"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
)

// Review of fa6ce3a (a repro that passes: it shows the fault). The refusal
// to rename a publication a subscription streams now says to reference the
// publication's name attribute "so that Terraform changes the subscription
// first", and that running the command again works. Here the subscription
// already references it: Terraform updates a dependency before its
// dependents, so the rename comes first and is refused, on every run, with
// that same advice. The advice fits only a destroy.
func TestAccReviewPublicationRenameAdvice(t *testing.T) {
	topo := testAccTopology(t)
	f := newSubscriptionFixture(t, topo.Primary, "sub_review_ren", "", nil)
	config := func(pub string) string {
		return serverProvider("pgrpublisher", f.pub) + serverProvider("pgrsubscriber", f.sub) + fmt.Sprintf(`
resource "pgreplication_publication" "p" {
  provider = pgrpublisher
  database = "sub_review_ren"
  name     = %q
  tables   = { "public.t1" = {} }
}
resource "pgreplication_subscription" "this" {
  provider     = pgrsubscriber
  name         = "sub_review_ren"
  conninfo     = %q
  publications = [pgreplication_publication.p.name]
}
`, pub, f.conninfo(""))
	}
	refused := errorText("Publication In Use", "reference", "its name attribute instead", "so that Terraform changes the subscription", "running the same command again works")
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccMultiServerFactories,
		Steps: []resource.TestStep{
			{Config: config("pub_review_a"), Check: waitRows(t, f.sub, "postgres", "t1", 0)},
			{Config: config("pub_review_b"), ExpectError: refused},
			{Config: config("pub_review_b"), ExpectError: refused}, // "running the same command again works": it does not
			{Config: config("pub_review_a")},
		},
	})
}
