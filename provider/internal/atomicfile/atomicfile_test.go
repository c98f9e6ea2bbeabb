package atomicfile_test

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/atomicfile"
)

// onlyFiles fails unless dir holds exactly the named entries: no temporary
// file is ever left behind.
func onlyFiles(t *testing.T, dir string, want ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("%s holds %q, want %q", dir, got, want)
	}
}

func TestWriteCreatesAndReplaces(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "router.json")
	for _, tc := range []struct {
		data string
		perm os.FileMode
	}{{"first\n", 0o640}, {"second, longer\n", 0o600}, {"3\n", 0o644}} {
		if err := atomicfile.Write(name, []byte(tc.data), tc.perm); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != tc.data {
			t.Fatalf("file holds %q, want %q", got, tc.data)
		}
		fi, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != tc.perm {
			t.Fatalf("mode %v, want %v", fi.Mode().Perm(), tc.perm)
		}
		onlyFiles(t, dir, "router.json")
	}
}

func TestWriteMissingDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "missing")
	err := atomicfile.Write(filepath.Join(dir, "router.json"), []byte("x"), 0o640)
	if err == nil || !strings.Contains(err.Error(), dir+" does not exist") {
		t.Fatalf("error %v, want one naming %s", err, dir)
	}
	if _, statErr := os.Stat(dir); !os.IsNotExist(statErr) {
		t.Fatalf("Write created %s", dir)
	}
}

// A failure after the temporary file exists (here the rename, because the
// target is a directory) removes the temporary file.
func TestWriteFailureLeavesNoTemporaryFile(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "router.json")
	if err := os.MkdirAll(filepath.Join(target, "child"), 0o755); err != nil {
		t.Fatal(err)
	}
	err := atomicfile.Write(target, []byte("x"), 0o640)
	if err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Fatalf("error %v, want one saying the target is a directory", err)
	}
	onlyFiles(t, dir, "router.json")
}

// A reader polling the file while it is rewritten sees one complete version
// or the other, never a mix, a truncated file or no file.
func TestWriteConcurrentReaderSeesWholeFiles(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "router.json")
	versions := [][]byte{
		bytes.Repeat([]byte("a"), 64<<10),
		bytes.Repeat([]byte("b"), 3),
		bytes.Repeat([]byte("c"), 200<<10),
	}
	if err := atomicfile.Write(name, versions[0], 0o640); err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	var reads atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			got, err := os.ReadFile(name)
			if err != nil {
				t.Errorf("read: %v", err)
				return
			}
			whole := false
			for _, v := range versions {
				whole = whole || bytes.Equal(got, v)
			}
			if !whole {
				t.Errorf("reader saw %d bytes that are no version of the file", len(got))
				return
			}
			reads.Add(1)
		}
	}()
	for i := range 60 {
		if err := atomicfile.Write(name, versions[i%len(versions)], 0o640); err != nil {
			t.Fatal(err)
		}
	}
	stop.Store(true)
	wg.Wait()
	if reads.Load() == 0 {
		t.Fatal("the reader never read the file")
	}
	onlyFiles(t, dir, "router.json")
}

