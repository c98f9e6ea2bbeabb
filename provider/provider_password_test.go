package provider

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// Against a server that checks the password (scram-sha-256 for one role),
// the provider's password authenticates, and a wrong one fails with an
// error that names the server, the cause and the fix, and never the
// password: not in the diagnostic, not in the TRACE log.
func TestAccProvider_password(t *testing.T) {
	const role, password = "tfacc_pw", "s3cret-pw"
	const wrong = "wrong" + canaryMark + "-provider-pw 'q' \\b"
	primary := passwordPrimary(t, role, "", password)
	logPath := traceLog(t)
	variable := canaryVariable(t, wrong)
	config := func(pw string) string {
		return variable + fmt.Sprintf(`
provider "pgreplication" {
  host     = %q
  port     = %d
  username = %q
  password = %s
  database = "postgres"
  sslmode  = "disable"
}
data "pgreplication_server" "this" {}
`, primary.Host, primary.Port, role, pw)
	}
	server := fmt.Sprintf("127.0.0.1:%d", primary.Port)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: config(fmt.Sprintf("%q", password)),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("data.pgreplication_server.this", tfjsonpath.New("in_recovery"), knownvalue.Bool(false)),
				},
			},
			{
				Config: config("var.canary_password"),
				// The error names the server, the cause (the server's
				// message and SQLSTATE) and what to check.
				ExpectError: errorWithout("Cannot Connect to PostgreSQL", server, "password authentication failed", "28P01",
					server+` refused the password of the provider's role "tfacc_pw"`, "Check the provider's username and password"),
			},
		},
	})
	checkLogHasNo(t, logPath, canaryParts(wrong), "Cannot Connect to PostgreSQL", "password authentication failed")
}

// passwordPrimary starts a primary of its own with passwordRole's role.
func passwordPrimary(t *testing.T, role, attributes, password string) *routertest.Node {
	t.Helper()
	testAccPreCheck(t)
	n := routertest.Start(t, routertest.WithStandbys(0)).Primary
	passwordRole(t, n, role, attributes, password)
	return n
}

// passwordRole creates role on n (LOGIN with attributes), which must give
// password there, and clears the environment's passwords (PGPASSWORD, the
// passfile), so that only the one the provider is given can authenticate.
func passwordRole(t *testing.T, n *routertest.Node, role, attributes, password string) {
	t.Helper()
	execSQL(t, n, "postgres", "SET password_encryption = 'scram-sha-256'; CREATE ROLE "+role+" LOGIN "+attributes+" PASSWORD '"+password+"'")
	if err := n.RequirePassword(context.Background(), role); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PGPASSWORD", "")
	t.Setenv("PGPASSFILE", os.DevNull)
}

// A role that may not log in is refused whatever the password (SQLSTATE
// 28000): the error says which role and the statement that lets it.
func TestAccProvider_roleCannotLogIn(t *testing.T) {
	topo := testAccTopology(t)
	const role = "tfacc_nologin"
	execSQL(t, topo.Primary, "postgres", "CREATE ROLE "+role+" NOLOGIN")
	t.Cleanup(func() { execSQL(t, topo.Primary, "postgres", "DROP ROLE "+role) })
	server := fmt.Sprintf("127.0.0.1:%d", topo.Primary.Port)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config: providerConfigAs("", topo.Primary, role) + `data "pgreplication_server" "this" {}`,
			ExpectError: errorWithout("Cannot Connect to PostgreSQL", server, `role "tfacc_nologin" is not permitted to log in`, "28000",
				server+` does not let the provider's role "tfacc_nologin" connect`, `ALTER ROLE "tfacc_nologin" LOGIN`),
		}},
	})
}

