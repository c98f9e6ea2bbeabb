package routerlib_test

import (
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// TestRed4HalfWrittenFileThenWhole: a tool that writes the router file in
// place (truncate, then write, as os.WriteFile, cp or a text editor do)
// leaves it empty, then half written, for a moment each, which the watcher
// may read: each is rejected and the configuration in force stays. Then
// the whole file arrives and must take effect; and again when the second
// write of the same content lands in the same clock tick.
func TestRed4HalfWrittenFileThenWhole(t *testing.T) {
	topo := routertest.Shared(t)
	a := steadyHealth(topo.Artifact(), 200*time.Millisecond)
	var rejected atomic.Int32
	r, path := openRouter(t, a, routerlib.WithWatch(20*time.Millisecond), routerlib.WithOnReloadError(func(error) { rejected.Add(1) }))
	for i, size := range []int32{7, 6, 9} {
		b := a
		b.Pool.MaxConns = size
		data, err := artifact.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond) // empty
		half := len(data) / 2
		if _, err := f.Write(data[:half]); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond) // half written
		if _, err := f.Write(data[half:]); err != nil {
			t.Fatal(err)
		}
		f.Close()
		if d := eventuallyOK(2*time.Second, func() bool { return r.Stat()[0].Pool.MaxConns == size }); d < 0 {
			t.Errorf("write %d: max_conns %d in the file is not in force 2 s after it was written whole (in force: %d; %d reloads rejected)", i, size, r.Stat()[0].Pool.MaxConns, rejected.Load())
		}
	}
	if rejected.Load() == 0 {
		t.Log("the watcher never saw the file half written")
	}
}

// eventuallyOK polls cond every 10 ms for up to d, and returns how long it
// took, or -1.
func eventuallyOK(d time.Duration, cond func() bool) time.Duration {
	start := time.Now()
	for time.Since(start) < d {
		if cond() {
			return time.Since(start)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return -1
}
