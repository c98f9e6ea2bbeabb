package routerlib_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// TestRed4PasswordInUserNotShown: the password typed into a node's user by
// mistake, as a URI's user:password (app:secret@host, split at the '@' by
// whoever filled the fields) or a connection string's "user=app
// password=secret" pasted whole, is the same mistake that host and
// database are validated against (TestConnStringInHostOrDatabaseRefused),
// but user is not: the file passes, and the password shows in every
// connection error, since the server names the role it refused (role
// "app:…" does not exist) and pgconn names the user it connected as.
// Logged on each failed check, kept in Stat's LastError, returned by New.
// New now refuses the file, naming the field and never the value.
func TestRed4PasswordInUserNotShown(t *testing.T) {
	topo := routertest.Shared(t)
	ctx := context.Background()
	const canary = "Canary9b2c"
	for _, user := range []string{"app:" + canary, "app password=" + canary} {
		t.Run(user[:4], func(t *testing.T) {
			logs := &syncBuffer{}
			var shown []string
			a := fastHealth(topo.Artifact(), 100*time.Millisecond)
			a.Nodes = append([]artifact.Node(nil), a.Nodes...)
			a.Nodes[1].User = user // a replica's: New takes the file
			r, err := routerlib.New(ctx, a, routerlib.WithLogger(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
			if err != nil {
				shown = append(shown, "New: "+err.Error())
				if !strings.Contains(err.Error(), "nodes[1].user") {
					t.Errorf("New's error does not name nodes[1].user: %v", err)
				}
			} else {
				t.Errorf("New accepted a password typed into user")
				defer r.Close()
				time.Sleep(300 * time.Millisecond) // a few checks of the node
				shown = append(shown, fmt.Sprintf("Stat: %+v", r.Stat()))
			}
			out := strings.Join(shown, "\n") + "\n" + logs.String()
			if n := strings.Count(out, canary); n > 0 {
				first := out[max(0, strings.Index(out, canary)-120):]
				first = first[:min(len(first), 200)]
				t.Errorf("the password typed into user shows %d times in New's error, Stat and the log; first: …%s…", n, first)
			}
		})
	}
}
