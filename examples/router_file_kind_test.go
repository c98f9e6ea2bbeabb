//go:build unix

package examples_test

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestRouterFileNotRegular: with the real CLI, what terraform-plugin-testing
// cannot run: destroy with -refresh=false (no Read first) and a path known
// only at apply (the plan cannot look at it), where the path leads to a
// FIFO or, as root, a character or block device node. Both are refused,
// naming what the file is (and, for the destroy, terraform state rm as the
// way to let go of the resource), and the FIFO or device node is left as it
// was: never opened (a read would wait for a writer for ever), never renamed
// over, never removed.
func TestRouterFileNotRegular(t *testing.T) {
	cli := findCLI(t)
	cli.configFile = buildProvider(t)
	kinds := []struct {
		name, kind string
		make       func(at string) error
	}{
		{"fifo", "a FIFO (named pipe)", func(at string) error { return syscall.Mkfifo(at, 0o644) }},
		{"device", "a character device", func(at string) error { return syscall.Mknod(at, syscall.S_IFCHR|0o666, 1<<8|3) }},
		// 240 is a major number for local use: no driver behind it.
		{"blockDevice", "a block device", func(at string) error { return syscall.Mknod(at, syscall.S_IFBLK|0o660, 240<<8) }},
	}
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			if k.name != "fifo" && os.Geteuid() != 0 {
				t.Skip("mknod needs root")
			}
			dir := t.TempDir()
			file := filepath.Join(dir, "router.json")
			config := func(path string) string {
				return unreachableProvider + `
resource "terraform_data" "name" {
  input = "router.json"
}

resource "pgreplication_router_config" "a" {
  path = ` + path + `
  primary {
    name = "primary"
    host = "10.0.0.1"
  }
}
`
			}
			refused := func(name string) *regexp.Regexp {
				return regexp.MustCompile(`Error: Router File Is Not a Regular File(?s:.*)` + regexp.QuoteMeta(name) + `\s+is\s+` + strings.ReplaceAll(regexp.QuoteMeta(k.kind), " ", `\s+`) + `,\s+not\s+a\s+regular\s+file(?s:.*)Nothing\s+was\s+read,\s+written\s+or\s+removed`)
			}
			// special makes the node at at and returns a check that it is
			// still that node.
			special := func(at string) func() {
				t.Helper()
				if err := k.make(at); err != nil {
					t.Fatal(err)
				}
				before, err := os.Lstat(at)
				if err != nil {
					t.Fatal(err)
				}
				return func() {
					t.Helper()
					after, err := os.Lstat(at)
					if err != nil || after.Mode() != before.Mode() || !os.SameFile(before, after) {
						t.Fatalf("%s was %v, now %v (%v): replaced or removed", at, before.Mode(), after, err)
					}
				}
			}
			stop := noFIFOReader(t, file)
			defer stop()

			// A path known only at apply: the plan cannot look at it.
			unchanged := special(file)
			writeFile(t, filepath.Join(dir, "main.tf"), config(fmt.Sprintf(`"%s/${terraform_data.name.output}"`, dir)))
			code, out := cli.exec(t, dir, "apply", "-auto-approve", "-input=false", "-no-color")
			if code == 0 || !refused(file).MatchString(out) {
				t.Fatalf("apply onto %s, a path known only at apply, exited %d; want it refused:\n%s", k.kind, code, out)
			}
			unchanged()

			// Destroy without a refresh, after the file was replaced.
			if err := os.Remove(file); err != nil {
				t.Fatal(err)
			}
			cli.run(t, dir, 0, "apply", "-auto-approve", "-input=false", "-no-color")
			if err := os.Remove(file); err != nil {
				t.Fatal(err)
			}
			unchanged = special(file)
			code, out = cli.exec(t, dir, "destroy", "-refresh=false", "-auto-approve", "-input=false", "-no-color")
			stateRm := regexp.MustCompile(`leave\s+` + regexp.QuoteMeta(file) + `\s+as\s+it\s+is,\s+remove\s+the\s+resource\s+from\s+the\s+state\s+instead:\s+terraform\s+state\s+rm\s+ADDRESS`)
			if code == 0 || !refused(file).MatchString(out) || !stateRm.MatchString(out) {
				t.Fatalf("destroy -refresh=false of a file replaced by %s exited %d; want it refused, naming terraform state rm:\n%s", k.kind, code, out)
			}
			unchanged()
			if err := os.Remove(file); err != nil {
				t.Fatal(err)
			}
			cli.run(t, dir, 0, "destroy", "-auto-approve", "-input=false", "-no-color")
		})
	}
}

// noFIFOReader fails the test when anything opens the FIFO at path for
// reading: every 100 ms it tries to open it for writing without blocking,
// which succeeds only while a reader has it open, and which also ends that
// reader's wait, so a provider that opens it fails the test instead of
// hanging it.
func noFIFOReader(t *testing.T, path string) (stop func()) {
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			select {
			case <-done:
				return
			case <-time.After(100 * time.Millisecond):
			}
			if fi, err := os.Stat(path); err != nil || fi.Mode().Type() != fs.ModeNamedPipe {
				continue
			}
			f, err := os.OpenFile(path, os.O_WRONLY|syscall.O_NONBLOCK, 0)
			if err != nil {
				continue // ENXIO: no reader
			}
			if fi, err := f.Stat(); err == nil && fi.Mode().Type() == fs.ModeNamedPipe {
				t.Errorf("something opened the FIFO %s for reading", path)
			}
			f.Close()
		}
	}()
	return func() { close(done); <-stopped }
}
