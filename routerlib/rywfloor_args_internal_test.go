package routerlib

import (
	"bytes"
	"context"
	"database/sql/driver"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// rywfloorValuer is an application's driver.Valuer: its Value is its
// own code, never planned ahead (buildArgs leaves it to Build).
type rywfloorValuer struct{ s string }

func (v rywfloorValuer) Value() (driver.Value, error) { return "valuer:" + v.s, nil }

// rywfloorTextInt4 is int4 encoded in text: registered on a map after
// plans were chosen, it changes what pgx sends for an int.
type rywfloorTextInt4 struct{ pgtype.Int4Codec }

func (rywfloorTextInt4) PreferredFormat() int16 { return pgtype.TextFormatCode }

// TestRywfloorArgPlansMatchBuild: a prepared write's arguments encoded
// with the plans buildArgs keeps are byte for byte what pgx's
// ExtendedQueryBuilder.Build makes of them (values, NULLs, formats, result
// formats, errors), call after call, as the arguments' types change, and
// after a type is registered on the connection's map; and the plans are
// used (old code: no plans, every call through Build's lookups).
func TestRywfloorArgPlansMatchBuild(t *testing.T) {
	if !typeMapField.ok {
		t.Fatal("pgtype.Map has no reflectTypeToType map: argument plans are never used with this pgx; see checkTypeMap")
	}
	n, s := 7, "seven"
	ts := time.Date(2026, 12, 1, 9, 30, 0, 123456000, time.UTC)
	uuid := [16]byte{0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 1, 2, 3, 4, 5, 6, 7, 8}
	cases := []struct {
		name string
		oid  uint32
		args []any // one call each, on one statement
		held bool  // plans are held for the next call after the last
	}{
		{"int as int4", pgtype.Int4OID, []any{1, 1000, -5, math.MaxInt32}, true},
		{"int out of int4's range", pgtype.Int4OID, []any{1, math.MaxInt32 + 1}, true}, // Build's error; the plans stay
		{"int64 as int8", pgtype.Int8OID, []any{int64(1), int64(math.MinInt64)}, true},
		{"int as int2", pgtype.Int2OID, []any{1, -32768, 32767, 32768}, true},
		{"int64 as int4", pgtype.Int4OID, []any{int64(-1), int64(math.MinInt32), int64(math.MinInt32 - 1)}, true},
		{"int as float4 from 0", pgtype.Float4OID, []any{0, 5, -3}, true},
		{"int as numeric", pgtype.NumericOID, []any{0, 12345678901}, true},
		{"int as int8", pgtype.Int8OID, []any{2, 3}, true},
		{"string as text", pgtype.TextOID, []any{"a", "", "ünïcode"}, true},
		{"string as int4", pgtype.Int4OID, []any{"42", "43"}, true},
		{"[]byte as bytea", pgtype.ByteaOID, []any{[]byte{0, 1, 2}, []byte{}, []byte("x")}, true},
		{"nil []byte", pgtype.ByteaOID, []any{[]byte{1}, []byte(nil)}, false},
		{"time.Time as timestamptz", pgtype.TimestamptzOID, []any{ts, ts.Add(time.Hour)}, true},
		{"time.Time as timestamp", pgtype.TimestampOID, []any{ts, ts.In(time.FixedZone("x", 3600))}, true},
		{"untyped nil", pgtype.Int4OID, []any{nil, nil}, true},
		{"untyped nil as text", pgtype.TextOID, []any{nil, "a", nil}, true},
		{"*int", pgtype.Int4OID, []any{&n, &n}, true},
		{"nil *int", pgtype.Int4OID, []any{&n, (*int)(nil)}, false},
		{"*string", pgtype.TextOID, []any{&s, &s}, true},
		{"pgtype.Int4", pgtype.Int4OID, []any{pgtype.Int4{Int32: 5, Valid: true}, pgtype.Int4{}}, true},
		{"pgtype.Text", pgtype.TextOID, []any{pgtype.Text{String: "t", Valid: true}, pgtype.Text{}}, true},
		{"*pgtype.Text", pgtype.TextOID, []any{&pgtype.Text{String: "t", Valid: true}}, true},
		{"pgtype.UUID", pgtype.UUIDOID, []any{pgtype.UUID{Bytes: uuid, Valid: true}}, true},
		{"uuid as [16]byte", pgtype.UUIDOID, []any{uuid, [16]byte{}}, true},
		{"a Valuer of the application's", pgtype.TextOID, []any{rywfloorValuer{"a"}, rywfloorValuer{"b"}}, false},
		{"bool", pgtype.BoolOID, []any{true, false}, true},
		{"float64 as float8", pgtype.Float8OID, []any{1.5, math.Inf(-1)}, true},
		{"float64 as numeric", pgtype.NumericOID, []any{1.5, 2.25}, true},
		{"the type changes", pgtype.Int4OID, []any{1, "2", int64(3), nil, pgtype.Int4{Int32: 4, Valid: true}, 5, 6}, true},
		{"an unknown OID", 99999, []any{"x", "y"}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := pgtype.NewMap()
			// A second parameter of another type beside each, and
			// results of two types.
			sd := &pgconn.StatementDescription{
				Name:      "s",
				ParamOIDs: []uint32{c.oid, pgtype.TextOID},
				Fields:    []pgconn.FieldDescription{{DataTypeOID: pgtype.Int4OID}, {DataTypeOID: pgtype.TextOID}},
			}
			cc := &captureConn{}
			p := &argPlans{}
			for i, arg := range c.args {
				rywfloorCompare(t, m, cc, p, sd, []any{arg, fmt.Sprint("second ", i)})
			}
			if held := p.gen == cc.planGen && len(p.args) == 2; held != c.held {
				t.Fatalf("plans held after the last call: %v, want %v", held, c.held)
			}
		})
	}

	t.Run("a type registered after the plans", func(t *testing.T) {
		m := pgtype.NewMap()
		sd := &pgconn.StatementDescription{Name: "s", ParamOIDs: []uint32{pgtype.Int4OID}}
		cc, p := &captureConn{}, &argPlans{}
		rywfloorCompare(t, m, cc, p, sd, []any{1})
		rywfloorCompare(t, m, cc, p, sd, []any{2})
		m.RegisterType(&pgtype.Type{Name: "int4", OID: pgtype.Int4OID, Codec: rywfloorTextInt4{}})
		rywfloorCompare(t, m, cc, p, sd, []any{3})
		if cc.eqb.ParamFormats[0] != pgtype.TextFormatCode || string(cc.eqb.ParamValues[0]) != "3" {
			t.Fatalf("after int4 was registered as text: format %d, value %q; want 0, \"3\"", cc.eqb.ParamFormats[0], cc.eqb.ParamValues[0])
		}
		rywfloorCompare(t, m, cc, p, sd, []any{4})
	})
}

