//go:build unix

package provider

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"

	tfresource "github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
)

// routerFileKind makes, at a path, something that is not a regular file,
// and says what the provider's error calls it.
type routerFileKind struct {
	name     string
	rootOnly bool                                           // mknod needs root
	make     func(t *testing.T, at string) (string, func()) // the file the error names; a cleanup
	kind     string
}

func routerFileKinds() []routerFileKind {
	mkfifo := func(t *testing.T, at string) (string, func()) {
		if err := syscall.Mkfifo(at, 0o644); err != nil {
			t.Fatal(err)
		}
		return at, nil
	}
	// 1:3 are /dev/null's numbers: as root the old code renamed a
	// regular file over the node.
	mknod := func(t *testing.T, at string) (string, func()) {
		if err := syscall.Mknod(at, syscall.S_IFCHR|0o666, 1<<8|3); err != nil {
			t.Fatal(err)
		}
		return at, nil
	}
	return []routerFileKind{
		{name: "fifo", make: mkfifo, kind: "a FIFO (named pipe)"},
		{name: "device", rootOnly: true, make: mknod, kind: "a character device"},
		// 240 is a major number for local use: no driver behind it.
		{name: "blockDevice", rootOnly: true, kind: "a block device", make: func(t *testing.T, at string) (string, func()) {
			if err := syscall.Mknod(at, syscall.S_IFBLK|0o660, 240<<8); err != nil {
				t.Fatal(err)
			}
			return at, nil
		}},
		{name: "symlinkToDevice", rootOnly: true, kind: "a character device", make: func(t *testing.T, at string) (string, func()) {
			dev, _ := mknod(t, at+".dev")
			if err := os.Symlink(filepath.Base(dev), at); err != nil {
				t.Fatal(err)
			}
			return dev, func() { _ = os.Remove(dev) }
		}},
		{name: "socket", kind: "a socket", make: func(t *testing.T, at string) (string, func()) {
			l, err := net.Listen("unix", at)
			if err != nil {
				t.Fatal(err)
			}
			l.(*net.UnixListener).SetUnlinkOnClose(false)
			return at, func() { l.Close() }
		}},
		{name: "directory", kind: "a directory", make: func(t *testing.T, at string) (string, func()) {
			if err := os.Mkdir(at, 0o755); err != nil {
				t.Fatal(err)
			}
			return at, nil
		}},
	}
}

