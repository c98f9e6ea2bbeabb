package django_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/examples/guides/django"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// TestDjangoMapping runs each function of the guide against a primary and
// two standbys that apply commits 2 s late, and checks by what each read
// sees where it ran: a replica has not seen a new book yet, the primary has.
func TestDjangoMapping(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(2))
	ctx := context.Background()
	const delay = 2 * time.Second
	for _, s := range topo.Standbys {
		if err := s.SetApplyDelay(ctx, delay); err != nil {
			t.Fatal(err)
		}
	}
	a := topo.Artifact()
	a.Consistency = artifact.Consistency{Mode: artifact.ModeReadYourWrites, WaitTimeout: "1ms"}
	a.Routes = []artifact.Route{{Name: "analytics", Nodes: []string{topo.Standbys[1].Name}}}
	data, err := artifact.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "router.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := django.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	replayed := func(standbys ...*routertest.Node) {
		t.Helper()
		lsn, err := topo.CurrentLSN(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range standbys {
			if err := s.WaitReplayed(ctx, lsn); err != nil {
				t.Fatal(err)
			}
		}
	}

	// allow_migrate: the table is made on the primary.
	if err := django.Migrate(ctx, r); err != nil {
		t.Fatal(err)
	}
	var exists bool
	if err := topo.Primary.QueryRow(ctx, "SELECT to_regclass('books') IS NOT NULL").Scan(&exists); err != nil || !exists {
		t.Fatalf("Migrate did not create books on the primary (%v)", err)
	}
	replayed(topo.Standbys...)

	// db_for_write, db_for_read and using('default').
	if _, err := django.CreateBook(ctx, r, "Replica Test", "Mamun"); err != nil {
		t.Fatal(err)
	}
	if books, err := django.BooksBy(ctx, r, "Mamun"); err != nil || len(books) != 0 {
		t.Errorf("BooksBy right after the write: %v, %v; want none (a replica, %v behind)", books, err, delay)
	}
	if books, err := django.BooksByOnPrimary(ctx, r, "Mamun"); err != nil || len(books) != 1 || books[0].Title != "Replica Test" {
		t.Errorf("BooksByOnPrimary: %v, %v; want the new book (the primary)", books, err)
	}
	replayed(topo.Standbys...)
	if books, err := django.BooksBy(ctx, r, "Mamun"); err != nil || len(books) != 1 {
		t.Errorf("BooksBy after replay: %v, %v; want the new book", books, err)
	}

	// using('analytics'): only the route's replica, paused here.
	if err := topo.Standbys[1].PauseReplay(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := django.CreateBook(ctx, r, "Second", "Mamun"); err != nil {
		t.Fatal(err)
	}
	replayed(topo.Standbys[0])
	if n, err := django.CountForAnalytics(ctx, r); err != nil || n != 1 {
		t.Errorf("CountForAnalytics: %d, %v; want 1 (the route's paused replica), not 2", n, err)
	}
	if err := topo.Standbys[1].ResumeReplay(ctx); err != nil {
		t.Fatal(err)
	}

	// The pinning middleware: a user who posts sees the book at once;
	// another user reads a replica that has not replayed it yet.
	// Insecure: the test server speaks plain HTTP, and a Secure cookie
	// would not come back over it.
	h, err := django.Handler(r, routerlib.SessionConfig{Keys: [][]byte{[]byte("0123456789abcdef0123456789abcdef")}, Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	get := func(resp *http.Response, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %s %s", resp.Status, body, err)
		}
		return string(body)
	}
	author := &http.Client{Jar: jar}
	page := get(author.PostForm(srv.URL+"/books", url.Values{"title": {"Pinned"}, "author": {"Mamun"}}))
	if !strings.Contains(page, "Pinned") {
		t.Errorf("the author's page after posting: %q, want the new book", page)
	}
	other := &http.Client{}
	if page := get(other.Get(srv.URL + "/books?author=Mamun")); strings.Contains(page, "Pinned") {
		t.Errorf("another user saw the book within the %v apply delay (%q): the test proves nothing", delay, page)
	}
}
