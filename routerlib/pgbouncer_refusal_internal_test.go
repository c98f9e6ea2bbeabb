package routerlib

import (
	"context"
	"crypto/tls"
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
// promotion: not within 10s" at load 12 to 14, 2 cores, -race). The same
// holds over TLS, where the socket carries all of it encrypted (the code
// before countAnswers counted the TLS handshake, the startup and each
// refusal there). So does a call refused after the startup, PgBouncer's
// refusal told from the server's answer by pgconn's decoding of it.
func TestPgBouncerRefusalIsNoAnswer(t *testing.T) {
	for _, c := range []struct {
		name    string
		opt     routertest.Option
		sslmode string
	}{
		// sslmode=prefer, as the router file's nodes by default:
		// PgBouncer, not the server, answers the SSLRequest first.
		{"sslmode=prefer", routertest.WithPgBouncer(), "prefer"},
		{"sslmode=require", routertest.WithPgBouncerTLS(), "require"},
	} {
		t.Run(c.name, func(t *testing.T) {
			topo := routertest.Start(t, routertest.WithStandbys(1), c.opt)
			ctx := context.Background()
			var reg connRegistry
			defer reg.close()
			conns := reg.add(topo.Primary.Name, net.JoinHostPort(topo.Primary.Host, "0"))
			dial := conns.dialer((&net.Dialer{}).DialContext, false)
			connect := func(database string) (*pgconn.PgConn, error) {
				dsn := topo.Primary.BouncerDSN()
				dsn = dsn[:strings.LastIndex(dsn, "/postgres?")] + "/" + database + "?sslmode=" + c.sslmode
				cfg, err := pgconn.ParseConfig(dsn)
				if err != nil {
					t.Fatal(err)
				}
				cfg.DialFunc = dial
				countAnswers(cfg) // as the pools' BeforeConnect does (startedAlive)
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
			pc, err := connect("postgres")
			if err != nil {
				t.Fatal(err)
			}
			defer pc.Close(ctx)
			if _, tls := pc.Conn().(*answerConn).Conn.(*tls.Conn); tls != (c.sslmode == "require") {
				t.Fatalf("the connection runs over TLS: %v; want it with sslmode=require only", tls)
			}
			if conns.answeredSince(start, time.Minute) {
				t.Errorf("PgBouncer's answer to the startup (its own authentication, the server's parameters it keeps) counted as the node answering a call")
			}
			if err := pc.Exec(ctx, "SELECT 1").Close(); err != nil {
				t.Fatal(err)
			}
			if !conns.answeredSince(start, time.Minute) {
				t.Errorf("a query the server answered through PgBouncer did not count as an answer")
			}

			// The server down, a session PgBouncer let in (its startup
			// answered from what it keeps) has its call refused: no
			// answer either.
			if err := topo.Primary.Stop(ctx); err != nil {
				t.Fatal(err)
			}
			start = time.Now()
			refused := 0
			for deadline := time.Now().Add(15 * time.Second); refused == 0 && time.Now().Before(deadline); {
				pc, err := connect("postgres")
				if err != nil {
					t.Logf("the startup with the server down: %v", err)
					time.Sleep(100 * time.Millisecond)
					continue
				}
				qctx, cancel := context.WithTimeout(ctx, 3*time.Second)
				err = pc.Exec(qctx, "SELECT 1").Close()
				cancel()
				pc.Close(ctx)
				if bouncerRefused(err) {
					refused++
				} else {
					t.Logf("a call with the server down: %v", err)
				}
			}
			if refused == 0 {
				t.Fatal("PgBouncer refused no call within 15s of the server's stop: the case proves nothing")
			}
			if conns.answeredSince(start, time.Minute) {
				t.Errorf("PgBouncer's refusal of a call, after the startup, counted as the node answering it")
			}
		})
	}
}
