//go:build !linux

package routertest

import "syscall"

// dieWithParent does nothing where the kernel has no parent-death signal
// (macOS, the BSDs): there Close, or the process group, stops PgBouncer.
func dieWithParent(*syscall.SysProcAttr) {}
