package routerlib_test

import (
	"context"
	"testing"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// TestReloadOntoAnotherCluster: the router file is rewritten to point at
// another cluster (a blue-green switch to a cluster a subscription filled,
// a major upgrade into a new initdb): the new primary takes the writes,
// whatever the old cluster's identifier the Router learnt.
func TestReloadOntoAnotherCluster(t *testing.T) {
	ctx := context.Background()
	blue := routertest.Start(t, routertest.WithStandbys(2))
	green := routertest.Start(t, routertest.WithStandbys(1), routertest.WithOwnCluster())
	for _, p := range []*routertest.Node{blue.Primary, green.Primary} {
		if err := p.Exec(ctx, "CREATE TABLE moved (id int, port int DEFAULT inet_server_port())"); err != nil {
			t.Fatal(err)
		}
	}
	r, path := openRouter(t, steadyHealth(blue.Artifact(), 100*time.Millisecond), routerlib.WithWatch(0))
	if _, err := r.Exec(ctx, "INSERT INTO moved (id) VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	// Let the Router learn blue's identifier from its majority.
	time.Sleep(500 * time.Millisecond)
	for _, c := range []struct {
		name  string
		nodes int
	}{{"primary and standby", 2}, {"primary alone", 1}} {
		t.Run(c.name, func(t *testing.T) {
			writeFile(t, path, steadyHealth(blue.Artifact(), 100*time.Millisecond))
			if err := r.Reload(ctx); err != nil {
				t.Fatal(err)
			}
			time.Sleep(500 * time.Millisecond)
			a := steadyHealth(green.Artifact(), 100*time.Millisecond)
			a.Nodes = a.Nodes[:c.nodes]
			writeFile(t, path, a)
			if err := r.Reload(ctx); err != nil {
				t.Fatalf("reload onto green: %v", err)
			}
			var last error
			deadline := time.Now().Add(10 * time.Second)
			for time.Now().Before(deadline) {
				if _, last = r.Exec(ctx, "INSERT INTO moved (id) VALUES (2)"); last == nil {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			if last != nil {
				t.Fatalf("no write reached green's primary within 10 s of the reload: %v", last)
			}
		})
	}
}
