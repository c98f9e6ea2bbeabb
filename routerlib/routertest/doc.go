// Package routertest starts a real replicated PostgreSQL — a primary and hot
// standbys streaming from it on 127.0.0.1 — for tests of code that routes
// between them, the way [net/http/httptest] starts a real HTTP server.
//
// Application developers use it to test their own code against real
// replication: replica lag, read-only standbys, a standby that stops, a
// failover. A test starts a topology, writes on the primary, waits for a
// standby to replay it and reads it there:
//
//	func TestReadsFromReplica(t *testing.T) {
//		topo := routertest.Start(t) // a primary and 2 standbys, closed when the test ends
//		ctx := t.Context()
//		if err := topo.Primary.Exec(ctx, "CREATE TABLE t (id int)"); err != nil {
//			t.Fatal(err)
//		}
//		lsn, err := topo.CurrentLSN(ctx)
//		if err != nil {
//			t.Fatal(err)
//		}
//		standby := topo.Standbys[0]
//		if err := standby.WaitReplayed(ctx, lsn); err != nil {
//			t.Fatal(err)
//		}
//		db, err := pgx.Connect(ctx, standby.DSN()) // or hand topo.WriteRouterFile's file to routerlib
//		...
//	}
//
// # Faults
//
// [Node] methods inject what a router must survive: [Node.Stop] and
// [Node.Start], [Node.Restart], [Node.Promote] and [Node.Follow] for a
// failover, [Node.PauseReplay] and [Node.SetApplyDelay] for lag,
// [Node.Freeze] and [Node.Thaw] for a hung server (a frozen VM, a network
// black hole: connections stay open and nothing answers), and
// [Node.FreezeHost] for one frozen with its PgBouncer,
// [Node.Reinit] for a cluster rebuilt at the same address, and
// [Topology.AddStandby] for a standby that joins later.
//
// # Sharing one topology
//
// Starting a topology takes about a second, so a package's tests share one
// through TestMain, and a test that breaks its topology (stops, promotes,
// pauses a node) starts its own with [Start]:
//
//	var shared *routertest.Topology
//	var sharedSkipped error
//
//	func TestMain(m *testing.M) {
//		os.Exit(run(m))
//	}
//
//	func run(m *testing.M) int {
//		var err error
//		shared, err = routertest.New(context.Background())
//		switch {
//		case errors.Is(err, routertest.ErrNoBinaries) && os.Getenv("CI") != "true":
//			sharedSkipped = err // each test skips, as Start would
//		case err != nil:
//			fmt.Fprintln(os.Stderr, err)
//			return 1
//		default:
//			defer shared.Close()
//		}
//		return m.Run()
//	}
//
//	func sharedTopology(t *testing.T) *routertest.Topology {
//		if shared == nil {
//			t.Skip(sharedSkipped)
//		}
//		return shared
//	}
//
// # Server binaries
//
// routertest runs initdb, pg_ctl and postgres (no pg_basebackup, no psql) of
// PostgreSQL 13 or later, and never downloads them. It looks in, first found:
// the directory given by [WithBinDir]; for [WithVersion] N,
// /usr/lib/postgresql/N/bin or .cache/postgres/N/bin in this repository
// (tools/postgres/install.sh N installs them there); $ROUTERTEST_PGBIN;
// initdb on $PATH; the highest /usr/lib/postgresql/*/bin. Without them
// [Start] skips the test, except when $CI is "true", where it fails it: CI
// must never pass by skipping.
//
// Run as root, routertest runs the servers as the postgres user, which
// PostgreSQL requires, and makes their directories theirs.
//
// # What it sets up
//
// Every node listens on 127.0.0.1 only, on a free port, with no Unix socket.
// pg_hba.conf trusts every connection from 127.0.0.1, replication included:
// these are throwaway test clusters, never to be exposed. Connect as the
// postgres superuser to the postgres database, with [Node.DSN]. The primary
// is ready for physical and logical replication (wal_level=logical, 20 WAL
// senders and slots); standbys are hot standbys without replication slots,
// named replica-1, replica-2, … (their application_name on the primary).
// fsync and full_page_writes are off for speed ([WithRewind] turns
// full_page_writes and wal_log_hints on, for pg_rewind, [Node.Rewind]);
// synchronous_commit keeps its
// default, so synchronous replication set up with [WithSetting] behaves as
// in production. Each server logs to postgresql.log in its data directory,
// and errors quote the end of that log.
//
// # Cleaning up
//
// [Topology.Close] (registered by [Start]) stops the servers and removes
// their temporary directory. Servers do not die with the test process: if it
// is killed before Close (go test -timeout, kill -9), the servers of its
// topologies keep running until the next [New] or [Start] on the machine finds
// that their owner is gone, stops them and removes their directory. Only
// topologies kept in a directory of the caller's ([WithDir], used by the
// sandbox CLI in tools/sandbox) outlive their process on purpose; [Open]
// attaches to one again.
package routertest
