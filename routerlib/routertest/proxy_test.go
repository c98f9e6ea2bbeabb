package routertest_test

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// TestProxyPassesBytesThatAreNotTheProtocol: a client whose message
// declares a length under 4 (which counts itself: here a Parse of length 0)
// is not split into messages, which read past such a message's end (the
// proxy's goroutine panicked, ending the test binary): its bytes reach the
// server, which ends the connection, and the proxy serves the next client.
func TestProxyPassesBytesThatAreNotTheProtocol(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(0))
	p := topo.Primary.NewProxy(t)
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", p.Port()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte{0, 0, 0, 8, 0, 0, 0, 0, 'P', 0, 0, 0, 0}); err != nil {
		t.Fatal(err)
	}
	if err := c.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	var b [512]byte
	for {
		if _, err := c.Read(b[:]); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatal("the server never ended a connection that sent a length of 0")
			}
			break // the server ended it
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, fmt.Sprintf("host=127.0.0.1 port=%d user=postgres dbname=postgres sslmode=disable", p.Port()))
	if err != nil {
		t.Fatalf("the next client through the proxy: %v", err)
	}
	defer conn.Close(ctx)
	var one int
	if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("SELECT 1 through the proxy: %d, %v", one, err)
	}
}
