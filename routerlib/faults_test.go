package routerlib_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
)

// TestServerErrorIsNotANodeFault: a statement the server answers with an
// error of class 08 (dblink's own outbound connection failed, inside the
// server) is the caller's error. 50 of them through the router: each caller
// gets the server's error, none is retried, every node stays in rotation,
// and the next reads still go to the replicas.
func TestServerErrorIsNotANodeFault(t *testing.T) {
	topo := sharedTopology(t)
	ctx := context.Background()
	var available bool
	if err := topo.Primary.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_available_extensions WHERE name = 'dblink')").Scan(&available); err != nil {
		t.Fatal(err)
	}
	if !available {
		t.Fatalf("the dblink extension is not installed with the PostgreSQL binaries in use (contrib is missing)")
	}
	for _, sql := range []string{
		"CREATE EXTENSION IF NOT EXISTS dblink",
		// The same class of error without dblink: a user function raising it.
		`CREATE OR REPLACE FUNCTION raise_08006() RETURNS int LANGUAGE plpgsql AS $$
		BEGIN RAISE EXCEPTION 'outbound connection lost' USING ERRCODE = '08006'; END $$`,
	} {
		if err := topo.Primary.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	lsn, err := topo.CurrentLSN(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range topo.Standbys {
		if err := s.WaitReplayed(ctx, lsn); err != nil {
			t.Fatal(err)
		}
	}
	rec := &recorder{}
	r := newRouter(t, fastHealth(topo.Artifact(), interval), routerlib.WithTracer(rec))
	const dblink = "SELECT x FROM dblink('host=127.0.0.1 port=1 connect_timeout=1', 'SELECT 1') AS t(x int)"
	calls := []struct {
		name string
		run  func(ctx context.Context, sql string) error
	}{
		{"QueryRow", func(ctx context.Context, sql string) error { var x int; return r.QueryRow(ctx, sql).Scan(&x) }},
		{"Query", func(ctx context.Context, sql string) error {
			rows, err := r.Query(ctx, sql)
			if err != nil {
				return err
			}
			for rows.Next() {
			}
			rows.Close()
			return rows.Err()
		}},
		{"Exec", func(ctx context.Context, sql string) error { _, err := r.Exec(ctx, sql); return err }},
	}
	for i := range 50 {
		call := calls[i%len(calls)]
		sql, cctx := dblink, ctx
		switch i % 5 {
		case 3:
			sql = "SELECT raise_08006()"
		case 4:
			cctx = routerlib.Primary(ctx) // the writer is not ejected either
		}
		rec.reset()
		err := call.run(cctx, sql)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || !strings.HasPrefix(pgErr.Code, "08") {
			t.Fatalf("%s %d: %v, want the server's error of class 08", call.name, i, err)
		}
		if len(rec.decisions) != 1 {
			t.Fatalf("%s %d: %d routing decisions %+v, want 1: a server's error is never retried", call.name, i, len(rec.decisions), rec.decisions)
		}
	}
	for _, s := range r.Stat() {
		if !s.Healthy || s.LastError != "" {
			t.Errorf("%s after 50 server errors: healthy=%v last error %q", s.Name, s.Healthy, s.LastError)
		}
		if s.DeclaredRole == "replica" && !s.Readable {
			t.Errorf("replica %s out of rotation (%s) after server errors", s.Name, s.Ejected)
		}
		if s.DeclaredRole == "primary" && !s.Writer {
			t.Errorf("the primary no longer takes writes after server errors")
		}
	}
	replicas := map[int]bool{topo.Standbys[0].Port: true, topo.Standbys[1].Port: true}
	seen := map[int]bool{}
	for range 4 {
		p := serverPort(t, ctx, r)
		if !replicas[p] {
			t.Fatalf("a read after the server errors was answered by port %d, not a replica", p)
		}
		seen[p] = true
	}
	if len(seen) != 2 {
		t.Errorf("reads after the server errors used %d replicas, want both", len(seen))
	}
}
