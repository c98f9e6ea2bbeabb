//go:build unix

package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// keepOwner gives f the owner and group of the existing file name, if any.
// A file read by an application is typically root:app 0640; a replacement
// owned by whoever ran Terraform would lock the application out.
func keepOwner(f *os.File, name string) error {
	fi, err := os.Stat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	tf, err := f.Stat()
	if err != nil {
		return err
	}
	if tst, ok := tf.Sys().(*syscall.Stat_t); ok && tst.Uid == st.Uid && tst.Gid == st.Gid {
		return nil
	}
	if err := f.Chown(int(st.Uid), int(st.Gid)); err != nil {
		return fmt.Errorf("%s is owned by uid %d, gid %d, and the replacement cannot be (%w); run Terraform as that user or as root, or change the file's owner to the user that runs Terraform", name, st.Uid, st.Gid, err)
	}
	return nil
}

// FileID is the identity of the file fi describes, its device and inode
// numbers ("" where fi has none): every [Write] gives a file a new one, so
// it tells the file one writer made from the same bytes written again by
// another.
func FileID(fi fs.FileInfo) string {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return ""
	}
	return fmt.Sprintf("%d:%d", st.Dev, st.Ino)
}

// OwnerUID is the user ID of the owner of the file fi describes; ok is
// false where fi has none.
func OwnerUID(fi fs.FileInfo) (uid int, ok bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return int(st.Uid), true
}

// OpenNoFollow opens name for reading, refusing a symbolic link at name
// (O_NOFOLLOW: the open fails with ELOOP) instead of following it.
func OpenNoFollow(name string) (*os.File, error) {
	return os.OpenFile(name, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
}
