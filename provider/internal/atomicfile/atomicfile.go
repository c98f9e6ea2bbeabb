// Package atomicfile replaces a file so that a concurrent reader sees either
// the old bytes or the new ones, never a mix, an empty file or a missing one.
//
// [Write] writes a temporary file in the target's directory, flushes it to
// disk, gives it its permissions (and, on Unix, the owner and group of the
// file it replaces), renames it over the target and flushes the directory,
// so the rename itself survives a crash. On any error the temporary file is
// removed and the target is left as it was.
//
// A symbolic link at the target is kept and written through: Write replaces
// the file the link leads to (a chain of links is followed to its end), in
// that file's directory, as a plain write to the link would. Renaming over
// the link instead would turn it into a regular file and leave the old bytes
// in the file it led to, where an application reading through another link
// to it would never see the change. A link that leads nowhere yet gets the
// file it names created ([Target]).
//
// Write does not create the parent directory: a missing directory is more
// often a typo than an intent, and the owner and mode a new directory should
// have are a decision for whoever provisions the host. The error names the
// missing directory.
//
// [WriteIf] and [RemoveIf] decide from the file's current bytes whether to
// go ahead, holding an exclusive lock on the file's directory (flock(2), on
// Unix) from the read to the rename or the removal: two processes that
// check and write one file at the same time (two Terraform provider
// configurations, two applies) take turns, so the second sees what the
// first wrote and neither decides from bytes that are about to change.
// Readers take no lock; they never need one.
//
// Only a regular file (or a symbolic link leading to one) is read, replaced
// or removed: anything else at the target (a FIFO, a device, a socket, a
// directory) is refused with a [*NotRegularError] before it is opened.
// Opening a FIFO for reading waits for a writer, a device such as /dev/zero
// reads without end, and renaming over a device node (/dev/null, as root)
// would replace it with a regular file.
package atomicfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// TempPrefix starts the name of every temporary file Write creates (followed
// by the target's base name), so a file left behind by a crash in the middle
// of a write is recognisable.
const TempPrefix = ".tmp-"

// Write atomically replaces the file name with data, with permissions perm.
// If name exists, the new file keeps its owner and group (on Unix); when
// that is not possible (the caller may not give files away) Write fails
// and the old file stays, because a file the reading application can no
// longer open is worse than a stale one.
func Write(name string, data []byte, perm fs.FileMode) error {
	return WriteIf(name, data, perm, nil)
}

// Current is what a file holds when [WriteIf] or [RemoveIf] asks whether to
// go ahead.
type Current struct {
	// Target is the file that would be replaced or removed (see [Target]).
	Target string
	// Exists is false when there is no file at Target yet.
	Exists bool
	// Data is the file's bytes; nil when it does not exist.
	Data []byte
	// ID is the file's identity ([FileID]); "" when it does not exist.
	ID string
	// Mode is the file's permission bits; 0 when it does not exist.
	Mode fs.FileMode
	// Changed is when the file last changed, content or metadata (its
	// ctime on Linux, else its modification time), in nanoseconds since
	// the epoch; 0 when it does not exist. With ID it tells a file from
	// one made since at the same path: a removed file's inode number may
	// be given to the next file made.
	Changed int64
}

// NotRegularError is the refusal of a target that exists but is not a
// regular file.
type NotRegularError struct {
	// Name is the path as given; Target is the file it leads to (the same
	// unless Name is a symbolic link).
	Name, Target string
	// Mode is the target's type bits (fs.ModeNamedPipe, fs.ModeDevice, ...).
	Mode fs.FileMode
}

// notRegularKinds names, for each file type that is not a regular file (in
// the order they are matched: a character device's mode also has
// fs.ModeDevice), what it is and what reading or writing it would do.
var notRegularKinds = []struct {
	bits      fs.FileMode
	kind, why string
}{
	{fs.ModeDir, "a directory", "a directory cannot be read or replaced as a file"},
	{fs.ModeNamedPipe, "a FIFO (named pipe)", "opening it for reading waits for a writer, so a read would hang, and a write would replace the pipe with a regular file"},
	{fs.ModeCharDevice, "a character device", deviceWhy},
	{fs.ModeDevice, "a block device", deviceWhy},
	{fs.ModeSocket, "a socket", otherWhy},
}

