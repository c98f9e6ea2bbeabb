//go:build !linux

package atomicfile

import "io/fs"

// changeTime is when the file fi describes last changed: its modification
// time where the change time is not at hand.
func changeTime(fi fs.FileInfo) int64 { return fi.ModTime().UnixNano() }
