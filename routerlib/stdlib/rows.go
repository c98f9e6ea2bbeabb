package stdlib

import (
	"database/sql/driver"
	"fmt"
	"io"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/internal/driverhook"
)

// The conversions below are those of pgx's stdlib (v5.13): it exports no
// conversion that applies to rows its own *pgx.Conn did not produce, and
// the Router's rows come from whichever connection a statement was routed
// to. TestConversionMatchesPgxStdlib runs the same queries through both
// drivers and compares every value and column type, so a pgx upgrade that
// changes them fails there.

// resultFormats asks for binary results only for the types database/sql
// has a native form for, as pgx's stdlib does; every other type comes as
// text and is returned as a string.
var resultFormats = pgx.QueryResultFormatsByOID{
	pgtype.BoolOID:        pgx.BinaryFormatCode,
	pgtype.ByteaOID:       pgx.BinaryFormatCode,
	pgtype.CIDOID:         pgx.BinaryFormatCode,
	pgtype.DateOID:        pgx.BinaryFormatCode,
	pgtype.Float4OID:      pgx.BinaryFormatCode,
	pgtype.Float8OID:      pgx.BinaryFormatCode,
	pgtype.Int2OID:        pgx.BinaryFormatCode,
	pgtype.Int4OID:        pgx.BinaryFormatCode,
	pgtype.Int8OID:        pgx.BinaryFormatCode,
	pgtype.OIDOID:         pgx.BinaryFormatCode,
	pgtype.TimestampOID:   pgx.BinaryFormatCode,
	pgtype.TimestamptzOID: pgx.BinaryFormatCode,
	pgtype.XIDOID:         pgx.BinaryFormatCode,
}

// Rows are a statement's rows as database/sql reads them.
type Rows struct {
	rows      pgx.Rows
	preloaded bool                      // the next Next already ran, in QueryContext or ahead in Next
	more      bool                      // what it returned
	ended     bool                      // the rows ended without error, seen when reading ahead: Err need not be asked again
	first     bool                      // no row went to database/sql yet: the call may run again
	fds       []pgconn.FieldDescription // the columns, kept from the first row on
	names     []string
	cols      []column // how each column converts, set up at the first row
	conn      *Conn    // the handle's: its scratch, and its reused rows

	// Room for the usual narrow result's columns, so that they take no
	// allocation (pgx's stdlib makes a closure and a variable for each),
	// and the room a wider one took, kept for the handle's next statements.
	colBuf [inlineColumns]column
	wide   []column
	fdBuf  [inlineColumns]pgconn.FieldDescription // fds' room, likewise
}

// inlineColumns is how many columns Rows hold without allocating more.
const inlineColumns = 4

// A column is how one column's raw values become driver.Values: the scan
// plan pgx chooses for its type and format, and the Go type it scans into.
type column struct {
	plan pgtype.ScanPlan
	kind kind
}

// A kind is the Go type a column scans into, as pgx's stdlib chooses it
// for each PostgreSQL type.
type kind uint8

const (
	kindString kind = iota
	kindBool
	kindBytes
	kindUint32
	kindDate
	kindFloat4
	kindFloat8
	kindInt2
	kindInt4
	kindInt8
	kindTimestamp
	kindTimestamptz
)

// scratch is where a column's value is scanned before it becomes a
// driver.Value, one variable of each kind. Each handle has one, which its
// Rows share: database/sql makes every call on a handle, Rows.Next
// included, under the handle's lock, and Next converts each value before it
// returns, so columns and Rows of one handle take turns. Scanning into it,
// already on the heap, allocates nothing.
type scratch struct {
	b    bool
	by   []byte
	u32  pgtype.Uint32
	date pgtype.Date
	f32  float32
	f64  float64
	i16  int16
	i32  int32
	i64  int64
	ts   pgtype.Timestamp
	tstz pgtype.Timestamptz
	s    string
}

var (
	_ driver.Rows                           = (*Rows)(nil)
	_ driver.RowsColumnTypeDatabaseTypeName = (*Rows)(nil)
	_ driver.RowsColumnTypeLength           = (*Rows)(nil)
	_ driver.RowsColumnTypePrecisionScale   = (*Rows)(nil)
	_ driver.RowsColumnTypeScanType         = (*Rows)(nil)
)

// Columns returns the result's column names.
func (r *Rows) Columns() []string {
	if r.names == nil {
		// A slice of their own for each statement's rows: database/sql
		// hands it to the caller, who may keep it past the rows.
		fds := r.fields()
		r.names = make([]string, len(fds))
		for i, fd := range fds {
			r.names[i] = fd.Name
		}
	}
	return r.names
}

// Close releases the rows' connection. database/sql calls it once, and
// no other method after it: the handle's rows may then serve its next
// statement.
func (r *Rows) Close() error {
	r.rows.Close()
	var err error
	if !r.ended {
		err = r.rows.Err()
	}
	if r == &r.conn.rows {
		r.conn.rowsOpen = false
		r.conn.release(r.conn.args)
	}
	return err
}

