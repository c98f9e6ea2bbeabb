//go:build !unix

package atomicfile

import (
	"io/fs"
	"os"
)

// keepOwner is a no-op where files have no Unix owner and group.
func keepOwner(*os.File, string) error { return nil }

// FileID is "" where files have no device and inode numbers.
func FileID(fs.FileInfo) string { return "" }
