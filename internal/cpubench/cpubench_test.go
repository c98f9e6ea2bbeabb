package cpubench

import (
	"errors"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/internal/cputime"
)

// TestParallel: every i from 0 to n-1 is called once, whatever n's
// remainder by the workers, and a call's error comes back.
func TestParallel(t *testing.T) {
	for _, n := range []int{0, 1, 7, 8, 29} {
		var mu sync.Mutex
		seen := make([]int, n)
		if _, err := Parallel(8, n, func(i int) error {
			mu.Lock()
			defer mu.Unlock()
			seen[i]++
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		for i, c := range seen {
			if c != 1 {
				t.Errorf("n=%d: call %d made %d times, want once", n, i, c)
			}
		}
	}
	failed := errors.New("failed")
	if _, err := Parallel(4, 20, func(i int) error {
		if i == 13 {
			return failed
		}
		return nil
	}); !errors.Is(err, failed) {
		t.Errorf("Parallel with a failing call: %v, want its error", err)
	}
}

// TestInterleaved: the subject that burns more CPU per call has the higher
// median, the calls alternate in blocks up to n, and an error ends the run.
func TestInterleaved(t *testing.T) {
	// spin burns d of its thread's CPU (by the wall clock on a loaded
	// machine it would burn less, whatever other processes took).
	spin := func(d time.Duration) func(int) error {
		return func(int) error {
			start, ok := cputime.Thread()
			if !ok {
				return nil
			}
			for now := start; now-start < int64(d); now, _ = cputime.Thread() {
			}
			return nil
		}
	}
	var calls []int
	record := func(call func(int) error) func(int) error {
		return func(i int) error {
			calls = append(calls, i)
			return call(i)
		}
	}
	mb, ms, ok, err := Interleaved(40, 10, record(spin(100*time.Microsecond)), record(spin(time.Millisecond)))
	if err != nil {
		t.Fatal(err)
	}
	want := make([]int, 40)
	for i := range want {
		want[i] = i
	}
	if !slices.Equal(calls, want) {
		t.Errorf("calls %v, want 0 to 39 in order", calls)
	}
	if runtime.GOOS == "linux" {
		if !ok || ms < 5*mb {
			t.Errorf("median CPU per call: base %v, subject %v (ok %v); want the subject's at least 5× the base's", time.Duration(mb), time.Duration(ms), ok)
		}
	}
	failed := errors.New("failed")
	if _, _, _, err := Interleaved(40, 10, spin(0), func(int) error { return failed }); !errors.Is(err, failed) {
		t.Errorf("Interleaved with a failing subject: %v, want its error", err)
	}
}

// TestParallelInterleaved: the subject that burns more CPU per call has
// the higher medians of CPU and wall time, every call is made, and an
// error ends the run.
func TestParallelInterleaved(t *testing.T) {
	// spin burns d of its thread's CPU, so at least d of the wall clock.
	spin := func(d time.Duration) func(int) error {
		return func(int) error {
			start, ok := cputime.Thread()
			if !ok {
				time.Sleep(d)
				return nil
			}
			for now := start; now-start < int64(d); now, _ = cputime.Thread() {
			}
			return nil
		}
	}
	var calls atomic.Int64
	counted := func(call func(int) error) func(int) error {
		return func(i int) error {
			calls.Add(1)
			return call(i)
		}
	}
	base := Contender{Name: "base", Call: counted(spin(0))}
	subject := Contender{Name: "subject", Call: counted(spin(time.Millisecond))}
	got, err := ParallelInterleaved(2, 80, 10, base, subject)
	if err != nil {
		t.Fatal(err)
	}
	if n := calls.Load(); n != 80 {
		t.Errorf("%d calls, want 80", n)
	}
	if got.SubjectWall < 5*got.BaseWall {
		t.Errorf("median wall time per call: base %v, subject %v; want the subject's at least 5× the base's", time.Duration(got.BaseWall), time.Duration(got.SubjectWall))
	}
	if runtime.GOOS == "linux" && got.SubjectCPU < 5*got.BaseCPU {
		t.Errorf("median CPU per call: base %v, subject %v; want the subject's at least 5× the base's", time.Duration(got.BaseCPU), time.Duration(got.SubjectCPU))
	}
	failed := errors.New("failed")
	if _, err := ParallelInterleaved(2, 40, 10, base, Contender{Name: "failing", Call: func(int) error { return failed }}); !errors.Is(err, failed) {
		t.Errorf("ParallelInterleaved with a failing subject: %v, want its error", err)
	}
}
