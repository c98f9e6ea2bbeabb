package routerlib_test

import (
	"context"
	"testing"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// TestStickyReadDateStyle: a read_your_writes read sticky to the primary
// (the session's write not replayed) scans what the same read scans off
// the primary. e57163b sent such a read without arguments unnamed, so its
// columns came back as text, and under DateStyle = 'SQL, DMY' pgx could
// not read a timestamptz ("invalid PostgreSQL date/time value
// \"02/01/2026 03:04:05 UTC\""), which comes back in binary elsewhere.
func TestStickyReadDateStyle(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(1))
	ctx := context.Background()
	if err := topo.Primary.Exec(ctx, `ALTER DATABASE postgres SET DateStyle = 'SQL, DMY'`); err != nil {
		t.Fatal(err)
	}
	if err := topo.Primary.Exec(ctx, `CREATE TABLE ds (id int)`); err != nil {
		t.Fatal(err)
	}
	waitReplayed(t, topo)
	if err := topo.Standbys[0].SetApplyDelay(ctx, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	a := withMode(topo.Artifact(), artifact.ModeReadYourWrites)
	r := newRouter(t, a)
	const q = `SELECT timestamptz '2026-01-02 03:04:05+00'`
	var replica time.Time
	if err := r.QueryRow(ctx, q).Scan(&replica); err != nil {
		t.Fatalf("a read without a session: %v", err)
	}
	sctx := routerlib.WithSession(ctx, &routerlib.Session{})
	if _, err := r.Exec(sctx, "INSERT INTO ds VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	var sticky time.Time
	if err := r.QueryRow(sctx, q).Scan(&sticky); err != nil {
		t.Fatalf("the same read sticky to the primary (the session's write not replayed): %v", err)
	}
	if !sticky.Equal(replica) {
		t.Errorf("sticky read %s, off the primary %s", sticky, replica)
	}
}
