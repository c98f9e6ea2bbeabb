package provider

import (
	"context"
	"strings"
	"testing"
	"time"
)

// A server that stops answering while a pool kept for a database missing
// when it was made reads the role's limits on its first connection once
// the database exists (AfterConnect) fails that connection with an error
// that names the server and what to do, as newPool's read does. It was the
// read's bare "context deadline exceeded", the handler's own context not
// done, and PoolOrDiag's "Cannot Connect" gave no fix.
func TestRoom2FrozenWhileKeptPoolReadsLimits(t *testing.T) {
	role := "room2_frozen_read"
	n, s, _ := roleServerToFreeze(t, role)
	late := role + "_late"
	ctx := context.Background()
	p := keptPoolThenCreated(t, s, n, late, `OWNER `+role)

	freezeOnce(t, &beforeLimitsRead, n, late)
	actx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	began := time.Now()
	_, err := p.Exec(actx, `SELECT 1`)
	t.Logf("a statement in %s, the server frozen before the limits were read on its first connection: %s, %v",
		late, time.Since(began).Round(time.Millisecond), err)
	thaw(t, n)
	if err == nil {
		t.Fatalf("a statement in %s ran, the server frozen", late)
	}
	for _, want := range []string{s.describe(), "did not answer", late, "try again once it answers"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error of a connection to %s whose server stopped answering while its limits were read does not say %q: %v", late, want, err)
		}
	}
	// The server answers again: the next connection reads the limits.
	if _, err := p.Exec(actx, `SELECT 1`); err != nil {
		t.Errorf("a statement in %s, the server thawed: %v", late, err)
	}
}