// Next reads the next row into dest. Before it hands database/sql the
// first row it reads ahead: when the session failed after that row and
// before the statement's end (a server shutting down ends each session
// with FATAL 57P01, which can come between a row and the statement's
// end), a read runs again, once, as under [routerlib.Router.QueryRow],
// and dest gets the new call's first row. Else the caller of
// QueryRowContext, which scans the first row and then closes the rows,
// got that error for a read the Router could have run again.
func (r *Rows) Next(dest []driver.Value) error {
	more := r.more
	if r.preloaded {
		r.preloaded = false
	} else {
		more = r.rows.Next()
	}
	for again := r.first; ; again = false {
		if !more {
			if r.ended {
				return io.EOF
			}
			if err := r.rows.Err(); err != nil {
				return err
			}
			return io.EOF
		}
		if r.first {
			// The rows' connection may go to another call once the
			// read ahead below ends them, and its column descriptions
			// with it: the rows keep their own, which plan reads too.
			if r.fds == nil {
				r.fds = r.fdBuf[:0]
			}
			r.fds = append(r.fds[:0], r.rows.FieldDescriptions()...)
		}
		if err := r.scan(dest); err != nil || !r.first {
			return err
		}
		// The values in dest are their own: the rows' buffer may go.
		r.more, r.preloaded = r.rows.Next(), true
		if r.more {
			r.first = false
			return nil
		}
		// The rows ended: the call runs again only if they ended in
		// error. Their error is asked once, here, and not again by the
		// Next and the Close database/sql makes after this row.
		err := r.rows.Err()
		if err == nil || !again || !driverhook.Again(r.rows) {
			r.first, r.ended = false, err == nil
			return nil
		}
		r.preloaded, r.cols = false, nil
		more = r.rows.Next()
	}
}

// scan converts the current row's values into dest.
func (r *Rows) scan(dest []driver.Value) error {
	if r.cols == nil {
		r.plan()
	}
	for i, raw := range r.rows.RawValues() {
		if raw == nil {
			dest[i] = nil
			continue
		}
		v, err := r.value(&r.cols[i], raw)
		if err != nil {
			return fmt.Errorf("convert field %d failed: %w", i, err)
		}
		dest[i] = v
	}
	return nil
}

// fields returns the columns' descriptions: once the first row went to
// database/sql, those kept then, since the rows may have ended, and
// their connection gone to another call, after it.
func (r *Rows) fields() []pgconn.FieldDescription {
	if !r.first {
		return r.fds
	}
	return r.rows.FieldDescriptions()
}

// plan chooses each column's kind, as pgx's stdlib does for its type, and
// the plan pgx has for scanning its format into that kind.
func (r *Rows) plan() {
	m := r.rows.TypeMap()
	fds := r.fds // scan plans at a call's first row, whose columns Next has just kept
	cols := r.colBuf[:0]
	if len(fds) > inlineColumns {
		if cap(r.wide) < len(fds) {
			r.wide = make([]column, 0, len(fds))
		}
		cols = r.wide[:0]
	}
	s := &r.conn.scratch
	for _, fd := range fds {
		k, target := kindString, any(&s.s)
		switch fd.DataTypeOID {
		case pgtype.BoolOID:
			k, target = kindBool, &s.b
		case pgtype.ByteaOID, pgtype.JSONOID, pgtype.JSONBOID, pgtype.XMLOID:
			k, target = kindBytes, &s.by
		case pgtype.CIDOID, pgtype.OIDOID, pgtype.XIDOID:
			k, target = kindUint32, &s.u32
		case pgtype.DateOID:
			k, target = kindDate, &s.date
		case pgtype.Float4OID:
			k, target = kindFloat4, &s.f32
		case pgtype.Float8OID:
			k, target = kindFloat8, &s.f64
		case pgtype.Int2OID:
			k, target = kindInt2, &s.i16
		case pgtype.Int4OID:
			k, target = kindInt4, &s.i32
		case pgtype.Int8OID:
			k, target = kindInt8, &s.i64
		case pgtype.TimestampOID:
			k, target = kindTimestamp, &s.ts
		case pgtype.TimestamptzOID:
			k, target = kindTimestamptz, &s.tstz
		}
		cols = append(cols, column{plan: m.PlanScan(fd.DataTypeOID, fd.Format, target), kind: k})
	}
	r.cols = cols
}

