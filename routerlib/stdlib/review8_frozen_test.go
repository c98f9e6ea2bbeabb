//go:build linux

package stdlib_test

import (
	"context"
	"testing"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// TestReview8FrozenReplicaMidRows: a replica freezes while database/sql
// iterates a read's rows, with no deadline on the context: the health
// checks eject it and cut its connections off, so Next ends with an error
// within eject_after × interval + timeout (and the machine's lateness),
// Close returns, and the next read runs on the other replica.
func TestReview8FrozenReplicaMidRows(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(2))
	a := fastHealth(topo.Artifact(), 200*time.Millisecond)
	a.Health.Timeout, a.Health.EjectAfter = "500ms", 2
	a.ReadPolicy.Fallback = artifact.FallbackError
	db, _ := openDB(t, a)
	ctx := context.Background()
	// Wait for both replicas.
	seen := map[int]bool{}
	deadline := time.Now().Add(10 * time.Second)
	for len(seen) < 2 && time.Now().Before(deadline) {
		seen[port(t, ctx, db, "SELECT inet_server_port()")] = true
	}
	rows, err := db.QueryContext(ctx, "SELECT inet_server_port(), g, repeat('x', 1000) FROM generate_series(1, 2000000) g")
	if err != nil {
		t.Fatal(err)
	}
	var p, g int
	var pad string
	if !rows.Next() {
		t.Fatal(rows.Err())
	}
	if err := rows.Scan(&p, &g, &pad); err != nil {
		t.Fatal(err)
	}
	var frozen *routertest.Node
	for _, s := range topo.Standbys {
		if s.Port == p {
			frozen = s
		}
	}
	if frozen == nil {
		t.Fatalf("the read ran on port %d, no standby", p)
	}
	if err := frozen.Freeze(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = frozen.Thaw() })
	start := time.Now()
	n := 1
	done := make(chan struct{})
	go func() {
		defer close(done)
		for rows.Next() {
			n++
		}
	}()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatalf("rows.Next on a frozen replica still blocked after 15 s (%d rows read)", n)
	}
	t.Logf("rows ended after %v and %d rows: %v", time.Since(start).Round(time.Millisecond), n, rows.Err())
	if rows.Err() == nil {
		t.Errorf("the rows of a frozen replica ended without an error after %d rows", n)
	}
	closed := make(chan struct{})
	go func() { rows.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("rows.Close blocked on a frozen replica")
	}
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if got := port(t, qctx, db, "SELECT inet_server_port()"); got == frozen.Port {
		t.Errorf("a read after the freeze ran on the frozen replica")
	}
}

// TestReview8FrozenPrimaryUnderTx: the primary freezes while a *sql.Tx is
// open on it; a statement of the transaction, without a deadline, fails
// within the health bound, Commit fails and says the transaction did not
// commit, and after the thaw nothing of it is on the primary.
func TestReview8FrozenPrimaryUnderTx(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(1))
	ctx := context.Background()
	if err := topo.Primary.Exec(ctx, "CREATE TABLE review8_tx (id int)"); err != nil {
		t.Fatal(err)
	}
	a := fastHealth(topo.Artifact(), 200*time.Millisecond)
	a.Health.Timeout, a.Health.EjectAfter = "500ms", 2
	db, _ := openDB(t, a)
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO review8_tx VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	if err := topo.Primary.Freeze(); err != nil {
		t.Fatal(err)
	}
	thawed := false
	t.Cleanup(func() {
		if !thawed {
			_ = topo.Primary.Thaw()
		}
	})
	start := time.Now()
	errc := make(chan error, 1)
	go func() {
		_, err := tx.ExecContext(ctx, "INSERT INTO review8_tx VALUES (2)")
		errc <- err
	}()
	select {
	case err = <-errc:
	case <-time.After(15 * time.Second):
		t.Fatal("a statement of a transaction on a frozen primary still blocked after 15 s")
	}
	t.Logf("statement failed after %v: %v", time.Since(start).Round(time.Millisecond), err)
	if err == nil {
		t.Fatal("a statement on a frozen primary succeeded")
	}
	cerr := make(chan error, 1)
	go func() { cerr <- tx.Commit() }()
	select {
	case err = <-cerr:
	case <-time.After(10 * time.Second):
		t.Fatal("Commit blocked on a frozen primary")
	}
	t.Logf("commit: %v", err)
	if err == nil {
		t.Error("Commit of a transaction cut off by a frozen primary succeeded")
	}
	if err := topo.Primary.Thaw(); err != nil {
		t.Fatal(err)
	}
	thawed = true
	time.Sleep(time.Second)
	var n int
	if err := topo.Primary.QueryRow(ctx, "SELECT count(*) FROM review8_tx").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("%d rows of a transaction whose Commit failed are on the primary after the thaw", n)
	}
	// The primary is the writer again.
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, err := db.ExecContext(ctx, "INSERT INTO review8_tx VALUES (3)")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no write after the thaw within 15 s: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
