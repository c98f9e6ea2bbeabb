package provider

import (
	"fmt"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
)

// A provider configured from another resource's result that is unknown in
// this plan (that resource is replaced) cannot refresh the objects it
// manages: the plan fails saying which provider arguments are unknown and
// how to go on, and names no server address. Before, it said "Cannot
// Connect to PostgreSQL … on 127.0.0.1:5432": a port that was not the
// configured one (the unknown port's default) and no way out.
func TestAccProvider_unknownConfigurationSaysWhatToDo(t *testing.T) {
	topo := testAccTopology(t)
	config := func(generation int) string {
		return fmt.Sprintf(`
resource "terraform_data" "port" {
  input            = %d
  triggers_replace = %d
}
provider "pgreplication" {
  host     = %q
  port     = terraform_data.port.output
  username = "postgres"
  database = "postgres"
  sslmode  = "disable"
}
resource "pgreplication_replication_slot" "this" {
  name = "red_unknown_provider"
  type = "physical"
}
`, topo.Primary.Port, generation, topo.Primary.Host)
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy:             checkSlotsDropped(t, topo.Primary, "red_unknown_provider"),
		Steps: []resource.TestStep{
			{Config: config(1)},
			{
				Config:      config(2),
				ExpectError: errorText("Provider Configuration Not Known Yet", "The arguments port of the pgreplication provider configuration are known only during apply", "terraform apply -target="),
			},
			{Config: config(1), PlanOnly: true},
		},
	})
}

// A provider whose sslmode requires TLS, against a server that does not
// offer it, is told so and what to change. Before, the fix under pgx's
// "tls error: server refused TLS connection" was that of a server that
// never answered: check the host, the port and the firewall.
func TestAccProvider_tlsRefusedSaysSo(t *testing.T) {
	topo := testAccTopology(t)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config: providerBlockAt("", topo.Primary.Host, topo.Primary.Port, "postgres", "postgres", "require") + `
data "pgreplication_server" "this" {}
`,
			ExpectError: errorText("Cannot Connect to PostgreSQL", fmt.Sprintf("%s:%d answered, but does not offer TLS", topo.Primary.Host, topo.Primary.Port),
				`sslmode = "require" requires it`, "set the provider's sslmode to prefer or disable"),
		}},
	})
}