// …and never the password: the provider's diagnostics are built from
// connection errors that pgx formats without it.
func TestConnectErrorHasNoPassword(t *testing.T) {
	s := newServer(connSettings{Host: "127.0.0.1", Port: 1, Username: "u", Password: "s3cret-pw", Database: "postgres", SSLMode: "disable", ConnectTimeout: 2})
	var diags diag.Diagnostics
	if p := s.PoolOrDiag(context.Background(), "", &diags); p != nil {
		err := p.Ping(context.Background())
		if err == nil {
			t.Fatal("connected to port 1")
		}
		if regexp.MustCompile(`s3cret`).MatchString(err.Error()) {
			t.Errorf("connection error leaks the password: %v", err)
		}
	}
	for _, x := range diags {
		if regexp.MustCompile(`s3cret`).MatchString(x.Detail()) {
			t.Errorf("diagnostic leaks the password: %s", x.Detail())
		}
	}
}

// The provider connects lazily, on a handler's first statement; whichever
// handler that is, a server the provider cannot reach or log in to is
// reported as "Cannot Connect to PostgreSQL", naming the database, the
// server, the cause and the fix, and never the password: for a data source,
// a resource's refresh and an import, against an address where nothing
// listens and a server that refuses the password.
func TestAccProvider_cannotConnect(t *testing.T) {
	const role, password = "tfacc_connect", "connect-Pw-1"
	const wrong = "wrong" + canaryMark + "-connect-pw"
	primary := passwordPrimary(t, role, "REPLICATION", password)
	logPath := traceLog(t)
	variable := canaryVariable(t, wrong)
	provider := func(port int, pw string) string {
		return variable + fmt.Sprintf(`
provider "pgreplication" {
  host            = "127.0.0.1"
  port            = %d
  username        = %q
  password        = %s
  database        = "postgres"
  sslmode         = "disable"
  connect_timeout = 2
}
`, port, role, pw)
	}
	slot := func(name string) string {
		return fmt.Sprintf(`
resource "pgreplication_replication_slot" "this" {
  name = %q
  type = "physical"
}
`, name)
	}
	server := fmt.Sprintf("127.0.0.1:%d", primary.Port)
	for _, c := range []struct {
		name   string
		port   int
		server string   // host:port the error names
		want   []string // the cause and the fix, in order
	}{{
		name:   "unreachable",
		port:   1,
		server: "127.0.0.1:1",
		want:   []string{"connection refused", "No PostgreSQL server accepted a connection at 127.0.0.1:1", "Check the provider's host and port"},
	}, {
		name:   "password_refused",
		port:   primary.Port,
		server: server,
		want: []string{"password authentication failed", "28P01", server + ` refused the password of the provider's role "tfacc_connect"`,
			"Check the provider's username and password"},
	}} {
		failing := provider(c.port, "var.canary_password")
		want := errorWithout(append([]string{"Cannot Connect to PostgreSQL", `The provider cannot connect to database "postgres" on ` + c.server}, c.want...)...)
		t.Run(c.name, func(t *testing.T) {
			t.Run("data_source", func(t *testing.T) {
				resource.Test(t, resource.TestCase{
					ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
					Steps: []resource.TestStep{{
						Config:      failing + `data "pgreplication_server" "this" {}`,
						ExpectError: want,
					}},
				})
			})
			t.Run("resource_refresh", func(t *testing.T) {
				good := provider(primary.Port, fmt.Sprintf("%q", password)) + slot("connect_"+c.name)
				resource.Test(t, resource.TestCase{
					ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
					Steps: []resource.TestStep{
						{Config: good},
						{Config: failing + slot("connect_"+c.name), ExpectError: want},
						{Config: good}, // so that the test's destroy can connect
					},
				})
			})
			t.Run("import", func(t *testing.T) {
				resource.Test(t, resource.TestCase{
					ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
					Steps: []resource.TestStep{{
						Config: failing + slot("connect_import") + `
import {
  to = pgreplication_replication_slot.this
  id = "connect_import"
}
`,
						ExpectError: want,
					}},
				})
			})
		})
	}
	checkLogHasNo(t, logPath, canaryParts(wrong), "Cannot Connect to PostgreSQL", "password authentication failed")
}

