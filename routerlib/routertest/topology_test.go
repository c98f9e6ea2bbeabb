package routertest_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

func TestReplicatesToEveryStandby(t *testing.T) {
	topo := sharedTopology(t)
	ctx := testContext(t)
	if err := topo.Primary.Exec(ctx, "CREATE TABLE replicated (id int PRIMARY KEY, note text)"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = topo.Primary.Exec(ctx, "DROP TABLE replicated") })
	if err := topo.Primary.Exec(ctx, "INSERT INTO replicated VALUES (1, 'hello')"); err != nil {
		t.Fatal(err)
	}
	lsn, err := topo.CurrentLSN(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(topo.Standbys) != 2 {
		t.Fatalf("shared topology has %d standbys, want 2", len(topo.Standbys))
	}
	for _, standby := range topo.Standbys {
		if err := standby.WaitReplayed(ctx, lsn); err != nil {
			t.Fatal(err)
		}
		var note string
		if err := standby.QueryRow(ctx, "SELECT note FROM replicated WHERE id = 1").Scan(&note); err != nil {
			t.Fatalf("%s: %v", standby.Name, err)
		}
		if note != "hello" {
			t.Errorf("%s: note = %q, want hello", standby.Name, note)
		}
	}
}

func TestStandbysRefuseWrites(t *testing.T) {
	topo := sharedTopology(t)
	ctx := testContext(t)
	for _, standby := range topo.Standbys {
		err := standby.Exec(ctx, "CREATE TABLE refused (id int)")
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "25006" {
			t.Errorf("%s: CREATE TABLE: got %v, want SQLSTATE 25006 (read_only_sql_transaction)", standby.Name, err)
		}
		var inRecovery bool
		if err := standby.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&inRecovery); err != nil || !inRecovery {
			t.Errorf("%s: pg_is_in_recovery() = %v, %v; want true", standby.Name, inRecovery, err)
		}
	}
}

func TestShape(t *testing.T) {
	topo := sharedTopology(t)
	nodes := topo.Nodes()
	names := []string{"primary", "replica-1", "replica-2"}
	if len(nodes) != len(names) || nodes[0] != topo.Primary {
		t.Fatalf("Nodes() = %v, want the primary then two standbys", nodes)
	}
	for i, n := range nodes {
		if n.Name != names[i] {
			t.Errorf("node %d is %q, want %q", i, n.Name, names[i])
		}
		if want := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", n.Port); n.DSN() != want {
			t.Errorf("%s: DSN() = %q, want %q", n.Name, n.DSN(), want)
		}
		if n.DataDir != filepath.Join(topo.Dir, n.Name) {
			t.Errorf("%s: DataDir = %q, want it under %s", n.Name, n.DataDir, topo.Dir)
		}
	}
	if got, want := topo.Primary.DSNFor("app db"), fmt.Sprintf("postgres://postgres@127.0.0.1:%d/app%%20db?sslmode=disable", topo.Primary.Port); got != want {
		t.Errorf("DSNFor = %q, want %q", got, want)
	}
}

func TestCloseIsIdempotentAndRemovesTheDirectory(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(1))
	ctx := testContext(t)
	if err := topo.Close(); err != nil {
		t.Fatal(err)
	}
	if err := topo.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := os.Stat(topo.Dir); !os.IsNotExist(err) {
		t.Errorf("%s still exists after Close (%v)", topo.Dir, err)
	}
	for _, n := range topo.Nodes() {
		if err := n.Exec(ctx, "SELECT 1"); err == nil {
			t.Errorf("%s still accepts connections after Close", n.Name)
		}
	}
}

func TestReapsOrphans(t *testing.T) {
	sharedTopology(t) // skips where there are no binaries
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), orphanEnv+"=1")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	lines := strings.Fields(string(out))
	if len(lines) != 2 {
		t.Fatalf("child printed %q, want its topology's directory and DSN", out)
	}
	dir, dsn := lines[0], lines[1]
	ctx := testContext(t)
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("the orphan's primary is not running: %v", err)
	}
	conn.Close(ctx)

	routertest.Start(t, routertest.WithStandbys(0)) // reaps
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("orphan directory %s still exists (%v)", dir, err)
	}
	if conn, err := pgx.Connect(ctx, dsn); err == nil {
		conn.Close(ctx)
		t.Errorf("the orphan's primary still accepts connections")
	}
}

func TestKeptTopology(t *testing.T) {
	sharedTopology(t)
	ctx := testContext(t)
	// Not t.TempDir: its 0700 parent keeps out the postgres user that runs
	// the servers when we are root.
	parent, err := os.MkdirTemp("", "routertest-kept-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(parent) })
	if err := os.Chmod(parent, 0o755); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(parent, "kept")
	topo, err := routertest.New(ctx, routertest.WithDir(dir), routertest.WithStandbys(1))
	if err != nil {
		t.Fatal(err)
	}
	if err := topo.Primary.Exec(ctx, "CREATE TABLE kept (id int)"); err != nil {
		t.Fatal(err)
	}
	if _, err := routertest.New(ctx, routertest.WithDir(dir)); err == nil || !strings.Contains(err.Error(), "Open") {
		t.Errorf("New on a directory holding a topology: %v, want an error pointing to Open", err)
	}
	if err := topo.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(topo.Primary.DataDir); err != nil {
		t.Fatalf("Close removed a kept topology: %v", err)
	}

	again, err := routertest.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { again.Close() })
	if again.Primary.Port != topo.Primary.Port || len(again.Standbys) != 1 || again.Standbys[0].Name != "replica-1" {
		t.Fatalf("Open found primary port %d and standbys %v; want port %d and replica-1", again.Primary.Port, again.Standbys, topo.Primary.Port)
	}
	for _, n := range again.Nodes() {
		if err := n.Start(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := again.Standbys[0].WaitStreaming(ctx); err != nil {
		t.Fatal(err)
	}
	lsn, err := again.CurrentLSN(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := again.Standbys[0].WaitReplayed(ctx, lsn); err != nil {
		t.Fatal(err)
	}
	if err := again.Standbys[0].Exec(ctx, "SELECT FROM kept"); err != nil {
		t.Errorf("table made before Close is missing after Open: %v", err)
	}
}

func TestRouterFile(t *testing.T) {
	topo := sharedTopology(t)
	path := filepath.Join(t.TempDir(), "router.json")
	if err := topo.WriteRouterFile(path); err != nil {
		t.Fatal(err)
	}
	got, err := artifact.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Nodes) != 3 {
		t.Fatalf("router file has %d nodes, want 3", len(got.Nodes))
	}
	for i, n := range topo.Nodes() {
		role := artifact.RoleReplica
		if i == 0 {
			role = artifact.RolePrimary
		}
		want := artifact.Node{Name: n.Name, Role: role, Host: "127.0.0.1", Port: n.Port,
			Database: "postgres", User: "postgres", SSLMode: "disable"}
		if got.Nodes[i] != want {
			t.Errorf("node %d = %+v, want %+v", i, got.Nodes[i], want)
		}
	}
}
