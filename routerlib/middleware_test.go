package routerlib_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

var (
	key1 = []byte("0123456789abcdef0123456789abcdef")
	key2 = []byte("fedcba9876543210fedcba9876543210")
)

func sessionMiddleware(t *testing.T, r *routerlib.Router, c routerlib.SessionConfig) *routerlib.SessionMiddleware {
	t.Helper()
	m, err := routerlib.NewSessionMiddleware(r, c)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// primaryLSN is the primary's WAL insert position now.
func primaryLSN(t *testing.T, r *routerlib.Router) routerlib.LSN {
	t.Helper()
	var s string
	if err := r.QueryRow(routerlib.Primary(context.Background()), "SELECT pg_current_wal_insert_lsn()::text").Scan(&s); err != nil {
		t.Fatal(err)
	}
	lsn, err := routerlib.ParseLSN(s)
	if err != nil {
		t.Fatal(err)
	}
	return lsn
}

// sessionLSN runs one request through h and returns the LSN its handler's
// Session started with.
func sessionLSN(h func(http.Handler) http.Handler, req *http.Request) routerlib.LSN {
	var seen routerlib.LSN
	h(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		seen = routerlib.SessionFrom(req.Context()).LSN()
	})).ServeHTTP(httptest.NewRecorder(), req)
	return seen
}

// TestSessionMiddlewareKeys: a key shorter than 32 bytes, no key or no
// Router is refused when the middleware is built; with several keys the
// first signs and every one verifies.
func TestSessionMiddlewareKeys(t *testing.T) {
	topo := routertest.Shared(t)
	r := newRouter(t, topo.Artifact())
	for name, c := range map[string]routerlib.SessionConfig{
		"no key":     {},
		"nil key":    {Keys: [][]byte{nil}},
		"empty key":  {Keys: [][]byte{{}}},
		"1 byte":     {Keys: [][]byte{{'k'}}},
		"31 bytes":   {Keys: [][]byte{key1[:31]}},
		"second bad": {Keys: [][]byte{key1, key2[:16]}},
	} {
		if _, err := routerlib.NewSessionMiddleware(r, c); err == nil || !strings.Contains(err.Error(), "routerlib: session middleware:") {
			t.Errorf("%s: NewSessionMiddleware = %v, want an error saying what to do", name, err)
		}
	}
	if _, err := routerlib.NewSessionMiddleware(nil, routerlib.SessionConfig{Keys: [][]byte{key1}}); err == nil {
		t.Error("NewSessionMiddleware(nil Router) succeeded")
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("the deprecated Middleware accepted a 1-byte secret")
			}
		}()
		routerlib.Middleware([]byte("k"))
	}()

	lsn := primaryLSN(t, r)
	old := sessionMiddleware(t, r, routerlib.SessionConfig{Keys: [][]byte{key1}})
	rotated := sessionMiddleware(t, r, routerlib.SessionConfig{Keys: [][]byte{key2, key1}})
	ctx := context.Background()
	if got, ok := rotated.Verify(ctx, old.Sign(lsn)); !ok || got != lsn {
		t.Errorf("a value signed with the old key: %s, %v; want %s honoured during the rotation", got, ok, lsn)
	}
	if got, ok := old.Verify(ctx, rotated.Sign(lsn)); ok {
		t.Errorf("the rotated middleware signed with the old key: %s verified without the new one", got)
	}
	if got, ok := rotated.Verify(ctx, rotated.Sign(lsn)); !ok || got != lsn {
		t.Errorf("own value: %s, %v", got, ok)
	}
	other := sessionMiddleware(t, r, routerlib.SessionConfig{Keys: [][]byte{key2}})
	if _, ok := other.Verify(ctx, old.Sign(lsn)); ok {
		t.Error("a value signed with a foreign key verified")
	}
}

