//go:build unix

package stdlib_test

import "syscall"

// processCPU returns the CPU time the process has used (user and system,
// every thread: the pool's and the garbage collector's too).
func processCPU() (int64, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return ru.Utime.Nano() + ru.Stime.Nano(), true
}
