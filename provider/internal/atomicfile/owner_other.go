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

// OwnerUID is never known where files have no Unix owner.
func OwnerUID(fs.FileInfo) (uid int, ok bool) { return 0, false }

// OpenNoFollow opens name for reading; where the system has no O_NOFOLLOW
// the caller compares the open file with an Lstat of name.
func OpenNoFollow(name string) (*os.File, error) { return os.Open(name) }
