package provider

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// A role's CONNECTION LIMIT raised during the run (by someone else, in the
// middle of a long apply) was not seen until a pool was made again: a
// connection held back by the room counted at the old limit waited for a
// place until admit's bound (14 s here), then failed and told the user to
// raise the limit just raised. The room is read again while it waits
// (recheck): the connection gets the place the raised limit leaves.
func TestRoomsRaisedLimitIsReadAgain(t *testing.T) {
	node := testAccTopology(t).Primary
	const role = "rooms_raised"
	dbs := roleOfLimit2In3Databases(t, node, role)
	// statement_timeout 1 s and connect_timeout 2 s make admit's bound 14 s.
	s := newServer(connSettings{Host: node.Host, Port: int64(node.Port), Database: dbs[0], Username: role,
		SSLMode: "disable", MaxConnections: 4, ConnectTimeout: 2, StatementTimeout: "1s"})
	holdConns(t, testPool(t, s, dbs[0]), 2) // the role's two places
	execSQL(t, node, "postgres", `ALTER ROLE `+role+` CONNECTION LIMIT 4`)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	began := time.Now()
	p, err := s.Pool(ctx, dbs[1])
	if err != nil {
		t.Fatalf("the pool of %s, the role's CONNECTION LIMIT raised from 2 to 4 with 2 held: after %s: %v",
			dbs[1], time.Since(began).Round(time.Millisecond), err)
	}
	t.Cleanup(func() { closeTestPool(p) })
	t.Logf("the pool of %s made after %s", dbs[1], time.Since(began).Round(time.Millisecond))
	holdConns(t, p, 2) // the third and fourth places: the room follows the raised limit
}

// A role's CONNECTION LIMIT lowered during the run: the room, measured at
// the old limit, admitted a connection the server refused (53300, "too many
// connections for role"), and the handler failed. The refusal shrinks the
// room to the places held, and the handler's connection (ready) is made
// again: it waits for a place, and gets the one a finished statement frees.
func TestRoomsLoweredLimitWaitsForAPlace(t *testing.T) {
	node := testAccTopology(t).Primary
	const role = "rooms_lowered"
	dbs := roleOfLimit2In3Databases(t, node, role)
	execSQL(t, node, "postgres", `ALTER ROLE `+role+` CONNECTION LIMIT 4`)
	s := newServer(connSettings{Host: node.Host, Port: int64(node.Port), Database: dbs[0], Username: role,
		SSLMode: "disable", MaxConnections: 4, ConnectTimeout: 2, StatementTimeout: "1s"})
	p := testPool(t, s, dbs[0]) // sized 4, the role's room 4
	ctx := context.Background()
	first, err := p.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	execSQL(t, node, "postgres", `ALTER ROLE `+role+` CONNECTION LIMIT 2`)
	holdConns(t, p, 1) // the second and last place the lowered limit leaves

	// A statement that held the first place finishes a second later.
	released := time.AfterFunc(time.Second, first.Release)
	defer func() {
		if released.Stop() {
			first.Release()
		}
	}()
	rctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	began := time.Now()
	if err := ready(rctx, p, 2*time.Second); err != nil {
		t.Fatalf("a third connection of the role, its CONNECTION LIMIT lowered from 4 to 2 with 2 held, one released after 1 s: after %s: %v",
			time.Since(began).Round(time.Millisecond), err)
	}
	t.Logf("connected after %s", time.Since(began).Round(time.Millisecond))
	room := processPools.roleRoom(roomKeyOfServer(t, s))
	room.mu.Lock()
	got := room.room
	room.mu.Unlock()
	if got != 2 {
		t.Errorf("the role's room after the refusal and the next connection: %d places, want 2 (the lowered limit)", got)
	}
}

