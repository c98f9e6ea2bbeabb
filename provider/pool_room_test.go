package provider

import (
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// A connection that finds no place under the role's CONNECTION LIMIT for
// as long as it may wait fails naming the role, the server, the places
// and the fix, instead of waiting for ever or failing with the server's
// bare 53300.
func TestRoleRoomWaitIsBounded(t *testing.T) {
	cfg, err := pgxpool.ParseConfig("host=127.0.0.1 port=1 user=u dbname=d sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	p, err := pgxpool.NewWithConfig(t.Context(), cfg) // connects to nothing: MinConns is 0
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	r := processPools.roleRoom(roomKey{servers: "test-room-bounded"})
	r.add(p, nil)
	r.mu.Lock()
	r.room, r.held, r.measured = 2, 2, true // both places held, by connections in use
	r.mu.Unlock()
	start := time.Now()
	err = r.admit(t.Context(), p, 300*time.Millisecond, time.Second, "127.0.0.1:5432", "app")
	if err == nil {
		t.Fatal("admitted a connection past the role's places")
	}
	if elapsed := time.Since(start); elapsed < 300*time.Millisecond || elapsed > 10*time.Second {
		t.Errorf("gave up after %s, want about the 300ms it may wait", elapsed)
	}
	for _, want := range []string{`role "app" to database "d" on 127.0.0.1:5432`, `CONNECTION LIMIT of the provider's role "app" leaves the provider 2 connections`,
		`ALTER ROLE "app" CONNECTION LIMIT`, "-parallelism=2"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %q: %v", want, err)
		}
	}
	r.ended(p)
	if err := r.admit(t.Context(), p, time.Second, time.Second, "127.0.0.1:5432", "app"); err != nil {
		t.Errorf("a place was freed, yet: %v", err)
	}
}
