package examples_test

import (
	"fmt"
	"strings"
	"testing"
)

// The configuration the subscription page recommends, a publication and a
// subscription that references its name (publications =
// [pgreplication_publication.pub.name], "so that Terraform makes it
// first"), draws at its first plan the warning "Publication Not on the
// Publisher ... Apply will refuse it ... Create the publication on the
// publisher first (a pgreplication_publication that this subscription
// references ...)": the name is known at plan (it is the configuration's
// string), the publisher does not have it yet, and the subscription's plan
// cannot see that this same apply creates it first. Every new topology gets
// a warning that says the apply will fail and advises what it already does;
// the apply then succeeds. The plan should warn only of a publication that
// nothing of this apply makes.
func TestRed5ReferencedPublicationWarnsAtPlan(t *testing.T) {
	cli := providerCLI(t)
	pub, sub := twoPrimaries(t, "red5_ref")
	dir := configDir(t, map[string]server{"pub": {pub, "postgres"}, "sub": {sub, "postgres"}}, fmt.Sprintf(`
resource "pgreplication_publication" "pub" {
  provider = pgreplication.pub
  name     = "red5_ref_pub"
  tables   = { "public.red5_ref" = {} }
}

resource "pgreplication_subscription" "sub" {
  provider     = pgreplication.sub
  name         = "red5_ref_sub"
  conninfo     = "host=%s port=%d user=postgres dbname=postgres sslmode=disable"
  publications = [pgreplication_publication.pub.name]
}
`, pub.Host, pub.Port))
	out := cli.run(t, dir, 2, tfArgs("plan", "-detailed-exitcode")...)
	if strings.Contains(out, "Publication Not on the Publisher") {
		t.Errorf("the first plan of a subscription that references the publication this apply creates warns that the "+
			"publisher lacks it:\n%s", lastLines(out, 30))
	}
	cli.run(t, dir, 0, tfArgs("apply")...)
}