// The same lowered limit, no place freed: the connection made again waits
// for one until admit's bound (14 s here), reads the limits once more, and
// fails with an error that names the role, the database, the places the
// limit leaves as now read (2, not the 4 counted before) and the fix.
func TestRoomsLoweredLimitWaitNamesTheLimitAsRead(t *testing.T) {
	node := testAccTopology(t).Primary
	const role = "rooms_lowered_wait"
	dbs := roleOfLimit2In3Databases(t, node, role)
	execSQL(t, node, "postgres", `ALTER ROLE `+role+` CONNECTION LIMIT 4`)
	s := newServer(connSettings{Host: node.Host, Port: int64(node.Port), Database: dbs[0], Username: role,
		SSLMode: "disable", MaxConnections: 4, ConnectTimeout: 2, StatementTimeout: "1s"})
	p := testPool(t, s, dbs[0]) // sized 4, the role's room 4
	holdConns(t, p, 1)
	execSQL(t, node, "postgres", `ALTER ROLE `+role+` CONNECTION LIMIT 2`)
	holdConns(t, p, 1)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	began := time.Now()
	err := ready(ctx, p, 2*time.Second)
	if err == nil {
		t.Fatal("a third connection of a role of CONNECTION LIMIT 2, both places held, was made")
	}
	t.Logf("after %s: %v", time.Since(began).Round(time.Millisecond), err)
	for _, want := range []string{`role "` + role + `"`, `database "` + dbs[0] + `"`, s.describe(), "leaves the provider 2 connections",
		`ALTER ROLE "` + role + `" CONNECTION LIMIT`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %q", want)
		}
	}
}

// A superuser's first connection to a database whose CONNECTION LIMIT other
// roles' sessions fill: PostgreSQL does not hold superusers to it, but the
// room knows the role is a superuser only once measured, on that very
// connection, so it waited for a place in the database's room until admit's
// bound. Its first connection now reads the limits on a connection made
// past the room (recheck), and passes.
func TestRoomsSuperuserFirstConnectionPassesAFullDatabase(t *testing.T) {
	node := testAccTopology(t).Primary
	const super, other, db = "rooms_super", "rooms_super_other", "rooms_super_db"
	execSQL(t, node, "postgres", `CREATE ROLE `+super+` LOGIN SUPERUSER`)
	execSQL(t, node, "postgres", `CREATE ROLE `+other+` LOGIN`)
	execSQL(t, node, "postgres", `CREATE DATABASE `+db+` OWNER `+other+` CONNECTION LIMIT 1`)
	t.Cleanup(func() {
		execSQL(t, node, "postgres", `DROP DATABASE IF EXISTS `+db+` WITH (FORCE)`)
		execSQL(t, node, "postgres", `DROP ROLE IF EXISTS `+super)
		execSQL(t, node, "postgres", `DROP ROLE IF EXISTS `+other)
	})
	settings := func(user string) connSettings {
		return connSettings{Host: node.Host, Port: int64(node.Port), Database: db, Username: user,
			SSLMode: "disable", MaxConnections: 2, ConnectTimeout: 2, StatementTimeout: "1s"}
	}
	holdConns(t, testPool(t, newServer(settings(other)), db), 1) // the database's one place

	// Well within admit's bound (14 s), which the old code waited out.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	began := time.Now()
	p, err := newServer(settings(super)).Pool(ctx, db)
	if err != nil {
		t.Fatalf("the superuser's pool of %s, its one place held by another role: after %s: %v", db, time.Since(began).Round(time.Millisecond), err)
	}
	t.Cleanup(func() { closeTestPool(p) })
	t.Logf("the superuser's pool made after %s", time.Since(began).Round(time.Millisecond))
}

