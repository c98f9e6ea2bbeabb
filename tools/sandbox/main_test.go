package main

import (
	"bytes"
	"errors"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// TestUpDownInADirectory runs the sandbox as its package comment and its
// output tell a user to: up in a directory of one's choosing, then the
// "stop with" command that up printed, which must stop those servers and
// remove the directory, not look for a sandbox in the default one and leave
// these running.
func TestUpDownInADirectory(t *testing.T) {
	// Not t.TempDir, whose parent only its owner may enter: under root the
	// servers run as postgres.
	base, err := os.MkdirTemp("", "sandbox-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(base, "my sandbox")
	var stdout, stderr bytes.Buffer
	if err := run([]string{"up", "-dir", dir, "-standbys", "1"}, &stdout, &stderr); err != nil {
		if errors.Is(err, routertest.ErrNoBinaries) && os.Getenv("CI") != "true" {
			t.Skip(err)
		}
		t.Fatalf("up: %v\n%s%s", err, stdout.String(), stderr.String())
	}
	t.Cleanup(func() { _ = run([]string{"down", "-dir", dir}, &bytes.Buffer{}, &bytes.Buffer{}) })
	topo, err := routertest.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	primary := net.JoinHostPort(topo.Primary.Host, strconv.Itoa(topo.Primary.Port))

	m := regexp.MustCompile(`(?m)^stop with: +go run \./tools/sandbox (.*)$`).FindStringSubmatch(stdout.String())
	if m == nil {
		t.Fatalf("up printed no `stop with: go run ./tools/sandbox …` line:\n%s", stdout.String())
	}
	args := shellWords(t, m[1])
	if len(args) < 3 || args[0] != "down" || args[1] != "-dir" {
		// Run as printed, it would stop the default sandbox, which may be
		// the developer's, and leave this one running.
		t.Fatalf("up in %s printed the stop command %q, which does not name the directory", dir, m[1])
	}
	stdout.Reset()
	if err := run(args, &stdout, &stderr); err != nil {
		t.Fatalf("the printed stop command %q: %v\n%s", m[1], err, stderr.String())
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("after the printed stop command %q (it said %q), %s is still there (%v)", m[1], strings.TrimSpace(stdout.String()), dir, err)
	}
	if c, err := net.DialTimeout("tcp", primary, time.Second); err == nil {
		c.Close()
		t.Errorf("after the printed stop command %q, the primary still listens on %s", m[1], primary)
	}
}

// shellWords splits a command line as a POSIX shell would, for the words and
// single quotes that shellQuote writes.
func shellWords(t *testing.T, line string) []string {
	t.Helper()
	var words []string
	for _, m := range regexp.MustCompile(`'((?:[^']|'\\'')*)'|(\S+)`).FindAllStringSubmatch(line, -1) {
		if m[2] != "" {
			words = append(words, m[2])
		} else {
			words = append(words, strings.ReplaceAll(m[1], `'\''`, "'"))
		}
	}
	return words
}
