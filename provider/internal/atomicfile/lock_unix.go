//go:build unix

package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
	"time"
)

// lockWait bounds how long lockDir waits for another writer: writers hold
// the lock for one write (milliseconds), so a lock held longer belongs to
// something else, which the error names.
const lockWait = 30 * time.Second

// lockDir takes an exclusive flock(2) on the directory dir and returns its
// release. A lock on the directory rather than on a file beside the target
// leaves nothing behind in a directory an application reads (a ConfigMap
// mount, /etc/app), and a lock file could not be locked before the target
// is known to be absent anyway. flock locks belong to the open file
// description, so two goroutines of one process exclude each other too.
func lockDir(dir string) (func(), error) {
	d, err := os.Open(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if err != nil {
		// A directory the user may write but not list (mode -wx) ends
		// here, before anything is written; it could not be flushed
		// after the rename either.
		return nil, fmt.Errorf("open directory %s to lock it: %w; the user running Terraform needs read, write and search permission on it", dir, err)
	}
	deadline := time.Now().Add(lockWait)
	for {
		err := syscall.Flock(int(d.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() {
				_ = syscall.Flock(int(d.Fd()), syscall.LOCK_UN)
				_ = d.Close()
			}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			_ = d.Close()
			if errors.Is(err, syscall.ENOLCK) || errors.Is(err, syscall.EOPNOTSUPP) || errors.Is(err, syscall.EINVAL) {
				// A file system without flock (some network mounts):
				// write unlocked, as before locks were taken.
				return func() {}, nil
			}
			return nil, fmt.Errorf("lock directory %s: %w", dir, err)
		}
		if time.Now().After(deadline) {
			_ = d.Close()
			return nil, fmt.Errorf("directory %s stayed locked (flock) for %v by another process; find it with `fuser %s` or `lsof +D %s`, then try again", dir, lockWait, dir, dir)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
