package provider

import (
	"regexp"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
)

func TestAccServerDataSource_primaryAndStandby(t *testing.T) {
	topo := testAccTopology(t)
	lsn := knownvalue.StringRegexp(regexp.MustCompile(`^[0-9A-F]+/[0-9A-F]+$`))
	sysid := queryValue[string](t, topo.Primary, "postgres", `SELECT system_identifier::text FROM pg_control_system()`)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccMultiServerFactories,
		Steps: []resource.TestStep{{
			Config: topologyProviders(topo) + `
data "pgreplication_server" "primary" {
  provider = pgrprimary
}
data "pgreplication_server" "standby1" {
  provider = pgrstandby1
}
data "pgreplication_server" "standby2" {
  provider = pgrstandby2
}
`,
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue("data.pgreplication_server.primary", tfjsonpath.New("in_recovery"), knownvalue.Bool(false)),
				statecheck.ExpectKnownValue("data.pgreplication_server.standby1", tfjsonpath.New("in_recovery"), knownvalue.Bool(true)),
				statecheck.ExpectKnownValue("data.pgreplication_server.standby2", tfjsonpath.New("in_recovery"), knownvalue.Bool(true)),
				statecheck.ExpectKnownValue("data.pgreplication_server.primary", tfjsonpath.New("wal_level"), knownvalue.StringExact("logical")),
				statecheck.ExpectKnownValue("data.pgreplication_server.primary", tfjsonpath.New("current_lsn"), lsn),
				statecheck.ExpectKnownValue("data.pgreplication_server.standby1", tfjsonpath.New("current_lsn"), lsn),
				statecheck.ExpectKnownValue("data.pgreplication_server.primary", tfjsonpath.New("system_identifier"), knownvalue.StringExact(sysid)),
				// A physical standby is a copy of its primary: same system identifier.
				statecheck.ExpectKnownValue("data.pgreplication_server.standby2", tfjsonpath.New("system_identifier"), knownvalue.StringExact(sysid)),
				statecheck.ExpectKnownValue("data.pgreplication_server.primary", tfjsonpath.New("version_num"), knownvalue.Int64Func(func(v int64) error {
					if v/10000 != int64(topo.Version) {
						return errorf("version_num %d is not PostgreSQL %d", v, topo.Version)
					}
					return nil
				})),
				statecheck.ExpectKnownValue("data.pgreplication_server.primary", tfjsonpath.New("max_wal_senders"), knownvalue.Int64Func(positive)),
				statecheck.ExpectKnownValue("data.pgreplication_server.primary", tfjsonpath.New("max_replication_slots"), knownvalue.Int64Func(positive)),
			},
		}},
	})
}

// A provider whose host is only known during apply (here, the output of
// another resource) must plan: it connects lazily.
func TestAccServerDataSource_lazyConnect(t *testing.T) {
	topo := testAccTopology(t)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config: `
resource "terraform_data" "host" {
  input = "` + topo.Primary.Host + `"
}
provider "pgreplication" {
  host     = terraform_data.host.output
  port     = ` + itoa(topo.Primary.Port) + `
  username = "postgres"
  database = "postgres"
  sslmode  = "disable"
}
data "pgreplication_server" "this" {
  depends_on = [terraform_data.host]
}
`,
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue("data.pgreplication_server.this", tfjsonpath.New("in_recovery"), knownvalue.Bool(false)),
			},
		}},
	})
}

// An unreachable server is reported with its address, the cause, the
// connect_timeout the provider waited and what to check, and without the
// password.
func TestAccServerDataSource_unreachable(t *testing.T) {
	testAccPreCheck(t)
	const pw = "canary" + canaryMark + "-unreachable-pw"
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config: canaryVariable(t, pw) + `
provider "pgreplication" {
  host            = "127.0.0.1"
  port            = 1
  username        = "postgres"
  password        = var.canary_password
  sslmode         = "disable"
  connect_timeout = 2
}
data "pgreplication_server" "this" {}
`,
			ExpectError: errorWithout("Cannot Connect to PostgreSQL", "127.0.0.1:1", "connection refused",
				"No PostgreSQL server accepted a connection at 127.0.0.1:1", "connect_timeout, 2 seconds", "Check the provider's host and port"),
		}},
	})
}
