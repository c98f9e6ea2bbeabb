package atomicfile

import (
	"io/fs"
	"syscall"
)

// changeTime is when the file fi describes last changed, content or
// metadata (its ctime, in nanoseconds since the epoch), which no user can
// set: a file made anew, even with the same bytes and the inode number of a
// removed one, has another.
func changeTime(fi fs.FileInfo) int64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ctim.Nano()
	}
	return fi.ModTime().UnixNano()
}
