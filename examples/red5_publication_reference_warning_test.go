package examples_test

import (
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
	dir := configDir(t, map[string]server{"pub": {pub, "postgres"}, "sub": {sub, "postgres"}}, pubSubHCL(pub, "red5_ref", ""))
	out := cli.run(t, dir, 2, tfArgs("plan", "-detailed-exitcode")...)
	if strings.Contains(out, "Publication Not on the Publisher") {
		t.Errorf("the first plan of a subscription that references the publication this apply creates warns that the "+
			"publisher lacks it:\n%s", lastLines(out, 30))
	}
	cli.run(t, dir, 0, tfArgs("apply")...)
}
