package provider

import (
	"fmt"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// An update that renames a subscription, gives it an owner that is not a
// superuser and a connection without a password runs RENAME, OWNER and
// CONNECTION; PostgreSQL 16 and later refuse the CONNECTION ("password is
// required": the owner is no superuser by then). The three run in one
// transaction, so the refusal leaves the subscription as it was, and the
// next plan with the old configuration is empty. On the old code each ran
// on its own: the failed apply left the subscription renamed and owned by
// sub_owner with the old connection, a half-applied update (whose
// subscription, owned by a role without a password, could not even be
// dropped while it had a slot).
func TestAccSubscription_provreviewUpdateAllOrNothing(t *testing.T) {
	topo := testAccTopology(t)
	routertest.SkipBelow(t, 16, "password_required (15 refuses an owner that is not a superuser at plan: checkOwner)")
	f := newSubscriptionFixture(t, topo.Primary, "sub_pub_atomic", `CREATE PUBLICATION pub_a FOR TABLE t1;`, nil)
	execSQL(t, f.sub, "postgres", `CREATE ROLE sub_owner LOGIN; GRANT CREATE ON DATABASE postgres TO sub_owner; GRANT pg_create_subscription TO sub_owner`)
	config := f.ownedSubscriptionConfig
	withPassword := f.conninfo("password=pw")
	subscriber := func() string { return f.subscriptions(t) }
	before := "sub_atomic postgres " + withPassword
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{Config: config("sub_atomic", withPassword, "postgres")},
			{
				Config: config("sub_atomic_renamed", f.conninfo("application_name=moved"), "sub_owner"),
				ExpectError: errorText("Cannot Alter Subscription", `ALTER SUBSCRIPTION "sub_atomic_renamed" CONNECTION`, "application_name=''moved''",
					`one transaction with RENAME TO "sub_atomic_renamed", OWNER TO "sub_owner"`, "rolled back", "This apply changed nothing",
					"password is required"),
			},
			{
				PreConfig: func() {
					if got := subscriber(); got != before {
						t.Errorf("after the failed update the subscriber has %q, want %q as before", got, before)
					}
				},
				Config:   config("sub_atomic", withPassword, "postgres"),
				PlanOnly: true,
			},
			{
				// With a password the same three statements commit together.
				Config: config("sub_atomic_renamed", f.conninfo("application_name=moved password=pw"), "sub_owner"),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(subscriptionAddr, tfjsonpath.New("id"), knownvalue.StringExact("postgres/sub_atomic_renamed")),
					statecheck.ExpectKnownValue(subscriptionAddr, tfjsonpath.New("owner"), knownvalue.StringExact("sub_owner")),
				},
				Check: func(*terraform.State) error {
					if got, want := subscriber(), "sub_atomic_renamed sub_owner "+f.conninfo("application_name=moved password=pw"); got != want {
						return fmt.Errorf("the subscriber has %q, want %q", got, want)
					}
					return nil
				},
			},
			// A superuser owns it again, so that it can be dropped: the
			// publisher lets sub_owner in without a password (trust).
			{Config: config("sub_atomic_renamed", f.conninfo("application_name=moved password=pw"), "postgres")},
		},
	})
}

// The same on every version before 18, the failing CONNECTION's cause a
// keyword newer than the subscriber's own libpq (planned with a warning):
// a rename and a new owner (a superuser) run in its transaction and are
// rolled back with it. On the old code the subscription was left renamed
// and owned by sub_super.
func TestAccSubscription_provreviewUpdateAllOrNothingNewerKeyword(t *testing.T) {
	topo := testAccTopology(t)
	f := newSubscriptionFixture(t, topo.Primary, "sub_pub_atomic_kw", `CREATE PUBLICATION pub_a FOR TABLE t1;`, nil)
	major := queryValue[int](t, f.sub, "postgres", `SELECT current_setting('server_version_num')::int`) / 10000
	keyword := map[int]string{15: "require_auth=password", 16: "sslnegotiation=postgres", 17: "sslkeylogfile=/tmp/provreview_keys"}[major]
	if keyword == "" {
		t.Skipf("PostgreSQL %d's libpq has every keyword the provider knows", major)
	}
	execSQL(t, f.sub, "postgres", `CREATE ROLE sub_super SUPERUSER LOGIN`)
	config := f.ownedSubscriptionConfig
	subscriber := func() string { return f.subscriptions(t) }
	before := "sub_atomic_kw postgres " + f.conninfo("")
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{Config: config("sub_atomic_kw", f.conninfo(""), "postgres")},
			{
				Config: config("sub_atomic_kw_renamed", f.conninfo(keyword), "sub_super"),
				ExpectError: errorText("Cannot Alter Subscription", `ALTER SUBSCRIPTION "sub_atomic_kw_renamed" CONNECTION`,
					`one transaction with RENAME TO "sub_atomic_kw_renamed", OWNER TO "sub_super"`, "rolled back", "This apply changed nothing",
					"invalid connection option"),
			},
			{
				PreConfig: func() {
					if got := subscriber(); got != before {
						t.Errorf("after the failed update the subscriber has %q, want %q as before", got, before)
					}
				},
				Config:   config("sub_atomic_kw", f.conninfo(""), "postgres"),
				PlanOnly: true,
			},
		},
	})
}

// ownedSubscriptionConfig is a subscription of pub_a by name, connection
// and owner.
func (f subscriptionFixture) ownedSubscriptionConfig(name, connection, owner string) string {
	return subscriberProvider(f.sub) + fmt.Sprintf(`
resource "pgreplication_subscription" "this" {
  provider     = pgreplication.subscriber
  name         = %q
  conninfo     = %q
  publications = ["pub_a"]
  owner        = %q
}
`, name, connection, owner)
}

// subscriptions is each subscription of the subscriber as "name owner
// connection", or "none".
func (f subscriptionFixture) subscriptions(t *testing.T) string {
	return queryValue[string](t, f.sub, "postgres", `SELECT coalesce(string_agg(s.subname || ' ' || r.rolname || ' ' || s.subconninfo, '; '), 'none')
  FROM pg_subscription s JOIN pg_roles r ON r.oid = s.subowner`)
}
