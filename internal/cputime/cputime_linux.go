package cputime

import (
	"syscall"
	"unsafe"
)

const (
	clockProcess = 2 // CLOCK_PROCESS_CPUTIME_ID
	clockThread  = 3 // CLOCK_THREAD_CPUTIME_ID
)

// clock reads a CPU-time clock. clock_gettime counts to the nanosecond,
// where getrusage (like the scheduler's statistics it reads) can lag by a
// tick for a thread that is running.
func clock(id uintptr) (int64, bool) {
	var ts syscall.Timespec
	if _, _, errno := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, id, uintptr(unsafe.Pointer(&ts)), 0); errno != 0 {
		return 0, false
	}
	return ts.Nano(), true
}
