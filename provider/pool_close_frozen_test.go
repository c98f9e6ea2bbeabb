package provider

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// Closing a pool whose server froze (a hung host) is bounded. A connection
// waits for the server to end its session (closeAndWait) only when a limit
// binds the pool, where a connection made next could be refused for it;
// then for at most connect_timeout, the pool's connections together. Every
// close waited, limit or not: on the old code the pool of a role without
// a limit took 2.002s (connect_timeout 2) to close, for nothing.
func TestAccProvider_poolCloseOnFrozenServerIsBounded(t *testing.T) {
	testAccPreCheck(t)
	topo := routertest.Start(t, routertest.WithStandbys(0))
	const connectTimeout = 2
	for _, tc := range []struct {
		name  string
		limit int           // the role's CONNECTION LIMIT; -1: none
		most  time.Duration // the longest the close may take
	}{
		{"no_limit", -1, 500 * time.Millisecond},
		{"limit_binds", 3, connectTimeout*time.Second + time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			role := "tfacc_pool_frozen_" + tc.name
			execSQL(t, topo.Primary, "postgres", fmt.Sprintf(`CREATE ROLE %s LOGIN CONNECTION LIMIT %d`, role, tc.limit))
			s := newServer(connSettings{Host: topo.Primary.Host, Port: int64(topo.Primary.Port), Database: "postgres", Username: role,
				SSLMode: "disable", MaxConnections: 4, ConnectTimeout: connectTimeout})
			p, err := s.Pool(ctx, "")
			if err != nil {
				t.Fatal(err)
			}
			defer forgetPool(p)
			var held []*pgxpool.Conn
			for range p.Config().MaxConns {
				c, err := p.Acquire(ctx)
				if err != nil {
					t.Fatal(err)
				}
				held = append(held, c)
			}
			for _, c := range held {
				c.Release()
			}
			if err := topo.Primary.Freeze(); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			p.Close()
			elapsed := time.Since(start)
			if err := topo.Primary.Thaw(); err != nil {
				t.Fatal(err)
			}
			t.Logf("closing %d connections on a frozen server took %s", len(held), elapsed.Round(time.Millisecond))
			if elapsed > tc.most {
				t.Errorf("closing the pool on a frozen server took %s, want at most %s", elapsed, tc.most)
			}
		})
	}
}
