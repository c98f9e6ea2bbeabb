// Package django is the seed's Django example (a Book model, a primary and a
// replica, ReadReplicaRouter) written with routerlib, one function for each
// thing the Django version does. docs/guides/from-django.md shows it beside
// the Python; books_test.go runs it against real servers.
package django

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib"
)

// Book is the model: class Book(models.Model).
type Book struct {
	ID     int64
	Title  string
	Author string
}

// Open is settings.py's DATABASES and DATABASE_ROUTERS: the nodes, and
// which takes reads and which writes, come from the router file Terraform
// writes (pgreplication_router_config), not from the application.
func Open(ctx context.Context, routerFile string) (*routerlib.Router, error) {
	return routerlib.Open(ctx, routerFile)
}

// Migrate is allow_migrate(db) returning db == 'default': MigrationConn is
// only ever the primary's connection, or an error.
func Migrate(ctx context.Context, r *routerlib.Router) error {
	conn, err := r.MigrationConn(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	_, err = conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS books (
		id bigserial PRIMARY KEY, title text NOT NULL, author text NOT NULL)`)
	return err
}

// CreateBook is Book.objects.create(title=..., author=...): db_for_write
// returning 'default'. An INSERT is a write, so it goes to the primary.
func CreateBook(ctx context.Context, r *routerlib.Router, title, author string) (int64, error) {
	var id int64
	err := r.QueryRow(ctx, "INSERT INTO books (title, author) VALUES ($1, $2) RETURNING id", title, author).Scan(&id)
	return id, err
}

// BooksBy is Book.objects.filter(author=...): db_for_read returning
// 'replica'. A SELECT goes to a healthy replica within the file's lag limit.
func BooksBy(ctx context.Context, r *routerlib.Router, author string) ([]Book, error) {
	rows, err := r.Query(ctx, "SELECT id, title, author FROM books WHERE author = $1 ORDER BY id", author)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowToStructByPos[Book])
}

// BooksByOnPrimary is Book.objects.using('default').filter(author=...): a
// read that must see the latest data.
func BooksByOnPrimary(ctx context.Context, r *routerlib.Router, author string) ([]Book, error) {
	return BooksBy(routerlib.Primary(ctx), r, author)
}

// CountForAnalytics is Book.objects.using('analytics').count() for a
// database alias that names one replica: a route the router file declares.
func CountForAnalytics(ctx context.Context, r *routerlib.Router) (int64, error) {
	var n int64
	err := r.QueryRow(routerlib.Route(ctx, "analytics"), "SELECT count(*) FROM books").Scan(&n)
	return n, err
}

// Handler is the application with django-multidb-router's
// PinningRouterMiddleware: after a POST, that user's reads go to the
// primary. The session middleware keeps the position of the user's last
// write in a signed cookie instead of a time window, so the reads go back
// to a replica as soon as one has replayed that write. sessions holds the
// signing keys (32 random bytes or more each).
func Handler(r *routerlib.Router, sessions routerlib.SessionConfig) (http.Handler, error) {
	pinning, err := routerlib.NewSessionMiddleware(r, sessions)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /books", func(w http.ResponseWriter, req *http.Request) {
		if _, err := CreateBook(req.Context(), r, req.FormValue("title"), req.FormValue("author")); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		http.Redirect(w, req, "/books?author="+req.FormValue("author"), http.StatusSeeOther)
	})
	mux.HandleFunc("GET /books", func(w http.ResponseWriter, req *http.Request) {
		books, err := BooksBy(req.Context(), r, req.FormValue("author"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		titles := make([]string, len(books))
		for i, b := range books {
			titles[i] = b.Title
		}
		fmt.Fprint(w, strings.Join(titles, "\n"))
	})
	return pinning.Cookie(mux), nil
}
