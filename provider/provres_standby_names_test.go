package provider

import (
	"context"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
)

// standby_names that name one standby twice are refused, compared as the
// primary compares them with a standby's application_name: A to Z
// case-insensitively, a double-quoted name too. Checked on PostgreSQL 15
// with two pg_receivewal --synchronous (application_name alpha and BETA):
// FIRST 1 ("ALPHA", beta) gave alpha priority 1 (sync) and BETA priority 2;
// ANY 2 ("ALPHA", "alpha") left alpha the one quorum candidate, so every
// commit would wait for a second. The old check (listvalidator.UniqueValues)
// compared them exactly and let ["a", "A"] through.
func TestSynchronousReplication_provresStandbyNamesDistinct(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		names []string
		at    int // the item refused, -1 for none
		says  []string
	}{
		{[]string{"alpha", "beta"}, -1, nil},
		{[]string{"a b", "a-b", "ä"}, -1, nil}, // only A to Z fold
		{[]string{"replica-1", "Replica-1"}, 1, []string{`"replica-1" (item 1) and "Replica-1" (item 2)`, "differ only in case", "Remove one"}},
		{[]string{"Alpha", "beta", "ALPHA"}, 2, []string{`"Alpha" (item 1) and "ALPHA" (item 3)`}},
		{[]string{"*", "*"}, 1, []string{"the same name"}},
	} {
		elems := make([]attr.Value, len(c.names))
		for i, n := range c.names {
			elems[i] = types.StringValue(n)
		}
		req := validator.ListRequest{Path: path.Root("standby_names"), ConfigValue: types.ListValueMust(types.StringType, elems)}
		var resp validator.ListResponse
		standbyNamesDistinct{}.ValidateList(ctx, req, &resp)
		if c.at < 0 {
			if resp.Diagnostics.HasError() {
				t.Errorf("%q: refused: %v", c.names, resp.Diagnostics)
			}
			continue
		}
		if resp.Diagnostics.ErrorsCount() != 1 {
			t.Errorf("%q: %d errors, want 1: %v", c.names, resp.Diagnostics.ErrorsCount(), resp.Diagnostics)
			continue
		}
		d := resp.Diagnostics.Errors()[0]
		if d.Summary() != "Duplicate Standby Name" {
			t.Errorf("%q: summary %q", c.names, d.Summary())
		}
		for _, s := range c.says {
			if !strings.Contains(d.Detail(), s) {
				t.Errorf("%q: the error does not say %q: %s", c.names, s, d.Detail())
			}
		}
	}
}

// The plan refuses standby names that differ only in case.
// Old code: the plan went on (UniqueValues compares exactly), to a
// synchronous_standby_names of ANY 2 ("replica-1", "REPLICA-1"), which one
// standby fills once.
func TestAccSynchronousReplication_provresStandbyNamesCaseDuplicate(t *testing.T) {
	topo := testAccTopology(t)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config: syncConfig(topo, `
  method            = "any"
  num_sync          = 2
  standby_names     = ["replica-1", "REPLICA-1"]
  allow_unavailable = true
`),
			PlanOnly:    true,
			ExpectError: errorText("Duplicate Standby Name", `"replica-1" (item 1) and "REPLICA-1" (item 2)`, "differ only in case"),
		}},
	})
}