// value converts one raw value of column c as pgx's stdlib does.
func (r *Rows) value(c *column, raw []byte) (driver.Value, error) {
	s := &r.conn.scratch
	switch c.kind {
	case kindBool:
		if err := c.plan.Scan(raw, &s.b); err != nil {
			return nil, err
		}
		return s.b, nil
	case kindBytes:
		s.by = nil // a fresh slice for each value: the caller keeps it
		if err := c.plan.Scan(raw, &s.by); err != nil {
			return nil, err
		}
		return s.by, nil
	case kindUint32:
		if err := c.plan.Scan(raw, &s.u32); err != nil {
			return nil, err
		}
		return s.u32.Value()
	case kindDate:
		if err := c.plan.Scan(raw, &s.date); err != nil {
			return nil, err
		}
		return s.date.Value()
	case kindFloat4:
		if err := c.plan.Scan(raw, &s.f32); err != nil {
			return nil, err
		}
		return float64(s.f32), nil
	case kindFloat8:
		if err := c.plan.Scan(raw, &s.f64); err != nil {
			return nil, err
		}
		return s.f64, nil
	case kindInt2:
		if err := c.plan.Scan(raw, &s.i16); err != nil {
			return nil, err
		}
		return int64(s.i16), nil
	case kindInt4:
		if err := c.plan.Scan(raw, &s.i32); err != nil {
			return nil, err
		}
		return int64(s.i32), nil
	case kindInt8:
		if err := c.plan.Scan(raw, &s.i64); err != nil {
			return nil, err
		}
		return s.i64, nil
	case kindTimestamp:
		if err := c.plan.Scan(raw, &s.ts); err != nil {
			return nil, err
		}
		return s.ts.Value()
	case kindTimestamptz:
		if err := c.plan.Scan(raw, &s.tstz); err != nil {
			return nil, err
		}
		return s.tstz.Value()
	}
	if err := c.plan.Scan(raw, &s.s); err != nil {
		return nil, err
	}
	return s.s, nil
}

// ColumnTypeDatabaseTypeName returns the column's type name in upper case,
// or its OID when the type is not known to pgx.
func (r *Rows) ColumnTypeDatabaseTypeName(index int) string {
	oid := r.fields()[index].DataTypeOID
	if t, ok := r.rows.TypeMap().TypeForOID(oid); ok {
		return strings.ToUpper(t.Name)
	}
	return strconv.FormatInt(int64(oid), 10)
}

// varHeaderSize is what PostgreSQL adds to a declared length in a type
// modifier.
const varHeaderSize = 4

// ColumnTypeLength returns the length of variable-length text and bit
// types (math.MaxInt64 when unbounded).
func (r *Rows) ColumnTypeLength(index int) (int64, bool) {
	fd := r.fields()[index]
	switch fd.DataTypeOID {
	case pgtype.TextOID, pgtype.ByteaOID:
		return math.MaxInt64, true
	case pgtype.VarcharOID, pgtype.BPCharOID:
		if fd.TypeModifier == -1 {
			return math.MaxInt64, true
		}
		return int64(fd.TypeModifier - varHeaderSize), true
	case pgtype.VarbitOID:
		if fd.TypeModifier == -1 {
			return math.MaxInt64, true
		}
		return int64(fd.TypeModifier), true
	}
	return 0, false
}

// ColumnTypePrecisionScale returns a numeric column's declared precision
// and scale, and the fractional-second digits of time types as their scale.
func (r *Rows) ColumnTypePrecisionScale(index int) (precision, scale int64, ok bool) {
	fd := r.fields()[index]
	switch fd.DataTypeOID {
	case pgtype.NumericOID:
		if fd.TypeModifier == -1 {
			return 0, 0, false
		}
		mod := fd.TypeModifier - varHeaderSize
		return int64((mod >> 16) & 0xffff), int64(mod & 0xffff), true
	case pgtype.TimestampOID, pgtype.TimestamptzOID, pgtype.TimeOID, pgtype.TimetzOID:
		if fd.TypeModifier == -1 {
			return 0, 6, true
		}
		return 0, int64(fd.TypeModifier), true
	case pgtype.IntervalOID:
		if fd.TypeModifier == -1 || fd.TypeModifier&0xffff == 0xffff {
			return 0, 6, true
		}
		return 0, int64(fd.TypeModifier & 0xffff), true
	}
	return 0, 0, false
}

// ColumnTypeScanType returns the Go type a column's values come back as.
func (r *Rows) ColumnTypeScanType(index int) reflect.Type {
	switch r.fields()[index].DataTypeOID {
	case pgtype.Float8OID, pgtype.NumericOID:
		return reflect.TypeFor[float64]()
	case pgtype.Float4OID:
		return reflect.TypeFor[float32]()
	case pgtype.Int8OID:
		return reflect.TypeFor[int64]()
	case pgtype.Int4OID:
		return reflect.TypeFor[int32]()
	case pgtype.Int2OID:
		return reflect.TypeFor[int16]()
	case pgtype.BoolOID:
		return reflect.TypeFor[bool]()
	case pgtype.DateOID, pgtype.TimestampOID, pgtype.TimestamptzOID:
		return reflect.TypeFor[time.Time]()
	case pgtype.ByteaOID:
		return reflect.TypeFor[[]byte]()
	}
	return reflect.TypeFor[string]()
}