// TestSessionMiddlewareRefuses: a value is ignored once older than MaxAge,
// when tampered with, and when its LSN is ahead of the primary's position
// (FFFFFFFF/FFFFFFFF, say), even correctly signed.
func TestSessionMiddlewareRefuses(t *testing.T) {
	topo := routertest.Shared(t)
	r := newRouter(t, topo.Artifact())
	ctx := context.Background()
	m := sessionMiddleware(t, r, routerlib.SessionConfig{Keys: [][]byte{key1}, MaxAge: 500 * time.Millisecond})

	// The primary's position now, which the middleware has not seen: it
	// asks the primary before it honours the value.
	lsn := primaryLSN(t, r)
	value := m.Sign(lsn)
	if got, ok := m.Verify(ctx, value); !ok || got != lsn {
		t.Fatalf("a fresh value for the primary's current position: %s, %v; want %s", got, ok, lsn)
	}
	for _, ahead := range []routerlib.LSN{lsn + 1<<30, ^routerlib.LSN(0)} {
		if got, ok := m.Verify(ctx, m.Sign(ahead)); ok {
			t.Errorf("LSN %s ahead of the primary (%s) was honoured as %s", ahead, lsn, got)
		}
		req := httptest.NewRequest("GET", "/", nil)
		req.AddCookie(&http.Cookie{Name: routerlib.SessionCookie, Value: m.Sign(ahead)})
		if got := sessionLSN(m.Cookie, req); got != 0 {
			t.Errorf("a cookie with LSN %s started the session at %s; want it ignored", ahead, got)
		}
	}
	payload, sig, _ := strings.Cut(value, ".")
	for _, forged := range []string{strings.Repeat("_", len(payload)) + "." + sig, payload + "." + strings.Repeat("A", len(sig)), payload, ""} {
		if got, ok := m.Verify(ctx, forged); ok {
			t.Errorf("tampered value %q verified as %s", forged, got)
		}
	}
	time.Sleep(600 * time.Millisecond) // past MaxAge
	if got, ok := m.Verify(ctx, value); ok {
		t.Errorf("a value older than MaxAge verified as %s", got)
	}
	req := httptest.NewRequest("GET", "/", nil)
	req.AddCookie(&http.Cookie{Name: routerlib.SessionCookie, Value: value})
	if got := sessionLSN(m.Cookie, req); got != 0 {
		t.Errorf("an expired cookie started the session at %s", got)
	}
}

// TestSessionMiddlewareCookieOptions: the cookie is Secure, HttpOnly and
// SameSite=Lax by default, expires with MaxAge, and its name, SameSite and
// Secure are options.
func TestSessionMiddlewareCookieOptions(t *testing.T) {
	topo := routertest.Shared(t)
	a := topo.Artifact()
	a.Consistency.Mode = artifact.ModeReadYourWrites
	r := newRouter(t, a)
	write := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if _, err := r.Exec(req.Context(), "SELECT pg_advisory_unlock_all()"); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		fmt.Fprint(w, "ok")
	})
	cookie := func(c routerlib.SessionConfig) *http.Cookie {
		t.Helper()
		c.Keys = [][]byte{key1}
		rec := httptest.NewRecorder()
		sessionMiddleware(t, r, c).Cookie(write).ServeHTTP(rec, httptest.NewRequest("POST", "/", nil))
		cookies := rec.Result().Cookies()
		if rec.Code != 200 || len(cookies) != 1 {
			t.Fatalf("status %d, cookies %v; want one cookie after a write", rec.Code, cookies)
		}
		return cookies[0]
	}
	c := cookie(routerlib.SessionConfig{})
	if c.Name != routerlib.SessionCookie || !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.MaxAge != int(routerlib.DefaultSessionMaxAge/time.Second) {
		t.Errorf("default cookie %+v; want %s, Secure, HttpOnly, SameSite=Lax, Max-Age %v", c, routerlib.SessionCookie, routerlib.DefaultSessionMaxAge)
	}
	c = cookie(routerlib.SessionConfig{CookieName: "lsn", SameSite: http.SameSiteStrictMode, Insecure: true, MaxAge: time.Minute})
	if c.Name != "lsn" || c.Secure || c.SameSite != http.SameSiteStrictMode || c.MaxAge != 60 {
		t.Errorf("configured cookie %+v; want lsn, not Secure, SameSite=Strict, Max-Age 60", c)
	}
}

