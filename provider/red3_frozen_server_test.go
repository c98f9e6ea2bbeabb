//go:build linux

package provider

import (
	"context"
	"fmt"
	"net"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// red3Bound is how long a CLI command against a server that does not
// answer may take with connect_timeout = 2 and statement_timeout = "2s":
// a pooled connection's ping and a fresh connection each wait
// connect_timeout, a statement statement_timeout and statementGrace.
// A command still running after it is a hang: the test then resumes the
// server, so that the command ends and the test with it.
const red3Bound = 60 * time.Second

// red3Config is a provider for host:port that gives up on a silent server
// quickly, with a canary password that no error may show, and one
// publication.
func red3Config(host string, port int, publications ...string) string {
	cfg := fmt.Sprintf(`
provider "pgreplication" {
  host              = %q
  port              = %d
  username          = "postgres"
  password          = "red3-canary%sZq8"
  database          = "postgres"
  sslmode           = "disable"
  connect_timeout   = 2
  statement_timeout = "2s"
}
`, host, port, canaryMark)
	for _, p := range publications {
		cfg += fmt.Sprintf("\nresource \"pgreplication_publication\" %q {\n  name = %q\n}\n", p, "tfacc_red3_"+p)
	}
	return cfg
}

// A server that stops answering (the whole node frozen with SIGSTOP, as a
// frozen VM or a network black hole; or its postmaster alone, so that new
// connections hang while existing sessions answer) or that is stopped
// fails `terraform plan`, `apply` and `destroy` within a bound the
// provider's connect_timeout and statement_timeout set, naming the server,
// the cause and the fix, never the password; nothing is dropped from the
// state, and once the server is back the plan is empty. The old code failed
// as fast, but told the frozen server's user that nothing accepted the
// connection ("check the host and port, that the server runs and
// listens"), which it did, and the stopped server's nothing about a server
// gone for good, whose objects a destroy can never drop.
func TestAccProvider_frozenServerFailsCommand(t *testing.T) {
	testAccPreCheck(t)
	type pause struct {
		name          string
		stop, restart func(t *testing.T, n *routertest.Node)
		want          func(addr string) *regexp.Regexp // the command's error
	}
	silent := func(addr string) *regexp.Regexp {
		return errorWithout("Cannot Connect to PostgreSQL", addr,
			addr+" accepted the connection but did not answer within connect_timeout (2 seconds)", "frozen")
	}
	wholeNode := pause{"node",
		func(t *testing.T, n *routertest.Node) {
			if err := n.Freeze(); err != nil {
				t.Fatal(err)
			}
		},
		thaw, silent,
	}
	postmaster := pause{"postmaster",
		func(t *testing.T, n *routertest.Node) { kill(t, postmasterPID(t, n), syscall.SIGSTOP) },
		func(t *testing.T, n *routertest.Node) { kill(t, postmasterPID(t, n), syscall.SIGCONT) },
		silent,
	}
	stopped := pause{"stopped",
		func(t *testing.T, n *routertest.Node) {
			if err := n.Stop(context.Background()); err != nil {
				t.Fatal(err)
			}
		},
		func(t *testing.T, n *routertest.Node) {
			if err := n.Start(context.Background()); err != nil {
				t.Error(err)
			}
		},
		func(addr string) *regexp.Regexp {
			return errorWithout("Cannot Connect to PostgreSQL", addr, "connection refused",
				"No PostgreSQL server accepted a connection at "+addr, "If the server is gone for good",
				"terraform state rm <address>")
		},
	}
	for _, p := range []pause{wholeNode, postmaster, stopped} {
		for _, command := range []string{"plan", "apply", "destroy"} {
			t.Run(p.name+"_"+command, func(t *testing.T) {
				topo := routertest.Start(t, routertest.WithStandbys(0)) // frozen: not the shared one
				n := topo.Primary
				addr := fmt.Sprintf("%s:%d", n.Host, n.Port)
				before := red3Config(n.Host, n.Port, "a")
				step := resource.TestStep{Config: before, PlanOnly: true}
				switch command {
				case "apply":
					// Nothing of it is applied: the plan already fails.
					step = resource.TestStep{Config: red3Config(n.Host, n.Port, "a", "b")}
				case "destroy":
					step = resource.TestStep{Config: before, Destroy: true}
				}
				var (
					mu       sync.Mutex
					start    time.Time
					watchdog *time.Timer
					resumed  bool
				)
				resume := func() {
					mu.Lock()
					defer mu.Unlock()
					if !resumed {
						resumed = true
						p.restart(t, n)
					}
				}
				t.Cleanup(resume)
				step.PreConfig = func() {
					// A real command starts a provider process with no
					// connection; in-process, the first step's would be
					// there still, and a stopped postmaster does not stop
					// those.
					closeProcessPools(n.Port)
					p.stop(t, n)
					mu.Lock()
					start = time.Now()
					mu.Unlock()
					watchdog = time.AfterFunc(red3Bound, resume)
				}
				step.ExpectError = p.want(addr)
				resource.Test(t, resource.TestCase{
					ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
					Steps: []resource.TestStep{
						{Config: before},
						step,
						{
							PreConfig: func() {
								watchdog.Stop()
								mu.Lock()
								elapsed, hung := time.Since(start), resumed
								mu.Unlock()
								resume()
								if hung {
									t.Errorf("terraform %s against a server whose %s is stopped did not end within %s", command, p.name, red3Bound)
								}
								t.Logf("terraform %s failed after %s", command, elapsed.Round(100*time.Millisecond))
							},
							// The publication is still in the state and on the server.
							Config:   before,
							PlanOnly: true,
						},
					},
				})
			})
		}
	}
}

// closeProcessPools closes the process's pools to port and forgets them.
func closeProcessPools(port int) {
	processPools.mu.Lock()
	var closing []*pgxpool.Pool
	for k, p := range processPools.m {
		if strings.Contains(k.conninfo, fmt.Sprintf("port='%d'", port)) {
			closing = append(closing, p)
			delete(processPools.m, k)
		}
	}
	processPools.mu.Unlock()
	for _, p := range closing {
		p.Close()
	}
}

// A server that accepts the TCP connection and never says a word (a
// listener that reads nothing) fails the plan after connect_timeout, naming
// its address.
func TestAccProvider_silentListenerFailsPlan(t *testing.T) {
	testAccPreCheck(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c) // held open, never read
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		wg.Wait()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	port := ln.Addr().(*net.TCPAddr).Port
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	start := time.Now()
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config: red3Config("127.0.0.1", port, "a"),
			ExpectError: errorWithout("Cannot Connect to PostgreSQL", addr,
				addr+" accepted the connection but did not answer within connect_timeout (2 seconds)"),
		}},
	})
	if elapsed := time.Since(start); elapsed > red3Bound {
		t.Errorf("the plan against a silent listener took %s", elapsed)
	}
}