// rywfloorCompare encodes args for sd with cc's buildArgs and plans p, and
// with a fresh ExtendedQueryBuilder's Build, and fails t unless the two
// agree byte for byte.
func rywfloorCompare(t *testing.T, m *pgtype.Map, cc *captureConn, p *argPlans, sd *pgconn.StatementDescription, args []any) {
	t.Helper()
	var want pgx.ExtendedQueryBuilder
	wantErr := want.Build(m, sd, args)
	err := cc.buildArgs(m, p, sd, args)
	if (err == nil) != (wantErr == nil) || err != nil && err.Error() != wantErr.Error() {
		t.Fatalf("args %#v: error %v, Build's %v", args, err, wantErr)
	}
	if err != nil {
		return
	}
	got := &cc.eqb
	if !slices.Equal(got.ParamFormats, want.ParamFormats) || !slices.Equal(got.ResultFormats, want.ResultFormats) {
		t.Fatalf("args %#v: formats %v, results %v; Build's %v, %v", args, got.ParamFormats, got.ResultFormats, want.ParamFormats, want.ResultFormats)
	}
	if len(got.ParamValues) != len(want.ParamValues) {
		t.Fatalf("args %#v: %d values, Build's %d", args, len(got.ParamValues), len(want.ParamValues))
	}
	for i := range want.ParamValues {
		g, w := got.ParamValues[i], want.ParamValues[i]
		if (g == nil) != (w == nil) || !bytes.Equal(g, w) {
			t.Fatalf("args %#v: value %d is %#v, Build's %#v", args, i, g, w)
		}
	}
}

// TestRywfloorSQLHashShared: the class cache and the capture path's
// prepared writes are keyed by the SQL's one hash (sqlHash), and a string
// that finds another's entry under its hash is never taken for it: the
// class cache classifies it afresh, and the capture path sends it
// unprepared rather than run the statement prepared for the other. The
// collisions are made by hand, with the other string's hash.
func TestRywfloorSQLHashShared(t *testing.T) {
	c := newClassCache()
	const read, write = "SELECT 1", "DELETE FROM rywfloor_t"
	c.set(read, sqlHash(write), classRead)
	if cl := c.get(write); cl&classWrite == 0 {
		t.Fatalf("%q, under the hash of a read: class %b, want a write", write, cl)
	}
	if cl, h := c.lookup(read); cl != classRead || h != sqlHash(read) {
		t.Fatalf("lookup(%q) = %b, %x; want %b, %x", read, cl, h, classRead, sqlHash(read))
	}

	ctx := context.Background()
	conn := rywWriterConn(t, "rywfloor_hash", "CREATE TABLE rywfloor_hash (id int, v text)")
	const a, b = "INSERT INTO rywfloor_hash VALUES ($1, 'a')", "INSERT INTO rywfloor_hash VALUES ($1, 'b')"
	h := sqlHash(a)
	for i, sql := range []string{a, b, b, a} {
		if tag, lsn, err := execTxCapture(ctx, conn, sql, h, []any{i}); err != nil || tag.RowsAffected() != 1 || lsn == 0 {
			t.Fatalf("write %d (%s): tag %q, LSN %v, %v", i, sql, tag, lsn, err)
		}
	}
	var got string
	if err := conn.QueryRow(ctx, "SELECT string_agg(v, '' ORDER BY id) FROM rywfloor_hash").Scan(&got); err != nil {
		t.Fatal(err)
	}
	if got != "abba" {
		t.Fatalf("rows written %q, want \"abba\" (b's writes ran a's statement)", got)
	}
}