// TestSessionMiddlewareHeader: for an API, the LSN leaves in a response
// header after a write and arrives in the request header of the next call,
// where a read then sees the write even though the replicas lag.
func TestSessionMiddlewareHeader(t *testing.T) {
	topo := delayedTopology(t)
	ctx := context.Background()
	r := newRouter(t, withMode(topo.Artifact(), artifact.ModeReadYourWrites))
	if _, err := r.Exec(ctx, "CREATE TABLE api_books (title text)"); err != nil {
		t.Fatal(err)
	}
	waitReplayed(t, topo)
	m := sessionMiddleware(t, r, routerlib.SessionConfig{Keys: [][]byte{key1}, Header: "X-Db-Session"})
	srv := httptest.NewServer(m.Header(booksAPI(r, "api_books")))
	defer srv.Close()
	var session string
	for i := range 5 {
		title := fmt.Sprintf("book-%d", i)
		req, _ := http.NewRequest("POST", srv.URL+"/books?title="+title, nil)
		req.Header.Set("X-Db-Session", session)
		resp := do(t, req)
		body(t, resp)
		if session = resp.Header.Get("X-Db-Session"); session == "" {
			t.Fatal("a write returned no session header")
		}
		req, _ = http.NewRequest("GET", srv.URL+"/books", nil)
		req.Header.Set("X-Db-Session", session)
		if body := body(t, do(t, req)); !strings.Contains(body, title) {
			t.Fatalf("after posting %s the API lists %q", title, body)
		}
		if resp := do(t, req); resp.Header.Get("X-Db-Session") != "" {
			t.Errorf("a read returned a new session header")
		} else {
			body(t, resp)
		}
	}
	if _, ok := m.Verify(ctx, session); !ok {
		t.Error("the response header's value does not verify")
	}
}

// TestSessionMiddlewareCookie: a browser that posts a form sees it on the
// next page, through a Secure cookie over TLS.
func TestSessionMiddlewareCookie(t *testing.T) {
	topo := delayedTopology(t)
	ctx := context.Background()
	r := newRouter(t, withMode(topo.Artifact(), artifact.ModeReadYourWrites))
	if _, err := r.Exec(ctx, "CREATE TABLE books (title text)"); err != nil {
		t.Fatal(err)
	}
	waitReplayed(t, topo)
	m := sessionMiddleware(t, r, routerlib.SessionConfig{Keys: [][]byte{key1}})
	srv := httptest.NewTLSServer(m.Cookie(booksAPI(r, "books")))
	defer srv.Close()
	client := srv.Client()
	client.Jar, _ = cookiejar.New(nil)
	for i := range 10 {
		title := fmt.Sprintf("book-%02d", i)
		resp, err := client.PostForm(srv.URL+"/books", map[string][]string{"title": {title}})
		if err != nil {
			t.Fatal(err)
		}
		if b := body(t, resp); !strings.Contains(b, title) {
			t.Fatalf("after posting %s the next page shows %q", title, b)
		}
	}
}

// booksAPI lists table's titles on GET /books, and on POST /books inserts
// one and redirects to the list.
func booksAPI(r *routerlib.Router, table string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /books", func(w http.ResponseWriter, req *http.Request) {
		if _, err := r.Exec(req.Context(), "INSERT INTO "+table+" VALUES ($1)", req.FormValue("title")); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		if req.Header.Get("Content-Type") != "" {
			http.Redirect(w, req, "/books", http.StatusSeeOther)
		}
	})
	mux.HandleFunc("GET /books", func(w http.ResponseWriter, req *http.Request) {
		rows, err := r.Query(req.Context(), "SELECT title FROM "+table+" ORDER BY title")
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		titles, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		fmt.Fprint(w, strings.Join(titles, ","))
	})
	return mux
}

