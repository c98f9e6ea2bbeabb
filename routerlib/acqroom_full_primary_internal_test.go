package routerlib

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// TestAcqroomFullPrimaryWaitsForRoom: the calls on the writer's pool that
// TestRouterfixFullPrimaryWaitsForRoom left out, each needing a new
// connection to a primary with no room for another session (the role's
// CONNECTION LIMIT reached by other clients: SQLSTATE 53300), one of which
// closes 300 ms later. Before, each failed at once with 53300 although
// nothing was sent: a read_your_writes transaction's Begin, a read
// on the writer's read-write session through Exec and Query, the
// position read after a write that cannot share its round trip
// (captureAfter: the session was left asking the primary), and the read
// of the primary's position that the session middleware's Verify and a
// session's settling make (primaryPosition). Each now waits for room, and
// succeeds.
func TestAcqroomFullPrimaryWaitsForRoom(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(0))
	ctx := context.Background()
	const role = "acq_lim"
	if err := topo.Primary.Exec(ctx, "CREATE ROLE "+role+" LOGIN CONNECTION LIMIT 2; CREATE TABLE acq_full (v int); GRANT SELECT, INSERT ON acq_full TO "+role); err != nil {
		t.Fatal(err)
	}
	a := topo.Artifact()
	a.Consistency.Mode = artifact.ModeReadYourWrites
	a.Health = artifact.Health{Interval: "1m", Timeout: "1s", EjectAfter: 3, ReadmitAfter: 1, ConnectTimeout: "3s"}
	a.Nodes[0].User = role
	a.Pool.MinConns = 0
	// fill takes every session the role has left (the router's monitor
	// holds one), and closes one of them 300 ms later. The backends of
	// the sessions the last subtest closed may still be exiting (the
	// server counts them until they have): it waits for them first, or
	// the room they leave would let the call through untested.
	fill := func(t *testing.T) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			var n int
			if err := topo.Primary.QueryRow(ctx, "SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE usename = $1", role).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n <= 1 { // the new router's monitor
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d sessions of %s still there, 5 s after the last subtest closed them", n, role)
			}
		}
		first := HoldRoleSessions(t, topo.Primary, role)[0]
		go func() {
			time.Sleep(300 * time.Millisecond)
			first.Close(context.Background())
		}()
	}
	for _, c := range []struct {
		name string
		call func(t *testing.T, r *Router, s *Session) error
	}{
		{"Begin", func(t *testing.T, r *Router, s *Session) error {
			tx, err := r.Begin(WithSession(ctx, s))
			if err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, "INSERT INTO acq_full VALUES (1)"); err != nil {
				tx.Rollback(ctx)
				return err
			}
			return tx.Commit(ctx)
		}},
		{"ExecRead", func(t *testing.T, r *Router, s *Session) error {
			_, err := r.Exec(WithSession(ctx, s), "SELECT 1")
			return err
		}},
		{"QueryRead", func(t *testing.T, r *Router, s *Session) error {
			rows, err := r.Query(WithSession(ctx, s), "SELECT 1")
			if err != nil {
				return err
			}
			rows.Close()
			return rows.Err()
		}},
		{"captureAfter", func(t *testing.T, r *Router, s *Session) error {
			tt, err := r.enter()
			if err != nil {
				return err
			}
			defer tt.leave()
			if err := r.captureAfter(ctx, tt.writer.Load().writePool.Load(), s); err != nil {
				return err
			}
			if lost := s.unsettled(); lost != 0 {
				return errors.New("the session was left asking the primary: its position could not be read")
			}
			if s.LSN() == 0 {
				return errors.New("the session recorded no position")
			}
			return nil
		}},
		{"primaryPosition", func(t *testing.T, r *Router, s *Session) error {
			// What the session middleware's Verify, and a session's
			// settling, ask of the primary.
			tt, err := r.enter()
			if err != nil {
				return err
			}
			defer tt.leave()
			pos, err := r.primaryPosition(ctx, tt)
			if err == nil && pos.lsn == 0 {
				err = errors.New("the primary's position read as 0")
			}
			return err
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, err := New(ctx, a)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(r.Close)
			fill(t)
			start := time.Now()
			if err := c.call(t, r, NewSession(0)); err != nil {
				t.Fatalf("failed after %v although a session came free after 300 ms: %v", time.Since(start), err)
			}
			t.Logf("succeeded after %v", time.Since(start))
		})
	}
}
