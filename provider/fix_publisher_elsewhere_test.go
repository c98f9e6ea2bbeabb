package provider

import (
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// A subscription's conninfo naming a loopback address or a Unix socket
// means the subscriber's own machine, but the plan's probe connects from
// Terraform's. When the provider reaches the subscriber at an address that
// is not local, the probe may check another server than the one the
// subscriber will stream from: what it finds warns, never refuses. Here the
// subscriber is reached at this machine's own non-loopback address and the
// conninfo names 127.0.0.1, where a server with wal_level = replica
// listens: on the old code the plan failed with "Publisher Needs wal_level
// = logical".
func TestAccSubscription_loopbackPublisherOfRemoteSubscriberWarns(t *testing.T) {
	testAccPreCheck(t)
	ip := outboundAddress(t)
	sub := routertest.Start(t, routertest.WithStandbys(0), routertest.WithSetting("listen_addresses", "127.0.0.1,"+ip)).Primary
	trustHBA(t, sub, "host all all "+ip+"/32 trust")
	pub := routertest.Start(t, routertest.WithStandbys(0), routertest.WithSetting("wal_level", "replica")).Primary
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config: providerBlockAt("", ip, sub.Port, "postgres", "postgres", "disable") + fmt.Sprintf(`
resource "pgreplication_subscription" "this" {
  name         = "sub_loopback_elsewhere"
  conninfo     = "host=127.0.0.1 port=%d user=postgres dbname=postgres"
  publications = ["pub_a"]
}
`, pub.Port),
			PlanOnly:           true,
			ExpectNonEmptyPlan: true,
		}},
	})
}

// publisherMayDiffer: only a local publisher host seen from a provider
// that reaches the subscriber at a non-local address.
func TestPublisherMayDiffer(t *testing.T) {
	for _, tc := range []struct {
		subscriber, conninfo string
		differs              bool
	}{
		{"db2.example", "host=127.0.0.1 port=5432 user=r", true},
		{"db2.example", "host=/var/run/postgresql user=r", true},
		{"db2.example", "host=localhost user=r", true},
		{"db2.example", "host=db1.example hostaddr=::1 user=r", true},
		{"db2.example", "host=db1.example,127.0.0.2 user=r", true},
		{"db2.example", "host=db1.example user=r", false},
		{"127.0.0.1", "host=127.0.0.1 port=5433 user=r", false},
		{"/var/run/postgresql", "host=localhost user=r", false},
	} {
		s := newServer(connSettings{Host: tc.subscriber, Port: 5432, Username: "postgres", Database: "postgres"})
		why := publisherMayDiffer(s, tc.conninfo)
		if (why != "") != tc.differs {
			t.Errorf("subscriber at %s, conninfo %q: publisherMayDiffer = %q, want a reason: %v", tc.subscriber, tc.conninfo, why, tc.differs)
		}
		if why != "" && !strings.Contains(why, tc.subscriber) {
			t.Errorf("the reason %q does not name the subscriber's address %s", why, tc.subscriber)
		}
	}
}

// outboundAddress is an IPv4 address of this machine that is not loopback,
// or skips the test.
func outboundAddress(t *testing.T) string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
			return n.IP.String()
		}
	}
	t.Skip("this machine has no IPv4 address but loopback")
	return ""
}
