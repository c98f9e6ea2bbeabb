package provider

import (
	"fmt"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
)

// A keyword that libpq added after the subscriber's major version is
// warned of at plan: the subscriber checks the keywords with the libpq it
// loads, and its own build's, or its system's of that version, refuses it
// (measured: PostgreSQL 17 with its own libpq refuses sslkeylogfile, 18's;
// Debian 12's PostgreSQL 15 with libpq5 15 refuses require_auth, 16's). On
// the old code the plan said nothing and the apply failed.
func TestSubscription_provreviewNewerKeywordWarned(t *testing.T) {
	for _, c := range []struct {
		connection string
		major      int
		says       string // "" for no diagnostic
	}{
		{"host=db sslkeylogfile=/tmp/k password=s3cret", 17, `"sslkeylogfile" is a keyword of libpq 18 and later; the subscriber runs PostgreSQL 17`},
		{"host=db require_auth=scram-sha-256 password=s3cret", 15, `"require_auth" is a keyword of libpq 16 and later; the subscriber runs PostgreSQL 15`},
		{"host=db sslnegotiation=direct sslmode=require", 16, `"sslnegotiation" is a keyword of libpq 17`},
		{"host=db sslnegotiation=direct sslmode=require", 17, ""},
		{"host=db require_auth=scram-sha-256", 16, ""},
		{"host=db sslkeylogfile=/tmp/k", 18, ""},
	} {
		var diags diag.Diagnostics
		refuseUnknownKeyword(types.StringValue(c.connection), &serverFacts{VersionNum: c.major*10000 + 1}, &diags)
		if c.says == "" {
			if len(diags) != 0 {
				t.Errorf("%s on %d: %v, want nothing", c.connection, c.major, diags)
			}
			continue
		}
		if len(diags) != 1 || diags.HasError() || diags[0].Summary() != "Connection Keyword Newer Than the Subscriber" {
			t.Errorf("%s on %d: %v, want one warning", c.connection, c.major, diags)
			continue
		}
		if d := diags[0].Detail(); !strings.Contains(d, c.says) || strings.Contains(d, "s3cret") {
			t.Errorf("%s on %d: %q does not say %q, or quotes the password", c.connection, c.major, d, c.says)
		}
	}
}

// The apply of such a connection on a subscriber whose libpq refuses it
// fails and leaves nothing: the subscriber of the tests is PostgreSQL 17 (or
// the suite's version) with its own libpq.
func TestAccSubscription_provreviewNewerKeywordApplyFailsCleanly(t *testing.T) {
	topo := testAccTopology(t)
	f := newSubscriptionFixture(t, topo.Primary, "sub_pub_provrev_kw", `CREATE PUBLICATION pub_kw FOR TABLE t1;`, nil)
	major := queryValue[int](t, f.sub, "postgres", `SELECT current_setting('server_version_num')::int`) / 10000
	if major >= 18 {
		t.Skip("every keyword the provider knows is libpq 18's")
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config: subscriberProvider(f.sub) + fmt.Sprintf(`
resource "pgreplication_subscription" "this" {
  provider     = pgreplication.subscriber
  name         = "sub_provrev_kw"
  conninfo     = %q
  publications = ["pub_kw"]
}
`, f.conninfo("sslmode=disable sslkeylogfile=/tmp/provreview_keys")),
			ExpectError: errorText("Cannot Create Subscription", `invalid connection option "sslkeylogfile"`),
		}},
	})
	if n := queryValue[int](t, f.sub, "postgres", `SELECT count(*)::int FROM pg_subscription`); n != 0 {
		t.Errorf("the failed apply left %d subscriptions", n)
	}
}
