// Package normalized holds the string types of values that PostgreSQL (or
// Go) writes in more than one way: a PostgreSQL time ("60s" is SHOW's
// "1min"), a Go duration ("90s" is "1m30s") and a libpq connection string
// (the same parameters in any order and quoting, or as a URI). Each type has semantic
// equality, so that the framework keeps the text the user wrote when the
// server reads back the same value in its own spelling (after Create, Update
// and Read), and KeepEquivalentState does the same at plan time, between the
// configuration and the state, where the framework does not run semantic
// equality. Together they make a configuration that says "60s" plan empty
// against a server, or an imported state, that says "1min".
package normalized

import (
	"context"
	"fmt"
	"maps"
	"strconv"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/types/basetypes"
	"github.com/hashicorp/terraform-plugin-go/tftypes"

	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/conninfo"
	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/guc"
)

// kind is what sets one normalized type apart from another: its name and
// when two spellings mean the same value (a spelling that does not parse
// equals only itself). Each kind is a Go type of its own, so that Type[K]
// and Value[K] are distinct types to the framework (a Duration attribute
// never takes a PostgresTime) while the eight methods the framework needs
// are written once.
type kind interface {
	name() string
	equal(a, b string) bool
	// shown is the known value s as String shows it, in logs: the
	// framework logs values at TRACE (semantic equality, plan modifiers).
	shown(s string) string
}

type postgresTime struct{}

func (postgresTime) name() string { return "PostgresTime" }

func (postgresTime) equal(a, b string) bool { return sameParsed(a, b, guc.Milliseconds) }

func (postgresTime) shown(s string) string { return strconv.Quote(s) }

type duration struct{}

func (duration) name() string { return "Duration" }

func (duration) equal(a, b string) bool { return sameParsed(a, b, time.ParseDuration) }

func (duration) shown(s string) string { return strconv.Quote(s) }

// sameParsed reports whether a and b are the same text, or both parse to
// the same value.
func sameParsed[T comparable](a, b string, parse func(string) (T, error)) bool {
	if a == b {
		return true
	}
	x, errA := parse(a)
	y, errB := parse(b)
	return errA == nil && errB == nil && x == y
}

type connection struct{}

func (connection) name() string { return "Conninfo" }

func (connection) equal(a, b string) bool { return SameConnection(a, b) }

// shown masks the secrets of a connection string (password, sslpassword, …);
// one that does not parse is not shown at all: it may be a URI with a
// password in it.
func (connection) shown(s string) string {
	p, err := conninfo.Parse(s)
	if err != nil {
		return `"(a connection string that does not parse, not shown)"`
	}
	return strconv.Quote(p.Redacted())
}

// SameConnection reports whether two libpq connection strings have the same
// parameters, however they are written (keyword/value or URI, order,
// quoting, percent-encoding, spacing; a keyword given twice counts once, with
// its last value, as libpq reads it). Every parameter counts, the password
// too: a subscription whose password changed needs ALTER SUBSCRIPTION …
// CONNECTION. A string that does not parse equals only itself.
func SameConnection(a, b string) bool {
	if a == b {
		return true
	}
	pa, errA := conninfo.Parse(a)
	pb, errB := conninfo.Parse(b)
	return errA == nil && errB == nil && maps.Equal(pa, pb)
}

// Type is the framework type of a string of kind K.
type Type[K kind] struct{ basetypes.StringType }

// Value is a value of Type[K].
type Value[K kind] struct{ basetypes.StringValue }

type (
	// PostgresTimeType is a PostgreSQL time setting (recovery_min_apply_delay,
	// wal_receiver_timeout, …): a number with an optional unit, compared in
	// milliseconds as the server compares it.
	PostgresTimeType = Type[postgresTime]
	// PostgresTime is a value of PostgresTimeType.
	PostgresTime = Value[postgresTime]

	// DurationType is a Go duration ("90s", "1m30s"), compared by length.
	DurationType = Type[duration]
	// Duration is a value of DurationType.
	Duration = Value[duration]

	// ConninfoType is a libpq connection string (keyword/value or URI),
	// compared by its parameters (SameConnection).
	ConninfoType = Type[connection]
	// Conninfo is a value of ConninfoType.
	Conninfo = Value[connection]
)

