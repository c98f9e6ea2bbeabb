package routerlib_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// TestEveryNodeFrozen: the client cut off from the whole cluster, every
// node frozen at once (a partition, as the client sees it), under four
// readers and two writers whose calls have no deadline of their own. No
// call waits past the ejection bound: those in flight are cut off then,
// and those made after fail at once, each with the error its kind calls
// for (a write in flight may have committed; one not sent found no
// primary; a read found no healthy node, or names the node that stopped
// answering under it). Once the nodes thaw, reads and writes run again
// within a few checks, and then none fails.
func TestEveryNodeFrozen(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(1))
	replica := topo.Standbys[0]
	a, bound := hungHealth(topo.Artifact())
	r := newRouter(t, a)
	ctx := context.Background()
	if _, err := r.Exec(ctx, "CREATE TABLE partitioned_off (n int)"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the replica in rotation", func() bool { return nodeStat(r, replica.Name).Readable })
	type call struct {
		write      bool
		start, end time.Time
		err        error
	}
	var mu sync.Mutex
	var calls []call
	stop := make(chan struct{})
	const readers, writers = 4, 2
	wait := repeatUntil(stop, readers+writers, func(i int) {
		c := call{write: i >= readers, start: time.Now()}
		if c.write {
			_, c.err = r.Exec(ctx, "INSERT INTO partitioned_off VALUES (1)")
		} else {
			var port int
			c.err = r.QueryRow(ctx, "SELECT inet_server_port()").Scan(&port)
		}
		c.end = time.Now()
		mu.Lock()
		calls = append(calls, c)
		mu.Unlock()
		if c.err != nil {
			time.Sleep(10 * time.Millisecond) // failing at once, not in a tight loop
		}
	})
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
			wait()
		}
	}()
	time.Sleep(500 * time.Millisecond)
	late := timerLateness()
	frozen := time.Now()
	freeze(t, replica)
	freeze(t, topo.Primary)
	time.Sleep(5 * time.Second)
	lateness := late()
	thawed := time.Now()
	for _, n := range []*routertest.Node{topo.Primary, replica} {
		if err := n.Thaw(); err != nil {
			t.Fatal(err)
		}
	}
	// Back in a few checks: readmit_after 1, every 250 ms.
	const back = 3 * time.Second
	time.Sleep(back + 2*time.Second)
	close(stop)
	wait()

	most := bound + time.Second + 3*lateness
	var longest time.Duration
	var maybeCommitted, afterBack [2]int
	var firstOK [2]time.Time
	for _, c := range calls {
		kind := 0
		if c.write {
			kind = 1
		}
		what := map[bool]string{false: "read", true: "write"}[c.write]
		if c.end.After(frozen) && c.start.Before(thawed) {
			if d := c.end.Sub(c.start); d > longest {
				longest = d
			}
			if d := c.end.Sub(c.start); d > most {
				t.Errorf("a %s made %v into the freeze took %v, want at most the ejection bound %v (%v with the machine's delays): %v",
					what, c.start.Sub(frozen).Round(time.Millisecond), d, bound, most, c.err)
			}
		}
		switch {
		case c.err == nil:
			if c.start.After(thawed) && firstOK[kind].IsZero() {
				firstOK[kind] = c.end
			}
		case c.start.After(thawed.Add(back)):
			afterBack[kind]++
			if afterBack[kind] == 1 {
				t.Errorf("a %s made %v after the thaw failed: %v", what, c.start.Sub(thawed).Round(time.Millisecond), c.err)
			}
		case c.end.Before(frozen):
			t.Errorf("a %s failed before the freeze: %v", what, c.err)
		case c.write && errors.Is(c.err, routerlib.ErrMaybeCommitted):
			maybeCommitted[kind]++
			if !strings.Contains(c.err.Error(), `node "primary" stopped answering`) {
				t.Errorf("a write cut off in flight does not say the primary stopped answering: %v", c.err)
			}
		case c.write && errors.Is(c.err, routerlib.ErrNoPrimary):
		case !c.write && (errors.Is(c.err, routerlib.ErrNoReplica) || strings.Contains(c.err.Error(), "stopped answering")):
		default:
			t.Errorf("a %s made %v into the freeze failed with an error of no kind its caller can tell: %v", what, c.start.Sub(frozen).Round(time.Millisecond), c.err)
		}
	}
	t.Logf("longest call in the freeze %v (bound %v, timers up to %v late); first read %v after the thaw, first write %v; %d writes may have committed",
		longest, bound, lateness, firstOK[0].Sub(thawed), firstOK[1].Sub(thawed), maybeCommitted[1])
	if maybeCommitted[1] == 0 {
		t.Error("no write was in flight when the primary froze: the test tested nothing of calls cut off")
	}
	if afterBack[0]+afterBack[1] > 0 {
		t.Errorf("%d reads and %d writes failed more than %v after the thaw", afterBack[0], afterBack[1], back)
	}
	for _, n := range []*routertest.Node{topo.Primary, replica} {
		if s := nodeStat(r, n.Name); !s.Healthy {
			t.Errorf("%s after the thaw: %+v", n.Name, s)
		}
	}
}
