package routerlib_test

import (
	"context"
	"net"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// TestAskedChecksOfADownPrimaryAreSpaced: calls waiting for a writer ask
// for a check every few milliseconds each (awaitWriter), and a check asked
// for while one runs runs after it (TestCheckAskedForWhileOneRuns). A
// primary that is down was then checked back to back, each check a new
// connection: review3 counted 859 connections in 3 s against a server
// that resets them, from one application instance with 4 waiting callers.
// Against a server starting up, each is a process forked and refused
// there, from every instance of the application. Asked-for checks are now
// spaced askedCheckGap (50 ms) apart: at most ~20 a second, whatever the
// number of callers waiting.
func TestAskedChecksOfADownPrimaryAreSpaced(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(0))
	ctx := context.Background()
	r := newRouter(t, steadyHealth(topo.Artifact(), time.Minute))
	primary := topo.Primary.Name
	eventually(t, 10*time.Second, "the primary taking the writes", func() bool {
		s, _ := r.NodeStat(primary)
		return s.Writer
	})
	if err := topo.Primary.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	// Something at the primary's address that accepts every connection
	// and closes it at once: each is counted.
	ln, err := net.Listen("tcp", net.JoinHostPort(topo.Primary.Host, strconv.Itoa(topo.Primary.Port)))
	if err != nil {
		t.Fatal(err)
	}
	var accepted atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			_ = c.Close()
		}
	}()
	t.Cleanup(func() { _ = ln.Close() })
	stop := make(chan struct{})
	wait := repeatUntil(stop, 4, func(int) {
		cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		_, _ = r.Exec(cctx, `INSERT INTO gap VALUES (1)`)
		cancel()
	})
	eventually(t, 10*time.Second, "the writes leaving the primary that is down", func() bool {
		s, _ := r.NodeStat(primary)
		return !s.Writer
	})
	// From now on the callers wait for a writer and do not connect: the
	// connections counted are the checks'.
	const window = 2 * time.Second
	from := accepted.Load()
	time.Sleep(window)
	checks := accepted.Load() - from
	close(stop)
	wait()
	// 40 spaced checks in the window, a scheduled one, and room for a
	// connection or two of a caller that was past awaitWriter.
	if most := int64(window/(50*time.Millisecond)) + 10; checks > most {
		t.Fatalf("%d connections to the primary that is down in %v while 4 calls waited for a writer, want at most %d: "+
			"the checks they asked for are not spaced", checks, window, most)
	}
	// And the checks asked for still run: spaced, not dropped.
	if least := int64(window/(50*time.Millisecond)) / 4; checks < least {
		t.Fatalf("%d connections to the primary that is down in %v while 4 calls waited for a writer, want at least %d: "+
			"the checks they asked for do not run", checks, window, least)
	}
	t.Logf("%d connections in %v", checks, window)
}
