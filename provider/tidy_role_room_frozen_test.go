//go:build linux

package provider

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// A connection that waits for a place under the role's CONNECTION LIMIT
// (roleRoom) while the server freezes ends within a bound, and the handler
// is told the server did not answer, with the fix for that, not to raise
// the role's limit: whether the places are held by statements of the
// provider's that the frozen server will never answer (the wait outlasts
// their bound and their close), or by idle connections (the wait closes
// them, each within connect_timeout).
func TestAccProvider_roleRoomWaitOnFrozenServer(t *testing.T) {
	testAccPreCheck(t)
	for _, tc := range []struct {
		name  string
		inUse bool
		bound time.Duration // statement bound 12 s, a close 2 s, a connection 2 s, and room
	}{
		{"in use", true, 25 * time.Second},
		{"idle", false, 15 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			roleRoomWaitOnFrozenServer(t, tc.inUse, tc.bound)
		})
	}
}

func roleRoomWaitOnFrozenServer(t *testing.T, inUse bool, bound time.Duration) {
	topo := routertest.Start(t, routertest.WithStandbys(0)) // frozen: not the shared one
	n := topo.Primary
	role := "tfacc_room_frozen"
	dbs := roleOfLimit2In3Databases(t, n, role)
	ctx := context.Background()
	s := newServer(connSettings{Host: n.Host, Port: int64(n.Port), Database: dbs[0], Username: role, Password: "room-canary" + canaryMark + "Zq8",
		SSLMode: "disable", ConnectTimeout: 2, StatementTimeout: "2s"})
	p, err := s.Pool(ctx, dbs[0])
	if err != nil {
		t.Fatal(err)
	}
	// Both places held.
	a, err := p.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b, err := p.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !inUse {
		a.Release()
		b.Release()
	}
	if err := n.Freeze(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { thaw(t, n) })
	var wg sync.WaitGroup
	if inUse {
		for _, c := range []*pgxpool.Conn{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Release()
				_, _ = c.Exec(ctx, "SELECT 1") // fails at the client's bound
			}()
		}
		time.Sleep(200 * time.Millisecond) // the holders' statements are sent
	}
	start := time.Now()
	var diags diag.Diagnostics
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.PoolOrDiag(ctx, dbs[1], &diags)
	}()
	// A hang is thawed, so that the test ends and says how long it was.
	select {
	case <-done:
	case <-time.After(bound):
		thaw(t, n)
		<-done
		t.Errorf("the connection waiting for a place was still waiting after %s on the frozen server", bound)
	}
	took := time.Since(start)
	wg.Wait()
	t.Logf("the waiting connection ended after %s: %v", took.Round(time.Millisecond), diags)
	if !diags.HasError() {
		t.Fatalf("a connection to the frozen server was made")
	}
	text := diags[0].Summary() + ": " + diags[0].Detail()
	addr := fmt.Sprintf("%s:%d", n.Host, n.Port)
	for _, want := range []string{addr, dbs[1], "did not answer"} {
		if !strings.Contains(text, want) {
			t.Errorf("the error does not say %q: %s", want, text)
		}
	}
	for _, wrong := range []string{"CONNECTION LIMIT", canaryMark} {
		if strings.Contains(text, wrong) {
			t.Errorf("the error says %q, for a server that stopped answering: %s", wrong, text)
		}
	}
}
