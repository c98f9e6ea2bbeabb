package cputime

import (
	"runtime"
	"testing"
	"time"
)

// TestClocksCount: on Linux both clocks move by about the CPU a busy loop
// burns, and the thread's never by more than the process's.
func TestClocksCount(t *testing.T) {
	if runtime.GOOS != "linux" {
		if _, ok := Thread(); ok {
			t.Fatal("Thread reports a clock where there is none")
		}
		return
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	p0, ok1 := Process()
	t0, ok2 := Thread()
	if !ok1 || !ok2 {
		t.Fatalf("clocks unavailable on Linux: process %v, thread %v", ok1, ok2)
	}
	for start := time.Now(); time.Since(start) < 20*time.Millisecond; {
	}
	p1, _ := Process()
	t1, _ := Thread()
	if t1-t0 < int64(time.Millisecond) || p1-p0 < t1-t0 {
		t.Errorf("after a 20 ms busy loop: thread +%v, process +%v; want at least 1 ms, process ≥ thread", time.Duration(t1-t0), time.Duration(p1-p0))
	}
}
