package provider

import (
	"fmt"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/conninfo"
	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/pgsql"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// The canary passwords of the URI adoption tests. uriCanary has every
// character a URI's userinfo must percent-encode; kvCanary has a quote and a
// backslash, which a keyword/value string escapes, and no space (Terraform's
// urlencode writes a space as "+", which libpq does not decode).
const (
	uriCanary = "canary" + canaryMark + "-uri@/:%?&=#"
	kvCanary  = "canary" + canaryMark + `-kv'q'\b`
)

// uriUserinfo is s percent-encoded for a URI's user or password, as a person
// writes it: every byte but letters, digits and -._~ encoded.
func uriUserinfo(s string) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// Subscriptions created by hand with CONNECTION in URI form
// (postgresql://user:password@host:port/db?…), in keyword/value form with
// quotes and backslashes and the keywords in another order, and in a URI
// that puts the user in the query, are imported into a configuration that
// writes the same connections in the other form: the first plan imports
// them and changes nothing, and the next plan is empty. The provider read
// only keyword/value strings (a URI up to its first "=" as one keyword): a
// URI in the catalog never equalled the configuration, so the plan updated
// conninfo, shown only as "(sensitive value)". A connection that
// differs (an application_name added by hand) plans its update with a
// warning that names the keyword and its values, never the password. The
// passwords (canaries) never reach the TRACE log or an error.
func TestAccAdoption_subscriptionConnectionForms(t *testing.T) {
	testAccPreCheck(t)
	pub := routertest.Start(t, routertest.WithStandbys(0)).Primary
	sub := routertest.Start(t, routertest.WithStandbys(0)).Primary
	execSQL(t, pub, "postgres", `CREATE DATABASE uri_pub`)
	execSQL(t, pub, "uri_pub", `CREATE TABLE t1 (id int PRIMARY KEY); CREATE PUBLICATION pub_uri FOR TABLE t1`)
	execSQL(t, sub, "postgres", `CREATE TABLE t1 (id int PRIMARY KEY)`)

	hand := map[string]string{
		"sub_uri": fmt.Sprintf("postgresql://postgres:%s@127.0.0.1:%d/uri_pub?sslmode=disable&application_name=uri%%20app",
			uriUserinfo(uriCanary), pub.Port),
		"sub_kv": fmt.Sprintf(`dbname = 'uri_pub' password=%s host=127.0.0.1 port=%d user='postgres' sslmode=disable`,
			conninfo.Quote(kvCanary), pub.Port),
		"sub_query": fmt.Sprintf("postgres://127.0.0.1:%d/uri_pub?user=postgres&sslmode=disable", pub.Port),
		"sub_differs": fmt.Sprintf("postgresql://postgres:%s@127.0.0.1:%d/uri_pub?sslmode=disable&application_name=by_hand",
			uriUserinfo(uriCanary), pub.Port),
	}
	for name, connection := range hand {
		execSQL(t, sub, "postgres", fmt.Sprintf(`CREATE SUBSCRIPTION %s CONNECTION %s PUBLICATION pub_uri WITH (copy_data = false)`,
			pgsql.Ident(name), pgsql.Literal(connection)))
	}
	catalog := func(name string) string {
		return queryValue[string](t, sub, "postgres", `SELECT subconninfo FROM pg_subscription WHERE subname = $1`, name)
	}

	t.Setenv("TF_VAR_canary_kv", kvCanary)
	subscription := func(name, connection string) string {
		return fmt.Sprintf(`
import {
  provider = pgreplication.subscriber
  to       = pgreplication_subscription.%[1]s
  id       = "postgres/%[1]s"
}

resource "pgreplication_subscription" "%[1]s" {
  provider     = pgreplication.subscriber
  name         = %[1]q
  conninfo     = "%[2]s"
  publications = ["pub_uri"]
}
`, name, connection)
	}
	base := canaryVariable(t, uriCanary) + `
variable "canary_kv" {
  type      = string
  sensitive = true
}
` + subscriberProvider(sub) +
		subscription("sub_uri", fmt.Sprintf(`sslmode=disable application_name='uri app' port=%d host=127.0.0.1 password='${var.canary_password}' dbname=uri_pub user=postgres`, pub.Port)) +
		subscription("sub_kv", fmt.Sprintf(`postgresql://postgres:${urlencode(var.canary_kv)}@127.0.0.1:%d/uri_pub?sslmode=disable`, pub.Port)) +
		subscription("sub_query", fmt.Sprintf(`postgresql://postgres@127.0.0.1:%d/uri_pub?sslmode=disable`, pub.Port))
	withDiffers := base + subscription("sub_differs",
		fmt.Sprintf(`host=127.0.0.1 port=%d user=postgres dbname=uri_pub sslmode=disable password='${var.canary_password}'`, pub.Port))

	logPath := traceLog(t)
	unchanged := func(names ...string) resource.TestCheckFunc {
		return func(*terraform.State) error {
			for _, name := range names {
				if got := catalog(name); got != hand[name] {
					return fmt.Errorf("adopting %s changed its connection", name)
				}
			}
			return nil
		}
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config:           base,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{expectImportsOnly(3)}},
				Check:            unchanged("sub_uri", "sub_kv", "sub_query"),
			},
			{
				Config:           base,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
				Check:            unchanged("sub_uri", "sub_kv", "sub_query"),
			},
			{
				// A bad percent-encoding is refused at plan, without the
				// password next to it. The password itself is encoded, so
				// only "%zz" is wrong.
				Config: base + fmt.Sprintf(`
resource "pgreplication_subscription" "sub_bad" {
  provider     = pgreplication.subscriber
  name         = "sub_bad"
  conninfo     = "postgresql://postgres:${urlencode(var.canary_password)}%%zz@127.0.0.1:%d/uri_pub"
  publications = ["pub_uri"]
}
`, pub.Port),
				ExpectError: errorWithout("Invalid Connection String", "an invalid percent-encoding"),
			},
			{
				Config: withDiffers,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("pgreplication_subscription.sub_differs", plancheck.ResourceActionUpdate),
					plancheck.ExpectResourceAction("pgreplication_subscription.sub_uri", plancheck.ResourceActionNoop),
					plancheck.ExpectResourceAction("pgreplication_subscription.sub_kv", plancheck.ResourceActionNoop),
					plancheck.ExpectResourceAction("pgreplication_subscription.sub_query", plancheck.ResourceActionNoop),
				}},
				Check: resource.ComposeTestCheckFunc(
					unchanged("sub_uri", "sub_kv", "sub_query"),
					func(*terraform.State) error {
						p, err := conninfo.Parse(catalog("sub_differs"))
						if err != nil || p["application_name"] != "" || p["password"] != uriCanary {
							return fmt.Errorf("sub_differs: the apply did not write the configured connection (application_name %q)", p["application_name"])
						}
						return nil
					},
				),
			},
			{
				Config:           withDiffers,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
			},
		},
	})
	checkLogHasNo(t, logPath, append(append(canaryParts(uriCanary), canaryParts(kvCanary)...), uriUserinfo(uriCanary)),
		"Subscription Connection Changes", "ALTER SUBSCRIPTION")
	// The warning names the keyword that differs and both its values.
	if !logHasEntry(t, logPath, "Subscription Connection Changes", "sub_differs", "application_name", "by_hand") {
		t.Error("no warning \"Subscription Connection Changes\" naming sub_differs and application_name \"by_hand\" in the TRACE log")
	}
}

