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
package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
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
func Write(name string, data []byte, perm fs.FileMode) (err error) {
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
		if fi, statErr := os.Stat(name); statErr == nil && fi.IsDir() {
			return fmt.Errorf("%s is a directory; choose a file path", name)
		}
		return fmt.Errorf("rename %s to %s: %w", tmp, name, err)
	}
	renamed = true
	return syncDir(dir)
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
