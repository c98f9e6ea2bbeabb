//go:build unix

package atomicfile_test

// The tests that need Unix: file owners, another user's credentials, FIFOs,
// device nodes and Unix sockets.

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/atomicfile"
)

func TestWriteKeepsOwnerAndGroup(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("giving a file away needs root")
	}
	dir := t.TempDir()
	name := filepath.Join(dir, "router.json")
	if err := os.WriteFile(name, []byte("old\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(name, 4321, 8765); err != nil {
		t.Fatal(err)
	}
	if err := atomicfile.Write(name, []byte("new\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(name)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if st.Uid != 4321 || st.Gid != 8765 {
		t.Fatalf("owner %d:%d, want 4321:8765", st.Uid, st.Gid)
	}
}

// A directory the user may write but not list (mode 0300): WriteIf fails
// before writing anything, naming the directory and the permission it
// needs. (Before the lock, Write renamed the file into place and then
// failed to flush the directory, reporting an error for a file it had
// written.) As root the mode does not apply, so the test runs itself again
// as nobody (uid 65534), from a copy of the test binary nobody can run.
func TestWriteIfDirectoryNotListable(t *testing.T) {
	if dir := os.Getenv("ATOMICFILE_UNLISTABLE_DIR"); dir != "" {
		err := atomicfile.WriteIf(filepath.Join(dir, "router.json"), []byte("x\n"), 0o640, nil)
		if err == nil || !strings.Contains(err.Error(), "open directory "+dir+" to lock it") || !strings.Contains(err.Error(), "needs read, write and search permission") {
			t.Fatalf("error %v, want one naming the directory and the permission", err)
		}
		return
	}
	const nobody = 65534
	base, err := os.MkdirTemp("", "atomicfile-unlistable-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	dir := filepath.Join(base, "dir")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestWriteIfDirectoryNotListable$", "-test.count=1")
	cmd.Env = append(os.Environ(), "ATOMICFILE_UNLISTABLE_DIR="+dir)
	if os.Getuid() == 0 {
		bin := filepath.Join(base, "atomicfile.test")
		data, err := os.ReadFile(os.Args[0])
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(bin, data, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(base, 0o711); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(dir, nobody, nobody); err != nil {
			t.Fatal(err)
		}
		cmd.Path, cmd.Args[0] = bin, bin
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	}
	if err := os.Chmod(dir, 0o300); err != nil {
		t.Fatal(err)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("WriteIf into a directory of mode 0300: %v\n%s", err, out)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	onlyFiles(t, dir)
}

// specialFiles makes, in dir, one of each kind of file that is not a
// regular file: a FIFO, a character device like /dev/null (only as root,
// who may mknod), a listening Unix socket and a directory. It returns
// them by the kind NotRegularError names.
func specialFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	fifo := filepath.Join(dir, "fifo.json")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	files["a FIFO (named pipe)"] = fifo
	if os.Geteuid() == 0 {
		dev := filepath.Join(dir, "null.json")
		if err := syscall.Mknod(dev, syscall.S_IFCHR|0o666, 1<<8|3); err != nil { // 1:3, /dev/null's numbers
			t.Fatal(err)
		}
		files["a character device"] = dev
	} else {
		t.Log("not root: no device node (mknod needs root)")
	}
	sock := filepath.Join(dir, "sock.json")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	files["a socket"] = sock
	sub := filepath.Join(dir, "dir.json")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	files["a directory"] = sub
	return files
}

// within fails the test when f has not returned after 5 s (a read of a FIFO
// waits for a writer for ever) and returns its error.
func within(t *testing.T, what string, f func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-time.After(5 * time.Second):
		t.Fatalf("%s had not returned after 5 s", what)
		return nil
	}
}

// TestNotRegularFileRefused: Write, WriteIf, RemoveIf, Read and
// CheckRegular refuse a FIFO, a device, a socket and a directory, directly
// and through a symbolic link, at once, naming what it is, and leave it as
// it was (the device node is not renamed over, the FIFO not opened).
func TestNotRegularFileRefused(t *testing.T) {
	dir := t.TempDir()
	files := specialFiles(t, dir)
	for kind, file := range files {
		link := filepath.Join(dir, "link-"+filepath.Base(file))
		if err := os.Symlink(file, link); err != nil {
			t.Fatal(err)
		}
		before, err := os.Lstat(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{file, link} {
			ops := map[string]func() error{
				"Write": func() error { return atomicfile.Write(name, []byte("{}\n"), 0o644) },
				"WriteIf": func() error {
					return atomicfile.WriteIf(name, []byte("{}\n"), 0o644, func(atomicfile.Current) error { return nil })
				},
				"RemoveIf": func() error {
					_, err := atomicfile.RemoveIf(name, func(atomicfile.Current) error { return nil })
					return err
				},
				"Read": func() error {
					_, err := atomicfile.Read(name)
					return err
				},
				"CheckRegular": func() error { return atomicfile.CheckRegular(name) },
			}
			for op, f := range ops {
				err := within(t, op+"("+name+")", f)
				var nr *atomicfile.NotRegularError
				if !errors.As(err, &nr) || nr.Kind() != kind || nr.Target != file {
					t.Errorf("%s(%s) = %v, want a NotRegularError: %s, target %s", op, name, err, kind, file)
					continue
				}
				want := file + " is " + kind + ", not a regular file"
				if name == link {
					want = file + " (where " + link + " leads) is " + kind + ", not a regular file"
				}
				if err.Error() != want {
					t.Errorf("%s(%s) = %q, want %q", op, name, err, want)
				}
				after, err := os.Lstat(file)
				if err != nil || after.Mode() != before.Mode() || !os.SameFile(before, after) {
					t.Fatalf("%s(%s) changed %s: %v (%v) -> %v", op, name, file, before.Mode(), err, after)
				}
			}
		}
	}
	var want []string
	for _, f := range files {
		want = append(want, filepath.Base(f), "link-"+filepath.Base(f))
	}
	slices.Sort(want)
	onlyFiles(t, dir, want...)
}