// noFIFOReader fails the test when anything opens one of the FIFOs at
// paths for reading: it tries, every 100 ms, to open each for writing
// without blocking, which succeeds only while a reader has it open. That
// open also ends the reader's wait (it then reads end of file), so a
// provider that opens the FIFO fails the test instead of hanging it.
func noFIFOReader(t *testing.T, paths ...string) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			case <-time.After(100 * time.Millisecond):
			}
			for _, p := range paths {
				if fi, err := os.Stat(p); err != nil || fi.Mode().Type() != fs.ModeNamedPipe {
					continue
				}
				f, err := os.OpenFile(p, os.O_WRONLY|syscall.O_NONBLOCK, 0)
				if err != nil {
					continue // ENXIO: no reader
				}
				if fi, err := f.Stat(); err == nil && fi.Mode().Type() == fs.ModeNamedPipe {
					t.Errorf("something opened the FIFO %s for reading: a read of it waits for a writer for ever", p)
				}
				f.Close()
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// TestAccRouterConfig_notRegularFile: a path that leads to a FIFO, a device
// node (itself or through a symbolic link), a socket or a directory is
// refused at plan time, naming what it is, by create, an update to that
// path, refresh, destroy and import, and is left as it was: nothing opens
// the FIFO (old code: the create's plan waited on it for ever), nothing is
// renamed over the device node (old code, as root: a regular file replaced
// it at apply). Where the resource is in the state (refresh, destroy) the
// error also says how to let go of it without touching the file: terraform
// state rm.
func TestAccRouterConfig_notRegularFile(t *testing.T) {
	t.Parallel()
	testAccPreCheck(t)
	golden, err := os.ReadFile(goldenRouterFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range routerFileKinds() {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			if k.rootOnly && os.Geteuid() != 0 {
				t.Skip("mknod needs root")
			}
			dir := t.TempDir()
			file, special := filepath.Join(dir, "router.json"), filepath.Join(dir, "special.json")
			// made is every special file and its identity, to check
			// that nothing replaced or removed it.
			made := map[string]os.FileInfo{}
			mk := func(at string) string {
				node, cleanup := k.make(t, at)
				if cleanup != nil {
					t.Cleanup(cleanup)
				}
				for _, p := range []string{at, node} {
					fi, err := os.Lstat(p)
					if err != nil {
						t.Fatal(err)
					}
					made[p] = fi
				}
				return node
			}
			unchanged := func() {
				t.Helper()
				for p, before := range made {
					after, err := os.Lstat(p)
					if err != nil || after.Mode() != before.Mode() || !os.SameFile(before, after) {
						t.Fatalf("%s was %v, now %v (%v): it was replaced or removed", p, before.Mode(), after, err)
					}
				}
			}
			// refused is the error for declared, which leads to node; more
			// are phrases after it.
			refused := func(declared, node string, more ...string) *regexp.Regexp {
				what := node + " is " + k.kind
				if node != declared {
					what = node + " (where " + declared + " leads) is " + k.kind
				}
				return errorText(append([]string{"Router File Is Not a Regular File", fmt.Sprintf("(path = %q)", declared),
					what + ", not a regular file", "Nothing was read, written or removed", "Point path at a regular file"}, more...)...)
			}
			// refusedInState: the resource is in the state, so the way out
			// that leaves the file alone is to remove it from the state.
			refusedInState := func(declared, node string) *regexp.Regexp {
				return refused(declared, node, "To destroy this resource (or stop managing it) and leave "+node+" as it is", "terraform state rm ADDRESS")
			}
			specialNode := mk(special)
			stop := noFIFOReader(t, file, special)
			t.Cleanup(stop)
			var fileNode string
			fileNodeName := file // what mk(file) will make the error name
			if k.name == "symlinkToDevice" {
				fileNodeName = file + ".dev"
			}
			left := []string{filepath.Base(special)} // the special files, which destroy leaves
			if specialNode != special {
				left = append(left, filepath.Base(specialNode))
			}
			start := time.Now()
			tfresource.Test(t, tfresource.TestCase{
				ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
				Steps: []tfresource.TestStep{
					{ // create
						Config:      routerConfigGolden(special, 50),
						ExpectError: refused(special, specialNode),
					},
					{
						PreConfig: unchanged,
						Config:    routerConfigGolden(file, 50),
						Check:     fileEquals(file, golden, 0o640),
					},
					{ // update to a new path
						Config:      routerConfigGolden(special, 50),
						ExpectError: refused(special, specialNode),
					},
					{ // refresh: the file was replaced by the special kind
						PreConfig: func() {
							unchanged()
							if got, err := os.ReadFile(file); err != nil || !bytes.Equal(got, golden) {
								t.Fatalf("the refused update changed %s: %q, %v", file, got, err)
							}
							if err := os.Remove(file); err != nil {
								t.Fatal(err)
							}
							fileNode = mk(file)
						},
						Config:      routerConfigGolden(file, 50),
						ExpectError: refusedInState(file, fileNodeName),
					},
					{ // destroy
						PreConfig:   unchanged,
						Config:      routerConfigGolden(file, 50),
						Destroy:     true,
						ExpectError: refusedInState(file, fileNodeName),
					},
					{ // import
						PreConfig:     unchanged,
						Config:        routerConfigGolden(special, 50),
						ResourceName:  routerConfigAddr,
						ImportState:   true,
						ImportStateId: special,
						ExpectError:   refused(special, specialNode),
					},
					{
						// Gone: the next plan creates the file again, and
						// the test's destroy removes it.
						PreConfig: func() {
							unchanged()
							for _, p := range []string{file, fileNode} {
								if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
									t.Fatal(err)
								}
								delete(made, p)
							}
						},
						Config: routerConfigGolden(file, 50),
						Check:  fileEquals(file, golden, 0o640),
					},
				},
				CheckDestroy: func(*terraform.State) error {
					return onlyRouterFile(dir, left...)
				},
			})
			unchanged()
			t.Logf("%s: %v", k.name, time.Since(start).Round(time.Millisecond))
		})
	}
}
