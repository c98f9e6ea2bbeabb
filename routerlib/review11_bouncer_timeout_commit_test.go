package routerlib_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// TestReview11BouncerQueryTimeoutAtCommit: PgBouncer's query_timeout ends
// a transaction at its COMMIT (a deferred trigger runs 2 s there): pgx
// surfaces the FATAL, the router says the transaction may have committed
// or commit later, and the primary keeps the writes.
func TestReview11BouncerQueryTimeoutAtCommit(t *testing.T) {
	withPgBouncerSettings(t, "query_timeout = 1")
	topo := routertest.Start(t, routertest.WithStandbys(1), routertest.WithPgBouncer())
	ctx := context.Background()
	if err := topo.Primary.Exec(ctx, `CREATE TABLE review11_t (id int);
CREATE FUNCTION review11_slow() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN PERFORM pg_sleep(2); RETURN NULL; END$$;
CREATE CONSTRAINT TRIGGER review11_slow AFTER INSERT ON review11_t DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION review11_slow();`); err != nil {
		t.Fatal(err)
	}
	r := newRouter(t, steadyHealth(topo.Artifact(), 200*time.Millisecond), throughPgBouncer)
	eventually(t, 10*time.Second, "primary writer", func() bool { return nodeStat(r, topo.Primary.Name).Writer })
	tx, err := r.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "INSERT INTO review11_t VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	err = tx.Commit(ctx)
	st := nodeStat(r, topo.Primary.Name)
	t.Logf("commit: %v; primary writer %v %s", err, st.Writer, st.LastError)
	if !errors.Is(err, routerlib.ErrMaybeCommitted) {
		t.Errorf("a COMMIT PgBouncer ended past query_timeout: %v, want ErrMaybeCommitted", err)
	}
	if !st.Writer {
		t.Errorf("the primary lost the writes after a COMMIT PgBouncer ended: %s", st.LastError)
	}
}