const (
	deviceWhy = "reading a device may never end (as /dev/zero's does), and a write would replace the device node with a regular file"
	otherWhy  = "it cannot be read as a file, and a write would replace it with a regular file"
)

// describe returns what the target is, with its article, and what reading
// or writing it would do.
func (e *NotRegularError) describe() (kind, why string) {
	t := e.Mode.Type()
	for _, k := range notRegularKinds {
		if t&k.bits != 0 {
			return k.kind, k.why
		}
	}
	return fmt.Sprintf("a file of type %v", t), otherWhy
}

// Kind names what the target is, with its article: "a FIFO (named pipe)",
// "a character device", "a directory".
func (e *NotRegularError) Kind() string {
	kind, _ := e.describe()
	return kind
}

// Why says what reading or writing such a file would do instead.
func (e *NotRegularError) Why() string {
	_, why := e.describe()
	return why
}

func (e *NotRegularError) Error() string {
	where := e.Target
	if e.Name != "" && e.Name != e.Target {
		where = fmt.Sprintf("%s (where %s leads)", e.Target, e.Name)
	}
	return fmt.Sprintf("%s is %s, not a regular file", where, e.Kind())
}

// CheckRegular returns a [*NotRegularError] when the file that writing name
// replaces ([Target]) exists and is not a regular file, without opening it;
// nil when it is a regular file or does not exist, and the error of
// resolving or examining it otherwise.
func CheckRegular(name string) error {
	target, err := Target(name)
	if err != nil {
		return err
	}
	_, err = statRegular(name, target)
	return err
}

// statRegular is the FileInfo of target (resolved from name by Target), nil
// when it does not exist, or a *NotRegularError when it is not a regular
// file. It does not open the file.
func statRegular(name, target string) (fs.FileInfo, error) {
	fi, err := os.Stat(target)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, &NotRegularError{Name: name, Target: target, Mode: fi.Mode()}
	}
	return fi, nil
}

// WriteIf is [Write] that first reads the file it would replace and writes
// only when check, given those bytes, returns nil; check's error is returned
// as it is and nothing is written. The directory stays locked from the read
// to the rename, so no other WriteIf or RemoveIf of a file in it comes in
// between. A nil check always writes.
func WriteIf(name string, data []byte, perm fs.FileMode, check func(Current) error) (err error) {
	link := name
	if name, err = Target(name); err != nil {
		return err
	}
	dir := filepath.Dir(name)
	if fi, statErr := os.Stat(dir); statErr != nil {
		if errors.Is(statErr, fs.ErrNotExist) && name != link {
			return fmt.Errorf("directory %s, where the symbolic link %s leads (to %s), does not exist; create it or point the link at an existing directory", dir, link, name)
		}
		if errors.Is(statErr, fs.ErrNotExist) {
			return fmt.Errorf("directory %s does not exist; create it (with the owner and mode the reading application needs) or choose a path in an existing directory", dir)
		}
		return statErr
	} else if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	unlock, err := lockDir(dir)
	if err != nil {
		return err
	}
	defer unlock()
	// Refuse anything but a regular file before writing (read refuses it
	// too, before opening it).
	if check == nil {
		if _, err := statRegular(link, name); err != nil {
			return err
		}
	} else {
		cur, err := read(link, name)
		if err != nil {
			return err
		}
		if err := check(cur); err != nil {
			return err
		}
	}

	f, err := os.CreateTemp(dir, TempPrefix+filepath.Base(name)+".*")
	if err != nil {
		return fmt.Errorf("create a temporary file in %s: %w", dir, err)
	}
	tmp := f.Name()
	renamed := false
	defer func() {
		if !renamed {
			// Close may already have happened; its second error is moot.
			_ = f.Close()
			if rmErr := os.Remove(tmp); rmErr != nil && !errors.Is(rmErr, fs.ErrNotExist) {
				err = errors.Join(err, fmt.Errorf("remove temporary file: %w", rmErr))
			}
		}
	}()

	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("flush %s to disk: %w", tmp, err)
	}
	// Chmod on the descriptor, not the name, and before the rename: the file
	// is never visible under name with the wrong mode, and the umask does
	// not apply to chmod.
	if err := f.Chmod(perm); err != nil {
		return fmt.Errorf("set the mode of %s: %w", tmp, err)
	}
	if err := keepOwner(f, name); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, name); err != nil {
		if _, statErr := statRegular(link, name); statErr != nil {
			return statErr // it became a directory, a FIFO... since the check
		}
		return fmt.Errorf("rename %s to %s: %w", tmp, name, err)
	}
	renamed = true
	return syncDir(dir)
}

