package provider

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// A session of the probe pool that the publisher ended within the second
// after its last use (pg_terminate_backend here; a restart, DROP DATABASE
// … WITH (FORCE) or a pooler in front of the publisher do the same):
// pgxpool hands an idle connection that young out without a ping, the
// attempt's own ping fails on it, and the publisher, up and answering, was
// taken for unreachable: the command's checks skipped ("Publisher Not
// Checked") and the failure remembered for publisherRetryAfter. Before the
// pools, each probe dialled afresh and never met a dead session.
func TestReview5PublisherSessionEndedJustAfterUse(t *testing.T) {
	testAccPreCheck(t)
	pub := routertest.Start(t, routertest.WithStandbys(0)).Primary
	connection := fmt.Sprintf("host=127.0.0.1 port=%d user=postgres dbname=postgres application_name=review5_ended", pub.Port)
	ctx := context.Background()
	for i := range 3 {
		if _, _, err := publisherPools.reach(ctx, &server{}, connection); err != nil {
			t.Fatalf("round %d: first reach: %v", i, err)
		}
		// namedHostConfig names every probe session alike; this pool's is
		// the only one on this node.
		execSQL(t, pub, "postgres", `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'terraform-provider-pgreplication'`)
		began := time.Now()
		_, _, err := publisherPools.reach(ctx, &server{}, connection)
		if err != nil {
			t.Fatalf("round %d: the publisher, up and answering, was found unreachable %s after its probe session ended: %v",
				i, time.Since(began).Round(time.Millisecond), err)
		}
	}
}

// Every way the probe's attempt can fail, with a canary password in the
// connection string (keyword and URI form, and the other secret keywords):
// no error holds a secret.
func TestReview5ProbeErrorsHoldNoSecret(t *testing.T) {
	testAccPreCheck(t)
	pub := routertest.Start(t, routertest.WithStandbys(0)).Primary
	ctx := context.Background()
	pw := "canary" + canaryMark + "-review5-pw"
	execSQL(t, pub, "postgres", `SET password_encryption = 'scram-sha-256'; CREATE ROLE review5_login LOGIN PASSWORD 'right-one';
CREATE ROLE review5_nologin NOLOGIN PASSWORD '`+pw+`'`)
	if err := pub.RequirePassword(ctx, "review5_login"); err != nil {
		t.Fatal(err)
	}
	if err := pub.RequirePassword(ctx, "review5_nologin"); err != nil {
		t.Fatal(err)
	}
	frozen := routertest.Start(t, routertest.WithStandbys(0)).Primary
	t.Cleanup(func() { _ = frozen.Thaw() })
	if err := frozen.Freeze(); err != nil {
		t.Fatal(err)
	}
	extra := " sslpassword='canary" + canaryMark + "-sslpw' sslkey='/tmp/canary" + canaryMark + "-key' passfile='/tmp/canary" + canaryMark + "-pass'"
	cases := map[string]string{
		"refused password": fmt.Sprintf("host=127.0.0.1 port=%d user=review5_login dbname=postgres password='%s'", pub.Port, pw),
		"no login":         fmt.Sprintf("host=127.0.0.1 port=%d user=review5_nologin dbname=postgres password='%s'", pub.Port, pw),
		"missing database": fmt.Sprintf("host=127.0.0.1 port=%d user=postgres dbname=review5_none password='%s'", pub.Port, pw),
		"unknown host":     fmt.Sprintf("host=review5-no-such-host.invalid port=%d user=postgres password='%s'", pub.Port, pw),
		"refused port":     fmt.Sprintf("host=127.0.0.1 port=1 user=postgres password='%s'", pw),
		"frozen":           fmt.Sprintf("host=127.0.0.1 port=%d user=postgres password='%s'", frozen.Port, pw),
		"other secrets":    fmt.Sprintf("host=127.0.0.1 port=%d user=review5_login dbname=postgres password='%s'", pub.Port, pw) + extra,
		"uri refused":      fmt.Sprintf("postgresql://review5_login:%s@127.0.0.1:%d/postgres", url.QueryEscape(pw), pub.Port),
		"uri no login":     fmt.Sprintf("postgresql://review5_nologin:%s@127.0.0.1:%d/postgres?sslpassword=%s", url.QueryEscape(pw), pub.Port, url.QueryEscape(pw)),
	}
	for name, connection := range cases {
		_, _, err := publisherPools.reach(ctx, &server{}, connection)
		if err == nil {
			t.Errorf("%s: reached", name)
			continue
		}
		t.Logf("%s: %v", name, err)
		if strings.Contains(err.Error(), canaryMark) || strings.Contains(fmt.Sprintf("%#v", err), canaryMark) {
			t.Errorf("%s: the error holds a secret: %v", name, err)
		}
	}
}

// Ctrl-C while a probe waits for another's attempt on a frozen publisher
// ends the wait at once; the attempt's maker, cancelled, leaves no failure
// behind for the probes after it.
func TestReview5CancelWhileWaiting(t *testing.T) {
	testAccPreCheck(t)
	pub := routertest.Start(t, routertest.WithStandbys(0)).Primary
	t.Cleanup(func() { _ = pub.Thaw() })
	connection := fmt.Sprintf("host=127.0.0.1 port=%d user=postgres dbname=postgres application_name=review5_cancel", pub.Port)
	if err := pub.Freeze(); err != nil {
		t.Fatal(err)
	}
	by := &server{}
	makerCtx, stopMaker := context.WithCancel(context.Background())
	makerDone := make(chan error, 1)
	go func() { _, _, err := publisherPools.reach(makerCtx, by, connection); makerDone <- err }()
	time.Sleep(300 * time.Millisecond)
	waitCtx, stopWaiter := context.WithCancel(context.Background())
	waiterDone := make(chan error, 1)
	go func() { _, _, err := publisherPools.reach(waitCtx, by, connection); waiterDone <- err }()
	time.Sleep(300 * time.Millisecond)
	began := time.Now()
	stopWaiter()
	if err := <-waiterDone; err == nil || time.Since(began) > time.Second {
		t.Errorf("the waiter cancelled returned after %s with %v; want at once, cancelled", time.Since(began), err)
	}
	began = time.Now()
	stopMaker()
	if err := <-makerDone; err == nil || time.Since(began) > time.Second {
		t.Errorf("the maker cancelled returned after %s with %v; want at once, cancelled", time.Since(began), err)
	}
	if err := pub.Thaw(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := publisherPools.reach(context.Background(), by, connection); err != nil {
		t.Errorf("after a cancelled attempt, the same command did not reach the thawed publisher: %v", err)
	}
}
