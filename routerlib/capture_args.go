package routerlib

import (
	"bytes"
	"database/sql/driver"
	"encoding/binary"
	"math"
	"reflect"
	"unsafe"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// The capture path encodes a prepared write's arguments as pgx does
// (pgx.ExtendedQueryBuilder.Build), with the encode plans and formats it
// chose kept with the statement: Build looks each of them up again at
// every call (the parameter's format by OID, then pgtype's plan by OID,
// format and Go type, each a map lookup), about 830 instructions of a
// captured write's 11,600 on a two-argument INSERT (see
// docs/guides/benchmarks.md). Anything the cache does not cover goes
// through Build, so the bytes sent are always Build's.

// argPlans is how the arguments of one prepared write were encoded last:
// a plan per argument, the Go types they were chosen for, and the result
// formats of the statement they were last given for.
type argPlans struct {
	gen       uint64 // captureConn.planGen when args was filled
	args      []argPlan
	resultsOf *pgconn.StatementDescription
	results   []int16
}

// An argPlan encodes one argument whose Go type is typ: in format, with
// pgtype's plan for the parameter's OID, format and typ. A nil typ is an
// untyped nil, sent as NULL in format.
type argPlan struct {
	typ     reflect.Type
	nilable bool // a nil value of typ goes through Build (see pgtype's isNilDriverValuer)
	format  int16
	plan    pgtype.EncodePlan
	intSize int // see binaryInt
}

// buildArgs sets cc.eqb's parameters and result formats for args sent to
// the statement sd, as cc.eqb.Build(m, sd, args) would: with p's plans when
// they fit (p is nil where the statement is not one of the capture path's
// prepared writes), else through Build, after which p is planned afresh
// for the arguments' types.
func (cc *captureConn) buildArgs(m *pgtype.Map, p *argPlans, sd *pgconn.StatementDescription, args []any) error {
	if p == nil || sd == nil || !typeMapField.ok {
		return cc.eqb.Build(m, sd, args)
	}
	cc.checkTypeMap(m)
	if p.gen == cc.planGen && len(p.args) == len(args) && cc.encodeArgs(p, args) {
		cc.resultFormats(m, p, sd)
		return nil
	}
	if err := cc.eqb.Build(m, sd, args); err != nil {
		return err
	}
	cc.planArgs(m, p, sd, args)
	return nil
}

// encodeArgs encodes args with p's plans into cc.eqb, and reports whether
// it could: every argument of the type its plan was chosen for, and
// encoded without error (an error, or a nil pointer, is left to Build,
// which may choose another format or plan for the value).
func (cc *captureConn) encodeArgs(p *argPlans, args []any) bool {
	values, formats, buf := cc.eqb.ParamValues[:0], cc.eqb.ParamFormats[:0], cc.argBytes[:0]
	if buf == nil || cap(buf) > 256 {
		// As Build keeps its buffer: never nil, since a plan that
		// appends nothing to a nil buffer (an empty string) would
		// return nil, which is NULL; and bounded.
		buf = make([]byte, 0, 256)
	}
	for i, arg := range args {
		a := &p.args[i]
		if reflect.TypeOf(arg) != a.typ {
			return false
		}
		var v []byte
		if arg != nil {
			if a.nilable && reflect.ValueOf(arg).IsNil() {
				return false
			}
			pos := len(buf)
			if a.intSize != 0 {
				var ok bool
				if buf, ok = binaryInt(buf, arg, a.intSize); !ok {
					return false
				}
				v = buf[pos:]
			} else {
				b, err := a.plan.Encode(arg, buf)
				if err != nil {
					return false
				}
				if b != nil {
					buf = b
					v = buf[pos:]
				}
			}
		}
		values, formats = append(values, v), append(formats, a.format)
	}
	cc.eqb.ParamValues, cc.eqb.ParamFormats, cc.argBytes = values, formats, buf
	return true
}

// resultFormats sets cc.eqb's result formats for sd's columns, as Build
// chooses them, kept in p for the statement last given.
func (cc *captureConn) resultFormats(m *pgtype.Map, p *argPlans, sd *pgconn.StatementDescription) {
	if p.resultsOf != sd {
		p.results = p.results[:0]
		for _, f := range sd.Fields {
			p.results = append(p.results, m.FormatCodeForOID(f.DataTypeOID))
		}
		p.resultsOf = sd
	}
	cc.eqb.ResultFormats = append(cc.eqb.ResultFormats[:0], p.results...)
}

// planArgs fills p with the plans Build used for args, just encoded into
// cc.eqb, or leaves p empty when an argument is one the plans do not
// cover: a driver.Valuer of the application's (its Value may answer with
// a value of another type at each call, and is called again when the
// cached plan fails), a nil pointer, slice or map (pgx decides per value
// between NULL and the Valuer), or a value Build encoded in the other
// format than the one it tries first (its first choice failed for this
// value, not necessarily for the next).
func (cc *captureConn) planArgs(m *pgtype.Map, p *argPlans, sd *pgconn.StatementDescription, args []any) {
	p.args, p.gen, p.resultsOf = p.args[:0], cc.planGen, nil
	for i, arg := range args {
		oid := sd.ParamOIDs[i]
		if arg == nil {
			p.args = append(p.args, argPlan{format: m.FormatCodeForOID(oid)})
			continue
		}
		typ := reflect.TypeOf(arg)
		nilable := false
		switch typ.Kind() {
		case reflect.Chan, reflect.Func, reflect.Map, reflect.Pointer, reflect.UnsafePointer, reflect.Slice:
			nilable = true
			if reflect.ValueOf(arg).IsNil() {
				p.args = p.args[:0]
				return
			}
		}
		format := preferredFormat(m, oid, arg)
		var plan pgtype.EncodePlan
		if _, valuer := arg.(driver.Valuer); !valuer || pgtypeOwn(typ) {
			plan = m.PlanEncode(oid, format, arg)
		}
		if plan == nil || cc.eqb.ParamFormats[i] != format {
			p.args = p.args[:0]
			return
		}
		a := argPlan{typ: typ, nilable: nilable, format: format, plan: plan}
		if size := intCodecSize(m, oid); size != 0 && format == pgx.BinaryFormatCode {
			// The parameter is pgtype's own int2, int4 or int8, and
			// Build sent this value as binaryInt does.
			if b, ok := binaryInt(nil, arg, size); ok && bytes.Equal(b, cc.eqb.ParamValues[i]) {
				a.intSize = size
			}
		}
		p.args = append(p.args, a)
	}
	cc.resultFormats(m, p, sd)
}

// binaryInt appends arg, a Go int or int64, to buf as a big-endian
// integer of size bytes (PostgreSQL's int2, int4 or int8 in binary), as
// pgtype's integer codecs do, and reports whether arg is such a value
// within the size's range. pgx's own plan for a Go int boxes it as an
// int64 and then as a pgtype.Int8 on its way to the codec: an allocation,
// and about 250 instructions a call, for four bytes.
func binaryInt(buf []byte, arg any, size int) ([]byte, bool) {
	var n int64
	switch v := arg.(type) {
	case int:
		n = int64(v)
	case int64:
		n = v
	default:
		return buf, false
	}
	switch {
	case size == 2 && n >= math.MinInt16 && n <= math.MaxInt16:
		return binary.BigEndian.AppendUint16(buf, uint16(n)), true
	case size == 4 && n >= math.MinInt32 && n <= math.MaxInt32:
		return binary.BigEndian.AppendUint32(buf, uint32(n)), true
	case size == 8:
		return binary.BigEndian.AppendUint64(buf, uint64(n)), true
	}
	return buf, false
}

// intCodecSize is the size of the integers of type oid when m encodes
// them with pgtype's own integer codecs, else 0.
func intCodecSize(m *pgtype.Map, oid uint32) int {
	dt, ok := m.TypeForOID(oid)
	if !ok {
		return 0
	}
	switch dt.Codec.(type) {
	case pgtype.Int2Codec:
		return 2
	case pgtype.Int4Codec:
		return 4
	case pgtype.Int8Codec:
		return 8
	}
	return 0
}

// preferredFormat is the format Build tries first for arg as a parameter
// of type oid (pgx's chooseParameterFormatCode).
func preferredFormat(m *pgtype.Map, oid uint32, arg any) int16 {
	switch arg.(type) {
	case string, *string:
		return pgx.TextFormatCode
	}
	return m.FormatCodeForOID(oid)
}

// pgtypeOwn reports whether typ (or what it points to) is one of pgtype's
// own types: they implement driver.Valuer for database/sql, but pgx
// encodes them through their codecs, and their values are plain data.
func pgtypeOwn(typ reflect.Type) bool {
	if typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	return typ.PkgPath() == pgtypePkg
}

var pgtypePkg = reflect.TypeFor[pgtype.Map]().PkgPath()

// checkTypeMap forgets every statement's plans when m has registered a
// type since cc last looked (Map.RegisterType, RegisterDefaultPgType):
// the plans pgx chooses may differ from then on, and pgx itself forgets
// its own. Registering sets the map's reflectTypeToType to nil, which pgx
// builds again only when asked: cc keeps the map it saw (so that its
// address is not reused) and rebuilds it when it is gone, through
// TypeForValue. Nothing exported tells that a type was registered; where
// this pgx has no such field, or it does not behave so (typeMapField),
// buildArgs never plans. (Changes to the map's TryWrapEncodePlanFuncs go
// unseen, as they do by pgx's own plan cache.)
//
// The read is of pgx's own map, by the goroutine using the connection,
// the only one pgx lets use its map (a registration on another goroutine
// races with pgx as much); see typeMapOf for its soundness.
func (cc *captureConn) checkTypeMap(m *pgtype.Map) {
	seen := typeMapOf(m)
	if seen != nil && seen == cc.typeMapSeen {
		return
	}
	if seen == nil {
		m.TypeForValue(nil)
		seen = typeMapOf(m)
	}
	cc.typeMapSeen = seen
	cc.planGen++
}

// typeMapOf returns m's reflectTypeToType, as the pointer a map is, nil
// if pgx dropped it. It is sound where typeMapField.ok: the offset is the
// field's in this very type (so aligned, and inside m's allocation: the
// rule unsafe.Add follows), the field is the map type checked and one
// pointer wide, and the word read is a pointer slot the collector knows,
// read into an unsafe.Pointer, which it scans too: the map kept in
// captureConn.typeMapSeen stays alive.
func typeMapOf(m *pgtype.Map) unsafe.Pointer { return typeMapAt(m, typeMapField.offset) }

func typeMapAt(m *pgtype.Map, offset uintptr) unsafe.Pointer {
	return *(*unsafe.Pointer)(unsafe.Add(unsafe.Pointer(m), offset))
}

// typeMapField locates pgtype.Map's reflectTypeToType and reports whether
// it is what checkTypeMap relies on, this pgx's field by name, type and
// behaviour, tried once on a map of its own: a type registered drops it,
// and it is built again, anew, when a value's type is asked for. A pgx
// whose map behaves otherwise (one that keeps its map and clears it in
// place would leave every plan stale, undetected) turns the plans off,
// and the capture path encodes through Build.
var typeMapField = func() (f struct {
	offset uintptr
	ok     bool
}) {
	sf, ok := reflect.TypeFor[pgtype.Map]().FieldByName("reflectTypeToType")
	if !ok || sf.Type != reflect.TypeFor[map[reflect.Type]*pgtype.Type]() || sf.Type.Size() != unsafe.Sizeof(unsafe.Pointer(nil)) {
		return f
	}
	f.offset = sf.Offset
	m := pgtype.NewMap()
	m.TypeForValue(nil)
	built := typeMapAt(m, f.offset)
	m.RegisterType(&pgtype.Type{Name: "routerlib_trial", OID: 0xfffffff0, Codec: pgtype.TextCodec{}})
	dropped := typeMapAt(m, f.offset) == nil
	m.TypeForValue(nil)
	rebuilt := typeMapAt(m, f.offset)
	m.RegisterDefaultPgType(argPlan{}, "text")
	f.ok = built != nil && dropped && rebuilt != nil && rebuilt != built && typeMapAt(m, f.offset) == nil
	return f
}()