// A server that freezes while apply's statement runs (CREATE PUBLICATION
// waits for a table lock another session holds, and then the whole node
// stops): its statement_timeout cannot fire, so the provider's own bound
// ends the statement (statement_timeout + statementGrace), and apply fails
// naming the server, within the bound; once the server is back and the
// lock gone, apply makes the publication.
func TestAccProvider_serverFrozenDuringApply(t *testing.T) {
	testAccPreCheck(t)
	topo := routertest.Start(t, routertest.WithStandbys(0)) // frozen: not the shared one
	n := topo.Primary
	addr := fmt.Sprintf("%s:%d", n.Host, n.Port)
	execSQL(t, n, "postgres", `CREATE TABLE red3_locked (id int PRIMARY KEY)`)
	// statement_timeout longer than red3Config's, so that under load the
	// server's own timeout does not fire before the test has frozen it.
	cfg := strings.Replace(red3Config(n.Host, n.Port), `statement_timeout = "2s"`, `statement_timeout = "5s"`, 1) + `
resource "pgreplication_publication" "locked" {
  name   = "tfacc_red3_locked"
  tables = { "public.red3_locked" = {} }
}
`
	ctx, cancel := context.WithTimeout(context.Background(), 2*red3Bound)
	defer cancel()
	locker, err := n.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu      sync.Mutex
		start   time.Time
		resumed bool
		done    = make(chan struct{})
	)
	resume := func() {
		mu.Lock()
		defer mu.Unlock()
		if !resumed {
			resumed = true
			thaw(t, n)
		}
	}
	t.Cleanup(func() {
		resume()
		<-done
		_ = locker.Close(context.Background())
	})
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				PreConfig: func() {
					if _, err := locker.Exec(ctx, `BEGIN; LOCK TABLE red3_locked IN ACCESS EXCLUSIVE MODE`); err != nil {
						t.Fatal(err)
					}
					// Freeze the node once CREATE PUBLICATION waits for the lock.
					go func() {
						defer close(done)
						watcher, err := n.Connect(ctx)
						if err != nil {
							t.Error(err)
							return
						}
						defer watcher.Close(context.Background())
						for ctx.Err() == nil {
							var waiting bool
							if err := watcher.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query ILIKE 'CREATE PUBLICATION%')`).Scan(&waiting); err != nil {
								t.Error(err)
								return
							}
							if waiting {
								break
							}
							time.Sleep(50 * time.Millisecond)
						}
						if err := n.Freeze(); err != nil {
							t.Error(err)
							return
						}
						mu.Lock()
						start = time.Now()
						mu.Unlock()
						time.AfterFunc(red3Bound, resume)
					}()
				},
				Config:      cfg,
				ExpectError: errorWithout("Cannot Create Publication", addr, "got no answer", "whether the server committed it could not be found out", "then apply again"),
			},
			{
				PreConfig: func() {
					<-done
					mu.Lock()
					elapsed, hung := time.Since(start), resumed
					mu.Unlock()
					resume()
					if hung {
						t.Errorf("terraform apply against a server frozen during CREATE PUBLICATION did not end within %s", red3Bound)
					}
					t.Logf("terraform apply failed %s after the server froze", elapsed.Round(100*time.Millisecond))
					if _, err := locker.Exec(ctx, `ROLLBACK`); err != nil {
						t.Error(err)
					}
				},
				Config: cfg,
			},
		},
	})
}
