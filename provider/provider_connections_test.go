package provider

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	tfresource "github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/jackc/pgx/v5"
)

// One provider instance opens at most max_connections connections per
// database, however many resources it manages: Terraform's default
// parallelism of 10 creates and refreshes these 40 publications
// concurrently, and a watcher samples pg_stat_activity throughout.
func TestAccProvider_boundedConnections(t *testing.T) {
	topo := testAccTopology(t)
	const db, resources, maxConns = "tfacc_conn_bound", 40, 2
	execSQL(t, topo.Primary, "postgres", `DROP DATABASE IF EXISTS `+db)
	execSQL(t, topo.Primary, "postgres", `CREATE DATABASE `+db)

	var cfg strings.Builder
	fmt.Fprintf(&cfg, `
provider "pgreplication" {
  host            = %q
  port            = %d
  username        = "postgres"
  database        = %q
  sslmode         = "disable"
  max_connections = %d
}
`, topo.Primary.Host, topo.Primary.Port, db, maxConns)
	for i := range resources {
		fmt.Fprintf(&cfg, `
resource "pgreplication_publication" "p%d" {
  name = "tfacc_conn_bound_%d"
}
`, i, i)
	}

	var (
		mu   sync.Mutex
		peak int
	)
	conn, err := pgx.Connect(context.Background(), topo.Primary.DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	watch := func(ctx context.Context) {
		for ctx.Err() == nil {
			var n int
			err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND application_name = 'terraform-provider-pgreplication'`, db).Scan(&n)
			if err == nil {
				mu.Lock()
				peak = max(peak, n)
				mu.Unlock()
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); watch(ctx) }()

	tfresource.Test(t, tfresource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []tfresource.TestStep{{
			Config: cfg.String(),
			Check: func(*terraform.State) error {
				if n := queryValue[int64](t, topo.Primary, db, `SELECT count(*) FROM pg_publication WHERE pubname LIKE 'tfacc_conn_bound_%'`); n != resources {
					return fmt.Errorf("%d publications exist, want %d", n, resources)
				}
				return nil
			},
		}},
	})
	stop()
	wg.Wait()
	if peak == 0 {
		t.Fatal("the watcher never saw the provider's connections: the check proves nothing")
	}
	if peak > maxConns {
		t.Errorf("the provider held %d connections to %s at once; max_connections is %d", peak, db, maxConns)
	}
	t.Logf("peak connections for %d resources: %d (max_connections %d)", resources, peak, maxConns)
}