var (
	_ basetypes.StringTypable                    = ConninfoType{}
	_ basetypes.StringValuableWithSemanticEquals = Conninfo{}
	_ basetypes.StringTypable                    = PostgresTimeType{}
	_ basetypes.StringValuableWithSemanticEquals = PostgresTime{}
	_ basetypes.StringTypable                    = DurationType{}
	_ basetypes.StringValuableWithSemanticEquals = Duration{}
)

// NewPostgresTime is a known PostgresTime.
func NewPostgresTime(s string) PostgresTime {
	return PostgresTime{StringValue: basetypes.NewStringValue(s)}
}

// NewDuration is a known Duration.
func NewDuration(s string) Duration { return Duration{StringValue: basetypes.NewStringValue(s)} }

// NewConninfo is a known Conninfo.
func NewConninfo(s string) Conninfo { return Conninfo{StringValue: basetypes.NewStringValue(s)} }

func (t Type[K]) String() string {
	var k K
	return "normalized." + k.name() + "Type"
}

func (t Type[K]) Equal(o attr.Type) bool {
	_, ok := o.(Type[K])
	return ok
}

func (t Type[K]) ValueType(context.Context) attr.Value { return Value[K]{} }

func (t Type[K]) ValueFromString(_ context.Context, in basetypes.StringValue) (basetypes.StringValuable, diag.Diagnostics) {
	return Value[K]{StringValue: in}, nil
}

func (t Type[K]) ValueFromTerraform(ctx context.Context, in tftypes.Value) (attr.Value, error) {
	v, err := t.StringType.ValueFromTerraform(ctx, in)
	if err != nil {
		return nil, err
	}
	s, ok := v.(basetypes.StringValue)
	if !ok {
		return nil, fmt.Errorf("unexpected value type %T", v)
	}
	return Value[K]{StringValue: s}, nil
}

func (v Value[K]) Type(context.Context) attr.Type { return Type[K]{} }

// String is how the value shows in logs and messages: the framework logs it
// at TRACE level (tf_value_type) whenever it compares two values, so a
// connection string shows with its secrets masked.
func (v Value[K]) String() string {
	if v.IsNull() || v.IsUnknown() {
		return v.StringValue.String()
	}
	var k K
	return k.shown(v.ValueString())
}

func (v Value[K]) Equal(o attr.Value) bool {
	other, ok := o.(Value[K])
	return ok && v.StringValue.Equal(other.StringValue)
}

// StringSemanticEquals tells whether the two values mean the same: the
// times in milliseconds, the durations by length, the connection strings
// by their parameters.
func (v Value[K]) StringSemanticEquals(ctx context.Context, o basetypes.StringValuable) (bool, diag.Diagnostics) {
	other, diags := o.ToStringValue(ctx)
	if diags.HasError() || v.IsNull() || v.IsUnknown() || other.IsNull() || other.IsUnknown() {
		return false, diags
	}
	var k K
	return k.equal(v.ValueString(), other.ValueString()), diags
}

// KeepEquivalentState plans the state's value when the planned one (the
// configuration's, or the default) means the same: "60s" against a state
// of "1min" plans no change. Terraform accepts a planned value that differs
// from the configuration only in this case: when it is the prior state's,
// which tells that the two are equivalent.
func KeepEquivalentState(t basetypes.StringTypable) planmodifier.String {
	return keepEquivalentState{typ: t}
}

type keepEquivalentState struct{ typ basetypes.StringTypable }

func (m keepEquivalentState) Description(context.Context) string {
	return "A value equal to the state's, written differently, plans no change."
}

func (m keepEquivalentState) MarkdownDescription(ctx context.Context) string {
	return m.Description(ctx)
}

func (m keepEquivalentState) PlanModifyString(ctx context.Context, req planmodifier.StringRequest, resp *planmodifier.StringResponse) {
	if req.StateValue.IsNull() || req.StateValue.IsUnknown() || req.PlanValue.IsNull() || req.PlanValue.IsUnknown() ||
		req.PlanValue.Equal(req.StateValue) {
		return
	}
	planned, diags := m.typ.ValueFromString(ctx, req.PlanValue)
	resp.Diagnostics.Append(diags...)
	withEquals, ok := planned.(basetypes.StringValuableWithSemanticEquals)
	if !ok || diags.HasError() {
		return
	}
	prior, diags := m.typ.ValueFromString(ctx, req.StateValue)
	resp.Diagnostics.Append(diags...)
	if diags.HasError() {
		return
	}
	if equal, diags := withEquals.StringSemanticEquals(ctx, prior); !diags.HasError() && equal {
		resp.PlanValue = req.StateValue
	}
}
