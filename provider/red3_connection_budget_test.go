package provider

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	tfresource "github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/jackc/pgx/v5"
)

// A role with CONNECTION LIMIT 2 applies publications in three databases
// at once. Each database has its own pool, and each pool was sized alone
// from what the limit left when it was made (2, since the other pools had
// no connection yet), so together they opened more than the role may: the
// server refused the third connection (53300, too many connections for
// role) and the apply stopped halfway, some publications made and some not.
// One budget per server and role, shared by all its pools, keeps the total
// within the limit: a pool that needs a connection while the others hold
// them all closes their idle ones, or waits for one to be returned.
func TestAccProvider_roleConnectionLimitAcrossDatabases(t *testing.T) {
	topo := testAccTopology(t)
	const role, perDB = "tfacc_red3_budget", 6
	dbs := []string{"tfacc_red3_budget_a", "tfacc_red3_budget_b", "tfacc_red3_budget_c"}
	for _, db := range dbs {
		execSQL(t, topo.Primary, "postgres", `DROP DATABASE IF EXISTS `+db+` WITH (FORCE)`)
	}
	execSQL(t, topo.Primary, "postgres", `DROP ROLE IF EXISTS `+role)
	execSQL(t, topo.Primary, "postgres", `CREATE ROLE `+role+` LOGIN CONNECTION LIMIT 2`)
	for _, db := range dbs {
		execSQL(t, topo.Primary, "postgres", `CREATE DATABASE `+db+` OWNER `+role)
	}
	t.Cleanup(func() {
		for _, db := range dbs {
			execSQL(t, topo.Primary, "postgres", `DROP DATABASE IF EXISTS `+db+` WITH (FORCE)`)
		}
		execSQL(t, topo.Primary, "postgres", `DROP ROLE IF EXISTS `+role)
	})

	var cfg strings.Builder
	cfg.WriteString(providerBlock("", topo.Primary, role, dbs[0]))
	for d, db := range dbs {
		for i := range perDB {
			fmt.Fprintf(&cfg, `
resource "pgreplication_publication" "p%d_%d" {
  database = %q
  name     = "tfacc_red3_budget_%d"
}
`, d, i, db, i)
		}
	}
	tfresource.Test(t, tfresource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []tfresource.TestStep{{
			Config: cfg.String(),
			Check: func(*terraform.State) error {
				for _, db := range dbs {
					if n := queryValue[int64](t, topo.Primary, db, `SELECT count(*) FROM pg_publication`); n != perDB {
						return fmt.Errorf("%d publications exist in %s, want %d", n, db, perDB)
					}
				}
				return nil
			},
		}, {
			Config:   cfg.String(),
			PlanOnly: true,
		}},
	})
}

// A connection that finds the budget spent for the whole connect_timeout
// fails naming the role, the server and the fixes, not as a server that
// accepted nothing.
func TestConnectionBudgetSpentSaysSo(t *testing.T) {
	s := newServer(connSettings{Host: "127.0.0.1", Port: 1, Username: "app", Database: "postgres", SSLMode: "disable", ConnectTimeout: 2})
	b := &connBudget{server: s.describe(), role: s.role(), linger: time.Second, limit: 1, held: 1, own: map[string]int{}, freed: make(chan struct{})}
	cfg, err := s.connConfig("postgres")
	if err != nil {
		t.Fatal(err)
	}
	dialed := false
	cfg.DialFunc = b.dialer(func(context.Context, string, string) (net.Conn, error) {
		dialed = true
		return nil, errors.New("dialed")
	})
	start := time.Now()
	_, err = pgx.ConnectConfig(context.Background(), cfg)
	if elapsed := time.Since(start); elapsed > 10*time.Second {
		t.Errorf("the connection waited %s for a place; want about connect_timeout (2s)", elapsed)
	}
	if dialed {
		t.Error("the connection dialed with the budget spent")
	}
	var spent *budgetSpentError
	if !errors.As(err, &spent) {
		t.Fatalf("err = %v; want a budgetSpentError", err)
	}
	for _, want := range []string{`role "app" may hold 1 connections to 127.0.0.1:1`, "connect_timeout"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	fix := s.connectFix(err)
	for _, want := range []string{"127.0.0.1:1", `ALTER ROLE "app" CONNECTION LIMIT`, "-parallelism", "connect_timeout (2 seconds)"} {
		if !strings.Contains(fix, want) {
			t.Errorf("fix %q lacks %q", fix, want)
		}
	}
	if strings.Contains(fix, "No PostgreSQL server accepted") {
		t.Errorf("fix %q says no server accepted the connection", fix)
	}
}