// A pooled connection that the server ended since its last use
// (pg_terminate_backend here; a restart or DROP DATABASE … WITH (FORCE) do
// the same) is not handed to a handler's statements: pgxpool pings only a
// connection idle for over a second, so without PoolOrDiag's ping the next
// statement failed with 57P01 (TestAccPublication_databaseDropped flaked
// so, about one run in five).
func TestAccProvider_endedSessionsNotReused(t *testing.T) {
	topo := testAccTopology(t)
	ctx := context.Background()
	// A pool of its own (max_connections is part of the pool's key), so
	// that no other test's sessions are ended.
	s := newServer(connSettings{Host: topo.Primary.Host, Port: int64(topo.Primary.Port), Username: "postgres", Database: "postgres",
		SSLMode: "disable", MaxConnections: 3})
	var diags diag.Diagnostics
	pool := s.PoolOrDiag(ctx, "", &diags)
	if pool == nil {
		t.Fatal(diags)
	}
	// Two sessions in the pool, idle, and ended by the server.
	var pids []int32
	conns := make([]*pgxpool.Conn, 2)
	for i := range conns {
		c, err := pool.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conns[i] = c
		var pid int32
		if err := c.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
			t.Fatal(err)
		}
		pids = append(pids, pid)
	}
	for _, c := range conns {
		c.Release()
	}
	execSQL(t, topo.Primary, "postgres", `SELECT pg_terminate_backend(pid, 5000) FROM unnest($1::int[]) pid`, pids)

	if p := s.PoolOrDiag(ctx, "", &diags); p == nil {
		t.Fatalf("PoolOrDiag after the sessions ended: %v", diags)
	}
	for i := range 2 {
		var one int
		if err := pool.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
			t.Fatalf("statement %d after PoolOrDiag, on a pool whose sessions the server ended: %v", i+1, err)
		}
	}
}

// The in-place slot change runs over a replication connection of its own
// (replicationExec), opened with the provider's password: when the server
// refuses that connection (a role without REPLICATION) and when nothing
// accepts it any more (the address stopped listening after the pool had
// connected), the apply fails naming the slot, the server and the fix, and
// the password is in no diagnostic, no TRACE line and no state.
func TestAccReplicationSlot_replicationConnectionNeverShowsPassword(t *testing.T) {
	testAccPreCheck(t)
	routertest.SkipBelow(t, 17, "failover, the option changed over a replication connection")
	topo := routertest.Start(t, routertest.WithStandbys(0)) // pg_hba.conf changed: not the shared one
	const role = "tfacc_repl_pw"
	const pw = "canary" + canaryMark + "-repl-pw"
	execSQL(t, topo.Primary, "postgres", "SET password_encryption = 'scram-sha-256'; CREATE ROLE "+role+" LOGIN PASSWORD '"+pw+"'")
	if err := topo.Primary.RequirePassword(context.Background(), role); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PGPASSWORD", "")
	t.Setenv("PGPASSFILE", os.DevNull)
	logPath := traceLog(t)
	variable := canaryVariable(t, pw)
	// One connection through the proxy, the pool's (max_connections = 1):
	// the replication connection after it finds nothing listening.
	proxy := startRecordingProxy(t, topo.Primary.Port, 1)
	provider := func(username string, port int) string {
		password := ""
		if username == role {
			password = "password = var.canary_password"
		}
		return variable + fmt.Sprintf(`
provider "pgreplication" {
  host            = "127.0.0.1"
  port            = %d
  username        = %q
  %s
  database        = "postgres"
  sslmode         = "disable"
  connect_timeout = 2
  max_connections = 1
}
`, port, username, password)
	}
	slot := func(failover bool) string {
		return fmt.Sprintf(`
resource "pgreplication_replication_slot" "this" {
  name     = "repl_canary"
  type     = "logical"
  database = "postgres"
  plugin   = "pgoutput"
  failover = %t
}
`, failover)
	}
	server := fmt.Sprintf("127.0.0.1:%d", topo.Primary.Port)
	noCanary := stateHasNo(canaryParts(pw))
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{Config: provider("postgres", topo.Primary.Port) + slot(false), Check: noCanary},
			{
				Config: provider(role, topo.Primary.Port) + slot(true),
				ExpectError: errorWithout("Cannot Change Replication Slot", `Setting failover = true (the server has false) on replication slot "repl_canary" on `+server,
					"over a replication connection", "permission denied to start WAL sender", "REPLICATION attribute",
					`ALTER ROLE "tfacc_repl_pw" REPLICATION`),
			},
			{
				Config: provider(role, proxy.port) + slot(true),
				ExpectError: errorWithout("Cannot Change Replication Slot", fmt.Sprintf(`on replication slot "repl_canary" on 127.0.0.1:%d`, proxy.port),
					"connection refused", fmt.Sprintf("No PostgreSQL server accepted a connection at 127.0.0.1:%d", proxy.port),
					"Check the provider's host and port"),
			},
			{
				PreConfig: func() {
					if n := len(proxy.startups()); n != 1 {
						t.Errorf("the proxy accepted %d connections, want 1 (the pool's): the refused one was not the replication connection", n)
					}
				},
				Config: provider("postgres", topo.Primary.Port) + slot(false),
				Check:  noCanary,
			},
		},
	})
	checkLogHasNo(t, logPath, canaryParts(pw), "Cannot Change Replication Slot", "permission denied to start WAL sender", "connection refused")
}

