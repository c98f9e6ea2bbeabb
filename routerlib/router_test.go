package routerlib_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// TestRouting runs each class of statement through a Router on a real
// topology and checks, with a Tracer and with the answering server's port,
// where it went.
func TestRouting(t *testing.T) {
	topo := routertest.Shared(t)
	ctx := context.Background()
	rec := &recorder{}
	r := newRouter(t, topo.Artifact(), routerlib.WithTracer(rec))
	if _, err := r.Exec(ctx, "CREATE TABLE IF NOT EXISTS routing_t (id serial PRIMARY KEY, v text)"); err != nil {
		t.Fatal(err)
	}
	if got := rec.last(t); got.Node != "primary" || got.Reason != routerlib.ReasonWrite {
		t.Fatalf("DDL went to %s (%s), want primary (write)", got.Node, got.Reason)
	}
	replicas := map[int]bool{topo.Standbys[0].Port: true, topo.Standbys[1].Port: true}
	seen := map[int]bool{}
	for range 4 {
		p := serverPort(t, ctx, r)
		if !replicas[p] {
			t.Fatalf("a plain SELECT was answered by port %d, not a replica", p)
		}
		seen[p] = true
		if got := rec.last(t); got.Reason != routerlib.ReasonReplica {
			t.Fatalf("reason %s, want replica", got.Reason)
		}
	}
	if len(seen) != 2 {
		t.Errorf("round robin used %d replicas, want both", len(seen))
	}
	if p := serverPort(t, routerlib.Primary(ctx), r); p != topo.Primary.Port {
		t.Errorf("Primary(ctx) read answered by port %d, want the primary's %d", p, topo.Primary.Port)
	}
	if got := rec.last(t); got.Reason != routerlib.ReasonForcedPrimary {
		t.Errorf("reason %s, want forced primary", got.Reason)
	}

	cases := []struct {
		name, sql string
		args      []any
		primary   bool
	}{
		{"insert returning via QueryRow", "INSERT INTO routing_t (v) VALUES ($1) RETURNING inet_server_port()", []any{"a"}, true},
		{"locking read", "SELECT inet_server_port() FROM routing_t LIMIT 1 FOR UPDATE", nil, true},
		{"nextval", "SELECT inet_server_port() FROM (SELECT nextval('routing_t_id_seq')) s", nil, true},
		{"advisory lock", "SELECT inet_server_port() FROM (SELECT pg_try_advisory_lock(42)) s", nil, true},
		{"writing CTE", "WITH d AS (DELETE FROM routing_t WHERE v = 'none' RETURNING 1) SELECT inet_server_port()", nil, true},
		{"read with write words in strings", "SELECT inet_server_port() /* DELETE */ WHERE 'INSERT' <> $$UPDATE$$", nil, false},
		{"values", "VALUES (inet_server_port())", nil, false},
		{"explain", "SELECT inet_server_port() FROM (SELECT 1) e", nil, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var port int
			if err := r.QueryRow(ctx, c.sql, c.args...).Scan(&port); err != nil {
				t.Fatal(err)
			}
			if (port == topo.Primary.Port) != c.primary {
				t.Errorf("answered by port %d (primary %d); want primary=%v", port, topo.Primary.Port, c.primary)
			}
		})
	}

	// Transactions: Begin on the primary, a read-only BeginTx on a replica.
	tx, err := r.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if p := serverPort(t, ctx, tx); p != topo.Primary.Port {
		t.Errorf("Begin ran on port %d, want the primary", p)
	}
	if got := rec.last(t); got.Op != routerlib.OpBegin || got.Reason != routerlib.ReasonInTransaction {
		t.Errorf("Begin traced as %s/%s, want Begin/in transaction", got.Op, got.Reason)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	ro, err := r.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
	if err != nil {
		t.Fatal(err)
	}
	if p := serverPort(t, ctx, ro); !replicas[p] {
		t.Errorf("read-only BeginTx ran on port %d, want a replica", p)
	}
	if err := ro.Rollback(ctx); err != nil {
		t.Fatal(err)
	}

	// Batches go to the primary when any statement writes.
	b := &pgx.Batch{}
	b.Queue("SELECT 1")
	b.Queue("INSERT INTO routing_t (v) VALUES ('batch')")
	if err := r.SendBatch(ctx, b).Close(); err != nil {
		t.Fatal(err)
	}
	if got := rec.last(t); got.Node != "primary" {
		t.Errorf("a batch with an INSERT went to %s", got.Node)
	}
	b = &pgx.Batch{}
	b.Queue("SELECT 1")
	if err := r.SendBatch(ctx, b).Close(); err != nil {
		t.Fatal(err)
	}
	if got := rec.last(t); got.Node == "primary" {
		t.Errorf("a read-only batch went to the primary")
	}

	// CopyFrom always goes to the primary.
	n, err := r.CopyFrom(ctx, pgx.Identifier{"routing_t"}, []string{"v"}, pgx.CopyFromRows([][]any{{"c1"}, {"c2"}}))
	if err != nil || n != 2 {
		t.Fatalf("CopyFrom = %d, %v", n, err)
	}
	if got := rec.last(t); got.Node != "primary" || got.Op != routerlib.OpCopyFrom {
		t.Errorf("CopyFrom traced as %+v", got)
	}

	// Unknown routes fail with a sentinel naming the route.
	_, err = r.Exec(routerlib.Route(ctx, "nope"), "SELECT 1")
	if !errors.Is(err, routerlib.ErrUnknownRoute) {
		t.Errorf("unknown route: %v, want ErrUnknownRoute", err)
	}

	// Migrations get the primary only.
	c, err := r.MigrationConn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if p := serverPort(t, ctx, c); p != topo.Primary.Port {
		t.Errorf("MigrationConn on port %d, want the primary", p)
	}
	c.Release()
	if err := r.Ping(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestPasswordSources: the WithPasswordFunc hook is asked for every new
// connection (so a rotated password applies without a restart), for each
// node by name; the file itself holds no password.
func TestPasswordSources(t *testing.T) {
	topo := routertest.Shared(t)
	ctx := context.Background()
	var mu sync.Mutex
	asked := map[string]int{}
	a := topo.Artifact()
	for i := range a.Nodes {
		a.Nodes[i].PasswordEnv = "ROUTERLIB_TEST_PASSWORD" // unset: the hook's answer wins anyway
	}
	r := newRouter(t, a, routerlib.WithPasswordFunc(func(_ context.Context, n artifact.Node) (string, error) {
		mu.Lock()
		asked[n.Name]++
		mu.Unlock()
		return "secret-" + n.Name, nil // trust auth ignores it
	}))
	serverPort(t, ctx, r)
	if _, err := r.Exec(ctx, "SELECT pg_advisory_unlock_all()"); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if asked["primary"] == 0 || asked["replica-1"]+asked["replica-2"] == 0 {
		t.Errorf("password hook calls per node: %v; want the primary and a replica asked", asked)
	}
}

// DBTX is the interface sqlc generates for pgx/v5; a Router must satisfy it
// (and the query surface of *pgxpool.Pool) to drop in.
type DBTX interface {
	Exec(context.Context, string, ...interface{}) (pgconn.CommandTag, error)
	Query(context.Context, string, ...interface{}) (pgx.Rows, error)
	QueryRow(context.Context, string, ...interface{}) pgx.Row
	CopyFrom(ctx context.Context, tableName pgx.Identifier, columnNames []string, rowSrc pgx.CopyFromSource) (int64, error)
	SendBatch(context.Context, *pgx.Batch) pgx.BatchResults
}

var (
	_ DBTX = (*routerlib.Router)(nil)
	_ DBTX = (*pgxpool.Pool)(nil)
	_ interface {
		Begin(context.Context) (pgx.Tx, error)
		BeginTx(context.Context, pgx.TxOptions) (pgx.Tx, error)
		Ping(context.Context) error
		Close()
	} = (*routerlib.Router)(nil)
)

// TestPasswordFromEnvAndPassfile: against a server that really checks the
// password (scram-sha-256 for one role), the router authenticates with the
// password from the environment variable the file names, or from the
// passfile it names, and fails with neither. The file holds no password.
func TestPasswordFromEnvAndPassfile(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(0))
	ctx := context.Background()
	const role, password = "router_pw", "s3cret-pw"
	if err := topo.Primary.Exec(ctx, "SET password_encryption = 'scram-sha-256'; CREATE ROLE "+role+" LOGIN PASSWORD '"+password+"'"); err != nil {
		t.Fatal(err)
	}
	// Password authentication for this role only, ahead of routertest's trust rule.
	if err := topo.Primary.RequirePassword(ctx, role); err != nil {
		t.Fatal(err)
	}
	a := topo.Artifact()
	a.Nodes[0].User = role
	// The subject is which password authenticates, not how fast: each
	// ping sets up two SCRAM sessions (the monitor's, the pool's) and
	// runs two checks. SCRAM's two round trips and its 4,096 PBKDF2
	// iterations make a session's setup about twice a trusted one's
	// under load (measured with this test's server held to ~1.5% of a
	// core: median 544 ms against 288 ms, the slowest 1.2 s and 1.6 s),
	// and at load 40 one took longer than the default connect_timeout
	// (2 s). The bounds here leave the machine's load out of the result.
	a.Health.ConnectTimeout, a.Health.Timeout = "30s", "30s"
	refused := func(what string, err error) {
		t.Helper()
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "28P01" { // invalid_password
			t.Fatalf("%s: %v; want the server's refusal of the password (28P01)", what, err)
		}
	}
	ping := func(a artifact.Topology) error {
		r, err := routerlib.New(ctx, a)
		if err != nil {
			return err
		}
		defer r.Close()
		pctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		var who string
		if err := r.QueryRow(routerlib.Primary(pctx), "SELECT current_user").Scan(&who); err != nil {
			return err
		}
		if who != role {
			return fmt.Errorf("connected as %q, want %q", who, role)
		}
		return nil
	}

	t.Setenv("PGPASSWORD", "") // nothing from libpq's environment
	t.Setenv("PGPASSFILE", os.DevNull)
	if err := ping(a); err == nil {
		t.Fatal("connected with no password: the server does not check it, and this test proves nothing")
	} else {
		refused("no password", err)
	}

	a.Nodes[0].PasswordEnv = "ROUTERLIB_TEST_PW"
	t.Setenv("ROUTERLIB_TEST_PW", password)
	if err := ping(a); err != nil {
		t.Errorf("password from password_env: %v", err)
	}
	t.Setenv("ROUTERLIB_TEST_PW", "wrong")
	if err := ping(a); err == nil {
		t.Error("connected with a wrong password from password_env")
	} else {
		refused("a wrong password from password_env", err)
	}

	a.Nodes[0].PasswordEnv = ""
	passfile := filepath.Join(t.TempDir(), "pgpass")
	line := fmt.Sprintf("%s:%d:*:%s:%s\n", topo.Primary.Host, topo.Primary.Port, role, password)
	if err := os.WriteFile(passfile, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	a.Nodes[0].Passfile = passfile
	if err := ping(a); err != nil {
		t.Errorf("password from passfile: %v", err)
	}
}
