package provider

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"maps"
	"net"
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

// Every connection the provider opens starts with the same session
// settings, the replication connection that changes a slot's failover flag
// in place (replicationExec) as well as the pools': that one set the
// password, statement_timeout and the tracer again by hand and left out
// standard_conforming_strings = on, which the provider's SQL lexer relies on.
// A proxy in front of the server records each connection's startup message.
func TestAccProvider_replicationConnectionSettings(t *testing.T) {
	topo := testAccTopology(t)
	if topo.Version < 17 {
		t.Skipf("failover slots need PostgreSQL 17; the shared topology runs %d (set ROUTERTEST_PGBIN)", topo.Version)
	}
	proxy := startRecordingProxy(t, topo.Primary.Port, 0)
	const slot = "tfacc_slot_repl_settings"
	config := func(failover bool) string {
		return fmt.Sprintf(`
provider "pgreplication" {
  host     = "127.0.0.1"
  port     = %d
  username = "postgres"
  database = "postgres"
  sslmode  = "disable"
}

resource "pgreplication_replication_slot" "this" {
  name     = %q
  type     = "logical"
  failover = %t
}
`, proxy.port, slot, failover)
	}
	tfresource.Test(t, tfresource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy:             checkSlotsDropped(t, topo.Primary, slot),
		Steps: []tfresource.TestStep{
			{Config: config(false)},
			{
				Config: config(true), // ALTER_REPLICATION_SLOT over a replication connection
				Check: func(*terraform.State) error {
					starts := proxy.startups()
					var replication, pooled int
					for _, params := range starts {
						if params["replication"] == "database" {
							replication++
						} else {
							pooled++
						}
					}
					if replication == 0 || pooled == 0 {
						return fmt.Errorf("the proxy saw %d replication and %d other connections; want both: %v", replication, pooled, starts)
					}
					for _, params := range starts {
						if params["standard_conforming_strings"] != "on" || params["statement_timeout"] == "" ||
							params["statement_timeout"] != starts[0]["statement_timeout"] {
							return fmt.Errorf("a connection started with standard_conforming_strings = %q and statement_timeout = %q (replication = %q); want on and the pool's %q",
								params["standard_conforming_strings"], params["statement_timeout"], params["replication"], starts[0]["statement_timeout"])
						}
					}
					return nil
				},
			},
		},
	})
}

// recordingProxy forwards TCP connections to a server and records the
// parameters of each one's startup message (sslmode = disable: it is the
// first message). With a limit it stops listening after that many
// connections: later ones are refused, while those accepted go on working.
type recordingProxy struct {
	port int
	mu   sync.Mutex
	seen []map[string]string // one per connection accepted
}

func (p *recordingProxy) startups() []map[string]string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]map[string]string, len(p.seen))
	for i, params := range p.seen {
		out[i] = maps.Clone(params)
	}
	return out
}

func startRecordingProxy(t *testing.T, serverPort, limit int) *recordingProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &recordingProxy{port: ln.Addr().(*net.TCPAddr).Port}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var open []net.Conn
	closed := false
	track := func(c net.Conn) { // a connection made after the test ended is closed at once
		mu.Lock()
		if closed {
			c.Close()
		}
		open = append(open, c)
		mu.Unlock()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for n := 1; ; n++ {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			if n == limit {
				ln.Close()
			}
			track(client)
			params := map[string]string{}
			p.mu.Lock()
			p.seen = append(p.seen, params)
			p.mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				var length [4]byte
				if _, err := io.ReadFull(client, length[:]); err != nil {
					client.Close()
					return
				}
				msg := make([]byte, binary.BigEndian.Uint32(length[:])-4)
				if _, err := io.ReadFull(client, msg); err != nil {
					client.Close()
					return
				}
				p.mu.Lock()
				fields := strings.Split(string(msg[4:]), "\x00") // after the protocol version
				for i := 0; i+1 < len(fields); i += 2 {
					if fields[i] != "" {
						params[fields[i]] = fields[i+1]
					}
				}
				p.mu.Unlock()
				server, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", serverPort))
				if err != nil {
					client.Close()
					return
				}
				track(server)
				if _, err := server.Write(append(length[:], msg...)); err != nil {
					client.Close()
					server.Close()
					return
				}
				wg.Add(1)
				go func() { defer wg.Done(); _, _ = io.Copy(server, client); server.Close() }()
				_, _ = io.Copy(client, server)
				client.Close()
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		closed = true
		for _, c := range open {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return p
}
