// Package cputime reads CPU-time clocks for benchmarks, so that one on a
// busy machine can report its own cost rather than the wall clock, which
// other processes inflate. routerlib's and routerlib/stdlib's benchmarks and
// tools/peerbench use it; it lives at the module root (as internal/wirefloor
// does) so that all three may import it without adding to routerlib's API.
package cputime

// Thread returns the CPU time in nanoseconds the calling OS thread has used
// (lock the goroutine to its thread around what it measures), and false
// where the platform has no such clock.
func Thread() (int64, bool) { return clock(clockThread) }

// Process returns the CPU time in nanoseconds the whole process has used: a
// call's own goroutine, and what it costs elsewhere (pgx's reader, the
// collector that frees what it allocated); false where the platform has no
// such clock.
func Process() (int64, bool) { return clock(clockProcess) }
