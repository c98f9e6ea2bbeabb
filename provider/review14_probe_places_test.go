package provider

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// The probe's places in the role's room after its failures and its idle
// close: none left held or admitted once its sessions have ended, so that
// the provider's connections after it wait for nothing (a leaked place
// would make them wait for the room, and a later plan's probe wait 5 s).
func TestReview14ProbeLeavesNoPlaceHeld(t *testing.T) {
	n := testAccTopology(t).Primary
	const role = "review14_places"
	s, dbs := roleServer(t, n, role, 2, 5)
	pool := testPool(t, s, dbs[0])
	room := processPools.roleRoom(roomKeyOf(pool.Config().ConnConfig))
	ctx := context.Background()
	state := func() (held, admitted int64) {
		room.mu.Lock()
		defer room.mu.Unlock()
		room.trim()
		return room.held, room.admitted()
	}
	// The provider's pool measured the room; its connection is idle.
	if h, a := state(); h != 1 || a != 0 {
		t.Fatalf("after the provider's first connection: held %d, admitted %d; want 1, 0", h, a)
	}
	ok := fmt.Sprintf("host=%s port=%d user=%s dbname=%s", n.Host, n.Port, role, dbs[1])
	missing := fmt.Sprintf("host=%s port=%d user=%s dbname=%s", n.Host, n.Port, role, role+"_missing")
	for i := range 5 {
		if _, _, err := missingPublications(ctx, &publisherProbe{connection: ok, by: &server{}}, []string{"x"}); err != nil {
			t.Fatalf("probe %d: %v", i, err)
		}
		if _, _, err := publisherPools.reach(ctx, &server{}, missing); !isMissingDatabase(err) {
			t.Fatalf("probe %d of a missing database: want 3D000, got %v", i, err)
		}
	}
	// The probe's pool closes a connection idle for publisherPoolIdle,
	// checked every publisherPoolIdleCheck, and waits for its session to end.
	deadline := time.Now().Add(publisherPoolIdle + 4*publisherPoolIdleCheck + 5*time.Second)
	for {
		h, a := state()
		if h <= 1 && a == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the probes' idle close: held %d, admitted %d; want at most 1 (the provider's), 0", h, a)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Both places the provider's: taken at once.
	began := time.Now()
	a, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Release()
	b, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Release()
	if took := time.Since(began); took > 2*time.Second {
		t.Errorf("the provider's two connections after the probes took %s; want no wait for a place", took)
	}
}
