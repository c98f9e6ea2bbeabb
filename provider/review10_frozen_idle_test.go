package provider

import (
	"context"
	"testing"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// The pool's sessions idle out while the server is frozen: the health
// check's closes wait connect_timeout for the backends to exit, then free
// their places. Once the server answers again, the role's connections,
// both places at once, must not be refused for the sessions the provider
// closed (53300).
func TestReview10IdleCloseOnFrozenServer(t *testing.T) {
	testAccPreCheck(t)
	node := routertest.Start(t, routertest.WithStandbys(0)).Primary
	role := "review10_frozen"
	dbs := roleOfLimit2In3Databases(t, node, role)
	s := newServer(connSettings{Host: node.Host, Port: int64(node.Port), Database: dbs[0], Username: role,
		SSLMode: "disable", MaxConnections: 4, ConnectTimeout: 2})
	ctx := context.Background()
	refused := func() int { return logLinesWith(t, node, "too many connections") }
	p, err := s.Pool(ctx, dbs[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, err := range acquireAtOnce(ctx, p, 2) {
		if err != nil {
			t.Fatal(err)
		}
	}
	before := refused()
	if err := node.Freeze(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(poolIdle + poolIdleCheck + 2*time.Second + 500*time.Millisecond) // idled out, the closes' waits over
	if err := node.Thaw(); err != nil {
		t.Fatal(err)
	}
	q, err := s.Pool(ctx, dbs[1])
	if err != nil {
		t.Fatal(err)
	}
	errs := acquireAtOnce(ctx, q, 2)
	got := refused() - before
	t.Logf("after the server thawed: %v, %d connections refused (53300)", errs, got)
	for _, err := range errs {
		if err != nil {
			t.Errorf("a connection after the server thawed: %v", err)
		}
	}
	if got != 0 {
		t.Errorf("the server refused %d of the provider's connections (53300)", got)
	}
}
