package routerlib_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// TestRouterfixReadCutNamesNode: a read through Exec streaming many rows
// whose session the server ends mid-reply (pg_terminate_backend) at each
// of its attempts returned pgx's bare error ("FATAL: terminating
// connection due to administrator command", "unexpected EOF" when the
// node dies) once the attempts ran out, naming no node, unlike every
// other failure of a node. It now names the node, and still wraps the
// server's error.
func TestRouterfixReadCutNamesNode(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(1))
	replica := topo.Standbys[0]
	a := steadyHealth(topo.Artifact(), 200*time.Millisecond)
	a.ReadPolicy.Fallback = artifact.FallbackError // every attempt on the replica
	r := newRouter(t, a)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	done := make(chan struct{})
	cut := make(chan int, 1)
	go func() { // ends each attempt's session once it streams rows
		n := 0
		defer func() { cut <- n }()
		for {
			select {
			case <-done:
				return
			case <-time.After(100 * time.Millisecond):
			}
			var ended int
			if err := replica.QueryRow(ctx, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE query LIKE 'SELECT g, repeat%' AND state = 'active'").Scan(&ended); err == nil {
				n += ended
			}
		}
	}()
	_, err := r.Exec(ctx, "SELECT g, repeat('x', 100) FROM generate_series(1, 30000000) g")
	close(done)
	t.Logf("%d sessions ended; Exec: %v", <-cut, err)
	if err == nil {
		t.Fatal("the read succeeded although each of its sessions was ended")
	}
	if !strings.Contains(err.Error(), `node "`+replica.Name+`"`) {
		t.Errorf("the error does not name node %q: %v", replica.Name, err)
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "57P01" {
		t.Errorf("the error does not wrap the server's 57P01: %v", err)
	}
}
