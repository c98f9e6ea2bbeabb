// Package driverhook lets routerlib/stdlib, which routerlib/internal keeps
// out of applications' reach, run a routed read with what its database/sql
// handle lends: database/sql makes a handle's calls one after another, so
// the reader of one read's rows, which the Router otherwise allocates for
// each read, can serve the handle's next read once those rows are closed.
// routerlib sets Query and Again in its init; the Router's public API is
// unchanged.
package driverhook

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// A Slot is what one database/sql handle lends the Router from one read
// to the next: the Router keeps its rows' reader there. The handle passes
// it only while the rows of its previous read are closed.
type Slot struct{ rows any }

// Get returns what the Router left in s, or nil.
func (s *Slot) Get() any { return s.rows }

// Set leaves v in s for the next read.
func (s *Slot) Set(v any) { s.rows = v }

// Query runs sql like the Router's Query (r is a *routerlib.Router),
// keeping its rows' reader in slot.
var Query func(r any, ctx context.Context, sql string, args []any, slot *Slot) (pgx.Rows, error)

// Again runs the call of rows (Query's) again when its session failed
// after the first row came and before the statement's end, as
// [routerlib.Router.QueryRow] does: the caller must keep nothing of the
// call yet. It reports whether rows now hold the new call's rows; if not,
// rows.Err says why the call failed.
var Again func(rows pgx.Rows) bool
