package stdlib_test

import "syscall"

// threadCPU returns the CPU time the calling OS thread has used, so that a
// benchmark on a busy machine can report its own cost rather than the wall
// clock, which other processes inflate.
func threadCPU() (int64, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru); err != nil {
		return 0, false
	}
	return ru.Utime.Nano() + ru.Stime.Nano(), true
}

// processCPU returns the CPU time the whole process has used (every
// goroutine's: pgx's reader and the collector's too).
func processCPU() (int64, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return ru.Utime.Nano() + ru.Stime.Nano(), true
}
