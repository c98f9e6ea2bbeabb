package provider

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// The probe pool of a publisher that freezes (SIGSTOP): the connection
// whose query timed out is closed, not handed out again; an attempt to
// reach it just after a probe used it does not take the idle connection
// for an answer; ten probes of
// one command that ask at once share one attempt, one publisherProbeTimeout
// in all; the failure answers for that command's later probes at once,
// and the next command (another provider instance) tries again and sees
// the publisher thawed. No error holds the password.
func TestPubpoolFrozenPublisherPool(t *testing.T) {
	testAccPreCheck(t)
	pub := routertest.Start(t, routertest.WithStandbys(0)).Primary
	t.Cleanup(func() {
		if err := pub.Thaw(); err != nil {
			t.Error(err)
		}
	})
	pw := "canary" + canaryMark + "-pubpool-pool"
	connection := fmt.Sprintf("host=127.0.0.1 port=%d user=postgres dbname=postgres password='%s'", pub.Port, pw)
	ctx := context.Background()
	noSecret := func(err error) {
		t.Helper()
		if err != nil && strings.Contains(err.Error(), canaryMark) {
			t.Errorf("the error holds the password: %v", err)
		}
	}

	plan := &server{} // the provider instance of one command
	pp, _, err := publisherPools.reach(ctx, plan, connection)
	if err != nil {
		t.Fatal(err)
	}
	pool := pp.pool
	if n := pool.Stat().IdleConns(); n != 1 {
		t.Fatalf("the pool has %d idle connections after the first reach; want 1", n)
	}
	if err := pub.Freeze(); err != nil {
		t.Fatal(err)
	}
	qctx, cancel := context.WithTimeout(ctx, time.Second)
	var one int
	err = pool.QueryRow(qctx, `SELECT 1`).Scan(&one)
	cancel()
	if err == nil {
		t.Fatal("a query to the frozen publisher answered")
	}
	// Destroyed, not idle: pgxpool counts it until its close ends (the
	// cancel request pgconn sends the frozen server), but never hands it out.
	if n := pool.Stat().IdleConns(); n != 0 {
		t.Fatalf("the connection whose query timed out is back among the pool's idle connections (%d): it would be handed out again", n)
	}

	// A publisher frozen right after a probe used it: the pool's
	// connection, idle under a second, goes out without pgxpool's ping,
	// and an attempt that took it for an answer left every check after it
	// to wait publisherProbeTimeout of its own.
	if err := pub.Thaw(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := publisherPools.reach(ctx, &server{}, connection); err != nil {
		t.Fatal(err)
	}
	if err := pub.Freeze(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := publisherPools.reach(ctx, &server{}, connection); err == nil {
		t.Fatal("a probe found the publisher frozen just after its last use reachable")
	}

	refresh := &server{} // the next command
	began := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, 10)
	for i := range errs {
		wg.Go(func() { _, _, errs[i] = publisherPools.reach(ctx, refresh, connection) })
	}
	wg.Wait()
	took := time.Since(began)
	for _, err := range errs {
		if err == nil {
			t.Fatal("a probe reached the frozen publisher")
		}
		noSecret(err)
	}
	t.Logf("ten probes at once of the frozen publisher took %s: %v", took.Round(time.Millisecond), errs[0])
	if took > publisherProbeTimeout+3*time.Second {
		t.Errorf("ten probes at once of the frozen publisher took %s; want one publisherProbeTimeout (%s)", took, publisherProbeTimeout)
	}
	if err := pub.Thaw(); err != nil {
		t.Fatal(err)
	}
	began = time.Now()
	if _, _, err := publisherPools.reach(ctx, refresh, connection); err == nil || time.Since(began) > time.Second {
		t.Errorf("a later probe of the same command tried the publisher again (%s, %v); want the failure at once", time.Since(began), err)
	}
	if _, _, err := publisherPools.reach(ctx, &server{}, connection); err != nil {
		t.Errorf("the next command did not reach the thawed publisher: %v", err)
	}
}