// A symbolic link at the path is kept and written through: the file it
// leads to is replaced in its own directory, so every reader, through this
// link, another one or the file's own name, sees the new bytes. Renaming
// over the link turned it into a regular file and left the old bytes in
// the file it led to.
func TestWriteThroughSymlink(t *testing.T) {
	root := t.TempDir()
	shared := filepath.Join(root, "shared")
	app := filepath.Join(root, "app")
	other := filepath.Join(root, "other")
	for _, d := range []string{shared, app, other, filepath.Join(root, "real")} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// app/sub leads to real: the link text "sub/../shared/…" means
	// root/shared/… to the kernel, not app/shared/… as read lexically.
	if err := os.Symlink(filepath.Join(root, "real"), filepath.Join(app, "sub")); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(shared, "router.json")
	if err := os.WriteFile(target, []byte("old\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(app, "router.json")
	for name, to := range map[string]string{
		link:                           "sub/../shared/router.json", // relative, through a linked directory
		filepath.Join(other, "r.json"): target,                      // another reader's link
		filepath.Join(app, "chain"):    "router.json",               // a link to the link
	} {
		if err := os.Symlink(to, name); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name, data string
		perm       os.FileMode
	}{{link, "first\n", 0o640}, {filepath.Join(app, "chain"), "second\n", 0o600}} {
		if got, err := atomicfile.Target(tc.name); err != nil || got != target {
			t.Fatalf("Target(%s) = %q, %v; want %s", tc.name, got, err, target)
		}
		if err := atomicfile.Write(tc.name, []byte(tc.data), tc.perm); err != nil {
			t.Fatal(err)
		}
		for _, reader := range []string{link, filepath.Join(other, "r.json"), target, filepath.Join(app, "chain")} {
			if got, err := os.ReadFile(reader); err != nil || string(got) != tc.data {
				t.Fatalf("after writing %s, %s reads %q, %v; want %q", tc.name, reader, got, err, tc.data)
			}
		}
		for _, l := range []string{link, filepath.Join(app, "chain")} {
			if fi, err := os.Lstat(l); err != nil || fi.Mode()&os.ModeSymlink == 0 {
				t.Fatalf("%s is no longer a symbolic link: %v, %v", l, fi.Mode(), err)
			}
		}
		if fi, err := os.Stat(target); err != nil || fi.Mode().Perm() != tc.perm {
			t.Fatalf("%s: mode %v, %v; want %v", target, fi.Mode().Perm(), err, tc.perm)
		}
		onlyFiles(t, shared, "router.json") // the temporary file was in the target's directory
		onlyFiles(t, app, "chain", "router.json", "sub")
	}
}

// A link that leads to a name not created yet gets that file; a loop of
// links and a link into a missing directory fail, naming the link, and
// change nothing.
func TestWriteThroughDanglingSymlink(t *testing.T) {
	dir := t.TempDir()
	link := filepath.Join(dir, "router.json")
	if err := os.Symlink("real.json", link); err != nil {
		t.Fatal(err)
	}
	if err := atomicfile.Write(link, []byte("x\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(dir, "real.json")); err != nil || string(got) != "x\n" {
		t.Fatalf("the link's target reads %q, %v", got, err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("%s is no longer a symbolic link", link)
	}

	loop := filepath.Join(dir, "loop.json")
	if err := os.Symlink("loop.json", loop); err != nil {
		t.Fatal(err)
	}
	if err := atomicfile.Write(loop, []byte("x\n"), 0o640); err == nil || !strings.Contains(err.Error(), "symbolic links in a row") {
		t.Fatalf("Write through a loop of links: %v", err)
	}

	nowhere := filepath.Join(dir, "nowhere.json")
	if err := os.Symlink(filepath.Join(dir, "missing", "r.json"), nowhere); err != nil {
		t.Fatal(err)
	}
	err := atomicfile.Write(nowhere, []byte("x\n"), 0o640)
	if err == nil || !strings.Contains(err.Error(), "directory "+filepath.Join(dir, "missing")) || !strings.Contains(err.Error(), "symbolic link "+nowhere) {
		t.Fatalf("Write through a link into a missing directory: %v", err)
	}
	onlyFiles(t, dir, "loop.json", "nowhere.json", "real.json", "router.json")
}

// WriteIf decides from the bytes it would replace and holds the directory's
// lock from that read to the rename: of writers that each create the file
// only when there is none, exactly one writes, however their checks
// overlap in time (each check here waits long enough for all of them to
// have read the directory, which without the lock lets every one of them
// write over the others).
func TestWriteIfCreatesOnce(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "router.json")
	errExists := errors.New("exists")
	const writers = 8
	var wrote atomic.Int32
	var wg sync.WaitGroup
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := atomicfile.WriteIf(name, []byte(strings.Repeat(string(rune('a'+i)), 1000)), 0o640, func(cur atomicfile.Current) error {
				time.Sleep(50 * time.Millisecond)
				if cur.Exists {
					return errExists
				}
				return nil
			})
			switch {
			case err == nil:
				wrote.Add(1)
			case !errors.Is(err, errExists):
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := wrote.Load(); n != 1 {
		t.Fatalf("%d writers created the file, want 1", n)
	}
	data, err := os.ReadFile(name)
	if err != nil || len(data) != 1000 || strings.Count(string(data), string(data[:1])) != 1000 {
		t.Fatalf("the file holds %.20q… (%d bytes, %v): not one writer's whole file", data, len(data), err)
	}
	onlyFiles(t, dir, "router.json")
}

// A check that refuses leaves the file as it was, and its error comes back
// as it is; the check is given the bytes of the file a symbolic link leads
// to.
func TestWriteIfRefusedLeavesFile(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "router.json")
	if err := os.WriteFile(name, []byte("theirs\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.json")
	if err := os.Symlink("router.json", link); err != nil {
		t.Fatal(err)
	}
	refused := errors.New("refused")
	var seen atomicfile.Current
	err := atomicfile.WriteIf(link, []byte("mine\n"), 0o640, func(cur atomicfile.Current) error {
		seen = cur
		return refused
	})
	if !errors.Is(err, refused) {
		t.Fatalf("error %v, want the check's", err)
	}
	if !seen.Exists || string(seen.Data) != "theirs\n" || seen.Target != name {
		t.Fatalf("the check saw %+v, want the bytes of %s", seen, name)
	}
	if got, _ := os.ReadFile(name); string(got) != "theirs\n" {
		t.Fatalf("the file holds %q after a refused write", got)
	}
	onlyFiles(t, dir, "link.json", "router.json")
}

// RemoveIf removes only what its check accepts, keeps a symbolic link at
// the name, and reports a missing file (or directory) as nothing removed.
func TestRemoveIf(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "router.json")
	link := filepath.Join(dir, "link.json")
	if err := os.WriteFile(name, []byte("mine\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("router.json", link); err != nil {
		t.Fatal(err)
	}
	changed := errors.New("changed")
	onlyMine := func(cur atomicfile.Current) error {
		if string(cur.Data) != "mine\n" {
			return changed
		}
		return nil
	}
	if err := os.WriteFile(name, []byte("edited\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if removed, err := atomicfile.RemoveIf(link, onlyMine); removed || !errors.Is(err, changed) {
		t.Fatalf("removed %v, %v: want the check's refusal", removed, err)
	}
	if err := os.WriteFile(name, []byte("mine\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if removed, err := atomicfile.RemoveIf(link, onlyMine); !removed || err != nil {
		t.Fatalf("removed %v, %v", removed, err)
	}
	onlyFiles(t, dir, "link.json")
	for _, missing := range []string{name, filepath.Join(dir, "no-such-dir", "router.json")} {
		if removed, err := atomicfile.RemoveIf(missing, onlyMine); removed || err != nil {
			t.Fatalf("%s: removed %v, %v", missing, removed, err)
		}
	}
}

// TestNotRegularErrorText: each kind of file that is not a regular file is
// named once, with what reading or writing it would do (a block device as a
// device, not as the other kinds' catch-all), and a type with no name of its
// own (fs.ModeIrregular, which os.Stat gives a file it cannot classify)
// still reads as one sentence.
func TestNotRegularErrorText(t *testing.T) {
	for _, c := range []struct {
		mode      fs.FileMode
		kind, why string
	}{
		{fs.ModeDir | 0o755, "a directory", "cannot be read or replaced as a file"},
		{fs.ModeNamedPipe | 0o644, "a FIFO (named pipe)", "a read would hang"},
		{fs.ModeDevice | fs.ModeCharDevice | 0o666, "a character device", "replace the device node"},
		{fs.ModeDevice | 0o660, "a block device", "replace the device node"},
		{fs.ModeSocket | 0o777, "a socket", "cannot be read as a file"},
		{fs.ModeIrregular, "a file of type ?---------", "cannot be read as a file"},
	} {
		e := &atomicfile.NotRegularError{Name: "/run/x.json", Target: "/run/x.json", Mode: c.mode}
		if e.Kind() != c.kind || !strings.Contains(e.Why(), c.why) {
			t.Errorf("mode %v: Kind %q, Why %q; want %q and a Why with %q", c.mode, e.Kind(), e.Why(), c.kind, c.why)
		}
		if want := "/run/x.json is " + c.kind + ", not a regular file"; e.Error() != want {
			t.Errorf("mode %v: %q, want %q", c.mode, e.Error(), want)
		}
	}
}

// TestChangedTellsAFileMadeAnew: Current's ID and Changed stay the same
// while nobody touches the file, and Changed tells apart the same bytes
// written again in place (same inode, even with the modification time set
// back) or into a file made anew after the old one was removed, whose inode
// number the file system may give again.
// (The pause is the kernel's timestamp granularity, a clock tick.)
func TestChangedTellsAFileMadeAnew(t *testing.T) {
	name := filepath.Join(t.TempDir(), "router.json")
	data := []byte(`{"format_version": 1}` + "\n")
	if err := atomicfile.Write(name, data, 0o640); err != nil {
		t.Fatal(err)
	}
	read := func() atomicfile.Current {
		t.Helper()
		cur, err := atomicfile.Read(name)
		if err != nil || !cur.Exists || cur.Changed == 0 {
			t.Fatalf("Read: %+v, %v", cur, err)
		}
		return cur
	}
	first := read()
	if again := read(); again.ID != first.ID || again.Changed != first.Changed {
		t.Fatalf("reading changed the identity: %s/%d, then %s/%d", first.ID, first.Changed, again.ID, again.Changed)
	}

	fi, err := os.Stat(name)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	if err := os.WriteFile(name, data, 0o640); err != nil { // in place: same inode
		t.Fatal(err)
	}
	// Whoever wrote it may set the modification time back (touch -d,
	// os.Chtimes); nobody can set the change time.
	if err := os.Chtimes(name, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	inPlace := read()
	if inPlace.ID != first.ID || inPlace.Changed == first.Changed {
		t.Fatalf("the same bytes written in place, the modification time set back: ID %s -> %s, Changed %d -> %d; want the same ID, another Changed", first.ID, inPlace.ID, first.Changed, inPlace.Changed)
	}

	time.Sleep(20 * time.Millisecond)
	if err := os.Remove(name); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, data, 0o640); err != nil {
		t.Fatal(err)
	}
	anew := read()
	if anew.Changed == inPlace.Changed {
		t.Fatalf("a file made anew with the same bytes has the old one's Changed, %d", anew.Changed)
	}
	t.Logf("inode number given again: %v", anew.ID == inPlace.ID)
}
