package provider

import (
	"fmt"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
)

// Review of fa6ce3a. The refusal to rename a publication a subscription
// streams said to reference the publication's name attribute "so that
// Terraform changes the subscription first", and that running the command
// again works. Here the subscription already references it: Terraform
// updates a dependency before its dependents, so the rename comes first and
// is refused, on every run. The refusal of a rename must advise what works:
// two applies (a publication under the new name, the subscription moved to
// it, then the old one dropped), or re-pointing the subscription first.
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
	refused := errorText("Publication In Use", "A rename cannot be ordered after the subscription's change",
		"running the same command again is refused again", "Rename it in two applies",
		"add a pgreplication_publication under the new name beside this one", "point the subscription at it",
		"then remove this publication", "Or re-point the subscription first")
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccMultiServerFactories,
		Steps: []resource.TestStep{
			{Config: config("pub_review_a"), Check: waitRows(t, f.sub, "postgres", "t1", 0)},
			{Config: config("pub_review_b"), ExpectError: refused},
			{Config: config("pub_review_b"), ExpectError: refused}, // a rerun is refused again, as the advice says
			{Config: config("pub_review_a")},
		},
	})
}
