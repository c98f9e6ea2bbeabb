package routerlib_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// TestReadYourWritesBatchMovesOffAFailedReplica: a read_your_writes
// session's batch of reads whose replica failed under it (stopped, before
// any health check saw it) is sent again where a Query of the session
// would run again: on another replica that has replayed the session's
// writes, or on the primary when none is left. Each case checks that
// every batch answers, and that the session's write is seen; on the
// primary, the batch is one of the session's reads on the primary's
// read-write session, and records in the session what a function it calls
// wrote, as a Query's read moved there does (see Router.recording).
func TestReadYourWritesBatchMovesOffAFailedReplica(t *testing.T) {
	for _, c := range []struct {
		name     string
		standbys int
	}{{"another replica", 2}, {"the primary", 1}} {
		t.Run(c.name, func(t *testing.T) {
			topo := routertest.Start(t, routertest.WithStandbys(c.standbys))
			ctx := context.Background()
			for _, sql := range []string{
				"CREATE TABLE fix_ryw_batch (id int)",
				// A read to the lexer, a write to the server.
				"CREATE FUNCTION fix_ryw_note() RETURNS int LANGUAGE sql AS 'INSERT INTO fix_ryw_batch VALUES (7) RETURNING 42'",
			} {
				if err := topo.Primary.Exec(ctx, sql); err != nil {
					t.Fatal(err)
				}
			}
			// Checks too far apart to see the stop within the test:
			// only the calls' own failures can take the replica out.
			a := steadyHealth(topo.Artifact(), time.Hour)
			a.Consistency = artifact.Consistency{Mode: artifact.ModeReadYourWrites, WaitTimeout: "2s"}
			r := newRouter(t, a)
			s := routerlib.NewSession(0)
			sctx := routerlib.WithSession(ctx, s)
			if _, err := r.Exec(sctx, "INSERT INTO fix_ryw_batch VALUES (42)"); err != nil {
				t.Fatal(err)
			}
			for _, n := range topo.Standbys {
				if err := n.WaitReplayed(ctx, s.LSN().String()); err != nil {
					t.Fatal(err)
				}
			}
			// batch sends the session's batch of reads, with extra
			// queued too when it is not empty, and returns the port of
			// the server that answered.
			batch := func(extra string) (int, error) {
				b := readBatch()
				if extra != "" {
					b.Queue(extra)
				}
				var seen, port int
				b.Queue("SELECT count(*) FROM fix_ryw_batch WHERE id = 42").QueryRow(func(row pgx.Row) error { return row.Scan(&seen) })
				b.Queue("SELECT inet_server_port()").QueryRow(func(row pgx.Row) error { return row.Scan(&port) })
				br := r.SendBatch(sctx, b)
				var answer int
				_, err := br.Exec()
				if err == nil {
					err = br.QueryRow().Scan(&answer)
				}
				if cerr := br.Close(); err == nil {
					err = cerr
				}
				if err == nil && (answer != 42 || seen != 1) {
					t.Errorf("answer %d, the session's write seen %d times; want 42 and 1", answer, seen)
				}
				return port, err
			}
			port, err := batch("")
			if err != nil {
				t.Fatal(err)
			}
			var victim *routertest.Node // the replica the session's batches go to
			for _, n := range topo.Standbys {
				if n.Port == port {
					victim = n
				}
			}
			if victim == nil {
				t.Fatalf("the batch ran on port %d, no replica's: the test proves nothing", port)
			}
			if err := victim.Stop(ctx); err != nil {
				t.Fatal(err)
			}
			// The first batch after the stop is the one that meets it.
			failed := 0
			before := s.LSN()
			extra, want := "", 0
			for _, n := range topo.Standbys {
				if n != victim {
					want = n.Port
				}
			}
			if want == 0 {
				extra, want = "SELECT fix_ryw_note()", topo.Primary.Port
			}
			if port, err := batch(extra); err != nil {
				failed++
				t.Logf("the batch that met the stop: %v", err)
			} else if port != want {
				t.Errorf("the batch that met the stop was answered on port %d, want %d (%s)", port, want, c.name)
			}
			if extra != "" && s.LSN() <= before {
				t.Errorf("the session is at %s after the batch moved to the primary's read-write session, where a function it called wrote; want past %s, as a Query's read there records", s.LSN(), before)
			}
			for i := range 5 {
				if _, err := batch(""); err != nil {
					failed++
					t.Logf("batch %d: %v", i, err)
				}
			}
			t.Logf("%d of 6 read_your_writes read batches failed with %s stopped; in rotation: %v", failed, victim.Name, nodeStat(r, victim.Name).Readable)
			if failed > 0 {
				t.Errorf("%d of 6 read_your_writes read batches failed with %s stopped; want each sent again on %s", failed, victim.Name, c.name)
			}
			if nodeStat(r, victim.Name).Readable {
				t.Errorf("%s is still in rotation after a batch failed on it", victim.Name)
			}
		})
	}
}