func do(t *testing.T, req *http.Request) *http.Response {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode >= 300 {
		t.Fatalf("%s %s: %s: %s", req.Method, req.URL, resp.Status, body(t, resp))
	}
	return resp
}

func body(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestSessionMiddlewareFlush: a handler that streams flushes its headers
// before it is done; the session value goes out with them, whether it
// asserts http.Flusher or uses http.ResponseController.
func TestSessionMiddlewareFlush(t *testing.T) {
	cookie := routerlib.Middleware(key1) // needs no Router, and this test needs no server
	for name, flush := range map[string]func(http.ResponseWriter) error{
		"http.Flusher": func(w http.ResponseWriter) error {
			f, ok := w.(http.Flusher)
			if !ok {
				return fmt.Errorf("the middleware's writer is no http.Flusher")
			}
			f.Flush()
			return nil
		},
		"http.ResponseController": func(w http.ResponseWriter) error { return http.NewResponseController(w).Flush() },
	} {
		t.Run(name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			var flushErr error
			cookie(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
				routerlib.SessionFrom(req.Context()).Observe(0x16B374D848) // as a write through the router does
				flushErr = flush(w)
				_, _ = io.WriteString(w, "data: 1\n\n")
			})).ServeHTTP(rec, httptest.NewRequest("GET", "/events", nil))
			if flushErr != nil {
				t.Fatal(flushErr)
			}
			if !rec.Flushed {
				t.Fatal("the response was not flushed")
			}
			if cs := rec.Result().Cookies(); len(cs) != 1 || cs[0].Value == "" {
				t.Fatalf("the flushed headers carry cookies %v, want the session's", cs)
			}
		})
	}
}

// TestSessionMiddlewareAfterClusterChange: the positions a middleware has
// seen belong to the primary it saw them on. After a reload points the
// router at another cluster, whose primary is far behind the first one's
// position, a value carrying an LSN between the two is ahead of the
// primary now and is refused (it would pin the session's reads to the
// primary), while one at the new primary's position is honoured.
func TestSessionMiddlewareAfterClusterChange(t *testing.T) {
	first := routertest.Shared(t)
	second := routertest.Start(t, routertest.WithStandbys(1))
	ctx := context.Background()
	var behind string
	if err := second.Primary.QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()::text").Scan(&behind); err != nil {
		t.Fatal(err)
	}
	secondLSN, err := routerlib.ParseLSN(behind)
	if err != nil {
		t.Fatal(err)
	}
	r, path := openRouter(t, first.Artifact(), routerlib.WithWatch(0))
	// The first cluster's primary well ahead of the second's.
	for primaryLSN(t, r) < secondLSN+1<<26 {
		if _, err := r.Exec(ctx, "SELECT pg_logical_emit_message(false, 'rs', 'x'), pg_switch_wal()"); err != nil {
			t.Fatal(err)
		}
	}
	m := sessionMiddleware(t, r, routerlib.SessionConfig{Keys: [][]byte{key1}})
	firstLSN := primaryLSN(t, r)
	if _, ok := m.Verify(ctx, m.Sign(firstLSN)); !ok {
		t.Fatalf("the first primary's position %s was refused", firstLSN)
	}

	writeFile(t, path, second.Artifact())
	if err := r.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	now := primaryLSN(t, r)
	if now >= firstLSN {
		t.Fatalf("the second cluster's primary is at %s, not behind the first's %s", now, firstLSN)
	}
	between := now + (firstLSN-now)/2
	if got, ok := m.Verify(ctx, m.Sign(between)); ok {
		t.Errorf("LSN %s, ahead of the primary now (%s) but behind the first cluster's (%s), was honoured as %s", between, now, firstLSN, got)
	}
	if got, ok := m.Verify(ctx, m.Sign(now)); !ok || got != now {
		t.Errorf("the primary's position now %s: %s, %v", now, got, ok)
	}
}

