// Package normalized holds the string types of values that PostgreSQL (or
// Go) writes in more than one way: a PostgreSQL time ("60s" is SHOW's
// "1min"), a Go duration ("90s" is "1m30s") and a libpq connection string
// (the same parameters in any order and quoting). Each type has semantic
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
	"time"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/types/basetypes"
	"github.com/hashicorp/terraform-plugin-go/tftypes"

	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/conninfo"
	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/guc"
)

// equalFunc tells whether two spellings mean the same value; a spelling
// that does not parse equals only itself.
type equalFunc func(a, b string) bool

func postgresTimeEqual(a, b string) bool {
	x, errA := guc.Milliseconds(a)
	y, errB := guc.Milliseconds(b)
	return a == b || (errA == nil && errB == nil && x == y)
}

// SameConnection reports whether two libpq keyword/value connection strings
// have the same parameters, however they are written (order, quoting,
// spacing).
func SameConnection(a, b string) bool {
	if a == b {
		return true
	}
	pa, errA := conninfo.Parse(a)
	pb, errB := conninfo.Parse(b)
	return errA == nil && errB == nil && maps.Equal(pa, pb)
}

func durationEqual(a, b string) bool {
	x, errA := time.ParseDuration(a)
	y, errB := time.ParseDuration(b)
	return a == b || (errA == nil && errB == nil && x == y)
}

// PostgresTimeType is a PostgreSQL time setting (recovery_min_apply_delay,
// wal_receiver_timeout, …): a number with an optional unit, compared in
// milliseconds as the server compares it.
type PostgresTimeType struct{ basetypes.StringType }

// PostgresTime is a value of PostgresTimeType.
type PostgresTime struct{ basetypes.StringValue }

// DurationType is a Go duration ("90s", "1m30s"), compared by length.
type DurationType struct{ basetypes.StringType }

// Duration is a value of DurationType.
type Duration struct{ basetypes.StringValue }

// ConninfoType is a libpq keyword/value connection string, compared by its
// parameters.
type ConninfoType struct{ basetypes.StringType }

// Conninfo is a value of ConninfoType.
type Conninfo struct{ basetypes.StringValue }

var (
	_ basetypes.StringTypable                    = ConninfoType{}
	_ basetypes.StringValuableWithSemanticEquals = Conninfo{}
	_ basetypes.StringTypable                    = PostgresTimeType{}
	_ basetypes.StringValuableWithSemanticEquals = PostgresTime{}
	_ basetypes.StringTypable                    = DurationType{}
	_ basetypes.StringValuableWithSemanticEquals = Duration{}
)

func (t PostgresTimeType) String() string { return "normalized.PostgresTimeType" }

func (t PostgresTimeType) Equal(o attr.Type) bool {
	_, ok := o.(PostgresTimeType)
	return ok
}

func (t PostgresTimeType) ValueType(context.Context) attr.Value { return PostgresTime{} }

func (t PostgresTimeType) ValueFromString(_ context.Context, in basetypes.StringValue) (basetypes.StringValuable, diag.Diagnostics) {
	return PostgresTime{StringValue: in}, nil
}

func (t PostgresTimeType) ValueFromTerraform(ctx context.Context, in tftypes.Value) (attr.Value, error) {
	return valueFromTerraform(ctx, t.StringType, in, func(s basetypes.StringValue) attr.Value { return PostgresTime{StringValue: s} })
}

func (v PostgresTime) Type(context.Context) attr.Type { return PostgresTimeType{} }

func (v PostgresTime) Equal(o attr.Value) bool {
	other, ok := o.(PostgresTime)
	return ok && v.StringValue.Equal(other.StringValue)
}

// StringSemanticEquals compares the two times in milliseconds.
func (v PostgresTime) StringSemanticEquals(_ context.Context, o basetypes.StringValuable) (bool, diag.Diagnostics) {
	return semanticEquals(v.StringValue, o, postgresTimeEqual)
}

