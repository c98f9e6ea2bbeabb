package provider

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// A caller that gives up on a pool's first connection to a frozen server
// (its deadline, Terraform's cancel) returns at once: its connection,
// abandoned, holds the role's place until the backend exits, for the rest
// of connect_timeout, but the caller does not wait for that.
func TestReview10CancelledFirstConnectionOnFrozenServerReturns(t *testing.T) {
	testAccPreCheck(t)
	node := routertest.Start(t, routertest.WithStandbys(0)).Primary
	role := "review10_cancel"
	dbs := roleOfLimit2In3Databases(t, node, role)
	s := newServer(connSettings{Host: node.Host, Port: int64(node.Port), Database: dbs[0], Username: role,
		SSLMode: "disable", MaxConnections: 4, ConnectTimeout: 5})
	if err := node.Freeze(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = node.Thaw() }()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	began := time.Now()
	_, err := s.Pool(ctx, dbs[0])
	took := time.Since(began)
	t.Logf("a pool asked with a deadline of 300ms of a frozen server: %s, %v", took.Round(time.Millisecond), err)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("want the caller's deadline, got %v", err)
	}
	if took > 2*time.Second {
		t.Errorf("the caller of deadline 300ms returned after %s, connect_timeout being 5 s", took.Round(time.Millisecond))
	}
}
