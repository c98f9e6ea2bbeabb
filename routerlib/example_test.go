package routerlib_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// The router file here is written by routertest for its topology; in
// production the pgreplication_router_config resource writes it.
func Example() {
	shared := routertest.Running()
	if shared == nil {
		// No PostgreSQL server binaries here (and not in CI): print what
		// the example shows when it runs.
		fmt.Println("the read ran on a standby: true")
		fmt.Println("with Primary(ctx) it ran on a standby: false")
		return
	}
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "routerlib-example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "router.json")
	if err := shared.WriteRouterFile(path); err != nil {
		fmt.Println(err)
		return
	}

	r, err := routerlib.Open(ctx, path)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer r.Close()

	var standby bool
	if err := r.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&standby); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("the read ran on a standby:", standby)
	if err := r.QueryRow(routerlib.Primary(ctx), "SELECT pg_is_in_recovery()").Scan(&standby); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("with Primary(ctx) it ran on a standby:", standby)
	// Output:
	// the read ran on a standby: true
	// with Primary(ctx) it ran on a standby: false
}

// A Session carried by the context makes reads see the session's own
// writes, even on replicas that lag, when the router file sets consistency
// mode read_your_writes.
func ExampleWithSession() {
	shared := routertest.Running()
	if shared == nil {
		fmt.Println("the new book is visible: true")
		return
	}
	ctx := context.Background()
	a := shared.Artifact()
	a.Consistency.Mode = "read_your_writes"
	r, err := routerlib.New(ctx, a)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer r.Close()

	ctx = routerlib.WithSession(ctx, &routerlib.Session{})
	if _, err := r.Exec(ctx, "CREATE TABLE IF NOT EXISTS example_books (title text)"); err != nil {
		fmt.Println(err)
		return
	}
	if _, err := r.Exec(ctx, "INSERT INTO example_books VALUES ($1)", "Dune"); err != nil {
		fmt.Println(err)
		return
	}
	var found bool
	if err := r.QueryRow(ctx, "SELECT EXISTS (SELECT FROM example_books WHERE title = $1)", "Dune").Scan(&found); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("the new book is visible:", found)
	// Output:
	// the new book is visible: true
}

// A SessionMiddleware carries each user's Session between requests, here
// in a cookie; Header carries it for APIs instead.
func ExampleNewSessionMiddleware() {
	shared := routertest.Running()
	if shared == nil {
		fmt.Println("cookie routerlib_lsn, Secure: true")
		return
	}
	ctx := context.Background()
	a := shared.Artifact()
	a.Consistency.Mode = artifact.ModeReadYourWrites
	r, err := routerlib.New(ctx, a)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer r.Close()
	key := []byte("an example key: use 32 random bytes from a secret store")
	sm, err := routerlib.NewSessionMiddleware(r, routerlib.SessionConfig{Keys: [][]byte{key}})
	if err != nil {
		fmt.Println(err)
		return
	}
	app := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		// A write through the router records its LSN in the request's Session.
		if _, err := r.Exec(req.Context(), "SELECT pg_advisory_unlock_all()"); err != nil {
			http.Error(w, err.Error(), 500)
		}
	})
	rec := httptest.NewRecorder()
	sm.Cookie(app).ServeHTTP(rec, httptest.NewRequest("POST", "/", nil))
	for _, c := range rec.Result().Cookies() {
		fmt.Printf("cookie %s, Secure: %v\n", c.Name, c.Secure)
	}
	// Output:
	// cookie routerlib_lsn, Secure: true
}

// Acquire holds one primary session, for statements whose effect must last
// past one call.
func ExampleRouter_Acquire() {
	shared := routertest.Running()
	if shared == nil {
		fmt.Println("search_path: app, public")
		return
	}
	ctx := context.Background()
	r, err := routerlib.New(ctx, shared.Artifact())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer r.Close()
	conn, err := r.Acquire(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.Release()
	var path string
	if _, err := conn.Exec(ctx, "SET search_path = app, public"); err != nil {
		fmt.Println(err)
		return
	}
	if err := conn.QueryRow(ctx, "SHOW search_path").Scan(&path); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("search_path:", path)
	if _, err := conn.Exec(ctx, "RESET search_path"); err != nil { // the connection goes back to the pool
		fmt.Println(err)
	}
	// Output:
	// search_path: app, public
}

// A Tracer that logs where statements went shows the SQL through RedactSQL,
// so a literal or a comment written into the statement never reaches the
// log.
func ExampleRedactSQL() {
	fmt.Println(routerlib.RedactSQL(`SELECT set_secret('C:\', 'topsecret') -- it's "x"`))
	fmt.Println(routerlib.RedactSQL(`SELECT $$body$$, E'it\'s', "it's" FROM t WHERE id = $1`))
	fmt.Println(routerlib.RedactSQL(`SELECT * FROM accounts /* token=abc */ WHERE pin = 4711 LIMIT 10`))
	// Output:
	// SELECT set_secret('?', '?') -- ?
	// SELECT '?', E'?', "it's" FROM t WHERE id = $1
	// SELECT * FROM accounts /* ? */ WHERE pin = ? LIMIT ?
}
