package provider

import (
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

// A connection keyword that libpq 18 does not have is refused at plan on a
// subscriber of PostgreSQL 18 or older, or of a version the plan does not
// know, and only warned of on a newer one, whose libpq may have it (a
// keyword of libpq 19, here "future_keyword"): the subscriber checks the
// keywords itself when it stores the connection. On the old code
// ValidateConfig refused it whatever the subscriber (Params.Check).
func TestSubscription_provresUnknownKeywordBySubscriberVersion(t *testing.T) {
	const connection = "host=db sslmode=disable future_keyword=1 password=s3cret"
	for _, c := range []struct {
		facts *serverFacts
		error bool
		says  string
	}{
		{nil, true, `"future_keyword" is not a libpq connection keyword`},
		{&serverFacts{VersionNum: 150010}, true, `"future_keyword" is not a libpq connection keyword`},
		{&serverFacts{VersionNum: 180001}, true, "libpq 18's keywords"},
		{&serverFacts{VersionNum: 190000}, false, `"future_keyword" is not a keyword of libpq 18, which the provider knows; the subscriber runs PostgreSQL 19`},
	} {
		var diags diag.Diagnostics
		refuseUnknownKeyword(types.StringValue(connection), c.facts, &diags)
		if len(diags) != 1 || diags.HasError() != c.error {
			t.Errorf("%+v: diagnostics %v, want one (error: %v)", c.facts, diags, c.error)
			continue
		}
		if d := diags[0].Detail(); !strings.Contains(d, c.says) || strings.Contains(d, "s3cret") {
			t.Errorf("%+v: %q does not say %q, or quotes the password", c.facts, d, c.says)
		}
	}
	var diags diag.Diagnostics
	refuseUnknownKeyword(types.StringValue("host=db sslkeylogfile=/tmp/k"), &serverFacts{VersionNum: 180001}, &diags)
	if len(diags) != 0 {
		t.Errorf("a keyword of libpq 18 on PostgreSQL 18: %v, want nothing", diags)
	}
}