// stateHasNo fails when an attribute of a resource in the state holds any
// of secrets.
func stateHasNo(secrets []string) resource.TestCheckFunc {
	return func(s *terraform.State) error {
		for _, m := range s.Modules {
			for addr, r := range m.Resources {
				for k, v := range r.Primary.Attributes {
					for _, secret := range secrets {
						if strings.Contains(v, secret) {
							return fmt.Errorf("the state of %s holds a secret in %s", addr, k)
						}
					}
				}
			}
		}
		return nil
	}
}

// A server that stops answering (SIGSTOP) while the pool holds an idle
// connection to it: the next handler's PoolOrDiag pings that connection,
// and the ping is bounded like a connection (connect_timeout, 2s here),
// then so is the new connection it tries: "Cannot Connect to PostgreSQL"
// within a few seconds. Before, the ping had the handler's context, which
// has no deadline, and waited as long as the server stayed frozen.
func TestAccProvider_frozenServerFailsPoolOrDiag(t *testing.T) {
	testAccPreCheck(t)
	topo := routertest.Start(t, routertest.WithStandbys(0)) // frozen: not the shared one
	s := newServer(connSettings{Host: topo.Primary.Host, Port: int64(topo.Primary.Port), Username: "postgres", Database: "postgres",
		SSLMode: "disable", ConnectTimeout: 2})
	ctx := context.Background()
	var diags diag.Diagnostics
	pool := s.PoolOrDiag(ctx, "", &diags)
	if pool == nil {
		t.Fatal(diags)
	}
	if _, err := pool.Exec(ctx, "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	if err := topo.Primary.Freeze(); err != nil {
		t.Fatal(err)
	}
	thawed := false
	thaw := func() {
		if !thawed {
			thawed = true
			if err := topo.Primary.Thaw(); err != nil {
				t.Error(err)
			}
		}
	}
	defer thaw()
	time.Sleep(1100 * time.Millisecond) // idle for over a second: pgxpool pings it
	start := time.Now()
	done := make(chan diag.Diagnostics, 1)
	go func() {
		var diags diag.Diagnostics
		s.PoolOrDiag(ctx, "", &diags)
		done <- diags
	}()
	select {
	case diags = <-done:
	case <-time.After(60 * time.Second):
		thaw() // lets the hung ping end
		<-done
		t.Fatalf("PoolOrDiag on a frozen server had not returned after 60s")
	}
	elapsed := time.Since(start)
	t.Logf("PoolOrDiag returned after %s: %v", elapsed.Round(time.Millisecond), diags)
	if !diags.HasError() || diags[0].Summary() != "Cannot Connect to PostgreSQL" {
		t.Fatalf("PoolOrDiag on a frozen server: %v; want Cannot Connect to PostgreSQL", diags)
	}
	// The ping's 2s, then each connection attempt's 2s; the rest is a
	// busy machine's margin.
	if elapsed > 30*time.Second {
		t.Errorf("PoolOrDiag took %s on a frozen server; want about connect_timeout (2s) per attempt", elapsed)
	}
}
