package pgxpool_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	guide "github.com/pgreplication/terraform-provider-pgreplication/examples/guides/pgxpool"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// TestBeforeAndAfter: the same application code on a prefer-standby pool
// reads from a standby but cannot write (SQLSTATE 25006); on the Router it
// reads from the standbys and writes to the primary.
func TestBeforeAndAfter(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(2))
	ctx := context.Background()
	if err := topo.Primary.Exec(ctx, "CREATE TABLE books (title text)"); err != nil {
		t.Fatal(err)
	}
	if err := topo.WaitReplayed(ctx); err != nil {
		t.Fatal(err)
	}

	before, err := guide.OpenBefore(ctx, fmt.Sprintf(
		"host=127.0.0.1,127.0.0.1,127.0.0.1 port=%d,%d,%d user=postgres dbname=postgres sslmode=disable target_session_attrs=prefer-standby",
		topo.Primary.Port, topo.Standbys[0].Port, topo.Standbys[1].Port))
	if err != nil {
		t.Fatal(err)
	}
	defer before.Close()
	if _, err := guide.CountBooks(ctx, before); err != nil {
		t.Errorf("prefer-standby read: %v", err)
	}
	var pgErr *pgconn.PgError
	if err := guide.AddBook(ctx, before, "Dune"); !errors.As(err, &pgErr) || pgErr.Code != "25006" {
		t.Errorf("prefer-standby write: %v, want SQLSTATE 25006 (the pool is a standby's)", err)
	}

	path := filepath.Join(t.TempDir(), "router.json")
	if err := topo.WriteRouterFile(path); err != nil {
		t.Fatal(err)
	}
	after, err := guide.OpenAfter(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer after.Close()
	if err := guide.AddBook(ctx, after, "Dune"); err != nil {
		t.Errorf("write through the Router: %v", err)
	}
	var port int
	if err := after.QueryRow(ctx, "SELECT inet_server_port()").Scan(&port); err != nil || (port != topo.Standbys[0].Port && port != topo.Standbys[1].Port) {
		t.Errorf("a read through the Router ran on %d (%v), want a standby", port, err)
	}
	var n int
	if err := topo.Primary.QueryRow(ctx, "SELECT count(*) FROM books").Scan(&n); err != nil || n != 1 {
		t.Errorf("books on the primary: %d, %v; want the one the Router wrote", n, err)
	}
}
