package stdlib_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// outcome is what one write's caller was told.
type outcome struct {
	kind string
	err  error
}

// TestRedWritesUnderFaults: writes through database/sql (Exec, a prepared
// statement's Exec, a transaction's Commit) while the primary's sessions are
// terminated, the primary restarts and freezes. Each write's row is counted
// after: a write that succeeded is there once, one that said it did not run
// or commit is absent, one that said ErrMaybeCommitted is there at most
// once, and no error wraps driver.ErrBadConn (database/sql would run the
// statement again). Directly, and through PgBouncer in read_your_writes
// mode (the capture's path).
func TestRedWritesUnderFaults(t *testing.T) {
	for _, c := range []struct {
		name    string
		bouncer bool
		mode    string
	}{
		{"direct", false, artifact.ModeEventual},
		{"PgBouncer read_your_writes", true, artifact.ModeReadYourWrites},
	} {
		t.Run(c.name, func(t *testing.T) {
			opts := []routertest.Option{routertest.WithStandbys(1)}
			var popts []routerlib.Option
			if c.bouncer {
				opts = append(opts, routertest.WithPgBouncer())
				popts = append(popts, routerlib.WithPoolConfig(func(_ artifact.Node, cfg *pgxpool.Config) {
					cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeExec
				}))
			}
			writesUnderFaults(t, routertest.Start(t, opts...), c.mode, popts...)
		})
	}
}

func writesUnderFaults(t *testing.T, topo *routertest.Topology, mode string, opts ...routerlib.Option) {
	ctx := context.Background()
	if err := topo.Primary.Exec(ctx, "CREATE TABLE red_w (id int, kind text)"); err != nil {
		t.Fatal(err)
	}
	a := fastHealth(topo.Artifact(), 100*time.Millisecond)
	a.Health.Timeout = "1s"
	a.Consistency.Mode = mode
	db, _ := openDB(t, a, opts...)
	ctx = routerlib.WithSession(ctx, &routerlib.Session{})
	stmt, err := db.PrepareContext(ctx, "INSERT INTO red_w SELECT $1, $2 FROM pg_sleep(random()*0.05)")
	if err != nil {
		t.Fatal(err)
	}
	defer stmt.Close()

	var mu sync.Mutex
	got := map[int]outcome{}
	var next atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				id := int(next.Add(1))
				wctx, cancel := context.WithTimeout(ctx, 700*time.Millisecond)
				var kind string
				var err error
				switch w % 3 {
				case 0:
					kind = "exec"
					_, err = db.ExecContext(wctx, "INSERT INTO red_w SELECT $1, $2 FROM pg_sleep(random()*0.05)", id, kind)
				case 1:
					kind = "stmt"
					_, err = stmt.ExecContext(wctx, id, kind)
				case 2:
					kind = "tx"
					var tx *sql.Tx
					if tx, err = db.BeginTx(wctx, nil); err == nil {
						if _, err = tx.ExecContext(wctx, "INSERT INTO red_w SELECT $1, $2 FROM pg_sleep(random()*0.05)", id, kind); err == nil {
							err = tx.Commit()
						} else {
							tx.Rollback()
						}
					}
				}
				cancel()
				mu.Lock()
				got[id] = outcome{kind, err}
				mu.Unlock()
				if err != nil {
					time.Sleep(10 * time.Millisecond)
				}
			}
		}()
	}
	faults := func() {
		deadline := time.Now().Add(2 * time.Second)
		for time.Now().Before(deadline) {
			time.Sleep(time.Duration(20+rand.IntN(80)) * time.Millisecond)
			topo.Primary.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() AND query LIKE 'INSERT INTO red_w%'")
		}
		if err := topo.Primary.Restart(ctx); err != nil {
			t.Error(err)
		}
		time.Sleep(time.Second)
		if err := topo.Primary.Freeze(); err != nil {
			t.Error(err)
		}
		time.Sleep(time.Second)
		if err := topo.Primary.Thaw(); err != nil {
			t.Error(err)
		}
		time.Sleep(time.Second)
	}
	faults()
	close(stop)
	wg.Wait()

	counts := map[int]int{}
	rows, err := db.QueryContext(routerlib.Primary(ctx), "SELECT id, count(*) FROM red_w GROUP BY id")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id, n int
		if err := rows.Scan(&id, &n); err != nil {
			t.Fatal(err)
		}
		counts[id] = n
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	tally := map[string]int{}
	for id, o := range got {
		n := counts[id]
		key := o.kind + ":ok"
		switch {
		case o.err == nil:
			if n != 1 {
				t.Errorf("%s %d succeeded; %d rows", o.kind, id, n)
			}
		case errors.Is(o.err, driver.ErrBadConn):
			t.Errorf("%s %d: %v wraps driver.ErrBadConn; %d rows", o.kind, id, o.err, n)
		case errors.Is(o.err, routerlib.ErrMaybeCommitted):
			key = fmt.Sprintf("%s:maybe(%d)", o.kind, n)
			if n > 1 {
				t.Errorf("%s %d: %v; %d rows", o.kind, id, o.err, n)
			}
		default:
			key = fmt.Sprintf("%s:err(%d)", o.kind, n)
			if n != 0 {
				t.Errorf("%s %d: %v, not ErrMaybeCommitted, but %d rows committed", o.kind, id, o.err, n)
			} else {
				t.Logf("%s %d: %v", o.kind, id, o.err)
			}
		}
		tally[key]++
	}
	for id, n := range counts {
		if _, ok := got[id]; !ok || n > 1 {
			t.Errorf("id %d: %d rows (reported %v)", id, n, ok)
		}
	}
	t.Logf("%v", tally)
}
