package routertest

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
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

// A bouncer that exits without being stopped is started again on its port,
// as a service manager restarts a crashed daemon: PgBouncer 1.18.0
// (Debian 12's) exits with "FATAL ... disconnect_client(): bad client
// state: 0" when a cancel request's client hangs up before the server
// has answered it (pgbouncer#801, fixed in 1.19.0), which a router's
// bounded cancel of a call on a frozen node does: its server answers at
// the thaw, and the bouncer died there, leaving its port refusing every
// connection for the rest of the test (TestRedWritesUnderFaults's
// PgBouncer case, once in CI and 3 in 31 runs under load).
func TestBouncerRestartedAfterCrash(t *testing.T) {
	topo := Start(t, WithStandbys(0), WithPgBouncer())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n := topo.Primary

	// A call that runs through the bouncer: PgBouncer 1.18 forwards a
	// cancel only while its client's server connection runs one.
	c, err := pgconn.Connect(ctx, n.BouncerDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	c.Frontend().SendQuery(&pgproto3.Query{String: "SELECT pg_sleep(60)"})
	if err := c.Frontend().Flush(); err != nil {
		t.Fatal(err)
	}
	sleeping := func() (running bool, err error) {
		err = n.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(60)' AND state = 'active')").Scan(&running)
		return running, err
	}
	if err := poll(ctx, sleeping); err != nil {
		t.Fatal(err)
	}
	if err := n.Freeze(); err != nil {
		t.Fatal(err)
	}
	// The cancel's client gives up before the frozen server answers, and
	// the call's client hangs up, as a router does with a call it cuts.
	cctx, ccancel := context.WithTimeout(ctx, 300*time.Millisecond)
	_ = c.CancelRequest(cctx)
	ccancel()
	// Once the bouncer has sent the request on (it logs that), or a while.
	logged := func() bool {
		data, _ := os.ReadFile(filepath.Join(n.bouncer.dir, "pgbouncer.log"))
		return bytes.Contains(data, []byte("started sending cancel request"))
	}
	for deadline := time.Now().Add(2 * time.Second); !logged() && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	c.Conn().Close()
	time.Sleep(200 * time.Millisecond) // the bouncer sees its clients gone
	if err := n.Thaw(); err != nil {
		t.Fatal(err)
	}
	thawed := time.Now()
	// The server ends the call once it has the cancel (the bouncer gets its
	// answer then), and the bouncer has a moment to act on the answer.
	if err := poll(ctx, func() (bool, error) {
		running, err := sleeping()
		return !running, err
	}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)

	// The bouncer serves again: the same port, the same server.
	var served error
	err = poll(ctx, func() (bool, error) {
		actx, acancel := context.WithTimeout(ctx, time.Second)
		defer acancel()
		bc, err := pgconn.Connect(actx, n.BouncerDSN())
		if served = err; err != nil {
			return time.Since(thawed) > 10*time.Second, nil
		}
		defer bc.Close(actx)
		res := bc.ExecParams(actx, "SELECT inet_server_port()", nil, nil, nil, nil).Read()
		if served = res.Err; res.Err != nil {
			return time.Since(thawed) > 10*time.Second, nil
		}
		if got := string(res.Rows[0][0]); got != strconv.Itoa(n.Port) {
			t.Fatalf("the bouncer's port %d answers for the server on port %s, want %d", n.BouncerPort, got, n.Port)
		}
		return true, nil
	})
	if err != nil || served != nil {
		t.Fatalf("%s's bouncer on port %d does not serve %v after the thaw: %v %v (%s)", n.Name, n.BouncerPort, time.Since(thawed), served, err, n.bouncer.logTail())
	}
	// Proof of exercise: the bouncer crashed (a PgBouncer that has the fix
	// serves throughout, which is as good).
	data, _ := os.ReadFile(filepath.Join(n.bouncer.dir, "pgbouncer.log"))
	if bytes.Contains(data, []byte("bad client state")) {
		t.Logf("the bouncer crashed at the thaw and serves again %v after it", time.Since(thawed))
	} else {
		t.Logf("this PgBouncer did not crash: %s", n.bouncer.logTail())
	}
}

// FreezeHost stops the node's PgBouncer with its server: a client of the
// bouncer gets no answer at all (with Freeze alone the bouncer answers
// its own handshake), and Thaw resumes both.
func TestFreezeHostStopsThePgBouncer(t *testing.T) {
	topo := Start(t, WithStandbys(0), WithPgBouncer())
	n := topo.Primary
	if err := n.FreezeHost(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Thaw() })
	n.bouncer.mu.Lock()
	pid := n.bouncer.cmd.Process.Pid
	n.bouncer.mu.Unlock()
	if state, err := processState(pid); err != nil || state != 'T' && state != 't' {
		t.Fatalf("the PgBouncer (pid %d) is in state %c (%v), want stopped", pid, state, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	c, err := pgconn.Connect(ctx, n.BouncerDSN())
	cancel()
	if err == nil {
		c.Close(context.Background())
		t.Fatal("a frozen host's PgBouncer took a connection")
	}
	if err := n.Thaw(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err = pgconn.Connect(ctx, n.BouncerDSN())
	if err != nil {
		t.Fatalf("after Thaw: %v", err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, "SELECT 1").ReadAll(); err != nil {
		t.Fatalf("after Thaw: %v", err)
	}
	if state, err := processState(pid); err != nil || state == 'T' || state == 't' {
		t.Fatalf("the PgBouncer (pid %d) is in state %c (%v) after Thaw", pid, state, err)
	}
}
