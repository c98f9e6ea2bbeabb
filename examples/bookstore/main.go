// Command bookstore is the seed's Django example — a Book model on a primary
// and its replicas — written against routerlib, reading the router file that
// examples/quickstart writes. It prints which node served each query.
//
//	go run ./examples/bookstore migrate -router FILE   # create the books table, on the primary only
//	go run ./examples/bookstore run     -router FILE   # create a book, list books by author
//
// Listing books by author reads from a replica, creating a book writes to the
// primary, and with read-your-writes the new book shows up at once.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
)

func main() {
	if err := run(os.Stdout, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "bookstore:", err)
		os.Exit(1)
	}
}

func run(out io.Writer, args []string) error {
	if len(args) == 0 {
		return errors.New("usage: bookstore migrate|run -router FILE")
	}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	path := fs.String("router", "router.json", "the router file written by pgreplication_router_config")
	author := fs.String("author", "Mamun", "the author whose books to list")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	trace := &served{}
	r, err := routerlib.Open(ctx, *path, routerlib.WithTracer(trace))
	if err != nil {
		return err
	}
	defer r.Close()

	switch args[0] {
	case "migrate":
		return migrate(ctx, out, r)
	case "run":
		return demo(ctx, out, r, trace, *author)
	default:
		return fmt.Errorf("unknown command %q: want migrate or run", args[0])
	}
}

// migrate is Django's allow_migrate: schema changes only ever run on the primary.
func migrate(ctx context.Context, out io.Writer, r *routerlib.Router) error {
	conn, err := r.MigrationConn(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	_, err = conn.Exec(ctx, `
CREATE TABLE IF NOT EXISTS books (
    id         bigserial PRIMARY KEY,
    title      text NOT NULL,
    author     text NOT NULL,
    published  boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now()
)`)
	if err != nil {
		return fmt.Errorf("creating table books: %w", err)
	}
	var port int
	if err := conn.QueryRow(ctx, `SELECT inet_server_port()`).Scan(&port); err != nil {
		return err
	}
	fmt.Fprintf(out, "migrate: table books is in place (ran on the primary, port %d)\n", port)
	return nil
}

func demo(ctx context.Context, out io.Writer, r *routerlib.Router, trace *served, author string) error {
	// One user's session: with read_your_writes, what they write they read back.
	session := routerlib.WithSession(ctx, &routerlib.Session{})

	title := fmt.Sprintf("Replica Test %s", time.Now().Format("15:04:05.000"))
	var id int64
	var port int
	// Book.objects.create(...): a write, so the primary.
	err := r.QueryRow(session, `INSERT INTO books (title, author) VALUES ($1, $2) RETURNING id, inet_server_port()`, title, author).Scan(&id, &port)
	if err != nil {
		return fmt.Errorf("creating a book: %w", err)
	}
	fmt.Fprintf(out, "create  %-42q -> %s (port %d): %s\n", title, trace.last(), port, "INSERT … RETURNING")

	// Book.objects.filter(author=...): a read, so a replica that has already
	// replayed the insert (or the primary, until one has).
	if err := listBooks(session, out, r, trace, author, title); err != nil {
		return err
	}

	// A reporting query on the route the file declares for analytics.
	var n int64
	if err := r.QueryRow(routerlib.Route(ctx, "analytics"), `SELECT count(*), inet_server_port() FROM books`).Scan(&n, &port); err != nil {
		return fmt.Errorf("counting books on the analytics route: %w", err)
	}
	fmt.Fprintf(out, "count   %-42s -> %s (port %d): %d books\n", "route analytics", trace.last(), port, n)

	fmt.Fprintln(out)
	for _, s := range r.Stat() {
		fmt.Fprintf(out, "node %-10s role %-8s healthy %-5v reads %-3d writes %d\n", s.Name, s.DeclaredRole, s.Healthy, s.Reads, s.Writes)
	}
	return nil
}

func listBooks(ctx context.Context, out io.Writer, r *routerlib.Router, trace *served, author, want string) error {
	rows, err := r.Query(ctx, `SELECT title, inet_server_port() FROM books WHERE author = $1 ORDER BY id`, author)
	if err != nil {
		return fmt.Errorf("listing books by %s: %w", author, err)
	}
	defer rows.Close()
	var titles []string
	var port int
	found := false
	for rows.Next() {
		var t string
		if err := rows.Scan(&t, &port); err != nil {
			return err
		}
		titles = append(titles, t)
		found = found || t == want
	}
	if err := rows.Err(); err != nil {
		return err
	}
	fmt.Fprintf(out, "list    %-42q -> %s (port %d): %d books, the new one %s\n", "author = "+author, trace.last(), port, len(titles),
		map[bool]string{true: "included", false: "MISSING"}[found])
	if !found {
		return fmt.Errorf("read-your-writes: the book just created is not in the list (%s)", strings.Join(titles, ", "))
	}
	return nil
}

// served records the router's last decision, to print which node served a query and why.
type served struct {
	mu sync.Mutex
	d  routerlib.Decision
}

func (s *served) TraceRoute(_ context.Context, d routerlib.Decision) {
	s.mu.Lock()
	s.d = d
	s.mu.Unlock()
}

func (s *served) last() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fmt.Sprintf("%s [%s]", s.d.Node, s.d.Reason)
}