// RemoveIf removes the file name leads to (see [Target]; a symbolic link
// at name is kept) when check, given its bytes, returns nil, under the same
// lock as [WriteIf]. It reports whether it removed the file; a file that
// does not exist is not removed and check is not called.
func RemoveIf(name string, check func(Current) error) (removed bool, err error) {
	link := name
	if name, err = Target(name); err != nil {
		return false, err
	}
	dir := filepath.Dir(name)
	unlock, err := lockDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer unlock()
	cur, err := read(link, name)
	if err != nil || !cur.Exists {
		return false, err
	}
	if err := check(cur); err != nil {
		return false, err
	}
	if err := os.Remove(name); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		return false, err
	}
	return true, syncDir(dir)
}

// Read is the Current of the file that writing name would replace: name,
// or the file at the end of a symbolic link at name ([Target]). It takes no
// lock: a caller that writes after deciding from it uses [WriteIf].
func Read(name string) (Current, error) {
	target, err := Target(name)
	if err != nil {
		return Current{}, err
	}
	return read(name, target)
}

// read is the Current of the file target (resolved from name by Target).
// Anything but a regular file is refused before it is opened, and the file
// is opened without blocking and examined again once open, so a FIFO put
// there between the two is refused too instead of waiting for a writer.
func read(name, target string) (Current, error) {
	if fi, err := statRegular(name, target); err != nil || fi == nil {
		return Current{Target: target}, err
	}
	f, err := os.OpenFile(target, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return Current{Target: target}, nil
	}
	if err != nil {
		return Current{}, fmt.Errorf("read %s: %w", target, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return Current{}, fmt.Errorf("read %s: %w", target, err)
	}
	if !fi.Mode().IsRegular() {
		return Current{}, &NotRegularError{Name: name, Target: target, Mode: fi.Mode()}
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return Current{}, fmt.Errorf("read %s: %w", target, err)
	}
	return Current{Target: target, Exists: true, Data: data, ID: FileID(fi), Mode: fi.Mode().Perm(), Changed: changeTime(fi)}, nil
}

// maxLinks bounds the links Target follows, as the kernel bounds a path
// lookup (ELOOP after 40 on Linux).
const maxLinks = 40

// Target is the file that Write(name) replaces and that reading name reads:
// name itself, or, when name is a symbolic link, the file at the end of the
// chain of links, with every directory on the way resolved (so that a
// relative link's ".." means what the kernel takes it to mean). That file
// need not exist: a link may lead to a name not created yet. A name whose
// directory does not exist is returned as it is, for Write to report.
func Target(name string) (string, error) {
	for range maxLinks {
		// Split by hand: filepath.Dir cleans the path lexically, and a
		// "sub/.." in a link's text means the parent of where sub leads;
		// EvalSymlinks resolves each component before the ".." after it.
		dir, base := ".", name
		if i := strings.LastIndexByte(name, filepath.Separator); i >= 0 {
			dir, base = name[:i+1], name[i+1:]
		}
		dir, err := filepath.EvalSymlinks(dir)
		if errors.Is(err, fs.ErrNotExist) {
			return name, nil
		}
		if err != nil {
			return "", fmt.Errorf("resolve the directory of %s: %w", name, err)
		}
		name = filepath.Join(dir, base)
		fi, err := os.Lstat(name)
		if errors.Is(err, fs.ErrNotExist) || err == nil && fi.Mode()&fs.ModeSymlink == 0 {
			return name, nil
		}
		if err != nil {
			return "", err
		}
		to, err := os.Readlink(name)
		if err != nil {
			return "", err
		}
		if !filepath.IsAbs(to) {
			to = dir + string(filepath.Separator) + to // not Join: it would clean the ".."
		}
		name = to
	}
	return "", fmt.Errorf("%s: more than %d symbolic links in a row (a loop?); point the link at a file", name, maxLinks)
}

// syncDir flushes a directory, so a rename in it is on disk.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open directory %s to flush it: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, errors.ErrUnsupported) {
		return fmt.Errorf("flush directory %s: %w", dir, err)
	}
	return nil
}