// A BEGIN that fails (here on a connection whose session the server ended
// while it was idle in the pool, within the second in which pgxpool does
// not ping it) was reported as the first statement's failure, rolled back
// with the others, when none of them ran: execSubscriptionTx said failed 0
// with the bare error. It now says the BEGIN failed (-1), and its error
// says that the transaction could not begin, and why.
func TestRoomsSubscriptionTxBeginFails(t *testing.T) {
	node := testAccTopology(t).Primary
	const role = "rooms_begin"
	dbs := roleOfLimit2In3Databases(t, node, role)
	s := newServer(connSettings{Host: node.Host, Port: int64(node.Port), Database: dbs[0], Username: role,
		SSLMode: "disable", MaxConnections: 1, ConnectTimeout: 2})
	p := testPool(t, s, dbs[0])
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var failed int
	var err error
	// The BEGIN must run within the second after which pgxpool pings an
	// idle connection: a machine too busy for that gets another try.
	for try := 1; ; try++ {
		c, aerr := p.Acquire(ctx)
		if aerr != nil {
			t.Fatal(aerr)
		}
		pid := c.Conn().PgConn().PID()
		c.Release()
		// Ended while idle, and gone from the server, before pgxpool would
		// ping it on its next Acquire.
		began := time.Now()
		execSQL(t, node, "postgres", `SELECT pg_terminate_backend($1, 5000)`, pid)
		sqls := []string{`SELECT 1`, `SELECT 2`}
		failed, err = execSubscriptionTx(ctx, p, statementBound{d: time.Minute, what: "test"}, sqls)
		since := time.Since(began)
		if since <= 800*time.Millisecond {
			break
		}
		if try == 5 {
			t.Fatalf("the BEGIN ran %s after the session ended, past pgxpool's ping of idle connections, 5 times in a row", since)
		}
		t.Logf("try %d: the BEGIN ran %s after the session ended, past pgxpool's ping of idle connections: again", try, since)
	}
	var begin *txBeginError
	if failed != -1 || !errors.As(err, &begin) || !strings.Contains(err.Error(), "could not begin") {
		t.Fatalf("execSubscriptionTx on a connection ended while idle: failed %d, err %v; want -1 and a *txBeginError that says the transaction could not begin", failed, err)
	}
	t.Logf("failed %d: %v", failed, err)
}

// Every address of 127.0.0.0/8 was keyed as localhost: a server at
// 127.0.0.2 on the port of one at 127.0.0.1 (another postmaster, or none)
// shared the room of the role there. Here nothing listens at 127.0.0.2:
// with the role's places at 127.0.0.1 held, the provider's connection to
// 127.0.0.2 waited for one of them, until its caller gave up (10 s), where
// it is refused at once.
func TestRoomsOtherLoopbackAddressIsAnotherServer(t *testing.T) {
	node := testAccTopology(t).Primary
	const role = "rooms_loopback"
	dbs := roleOfLimit2In3Databases(t, node, role)
	settings := func(host string) connSettings {
		return connSettings{Host: host, Port: int64(node.Port), Database: dbs[0], Username: role,
			SSLMode: "disable", MaxConnections: 4, ConnectTimeout: 2, StatementTimeout: "1s"}
	}
	holdConns(t, testPool(t, newServer(settings(node.Host)), dbs[0]), 2) // the role's places at 127.0.0.1
	other := newServer(settings("127.0.0.2"))
	if roomKeyOfServer(t, other) == roomKeyOfServer(t, newServer(settings(node.Host))) {
		t.Errorf("127.0.0.2 and %s at one port have one room key", node.Host)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	began := time.Now()
	p, err := other.Pool(ctx, dbs[0])
	if err == nil {
		closeTestPool(p)
		t.Skip("something accepts connections at 127.0.0.2 on the node's port: the test proves nothing here")
	}
	var notAccepted *notAcceptedError
	if !errors.As(err, &notAccepted) {
		t.Fatalf("a pool at 127.0.0.2, where nothing listens, the role's places at %s held: after %s: %v; want it refused at once",
			node.Host, time.Since(began).Round(time.Millisecond), err)
	}
	t.Logf("refused after %s: %v", time.Since(began).Round(time.Millisecond), err)
}
