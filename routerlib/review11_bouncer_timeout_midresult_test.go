package routerlib_test

import (
	"context"
	"testing"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// TestReview11BouncerQueryTimeoutMidResult: PgBouncer's query_timeout
// ends a read while its rows stream to the client. Its FATAL "query
// timeout" lands inside a row PgBouncer was forwarding, and pgx reads no
// error but the connection closing mid-message ("unexpected EOF"), which
// bouncerTimedOut cannot see. A Query whose caller had rows kept the node;
// an Exec took the replica out of rotation ("unreachable"), as if it were
// down, though it answers. A write whose rows stream (INSERT … RETURNING
// sends them only at its end) meets the clean FATAL and keeps the writes.
func TestReview11BouncerQueryTimeoutMidResult(t *testing.T) {
	withPgBouncerSettings(t, "query_timeout = 1")
	topo := routertest.Start(t, routertest.WithStandbys(2), routertest.WithPgBouncer())
	r := newRouter(t, steadyHealth(topo.Artifact(), 200*time.Millisecond), throughPgBouncer)
	ctx := context.Background()
	for _, s := range topo.Standbys {
		eventually(t, 10*time.Second, s.Name+" in rotation", func() bool { return nodeStat(r, s.Name).Readable })
	}
	const streamed = "SELECT g, repeat('x', 3000), pg_sleep(0.002) FROM generate_series(1, 1500) g"
	inRotation := func(after string) {
		t.Helper()
		for _, s := range topo.Standbys {
			if st := nodeStat(r, s.Name); !st.Readable {
				t.Errorf("%s out of rotation (%s) after %s PgBouncer ended mid-result: %s", s.Name, st.Ejected, after, st.LastError)
			}
		}
	}
	rows, err := r.Query(ctx, streamed)
	n := 0
	if err == nil {
		for rows.Next() {
			n++
		}
		rows.Close()
		err = rows.Err()
	}
	t.Logf("streamed Query: %d rows, %v", n, err)
	if err == nil {
		t.Fatal("the streamed read ended well: it did not outlast query_timeout")
	}
	inRotation("a Query")
	_, err = r.Exec(ctx, streamed)
	t.Logf("streamed Exec: %v", err)
	inRotation("an Exec")

	if _, err := r.Exec(ctx, "CREATE TABLE review11_m (id int)"); err != nil {
		t.Fatal(err)
	}
	_, err = r.Exec(ctx, "INSERT INTO review11_m SELECT g FROM generate_series(1, 1500) g RETURNING repeat('x', 3000), pg_sleep(0.002)")
	t.Logf("streamed write: %v", err)
	if st := nodeStat(r, topo.Primary.Name); !st.Writer {
		t.Errorf("the primary lost the writes after a write PgBouncer ended: %s", st.LastError)
	}
}
