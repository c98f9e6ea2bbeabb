package provider

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/statement"
)

// A wait tries again when the server is away (a restart refuses connections
// for a while), also once queryError has explained the failure, and stops
// at once when the server refused the statement.
func TestServerAway(t *testing.T) {
	ctx := context.Background()
	s := newServer(connSettings{Host: "127.0.0.1", Port: int64(freePort(t)), Username: "postgres", Database: "postgres", SSLMode: "disable"})
	// The pool connects once when it is made, to size itself from the
	// role's connection limits (connectionCap): nothing listening fails
	// that, or the first query when the pool was made before.
	pool, err := s.Pool(ctx, "")
	if err == nil {
		_, err = pool.Exec(ctx, "SELECT 1")
	}
	if err == nil {
		t.Fatal("a query to a port where nothing listens succeeded")
	}
	if explained := s.queryError(ctx, "SELECT 1", err); !serverAway(explained) {
		t.Errorf("serverAway(%q) = false for a refused connection", explained)
	}
	for code, away := range map[string]bool{"57P01": true, "57P03": true, "08006": true, "57014": false, "42501": false, "55006": false} {
		if got := serverAway(statement.Error(ctx, "SELECT 1", &pgconn.PgError{Code: code})); got != away {
			t.Errorf("serverAway(SQLSTATE %s) = %v, want %v", code, got, away)
		}
	}
}
