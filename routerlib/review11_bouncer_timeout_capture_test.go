package routerlib_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// TestReview11BouncerQueryTimeoutCapturedWrite: a read-your-writes write
// (the capture path: BEGIN, the write, COMMIT and the LSN query in one
// round trip) that PgBouncer ends past query_timeout. What it says, and
// whether the primary keeps the writes. capture.go is rywpath's: this
// test only reports.
func TestReview11BouncerQueryTimeoutCapturedWrite(t *testing.T) {
	withPgBouncerSettings(t, "query_timeout = 1")
	topo := routertest.Start(t, routertest.WithStandbys(1), routertest.WithPgBouncer())
	ctx := context.Background()
	if err := topo.Primary.Exec(ctx, "CREATE TABLE review11_c (id int)"); err != nil {
		t.Fatal(err)
	}
	r := newRouter(t, withMode(steadyHealth(topo.Artifact(), 200*time.Millisecond), artifact.ModeReadYourWrites), throughPgBouncer)
	eventually(t, 10*time.Second, "primary writer", func() bool { return nodeStat(r, topo.Primary.Name).Writer })
	sctx := routerlib.WithSession(ctx, &routerlib.Session{})
	_, err := r.Exec(sctx, "INSERT INTO review11_c SELECT 1 FROM pg_sleep(2)")
	st := nodeStat(r, topo.Primary.Name)
	t.Logf("captured write: %v (ErrMaybeCommitted %v); primary writer %v %s", err, errors.Is(err, routerlib.ErrMaybeCommitted), st.Writer, st.LastError)
	if err == nil || !errors.Is(err, routerlib.ErrMaybeCommitted) {
		t.Errorf("a captured write PgBouncer ended past query_timeout: %v, want ErrMaybeCommitted", err)
	}
	if !st.Writer {
		t.Errorf("the primary lost the writes after a captured write PgBouncer ended: %s", st.LastError)
	}
}
