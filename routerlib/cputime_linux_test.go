package routerlib_test

import (
	"syscall"
	"unsafe"
)

// clockCPU reads a CPU-time clock. clock_gettime counts to the
// nanosecond, where getrusage (like the scheduler's statistics it reads)
// can lag by a tick for a thread that is running.
func clockCPU(clock uintptr) (int64, bool) {
	var ts syscall.Timespec
	if _, _, errno := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clock, uintptr(unsafe.Pointer(&ts)), 0); errno != 0 {
		return 0, false
	}
	return ts.Nano(), true
}

// threadCPU returns the CPU time the calling OS thread has used, so a
// benchmark on a busy machine can report its own cost rather than the wall
// clock, which other processes inflate.
func threadCPU() (int64, bool) { return clockCPU(3 /* CLOCK_THREAD_CPUTIME_ID */) }

// processCPU returns the CPU time the whole process has used: a call's own
// goroutine, and what it costs elsewhere (pgx's reader, the collector that
// frees what it allocated).
func processCPU() (int64, bool) { return clockCPU(2 /* CLOCK_PROCESS_CPUTIME_ID */) }
