package routerlib

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// TestPgBouncerRefusalIsNoAnswer: PgBouncer's answers to the SSLRequest
// and to the startup (it authenticates the client itself), and its
// refusals of a client, FATAL
// 08P01 (here the server's login error, relayed; for a server that is
// down, "server login has been failing" while server_login_retry lasts,
// the same message but for its text), are no answer of the node to a
// call, and count for neither the late checks' excuse nor the unknown
// role (answeredSince); a query the server answers through it does. Old
// code counted the refusals (answeredSince true after each): under load, where the checks of a primary stopped
// behind its PgBouncer came late and the writes met such refusals, the
// primary's role turned unknown and no promoted standby ever took the
// writes (TestPgBouncerFailover: 5 of 5 runs failed "writes after
// promotion: not within 10s" at load 12 to 14, 2 cores, -race).
func TestPgBouncerRefusalIsNoAnswer(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(1), routertest.WithPgBouncer())
	ctx := context.Background()
	var reg connRegistry
	defer reg.close()
	conns := reg.add(topo.Primary.Name, net.JoinHostPort(topo.Primary.Host, "0"))
	dial := conns.dialer((&net.Dialer{}).DialContext, false)
	connect := func(database string) (*pgconn.PgConn, error) {
		// sslmode=prefer, as the router file's nodes: PgBouncer, not
		// the server, answers the SSLRequest first.
		dsn := strings.Replace(topo.Primary.BouncerDSN(), "/postgres?sslmode=disable", "/"+database+"?sslmode=prefer", 1)
		cfg, err := pgconn.ParseConfig(dsn)
		if err != nil {
			t.Fatal(err)
		}
		cfg.DialFunc = dial
		return pgconn.ConnectConfig(ctx, cfg)
	}
	for i := range 2 {
		start := time.Now()
		c, err := connect("no_such_db")
		if err == nil {
			c.Close(ctx)
			t.Fatalf("PgBouncer let a client of a database the server lacks in")
		}
		if !strings.Contains(err.Error(), `FATAL: database "no_such_db" does not exist (SQLSTATE 08P01)`) {
			t.Errorf("refusal %d: %v; want PgBouncer's FATAL 08P01", i, err)
		}
		if conns.answeredSince(start, time.Minute) {
			t.Errorf("PgBouncer's refusal %q counted as the node answering a call", err)
		}
	}
	start := time.Now()
	c, err := connect("postgres")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if conns.answeredSince(start, time.Minute) {
		t.Errorf("PgBouncer's answer to the startup (its own authentication, the server's parameters it keeps) counted as the node answering a call")
	}
	if err := c.Exec(ctx, "SELECT 1").Close(); err != nil {
		t.Fatal(err)
	}
	if !conns.answeredSince(start, time.Minute) {
		t.Errorf("a query the server answered through PgBouncer did not count as an answer")
	}
}
