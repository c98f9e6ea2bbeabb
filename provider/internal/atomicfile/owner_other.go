//go:build !unix

package atomicfile

import "os"

// keepOwner is a no-op where files have no Unix owner and group.
func keepOwner(*os.File, string) error { return nil }
