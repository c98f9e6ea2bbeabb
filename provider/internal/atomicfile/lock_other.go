//go:build !unix

package atomicfile

// lockDir is a no-op where flock(2) does not exist: writers are not
// serialised there.
func lockDir(string) (func(), error) { return func() {}, nil }
