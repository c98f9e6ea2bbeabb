package routerlib_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// TestConnStringInHostOrDatabaseRefused: a password typed into a replica's
// host or database by mistake, as a connection string (libpq reads a
// dbname with '=' as one) or a URI's user:password@host, used to pass
// validation (which only kept it out of its own messages) and then show
// in every connection error: the name lookup's "lookup 127.0.0.1
// password=…: no such host", the server's `database "… password=…" does
// not exist`, each logged ("node does not answer"), returned by reads and
// kept in Stat's LastError. New and a reload now refuse such a file,
// naming the field and never its value, and a reload keeps the
// configuration in force. A socket directory and libpq's abstract socket
// ("@name") are still hosts.
func TestConnStringInHostOrDatabaseRefused(t *testing.T) {
	topo := routertest.Shared(t)
	ctx := context.Background()
	const canary = "Canary4e1d"
	logs := &syncBuffer{}
	var shown []string
	opts := []routerlib.Option{
		routerlib.WithLogger(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))),
		routerlib.WithOnReloadError(func(err error) { shown = append(shown, "reload error: "+err.Error()) }),
		routerlib.WithWatch(0),
	}
	good := fastHealth(topo.Artifact(), 100*time.Millisecond)
	r, path := openRouter(t, good, opts...)
	for _, c := range []struct {
		name  string
		field string
		edit  func(*artifact.Node)
	}{
		{"conninfo in host", "nodes[1].host", func(n *artifact.Node) { n.Host = "127.0.0.1 password=" + canary }},
		{"user:password@host", "nodes[1].host", func(n *artifact.Node) { n.Host = "app:" + canary + "@127.0.0.1" }},
		{"conninfo in database", "nodes[2].database", func(n *artifact.Node) { n.Database = "postgres password=" + canary }},
		{"URI in database", "nodes[2].database", func(n *artifact.Node) { n.Database = "postgresql://app:" + canary + "@127.0.0.1/postgres" }},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := good
			a.Nodes = append([]artifact.Node(nil), good.Nodes...)
			i := 1
			if strings.HasPrefix(c.field, "nodes[2]") {
				i = 2
			}
			c.edit(&a.Nodes[i])
			bad, err := routerlib.New(ctx, a, opts...)
			if err == nil {
				for range 3 {
					if err := bad.QueryRow(ctx, "SELECT 1").Scan(new(int)); err != nil {
						shown = append(shown, "read: "+err.Error())
					}
				}
				time.Sleep(300 * time.Millisecond) // a few checks of the node
				shown = append(shown, fmt.Sprintf("Stat: %+v", bad.Stat()))
				bad.Close()
				t.Fatalf("New accepted a %s", c.name)
			}
			shown = append(shown, "New: "+err.Error())
			if !strings.Contains(err.Error(), c.field) {
				t.Errorf("New's error does not name %s: %v", c.field, err)
			}
			// artifact.Marshal refuses it too: the file is written as by
			// hand, the good file with the one field changed.
			if err := os.WriteFile(path, withField(t, good, i, c.field, a.Nodes[i]), 0o640); err != nil {
				t.Fatal(err)
			}
			if err := r.Reload(ctx); err == nil {
				t.Errorf("Reload accepted a %s", c.name)
			}
			if got := nodeStat(r, a.Nodes[i].Name); !got.Readable || got.LastError != "" {
				t.Errorf("after the refused reload, %s: %+v", a.Nodes[i].Name, got)
			}
		})
	}
	for _, host := range []string{"/var/run/postgresql", "@abstract", "db-1.example.com", "::1"} {
		a := good
		a.Nodes = append([]artifact.Node(nil), good.Nodes...)
		a.Nodes[2].Host = host
		if err := a.Validate(); err != nil {
			t.Errorf("host %q refused: %v", host, err)
		}
	}
	out := strings.Join(shown, "\n") + "\n" + logs.String()
	if strings.Contains(out, canary) {
		t.Errorf("the password typed into a host or database shows:\n%s", out)
	}
	t.Logf("%s", out)
}

// withField is the router file of a with node i's host or database (as
// field names it) set to n's.
func withField(t *testing.T, a artifact.Topology, i int, field string, n artifact.Node) []byte {
	t.Helper()
	data, err := artifact.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	var file map[string]any
	if err := json.Unmarshal(data, &file); err != nil {
		t.Fatal(err)
	}
	node := file["nodes"].([]any)[i].(map[string]any)
	if strings.HasSuffix(field, ".host") {
		node["host"] = n.Host
	} else {
		node["database"] = n.Database
	}
	if data, err = json.Marshal(file); err != nil {
		t.Fatal(err)
	}
	return data
}
