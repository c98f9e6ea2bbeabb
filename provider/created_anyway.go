package provider

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// A create whose answer never came: the provider sent the statement that
// creates an object (a replication slot, a publication, a subscription) and
// stopped waiting before the server answered: a timeout, an interrupted
// apply, a connection lost after the statement went out. The server does not
// stop because the client did, so it may have gone on and created the
// object; left out of the state, it would be an object nobody owns (a slot
// holding WAL), and the next apply would fail with "already exists".

// unansweredError is a statement, sent on the backend with PID backend, that
// got no answer: its outcome is unknown.
type unansweredError struct {
	backend uint32
	err     error
}

func (e *unansweredError) Error() string { return e.err.Error() }
func (e *unansweredError) Unwrap() error { return e.err }

// unanswered marks err, the error of a statement sent on the backend with PID
// backend, as leaving the statement's outcome unknown when it does: the
// server gave no answer (an error from the server is an answer: the
// statement failed and was rolled back) and the statement may have been
// sent. Any other err is returned as it is.
func unanswered(backend uint32, err error) error {
	var pgErr *pgconn.PgError
	if err == nil || errors.As(err, &pgErr) || pgconn.SafeToRetry(err) {
		return err
	}
	return &unansweredError{backend: backend, err: err}
}

// createdAfterNoAnswer is how long createdAnyway waits for the creating
// session to finish its statement.
const createdAfterNoAnswer = 10 * time.Second

// createdOutcome is what createdAnyway found out.
type createdOutcome int

const (
	createNotAsked createdOutcome = iota // the server answered: nothing to find out
	createNotDone                        // the session finished and the object is not there
	createDone                           // the object is there
	createUnknown                        // the session did not finish in time, or reading failed
)

// createdAnyway answers, after err, whether the server went on to create the
// object after all. Only an unansweredError asks the question: after any
// other error (an answer, "already exists" included) nothing was created by
// this apply, and a same-named object someone else made is never adopted.
//
// While the creating session still runs the statement or holds its
// transaction open, the object may yet appear or be rolled back, so the
// answer waits until that session is idle or gone, then asks read whether
// the object is there. The wait has a context of its own, bounded by
// createdAfterNoAnswer: ctx may be the interrupted apply's. What read finds is
// returned as it is: whether it is the object declared is the caller's to
// decide, and nothing that is not is recorded.
func createdAnyway[T any](ctx context.Context, q querier, err error, read func(context.Context) (T, bool, error)) (T, createdOutcome) {
	var object T
	var lost *unansweredError
	if !errors.As(err, &lost) {
		return object, createNotAsked
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), createdAfterNoAnswer)
	defer cancel()
	for {
		var state *string
		err := q.QueryRow(ctx, `SELECT state FROM pg_catalog.pg_stat_activity WHERE pid = $1`, lost.backend).Scan(&state)
		if errors.Is(err, pgx.ErrNoRows) || (err == nil && state != nil && *state == "idle") {
			break
		}
		if err != nil {
			return object, createUnknown
		}
		select {
		case <-ctx.Done():
			return object, createUnknown
		case <-time.After(100 * time.Millisecond):
		}
	}
	object, found, err := read(ctx)
	switch {
	case err != nil:
		return object, createUnknown
	case !found:
		return object, createNotDone
	}
	return object, createDone
}
