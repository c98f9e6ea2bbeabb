// Package bookstoretest runs a bookstore example (examples/bookstore, on pgx,
// and examples/bookstore/databasesql, on database/sql) against real servers
// and checks where each of its queries ran: both print the same lines, and
// one test of them keeps the two alike.
package bookstoretest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// Run runs an example's migrate and run, as make demo does, against a
// primary and two standbys that apply each commit a second late, as the
// quickstart's router file declares them (read_your_writes, route analytics
// on the second standby), and checks where each query ran. run is the
// example's run, writing what it prints to out.
func Run(t *testing.T, run func(out io.Writer, args []string) error) {
	t.Helper()
	topo := routertest.Start(t, routertest.WithStandbys(2))
	ctx := context.Background()
	for _, s := range topo.Standbys {
		if err := s.SetApplyDelay(ctx, time.Second); err != nil {
			t.Fatal(err)
		}
	}
	a := topo.Artifact()
	a.Consistency = artifact.Consistency{Mode: artifact.ModeReadYourWrites, WaitTimeout: "1ms"}
	a.Routes = []artifact.Route{{Name: "analytics", Nodes: []string{topo.Standbys[1].Name}, Fallback: artifact.FallbackPrimary}}
	data, err := artifact.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "router.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}

	var out bytes.Buffer
	if err := run(&out, []string{"migrate", "-router", path}); err != nil {
		t.Fatalf("migrate: %v\n%s", err, out.String())
	}
	want := fmt.Sprintf("ran on the primary, port %d", topo.Primary.Port)
	if !bytes.Contains(out.Bytes(), []byte(want)) {
		t.Errorf("migrate printed %q, want %q", out.String(), want)
	}
	// The analytics count reads without the session: let the standbys
	// replay the table first.
	if err := topo.WaitReplayed(ctx); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := run(&out, []string{"run", "-router", path}); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	t.Logf("\n%s", out.String())
	for _, re := range []string{
		fmt.Sprintf(`create .* -> %s \[write\] \(port %d\)`, topo.Primary.Name, topo.Primary.Port),
		// The standbys apply the insert a second late: the session's read
		// goes to the primary rather than miss it.
		fmt.Sprintf(`list .* -> %s \[sticky\] \(port %d\): 1 books, the new one included`, topo.Primary.Name, topo.Primary.Port),
		fmt.Sprintf(`count .* -> %s \[route\] \(port %d\)`, topo.Standbys[1].Name, topo.Standbys[1].Port),
	} {
		if !regexp.MustCompile(re).Match(out.Bytes()) {
			t.Errorf("the output has no line matching %s", re)
		}
	}
}
