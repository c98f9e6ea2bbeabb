package routerlib_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// TestPoolSlotForCloseConnectsNowhere: the slot each pool keeps beyond
// max_conns for Close (nodeConns.reserveSlot) is never a connection: with
// min_conns = max_conns = 2 the primary's pool opens 2 connections, a
// third Acquire waits until its context ends, and Stat reports the pool
// as configured.
func TestPoolSlotForCloseConnectsNowhere(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(1))
	ctx := context.Background()
	a := steadyHealth(topo.Artifact(), interval)
	a.Pool.MaxConns, a.Pool.MinConns = 2, 2
	r := newRouter(t, a)
	eventually(t, 10*time.Second, "min_conns connections open", func() bool {
		return nodeStat(r, topo.Primary.Name).Pool.TotalConns == 2
	})
	var held []*routerlib.Conn
	for range 2 {
		c, err := r.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	defer func() {
		for _, c := range held {
			c.Release()
		}
	}()
	wctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if c, err := r.Acquire(wctx); !errors.Is(err, context.DeadlineExceeded) {
		if c != nil {
			c.Release()
		}
		t.Errorf("a third Acquire of a pool of 2 held: %v; want it to wait until its context ends", err)
	}
	// The pool's 2 and the health check's one.
	var open int
	if err := topo.Primary.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'routerlib'").Scan(&open); err != nil {
		t.Fatal(err)
	}
	if open > 3 {
		t.Errorf("%d routerlib sessions on the primary; want at most 3 (max_conns 2 and the health check's)", open)
	}
	s := nodeStat(r, topo.Primary.Name).Pool
	t.Logf("the primary's pool: %+v; %d routerlib sessions on the primary", s, open)
	if s.MaxConns != 2 || s.TotalConns != 2 || s.AcquiredConns != 2 {
		t.Errorf("Stat of the primary's pool: %+v; want MaxConns, TotalConns and AcquiredConns 2", s)
	}
}

// TestPoolFirstFillIsMinConns: a pool's first fill sets up min_conns
// connections, not one more: pgxpool is given min_conns + 1 (the slot kept
// for Close counts toward it once taken, see server.newPool), and the
// fill, made before the slot is taken, drops the one past min_conns.
func TestPoolFirstFillIsMinConns(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(1))
	ctx := context.Background()
	a := steadyHealth(topo.Artifact(), interval)
	a.Pool.MaxConns, a.Pool.MinConns = 4, 2
	r := newRouter(t, a)
	eventually(t, 10*time.Second, "min_conns connections open", func() bool {
		return nodeStat(r, topo.Primary.Name).Pool.TotalConns == 2
	})
	time.Sleep(time.Second) // a connection past min_conns would be open by now
	// The pool's 2 and the health check's one.
	var open int
	if err := topo.Primary.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'routerlib'").Scan(&open); err != nil {
		t.Fatal(err)
	}
	s := nodeStat(r, topo.Primary.Name).Pool
	t.Logf("the primary's pool: %+v; %d routerlib sessions on the primary", s, open)
	if open != 3 || s.TotalConns != 2 {
		t.Errorf("%d routerlib sessions on the primary, pool TotalConns %d; want 3 (min_conns 2 and the health check's) and 2", open, s.TotalConns)
	}
}
