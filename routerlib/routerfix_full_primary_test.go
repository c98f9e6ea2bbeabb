package routerlib_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// TestRouterfixFullPrimaryWaitsForRoom: a write that needs a new
// connection to a primary with no room for another session (the role's
// CONNECTION LIMIT reached by other clients: SQLSTATE 53300) failed at
// once (42 ms), although nothing was sent. It now waits, within the
// caller's context and connect_timeout, until a session comes free (one
// of the other clients' closes 300 ms later), and succeeds; with none
// coming free, it fails within connect_timeout naming the node, the limit
// and the fix, and still wraps the server's 53300.
func TestRouterfixFullPrimaryWaitsForRoom(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(0))
	ctx := context.Background()
	const role = "rf_lim"
	if err := topo.Primary.Exec(ctx, "CREATE ROLE "+role+" LOGIN CONNECTION LIMIT 2; CREATE TABLE rf_full (v int); GRANT SELECT, INSERT ON rf_full TO "+role); err != nil {
		t.Fatal(err)
	}
	const connectTimeout = 3 * time.Second
	a := steadyHealth(topo.Artifact(), 200*time.Millisecond)
	a.Health.ConnectTimeout = "3s"
	a.Nodes[0].User = role
	a.Pool.MinConns = 0
	for _, c := range []struct {
		name  string
		write func(r *routerlib.Router) error
	}{
		{"Exec", func(r *routerlib.Router) error {
			_, err := r.Exec(ctx, "INSERT INTO rf_full VALUES (1)")
			return err
		}},
		{"QueryRow", func(r *routerlib.Router) error {
			var v int
			return r.QueryRow(ctx, "INSERT INTO rf_full VALUES (2) RETURNING v").Scan(&v)
		}},
		{"Acquire", func(r *routerlib.Router) error {
			c, err := r.Acquire(ctx)
			if err == nil {
				c.Release()
			}
			return err
		}},
	} {
		t.Run(c.name+"/room comes free", func(t *testing.T) {
			r := newRouter(t, a)
			held := holdAll(t, topo, role)
			go func() {
				time.Sleep(300 * time.Millisecond)
				held[0].Close(context.Background())
			}()
			start := time.Now()
			if err := c.write(r); err != nil {
				t.Fatalf("the write failed after %v although a session came free after 300 ms: %v", time.Since(start), err)
			}
			t.Logf("the write succeeded after %v", time.Since(start))
		})
		t.Run(c.name+"/no room", func(t *testing.T) {
			r := newRouter(t, a)
			holdAll(t, topo, role)
			start := time.Now()
			err := c.write(r)
			took := time.Since(start)
			t.Logf("after %v: %v", took, err)
			if err == nil {
				t.Fatal("the write succeeded with no session left to the role")
			}
			if took > connectTimeout+2*time.Second {
				t.Errorf("the write failed after %v, past connect_timeout (%v)", took, connectTimeout)
			}
			for _, w := range []string{`"` + topo.Primary.Name + `"`, "CONNECTION LIMIT", "max_connections", "pool.max_conns"} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("the error does not name %s: %v", w, err)
				}
			}
			if !tooMany(err) {
				t.Errorf("the error does not wrap the server's 53300: %v", err)
			}
		})
	}
}

func tooMany(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "53300"
}