// A standby whose primary_conninfo someone wrote as a URI, password
// percent-encoded and the other keywords in the query, is imported into a
// configuration with the same connection in attributes: the first plan
// imports it and changes nothing, and the next plan is empty. Read took the
// URI up to its first "=" for one keyword, so the import planned every
// attribute's change, and primary_conninfo_params, which is not sensitive,
// showed that keyword: the user and the percent-encoded password. The
// password never reaches the plan (but as primary_password), nor the TRACE
// log. An apply that then changes another setting keeps primary_conninfo's
// text: rewritten in keyword/value form, it restarted the WAL receiver.
func TestAccAdoption_standbyConninfoURI(t *testing.T) {
	testAccPreCheck(t)
	topo := routertest.Start(t, routertest.WithStandbys(1)) // reconfigured: not the shared one
	standby := topo.Standbys[0]
	uri := fmt.Sprintf("postgresql://postgres:%s@%s:%d/?sslmode=disable&application_name=replica%%2D1&keepalives_idle=30",
		uriUserinfo(uriCanary), topo.Primary.Host, topo.Primary.Port)
	alterSystemByHand(t, standby, "primary_conninfo", uri)
	if err := waitStreamingFrom(standby, topo.Primary.Port); err != nil {
		t.Fatal(err)
	}
	logPath := traceLog(t)
	configWith := func(extra string) string {
		return canaryVariable(t, uriCanary) + standbyConfig(topo, `  primary_password = var.canary_password
  application_name = "replica-1"
  primary_conninfo_params = { keepalives_idle = "30" }`+extra) + `
import {
  provider = pgreplication.standby1
  to       = pgreplication_standby.this
  id       = "standby"
}
`
	}
	config := configWith("")
	receiver := func() int64 {
		return queryValue[int64](t, standby, "postgres", `SELECT coalesce((SELECT pid FROM pg_stat_wal_receiver), 0)`)
	}
	var pid int64
	unchanged := func(*terraform.State) error {
		if got := queryValue[string](t, standby, "postgres", "SHOW primary_conninfo"); got != uri {
			return fmt.Errorf("adopting the standby changed its primary_conninfo")
		}
		return nil
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: config,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					planHasNo(uriUserinfo(uriCanary), "keepalives_idle"), expectImportsOnly(1),
				}},
				Check: unchanged,
			},
			{
				Config:           config,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
				Check:            unchanged,
			},
			{
				// Another setting changes: primary_conninfo, the same
				// connection, keeps its text, and the WAL receiver streams on
				// (a new text restarts it).
				PreConfig: func() { pid = receiver() },
				Config:    configWith("\n  hot_standby_feedback = true"),
				Check: func(s *terraform.State) error {
					if err := unchanged(s); err != nil {
						return err
					}
					if got := receiver(); got != pid || pid == 0 {
						return fmt.Errorf("the WAL receiver was restarted (pid %d, then %d)", pid, got)
					}
					return nil
				},
			},
		},
	})
	checkLogHasNo(t, logPath, append(canaryParts(uriCanary), uriUserinfo(uriCanary)), "primary_conninfo", "hot_standby_feedback")
}
