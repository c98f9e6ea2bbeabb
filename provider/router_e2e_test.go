package provider

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	tfresource "github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// routerConfigForTopology declares the shared topology in a router file, with
// an "analytics" route on the given replica.
func routerConfigForTopology(topo *routertest.Topology, file, analytics string) string {
	node := func(block, name string, n *routertest.Node) string {
		return fmt.Sprintf(`
  %s {
    name     = %q
    host     = %q
    port     = %d
    database = "postgres"
    user     = "postgres"
    sslmode  = "disable"
  }
`, block, name, n.Host, n.Port)
	}
	return unreachableProvider + fmt.Sprintf(`
resource "pgreplication_router_config" "test" {
  path = %q
%s%s%s
  health {
    interval = "200ms"
  }
  route {
    name     = "analytics"
    nodes    = [%q]
    fallback = "error"
  }
}
`, file, node("primary", "primary", topo.Primary), node("replica", "replica-1", topo.Standbys[0]), node("replica", "replica-2", topo.Standbys[1]), analytics)
}

// portTracer remembers the node of the last routing decision.
type portTracer struct {
	mu   sync.Mutex
	node string
}

func (p *portTracer) TraceRoute(_ context.Context, d routerlib.Decision) {
	p.mu.Lock()
	p.node = d.Node
	p.mu.Unlock()
}

func (p *portTracer) last() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.node
}

// routesAsDeclared opens the file Terraform wrote with routerlib and checks,
// by the port of the server that answered, that writes reach the primary,
// plain reads a replica, and the analytics route only the replica it names.
func routesAsDeclared(topo *routertest.Topology, file, analytics string) tfresource.TestCheckFunc {
	return func(*terraform.State) error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		trace := &portTracer{}
		r, err := routerlib.Open(ctx, file, routerlib.WithTracer(trace), routerlib.WithWatch(0))
		if err != nil {
			return fmt.Errorf("routerlib.Open(%s): %w", file, err)
		}
		defer r.Close()
		ports := map[int]string{topo.Primary.Port: "primary", topo.Standbys[0].Port: "replica-1", topo.Standbys[1].Port: "replica-2"}

		var port int
		if err := r.QueryRow(ctx, `INSERT INTO router_e2e DEFAULT VALUES RETURNING inet_server_port()`).Scan(&port); err != nil {
			return fmt.Errorf("write: %w", err)
		}
		if ports[port] != "primary" || trace.last() != "primary" {
			return fmt.Errorf("the write ran on %s (router said %s), want the primary", ports[port], trace.last())
		}
		seen := map[string]bool{}
		for range 6 {
			if err := r.QueryRow(ctx, `SELECT inet_server_port()`).Scan(&port); err != nil {
				return fmt.Errorf("read: %w", err)
			}
			seen[ports[port]] = true
		}
		if seen["primary"] || len(seen) == 0 {
			return fmt.Errorf("plain reads ran on %v, want replicas only", seen)
		}
		for range 4 {
			if err := r.QueryRow(routerlib.Route(ctx, "analytics"), `SELECT inet_server_port()`).Scan(&port); err != nil {
				return fmt.Errorf("analytics read: %w", err)
			}
			if ports[port] != analytics {
				return fmt.Errorf("the analytics route ran on %s, want only %s", ports[port], analytics)
			}
		}
		return nil
	}
}

// The provider writes the file, routerlib routes exactly as it declares, and
// a hand edit of the file shows in the plan as the field that changed.
func TestAccRouterConfig_routerlibRoutesAsDeclared(t *testing.T) {
	topo := testAccTopology(t)
	execSQL(t, topo.Primary, "postgres", `CREATE TABLE IF NOT EXISTS router_e2e (id bigserial PRIMARY KEY)`)
	file := filepath.Join(t.TempDir(), "router.json")
	tfresource.Test(t, tfresource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []tfresource.TestStep{
			{
				Config: routerConfigForTopology(topo, file, "replica-2"),
				Check:  routesAsDeclared(topo, file, "replica-2"),
			},
			{
				// Someone points the analytics route at replica-1 by hand.
				PreConfig: func() {
					editRouterFile(t, file, func(a *artifact.Topology) { a.Routes[0].Nodes = []string{"replica-1"} })
				},
				Config: routerConfigForTopology(topo, file, "replica-2"),
				ConfigPlanChecks: tfresource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						expectDrift(routerConfigAddr, "route", "content", "sha256"),
						expectFieldChange(routerConfigAddr, tfjsonpath.New("route").AtSliceIndex(0).AtMapKey("nodes").AtSliceIndex(0), "replica-1", "replica-2"),
					},
				},
				// Apply put the declaration back: routerlib follows it again.
				Check: routesAsDeclared(topo, file, "replica-2"),
			},
			{
				// A declared change moves the route; routerlib follows the file.
				Config: routerConfigForTopology(topo, file, "replica-1"),
				ConfigPlanChecks: tfresource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction(routerConfigAddr, plancheck.ResourceActionUpdate)},
				},
				Check: routesAsDeclared(topo, file, "replica-1"),
			},
		},
	})
}
