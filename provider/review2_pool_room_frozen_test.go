package provider

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// 5fbb37f admits one connection of a role at a time until its room is
// measured, on a pool's first connection that succeeds. A server that does
// not answer (frozen host, SIGSTOPped postmaster: the TCP connect succeeds)
// is never measured, so the first pools of the role in several databases,
// which a plan or apply makes at once (one per database its resources live
// in), each wait for the one before to time out: n databases take n times
// connect_timeout to fail, where they took one connect_timeout before. A
// plan against a frozen server with resources in 4 databases and the
// default connect_timeout (10 s) takes 40 s to say the server does not
// answer, 10 per database.
func TestReview2PoolsOfFrozenServerFailTogether(t *testing.T) {
	testAccPreCheck(t)
	topo := routertest.Start(t, routertest.WithStandbys(0))
	const connectTimeout = 2
	const databases = 4
	role := "review2_pool_frozen"
	execSQL(t, topo.Primary, "postgres", fmt.Sprintf(`CREATE ROLE %s LOGIN CONNECTION LIMIT 10`, role))
	for i := range databases {
		execSQL(t, topo.Primary, "postgres", fmt.Sprintf(`CREATE DATABASE review2_frozen_%d`, i))
	}
	s := newServer(connSettings{Host: topo.Primary.Host, Port: int64(topo.Primary.Port), Database: "postgres", Username: role,
		SSLMode: "disable", MaxConnections: 4, ConnectTimeout: connectTimeout})
	if err := topo.Primary.Freeze(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = topo.Primary.Thaw() })
	// A failed first connection frees its place before newPool records
	// the failure; a loaded machine (CI: one pool at 4.03 s) widened that
	// window until a waiter was admitted in it. The hook widens it always.
	delay := func(database string) {
		if strings.HasPrefix(database, "review2_frozen_") {
			time.Sleep(300 * time.Millisecond)
		}
	}
	afterFirstAcquire.Store(&delay)
	t.Cleanup(func() { afterFirstAcquire.Store(nil) })
	start := time.Now()
	var wg sync.WaitGroup
	took := make([]time.Duration, databases)
	for i := range databases {
		wg.Go(func() {
			p, err := s.Pool(context.Background(), fmt.Sprintf("review2_frozen_%d", i))
			took[i] = time.Since(start)
			if err != nil && strings.Contains(err.Error(), "database=") && !strings.Contains(err.Error(), fmt.Sprintf("database=review2_frozen_%d`", i)) {
				t.Errorf("database %d: the error names another database: %v", i, err)
			}
			if err == nil {
				forgetPool(p)
				t.Errorf("database %d: a pool on a frozen server", i)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	t.Logf("each pool failed after %v", took)
	if most := connectTimeout*time.Second + 1800*time.Millisecond; elapsed > most {
		t.Errorf("the first pools of %d databases on a frozen server took %s to fail, want at most %s (connect_timeout %ds, once)",
			databases, elapsed.Round(time.Millisecond), most, connectTimeout)
	}
}
