package routerlib_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// TestAcqroomPrimaryReadKilledIsARead: a plain SELECT sent with Exec under
// Primary, whose session pg_terminate_backend ends mid-call, failed as a
// write: "failed during a write, which may have committed", an
// ErrMaybeCommitted, although the classifier knows it to be a read. It now
// fails as a read on the primary's read-write session does (no
// ErrMaybeCommitted, the node named); an INSERT, and a SELECT of a
// function the classifier takes for a write (nextval), still fail with
// ErrMaybeCommitted.
func TestAcqroomPrimaryReadKilledIsARead(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(0))
	ctx := context.Background()
	if err := topo.Primary.Exec(ctx, "CREATE TABLE acq_killed (v int); CREATE SEQUENCE acq_killed_seq"); err != nil {
		t.Fatal(err)
	}
	r := newRouter(t, steadyHealth(topo.Artifact(), 200*time.Millisecond))
	for _, c := range []struct {
		name, sql, mark string
		maybeCommitted  bool
	}{
		{"plain SELECT", "SELECT 'acq_mark_1' FROM pg_catalog.pg_sleep(3)", "acq_mark_1", false},
		{"INSERT", "INSERT INTO acq_killed SELECT 1 FROM pg_catalog.pg_sleep(3) WHERE 'acq_mark_2' <> ''", "acq_mark_2", true},
		{"SELECT nextval", "SELECT pg_catalog.nextval('acq_killed_seq') FROM pg_catalog.pg_sleep(3) WHERE 'acq_mark_3' <> ''", "acq_mark_3", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			// The last subtest's kill may have taken the primary out
			// until its next check.
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
				_, err := r.Exec(routerlib.Primary(ctx), "SELECT 1")
				if err == nil {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the primary takes no call 10 s after the last subtest: %v", err)
				}
			}
			done := make(chan error, 1)
			go func() {
				_, err := r.Exec(routerlib.Primary(ctx), c.sql)
				done <- err
			}()
			killed := false
			for deadline := time.Now().Add(2 * time.Second); !killed; time.Sleep(20 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatal("the statement never showed in pg_stat_activity: the test proves nothing")
				}
				if err := topo.Primary.QueryRow(ctx, "SELECT count(pg_catalog.pg_terminate_backend(pid)) > 0 FROM pg_catalog.pg_stat_activity WHERE query LIKE '%'||$1||'%' AND pid <> pg_catalog.pg_backend_pid()", c.mark).Scan(&killed); err != nil {
					t.Fatal(err)
				}
			}
			err := <-done
			t.Logf("%s: %v", c.name, err)
			if err == nil {
				t.Fatal("the call succeeded although its session was ended under it")
			}
			if !strings.Contains(err.Error(), `"`+topo.Primary.Name+`"`) {
				t.Errorf("the error does not name the node: %v", err)
			}
			if got := errors.Is(err, routerlib.ErrMaybeCommitted); got != c.maybeCommitted {
				t.Errorf("errors.Is(err, ErrMaybeCommitted) = %v, want %v: %v", got, c.maybeCommitted, err)
			}
		})
	}
}
