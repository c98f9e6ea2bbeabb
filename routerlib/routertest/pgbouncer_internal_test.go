package routertest

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// A bouncer whose port another process took first must not pass for ready
// (the other process answers there, maybe for another node): it reports
// errBouncerExited, which startBouncer answers with another port. The
// topology's bouncers start at once, so this happened under load.
func TestBouncerPortTaken(t *testing.T) {
	topo := Start(t, WithStandbys(1), WithPgBouncer())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	defer topo.Primary.bouncer.stop() // the one Start gave it, replaced below

	// Another node's bouncer on the port: it answers, for the wrong server.
	taken := topo.Standbys[0].BouncerPort
	err := topo.startBouncerOn(ctx, topo.Primary, taken)
	if !errors.Is(err, errBouncerExited) {
		t.Fatalf("a bouncer started on the port of another node's bouncer: err = %v, want errBouncerExited", err)
	}
	// A plain listener on the port: the new bouncer cannot bind and exits.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	if err := topo.startBouncerOn(ctx, topo.Primary, port); !errors.Is(err, errBouncerExited) {
		t.Fatalf("a bouncer started on a taken port: err = %v, want errBouncerExited", err)
	}
	// And startBouncer moves on to a free port; the node is served again.
	if err := topo.startBouncer(ctx, topo.Primary); err != nil {
		t.Fatal(err)
	}
	if topo.Primary.BouncerPort == taken || topo.Primary.BouncerPort == port {
		t.Fatalf("the primary's bouncer is on a taken port %d", topo.Primary.BouncerPort)
	}
	c, err := pgconn.Connect(ctx, topo.Primary.BouncerDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	res := c.ExecParams(ctx, "SELECT inet_server_port()", nil, nil, nil, nil).Read()
	if res.Err != nil || len(res.Rows) != 1 || string(res.Rows[0][0]) != strconv.Itoa(topo.Primary.Port) {
		t.Fatalf("the primary's bouncer answers %v, %v; want the primary's port %d", res.Rows, res.Err, topo.Primary.Port)
	}
}

// WithPgBouncerTLS: each bouncer takes its clients over TLS only, with the
// certificate routertest made for it, and BouncerDSN and the router file
// ask for it.
func TestBouncerTLS(t *testing.T) {
	topo := Start(t, WithStandbys(0), WithPgBouncerTLS())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n := topo.Primary
	c, err := pgconn.Connect(ctx, n.BouncerDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if _, ok := c.Conn().(*tls.Conn); !ok {
		t.Errorf("%s reaches the bouncer over %T, want TLS", n.BouncerDSN(), c.Conn())
	}
	if err := c.Exec(ctx, "SELECT 1").Close(); err != nil {
		t.Fatal(err)
	}
	if got := topo.Artifact().Nodes[0].SSLMode; got != "require" {
		t.Errorf("the router file's sslmode = %q, want require", got)
	}
	plain := "postgres://postgres@" + net.JoinHostPort(n.Host, strconv.Itoa(n.BouncerPort)) + "/postgres?sslmode=disable"
	if c, err := pgconn.Connect(ctx, plain); err == nil {
		c.Close(ctx)
		t.Errorf("the bouncer took a client without TLS")
	}
}