// nodeLSN is node's WAL insert position, asked directly.
func nodeLSN(t *testing.T, n *routertest.Node) routerlib.LSN {
	t.Helper()
	var s string
	if err := n.QueryRow(context.Background(), "SELECT pg_current_wal_insert_lsn()::text").Scan(&s); err != nil {
		t.Fatal(err)
	}
	lsn, err := routerlib.ParseLSN(s)
	if err != nil {
		t.Fatal(err)
	}
	return lsn
}

// TestSessionMiddlewareAfterReinit: the cluster at the primary's address is
// rebuilt (same server in the router file, timeline 1 again, WAL from the
// start). The middleware had cached a position read on the old cluster;
// once a health check has seen the new one, a value between the new
// cluster's position and the cached one is refused, as any value ahead of
// the primary is, instead of passing on the cache.
func TestSessionMiddlewareAfterReinit(t *testing.T) {
	topo := routertest.Start(t, routertest.WithStandbys(0))
	ctx := context.Background()
	r := newRouter(t, steadyHealth(topo.Artifact(), 200*time.Millisecond)) // the subject is the cache, not ejection
	m := sessionMiddleware(t, r, routerlib.SessionConfig{Keys: [][]byte{key1}})
	// The old cluster well ahead of where a new one starts.
	for nodeLSN(t, topo.Primary) < 1<<26 {
		if err := topo.Primary.Exec(ctx, "SELECT pg_logical_emit_message(false, 'rs', 'x'), pg_switch_wal()"); err != nil {
			t.Fatal(err)
		}
	}
	// A value past the last check's position makes Verify ask the primary
	// and cache its answer; a check between the two may have seen it
	// already, so try until the cache holds it.
	var cached routerlib.LSN
	for range 20 {
		if err := topo.Primary.Exec(ctx, "SELECT pg_logical_emit_message(false, 'rs', 'x')"); err != nil {
			t.Fatal(err)
		}
		lsn := nodeLSN(t, topo.Primary)
		if _, ok := m.Verify(ctx, m.Sign(lsn)); !ok {
			t.Fatalf("the primary's own position %s was refused", lsn)
		}
		if cached = m.CachedPositionForTest(); cached >= lsn {
			break
		}
	}
	if cached < 1<<26 {
		t.Fatalf("the middleware cached no position of the old cluster (%s)", cached)
	}

	if err := topo.Primary.Reinit(ctx); err != nil {
		t.Fatal(err)
	}
	// The pools' sessions of the old cluster fail once each; then the
	// router writes to the new one, and a check has seen it.
	eventually(t, 15*time.Second, "writes to the new cluster", func() bool {
		_, err := r.Exec(ctx, "CREATE TABLE IF NOT EXISTS reinit_probe (id int)")
		return err == nil
	})
	eventually(t, 5*time.Second, "a check of the new cluster", func() bool {
		s := nodeStat(r, topo.Primary.Name)
		return s.Writer && s.Healthy && s.ReplayLSN < cached
	})
	now := nodeLSN(t, topo.Primary)
	if now >= cached {
		t.Fatalf("the new cluster is at %s, not behind the cached %s", now, cached)
	}
	between := now + (cached-now)/2
	if got, ok := m.Verify(ctx, m.Sign(between)); ok {
		t.Errorf("LSN %s, ahead of the re-initialised primary (%s) but behind the old cluster's cached position (%s), was honoured as %s", between, now, cached, got)
	}
	if got, ok := m.Verify(ctx, m.Sign(now)); !ok || got != now {
		t.Errorf("the new cluster's position %s: %s, %v", now, got, ok)
	}
}
