package routerlib

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// The read-your-writes write's direct path (execTxCapture) driven into a
// server that refuses writes: one whose sessions default to read-only
// transactions (ALTER SYSTEM default_transaction_read_only), a standby
// promoted in place of a stopped primary, and an old primary restarted as
// a standby of the promoted node before the router saw either. Each
// captured Exec is checked for what its caller is told and what the
// servers hold: a write that failed committed nowhere, one that may have
// committed committed at most once and left its session asking the
// primary, one that succeeded committed once, on the server whose
// position the session now holds; and the pool's next call works.

// rywpathRouter is a read_your_writes Router on topo whose pools have at
// most one connection (so that the next call runs on the connection the
// captured write used), with checks every interval; cfg, if set, adjusts
// the pools.
func rywpathRouter(t *testing.T, topo *routertest.Topology, interval time.Duration, cfg func(*pgxpool.Config)) *Router {
	t.Helper()
	a := topo.Artifact()
	a.Consistency.Mode = artifact.ModeReadYourWrites
	a.Health = artifact.Health{Interval: artifact.Duration(interval.String()), Timeout: "1s", EjectAfter: 3, ReadmitAfter: 1}
	r, err := New(context.Background(), a, WithPoolConfig(func(_ artifact.Node, c *pgxpool.Config) {
		c.MaxConns = 1
		if cfg != nil {
			cfg(c)
		}
	}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

// insertLSN is n's WAL insert position now, as routerlib records it.
func insertLSN(t *testing.T, n *routertest.Node) LSN {
	t.Helper()
	var lsn uint64
	if err := n.QueryRow(context.Background(), "SELECT (pg_catalog.pg_current_wal_insert_lsn() - '0/0')::int8").Scan(&lsn); err != nil {
		t.Fatalf("%s's position: %v", n.Name, err)
	}
	return LSN(lsn)
}

// rowsOf counts the rows of id in table on n (-1 when n does not answer).
func rowsOf(n *routertest.Node, table string, id int) int {
	var c int
	if err := n.QueryRow(context.Background(), "SELECT count(*) FROM "+table+" WHERE id = $1", id).Scan(&c); err != nil {
		return -1
	}
	return c
}

// capturedInsert inserts id into table through r with a new session, the
// way sql says (with $1 or with the id written in), and checks the
// outcome against the servers: on success, the row is on writer only, once,
// and the session's position is writer's, read after the commit (past
// before, at most writer's position now); on a failure that the write may
// have committed (ErrMaybeCommitted, or a position that could not be
// read) the row is there at most once and the session asks the primary
// before its next read; on any other failure the row is nowhere and the
// session is as it was. It returns the error.
func capturedInsert(t *testing.T, r *Router, table, sql string, id int, writer *routertest.Node, others ...*routertest.Node) error {
	t.Helper()
	ctx := context.Background()
	s := &Session{}
	before := insertLSN(t, writer)
	var err error
	if strings.Contains(sql, "$1") {
		_, err = r.Exec(WithSession(ctx, s), sql, id)
	} else {
		_, err = r.Exec(WithSession(ctx, s), fmt.Sprintf(sql, id))
	}
	total := 0
	for _, n := range append([]*routertest.Node{writer}, others...) {
		if c := rowsOf(n, table, id); c > 0 {
			total += c
		}
	}
	switch {
	case err == nil:
		after := insertLSN(t, writer)
		if c := rowsOf(writer, table, id); c != 1 || total != 1 {
			t.Errorf("write %d succeeded: %d rows on %s, %d in all; want 1", id, c, writer.Name, total)
		}
		if lsn := s.LSN(); lsn <= before || lsn > after {
			t.Errorf("write %d succeeded on %s: the session holds %s, want a position of %s's after the commit (past %s, at most %s)", id, writer.Name, lsn, writer.Name, before, after)
		}
	case errors.Is(err, ErrMaybeCommitted):
		if total > 1 {
			t.Errorf("write %d (%v) committed %d times", id, err, total)
		}
		// A server's FATAL (the session ended: 57P01) aborted the
		// transaction of a write whose COMMIT it came before: the
		// capture path knows it did not commit, and leaves the session
		// as it was, though the Router says what it says of any write
		// in flight on a session that ended.
		var pgErr *pgconn.PgError
		if s.unsettled() == 0 && !errors.As(err, &pgErr) {
			t.Errorf("write %d may have committed (%v), but its session does not ask the primary before its next read", id, err)
		}
	default:
		if total != 0 {
			t.Errorf("write %d failed (%v) but %d rows of it committed", id, err, total)
		}
		if s.LSN() != 0 || s.unsettled() != 0 {
			t.Errorf("write %d failed (%v), committing nothing, but its session changed (position %s, %d unsettled)", id, err, s.LSN(), s.unsettled())
		}
	}
	return err
}

// nextCallWorksTimeout bounds nextCallWorks' call: a pool whose slot a
// cut call lost waits for a connection forever.
const nextCallWorksTimeout = 15 * time.Second

// nextCallWorks checks that the pool of the primary serves its next call
// with its own answer (a read forced to the primary), within
// nextCallWorksTimeout.
func nextCallWorks(t *testing.T, r *Router, after string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(Primary(context.Background()), nextCallWorksTimeout)
	defer cancel()
	var got int
	want := int(time.Now().UnixNano() % 1000000)
	start := time.Now()
	err := r.QueryRow(ctx, "SELECT $1::int", want).Scan(&got)
	if ctx.Err() != nil {
		t.Fatalf("the primary's next call after %s did not return within %s (a connection slot lost, or the pool hung): %d (%v)", after, nextCallWorksTimeout, got, err)
	}
	if err != nil || got != want {
		t.Fatalf("the primary's next call after %s: %d (%v) after %s, want %d", after, got, err, time.Since(start).Round(time.Millisecond), want)
	}
}

// The SQL of the captured writes: prepared on the connection (arguments),
// and unprepared (the id written in: no arguments).
var rywpathWrites = []string{"INSERT INTO %s VALUES ($1)", "INSERT INTO %s VALUES (%%d)"}

// TestRywpathReadOnlyServer: ALTER SYSTEM default_transaction_read_only
// on the primary, reloaded: each captured write fails with the server's
// 25006 and nothing else (as any error the server sends for the
// statement), committing nothing; the connection serves the next call;
// once reset, the same connection's write commits once with its position.
// In the pool's default exec mode (statements prepared) and in
// QueryExecModeExec (none).
func TestRywpathReadOnlyServer(t *testing.T) {
	topo := routertest.Shared(t)
	ctx := context.Background()
	const table = "rywpath_ro"
	if err := topo.Primary.Exec(ctx, "CREATE TABLE "+table+" (id int)"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = topo.Primary.Exec(ctx, "DROP TABLE "+table) })
	readOnly := func(on bool) {
		q := "ALTER SYSTEM RESET default_transaction_read_only"
		if on {
			q = "ALTER SYSTEM SET default_transaction_read_only = on"
		}
		if err := topo.Primary.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
		if err := topo.Primary.Exec(ctx, "SELECT pg_reload_conf()"); err != nil {
			t.Fatal(err)
		}
		want := map[bool]string{true: "on", false: "off"}[on]
		deadline := time.Now().Add(10 * time.Second)
		for {
			var got string
			if err := topo.Primary.QueryRow(ctx, "SHOW default_transaction_read_only").Scan(&got); err == nil && got == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("default_transaction_read_only never became %s", want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	t.Cleanup(func() { readOnly(false) })
	id := 0
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeExec} {
		t.Run(mode.String(), func(t *testing.T) {
			r := rywpathRouter(t, topo, time.Minute, func(c *pgxpool.Config) { c.ConnConfig.DefaultQueryExecMode = mode })
			for _, w := range rywpathWrites {
				sql := fmt.Sprintf(w, table)
				id++
				if err := capturedInsert(t, r, table, sql, id, topo.Primary); err != nil {
					t.Fatalf("the write before: %v", err)
				}
				readOnly(true)
				for i := 0; i < 2; i++ {
					id++
					err := capturedInsert(t, r, table, sql, id, topo.Primary)
					var pgErr *pgconn.PgError
					if !errors.As(err, &pgErr) || pgErr.Code != "25006" || errors.Is(err, ErrMaybeCommitted) {
						t.Errorf("%s on a read-only server: %v, want the server's 25006 as is", sql, err)
					}
					nextCallWorks(t, r, "a write refused as read-only")
				}
				readOnly(false)
				id++
				if err := capturedInsert(t, r, table, sql, id, topo.Primary); err != nil {
					t.Errorf("%s once the server takes writes again: %v", sql, err)
				}
				nextCallWorks(t, r, "a write")
			}
		})
	}
}

// TestRywpathFailover: a standby is promoted while the primary runs, and
// the old primary is restarted as a standby of it (its sessions ended by
// the shutdown) before a router checking every 3 s saw either (mostly):
// that router's captured writes meet the ended session, then a server in
// recovery, until the writes move to the promoted node; a router checking
// every 300 ms moves its writes there too. Every write is checked as
// capturedInsert says, and once one succeeds the pool's next call works.
func TestRywpathFailover(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(1))
	ctx := context.Background()
	old, promoted := topo.Primary, topo.Standbys[0]
	const table = "rywpath_failover"
	if err := old.Exec(ctx, "CREATE TABLE "+table+" (id int)"); err != nil {
		t.Fatal(err)
	}
	if err := topo.WaitReplayed(ctx); err != nil {
		t.Fatal(err)
	}
	fast := rywpathRouter(t, topo, 300*time.Millisecond, nil)
	stale := rywpathRouter(t, topo, 3*time.Second, nil)
	sql := fmt.Sprintf(rywpathWrites[0], table)
	id := 0
	for _, r := range []*Router{fast, stale} {
		id++
		if err := capturedInsert(t, r, table, sql, id, old); err != nil {
			t.Fatalf("the write before the failover: %v", err)
		}
	}
	if err := promoted.Promote(ctx); err != nil {
		t.Fatal(err)
	}
	if err := old.RestartAsStandby(ctx, promoted); err != nil {
		t.Fatal(err)
	}
	for name, r := range map[string]*Router{"stale": stale, "fast": fast} {
		var seen []string
		deadline := time.Now().Add(30 * time.Second)
		for {
			id++
			err := capturedInsert(t, r, table, sql, id, promoted, old)
			if err == nil {
				break
			}
			seen = append(seen, err.Error())
			var pgErr *pgconn.PgError
			switch {
			case errors.Is(err, ErrNoPrimary), errors.Is(err, ErrMaybeCommitted):
			case errors.As(err, &pgErr) && pgErr.Code == "25006":
			default:
				t.Errorf("%s router: write %d: %v, not an error the documentation gives for a write during a failover", name, id, err)
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s router: no write succeeded on %s within 30s: %q", name, promoted.Name, seen)
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Logf("%s router: %d writes failed before one succeeded: %q", name, len(seen), seen)
		nextCallWorks(t, r, "the failover")
		for i := 0; i < 3; i++ {
			id++
			if err := capturedInsert(t, r, table, sql, id, promoted, old); err != nil {
				t.Errorf("%s router: write %d after the writes moved: %v", name, id, err)
			}
		}
	}
}
