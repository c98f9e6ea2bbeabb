package provider

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/conninfo"
	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/pgsql"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// The address of the standby's primary_conninfo may mean another server
// from Terraform's machine (127.0.0.1 in the standby's container, a name
// that resolves elsewhere). Here a forwarder that the standby streams
// through sends new connections to another primary, whose
// synchronous_standby_names lists the standby and sees no WAL sender of
// it: asked blindly, that server says the reset blocks its commits. Its
// system identifier is not the standby's, so the check warns that it
// reached another server, and refuses nothing.
func TestAccStandbyReset_otherServerAtTheAddressWarns(t *testing.T) {
	testAccPreCheck(t)
	t.Parallel()
	topo := routertest.Start(t, routertest.WithStandbys(1))
	other := routertest.Start(t, routertest.WithStandbys(0), routertest.WithOwnCluster()).Primary // another system identifier
	primary, standby := topo.Primary, topo.Standbys[0]
	ctx := context.Background()
	var target atomic.Int64
	target.Store(int64(primary.Port))
	port := forward(t, &target)
	p := conninfo.Params{"host": "127.0.0.1", "port": fmt.Sprint(port), "user": "postgres", "sslmode": "disable", "application_name": standby.Name}
	execSQL(t, standby, "postgres", `ALTER SYSTEM SET primary_conninfo = `+pgsql.Literal(p.String()))
	execSQL(t, standby, "postgres", `SELECT pg_reload_conf()`)
	waitFor(t, 30*time.Second, standby.Name+" to stream through the forwarder", func() bool {
		return queryValue[bool](t, standby, "postgres", `SELECT coalesce((SELECT status = 'streaming' AND sender_port = $1 FROM pg_stat_wal_receiver), false)`, port)
	})
	execSQL(t, other, "postgres", `ALTER SYSTEM SET synchronous_standby_names = `+pgsql.Literal(pgsql.Ident(standby.Name)))
	execSQL(t, other, "postgres", `SELECT pg_reload_conf()`)
	target.Store(int64(other.Port))

	r := &standbyResource{server: newServer(connSettings{Host: standby.Host, Port: int64(standby.Port), Database: "postgres", Username: "postgres", SSLMode: "disable"})}
	pool, err := r.server.Pool(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeTestPool(pool) })
	look := r.resetBlocksCommits(ctx, pool)
	if look.refuses() || !look.unchecked || !strings.Contains(look.detail, "is not this standby's primary") {
		t.Errorf("another server at the standby's primary address: refuses %v, unchecked %v; want a warning that it is another server:\n%s %s",
			look.refuses(), look.unchecked, look.summary, look.detail)
	}
}

// forward listens on 127.0.0.1 and joins each connection to 127.0.0.1 at
// the port target holds when it arrives, until the test ends.
func forward(t *testing.T, target *atomic.Int64) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", target.Load()))
			if err != nil {
				c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c, s)
			mu.Unlock()
			go func() { _, _ = io.Copy(s, c); s.Close() }()
			go func() { _, _ = io.Copy(c, s); c.Close() }()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}
