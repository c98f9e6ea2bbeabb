package provider

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// A pool made for a database that does not exist yet is kept (3D000: "the
// handler decides"), and the room of its role is not measured: only
// newPool's first connection measured it, and that one was refused. Once
// the database is created (by another resource, in the same run) the
// pool's connections succeed, but the room stays unmeasured, where it
// admits one connection of the role at a time: while the pool ran a
// statement, the first connection of every other pool of the role waited
// for it in admit, and the pool's own second connection did too; then
// admit closed the pool's idle connection. On the old code both waited
// for the whole 3 s statement (2.9 s and 2.85 s).
func TestRoomMissingDatabaseCreatedLaterMeasuresTheRoom(t *testing.T) {
	server := testAccTopology(t).Primary
	role := "room_late_db"
	s, dbs := roleServer(t, server, role, 10, 5)
	late := role + "_late"
	// The role's room as a new provider process has it: not measured
	// (a run with -count keeps the last run's).
	processPools.mu.Lock()
	delete(processPools.rooms, roomKeyOfServer(t, s))
	processPools.mu.Unlock()
	ctx := context.Background()
	var pools []*pgxpool.Pool
	t.Cleanup(func() {
		for _, p := range pools {
			closeTestPool(p)
		}
	})
	p := keptPoolThenCreated(t, s, server, late, `OWNER `+role)

	// A handler's statement in the database now there.
	c, err := p.Acquire(ctx)
	if err != nil {
		t.Fatalf("a connection to %s once created: %v", late, err)
	}
	// Measured on it: the role's CONNECTION LIMIT 10, none of its places
	// taken by other sessions (this one is the provider's).
	room := processPools.roleRoom(roomKeyOfServer(t, s))
	room.mu.Lock()
	measured, places := room.measured, room.room
	room.mu.Unlock()
	if !measured || places != 10 {
		t.Errorf("after the first connection to %s once created, the role's room is measured %v, of %d places; want measured, of 10 (its CONNECTION LIMIT)",
			late, measured, places)
	}
	const statement = 3 * time.Second
	done := make(chan error, 1)
	go func() {
		_, err := c.Exec(ctx, `SELECT pg_sleep(3)`)
		c.Release()
		done <- err
	}()
	time.Sleep(200 * time.Millisecond) // the statement runs

	// At once: the first connection of another pool of the role, and a
	// second connection of this one.
	const most = time.Second
	var (
		q          *pgxpool.Pool
		qErr, cErr error
		qTook      time.Duration
		cTook      time.Duration
	)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		began := time.Now()
		q, qErr = s.Pool(ctx, dbs[1])
		qTook = time.Since(began)
	}()
	go func() {
		defer wg.Done()
		began := time.Now()
		var c2 *pgxpool.Conn
		if c2, cErr = p.Acquire(ctx); cErr == nil {
			c2.Release()
		}
		cTook = time.Since(began)
	}()
	wg.Wait()
	if q != nil {
		pools = append(pools, q)
	}
	if qErr != nil || cErr != nil {
		t.Fatalf("the pool of %s: %v; a second connection to %s: %v", dbs[1], qErr, late, cErr)
	}
	t.Logf("while a connection to %s ran a %s statement: the pool of %s took %s, a second connection to %s %s",
		late, statement, dbs[1], qTook.Round(time.Millisecond), late, cTook.Round(time.Millisecond))
	if qTook > most {
		t.Errorf("the pool of %s took %s to make while a connection to %s ran a %s statement, want at most %s: "+
			"its first connection waited in admit for that one, the role's room never measured",
			dbs[1], qTook.Round(time.Millisecond), late, statement, most)
	}
	if cTook > most {
		t.Errorf("a second connection to %s took %s while its first ran a %s statement, want at most %s: "+
			"it waited in admit for the first, the role's room never measured",
			late, cTook.Round(time.Millisecond), statement, most)
	}
	if err := <-done; err != nil {
		t.Fatalf("the statement in %s: %v", late, err)
	}
}