// NewPostgresTime is a known PostgresTime.
func NewPostgresTime(s string) PostgresTime {
	return PostgresTime{StringValue: basetypes.NewStringValue(s)}
}

func (t DurationType) String() string { return "normalized.DurationType" }

func (t DurationType) Equal(o attr.Type) bool {
	_, ok := o.(DurationType)
	return ok
}

func (t DurationType) ValueType(context.Context) attr.Value { return Duration{} }

func (t DurationType) ValueFromString(_ context.Context, in basetypes.StringValue) (basetypes.StringValuable, diag.Diagnostics) {
	return Duration{StringValue: in}, nil
}

func (t DurationType) ValueFromTerraform(ctx context.Context, in tftypes.Value) (attr.Value, error) {
	return valueFromTerraform(ctx, t.StringType, in, func(s basetypes.StringValue) attr.Value { return Duration{StringValue: s} })
}

func (v Duration) Type(context.Context) attr.Type { return DurationType{} }

func (v Duration) Equal(o attr.Value) bool {
	other, ok := o.(Duration)
	return ok && v.StringValue.Equal(other.StringValue)
}

// StringSemanticEquals compares the two durations by length.
func (v Duration) StringSemanticEquals(_ context.Context, o basetypes.StringValuable) (bool, diag.Diagnostics) {
	return semanticEquals(v.StringValue, o, durationEqual)
}

// NewDuration is a known Duration.
func NewDuration(s string) Duration {
	return Duration{StringValue: basetypes.NewStringValue(s)}
}

func (t ConninfoType) String() string { return "normalized.ConninfoType" }

func (t ConninfoType) Equal(o attr.Type) bool {
	_, ok := o.(ConninfoType)
	return ok
}

func (t ConninfoType) ValueType(context.Context) attr.Value { return Conninfo{} }

func (t ConninfoType) ValueFromString(_ context.Context, in basetypes.StringValue) (basetypes.StringValuable, diag.Diagnostics) {
	return Conninfo{StringValue: in}, nil
}

func (t ConninfoType) ValueFromTerraform(ctx context.Context, in tftypes.Value) (attr.Value, error) {
	return valueFromTerraform(ctx, t.StringType, in, func(s basetypes.StringValue) attr.Value { return Conninfo{StringValue: s} })
}

func (v Conninfo) Type(context.Context) attr.Type { return ConninfoType{} }

func (v Conninfo) Equal(o attr.Value) bool {
	other, ok := o.(Conninfo)
	return ok && v.StringValue.Equal(other.StringValue)
}

// StringSemanticEquals compares the two connection strings' parameters.
func (v Conninfo) StringSemanticEquals(_ context.Context, o basetypes.StringValuable) (bool, diag.Diagnostics) {
	return semanticEquals(v.StringValue, o, SameConnection)
}

// NewConninfo is a known Conninfo.
func NewConninfo(s string) Conninfo {
	return Conninfo{StringValue: basetypes.NewStringValue(s)}
}

func valueFromTerraform(ctx context.Context, base basetypes.StringType, in tftypes.Value, wrap func(basetypes.StringValue) attr.Value) (attr.Value, error) {
	v, err := base.ValueFromTerraform(ctx, in)
	if err != nil {
		return nil, err
	}
	s, ok := v.(basetypes.StringValue)
	if !ok {
		return nil, fmt.Errorf("unexpected value type %T", v)
	}
	return wrap(s), nil
}

func semanticEquals(v basetypes.StringValue, o basetypes.StringValuable, equal equalFunc) (bool, diag.Diagnostics) {
	other, diags := o.ToStringValue(context.Background())
	if diags.HasError() || v.IsNull() || v.IsUnknown() || other.IsNull() || other.IsUnknown() {
		return false, diags
	}
	return equal(v.ValueString(), other.ValueString()), diags
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
