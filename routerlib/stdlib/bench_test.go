package stdlib_test

import (
	"context"
	"database/sql"
	"testing"

	"github.com/pgreplication/terraform-provider-pgreplication/internal/cpubench"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// BenchmarkQueryVsPgxStdlib runs the same point read through pgx's own
// database/sql driver on replica-1 and through this package on a Router
// whose only replica is replica-1 (in read_your_writes mode, as the peer
// benchmark runs it). The first two run it from 8 goroutines, as the peer
// benchmark does, and report allocations and the process's CPU time per
// query. The interleaved run alternates blocks of each on one goroutine
// and reports the median CPU time of its thread per query and their ratio:
// other processes on a busy machine inflate that far less than the wall
// clock or the process's CPU from many goroutines. Target: a ratio ≤ 1.
func BenchmarkQueryVsPgxStdlib(b *testing.B) {
	topo := routertest.Shared(b)
	ctx := context.Background()
	const workers = 8
	direct := pgxStdlibDB(b, topo.Standbys[0])
	direct.SetMaxIdleConns(workers)
	a := topo.Artifact()
	a.Nodes = a.Nodes[:2] // the primary and replica-1: every read goes to replica-1
	a.Pool = artifact.Pool{MaxConns: workers}
	a.Consistency = artifact.Consistency{Mode: artifact.ModeReadYourWrites}
	routed, _ := openDB(b, a)
	routed.SetMaxIdleConns(workers)
	const query = "SELECT $1::int + 1, 'a title'::text"
	read := func(db *sql.DB) func(int) error {
		return func(int) error {
			var n int
			var title string
			return db.QueryRowContext(ctx, query, 41).Scan(&n, &title)
		}
	}
	cpubench.Compare(b, workers, workers, cpubench.Contender{Name: "pgx-stdlib", Call: read(direct)}, cpubench.Contender{Name: "routerlib-stdlib", Call: read(routed)})
}
