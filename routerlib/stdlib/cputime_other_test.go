//go:build !unix

package stdlib_test

// processCPU is not measured here.
func processCPU() (int64, bool) { return 0, false }
