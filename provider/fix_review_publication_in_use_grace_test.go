package provider

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// streamsQuerier answers publicationStreamsQuery: the first look with one
// WAL sender streaming publication "pub_grace", every later one with err.
type streamsQuerier struct {
	calls int
	err   error
}

func (q *streamsQuerier) Query(context.Context, string, ...any) (pgx.Rows, error) {
	q.calls++
	if q.calls > 1 {
		return nil, q.err
	}
	return &streamRows{}, nil
}

func (q *streamsQuerier) QueryRow(context.Context, string, ...any) pgx.Row { panic("not used") }

// streamRows is one row of publicationStreamsQuery.
type streamRows struct{ done bool }

func (r *streamRows) Close()                                       {}
func (r *streamRows) Err() error                                   { return nil }
func (r *streamRows) CommandTag() pgconn.CommandTag                { return pgconn.CommandTag{} }
func (r *streamRows) FieldDescriptions() []pgconn.FieldDescription { return nil }
func (r *streamRows) Values() ([]any, error)                       { return nil, errors.New("not used") }
func (r *streamRows) RawValues() [][]byte                          { return nil }
func (r *streamRows) Conn() *pgx.Conn                              { return nil }
func (r *streamRows) TypeMap() *pgtype.Map                         { return nil }
func (r *streamRows) Next() bool {
	if r.done {
		return false
	}
	r.done = true
	return true
}

func (r *streamRows) Scan(dest ...any) error {
	pid := int64(4242)
	backend, app := "walsender", "sub_grace"
	command := `START_REPLICATION SLOT "sub_grace" LOGICAL 0/0 (proto_version '4', publication_names '"pub_grace"')`
	*dest[0].(*string) = "sub_grace"
	*dest[1].(**int64) = &pid
	*dest[2].(**string) = &backend
	*dest[3].(**string) = &app
	*dest[5].(**int32) = nil
	*dest[6].(**string) = &command
	return nil
}

// Review finding 4: a publication's drop refused at the first look (a
// subscription streams it) went ahead when the grace's looks after it
// failed to read: the last poll's error ended the grace as "not in use".
// Only a successful read that finds no stream may end it.
func TestReviewPublicationInUseGraceReadError(t *testing.T) {
	t.Parallel()
	r := &publicationResource{server: newServer(connSettings{Host: "publisher.invalid", Port: 5432, Database: "postgres", Username: "postgres", SSLMode: "disable"})}
	q := &streamsQuerier{err: errors.New("connection reset by peer")}
	var diags diag.Diagnostics
	if !r.refuseInUse(context.Background(), q, "Dropping", "pub_grace", "postgres", &diags) {
		t.Fatalf("a drop refused at the first look went ahead after %d looks that failed to read", q.calls-1)
	}
	if q.calls < 3 {
		t.Errorf("looked %d times in the grace, want it looked at again", q.calls)
	}
	if !diags.HasError() || !strings.Contains(diags[0].Detail(), `"pub_grace"`) {
		t.Errorf("want the Publication In Use refusal naming the publication, got %v", diags)
	}
}
