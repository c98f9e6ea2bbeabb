package normalized

import (
	"context"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-framework/types/basetypes"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
)

func TestSemanticEquals(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		a, b basetypes.StringValuableWithSemanticEquals
		o    basetypes.StringValuable
		want bool
	}{
		{a: NewPostgresTime("60s"), o: NewPostgresTime("1min"), want: true},
		{a: NewPostgresTime("0"), o: NewPostgresTime("0s"), want: true},
		{a: NewPostgresTime("300000"), o: NewPostgresTime("5min"), want: true},
		{a: NewPostgresTime("-1"), o: NewPostgresTime("-1"), want: true},
		{a: NewPostgresTime("30s"), o: NewPostgresTime("31s"), want: false},
		{a: NewPostgresTime("1h"), o: NewPostgresTime("1 h"), want: true},
		{a: NewPostgresTime("bogus"), o: NewPostgresTime("0"), want: false},
		{a: NewDuration("90s"), o: NewDuration("1m30s"), want: true},
		{a: NewDuration("5m"), o: NewDuration("300s"), want: true},
		{a: NewDuration("5m"), o: NewDuration("5m1s"), want: false},
		{a: NewDuration("5"), o: NewDuration("5"), want: true}, // unparsable, but the same text
	} {
		got, diags := c.a.StringSemanticEquals(ctx, c.o)
		if diags.HasError() || got != c.want {
			t.Errorf("%v equals %v: got %v (%v), want %v", c.a, c.o, got, diags, c.want)
		}
	}
}

func TestKeepEquivalentState(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		plan, state types.String
		want        types.String
	}{
		{plan: types.StringValue("60s"), state: types.StringValue("1min"), want: types.StringValue("1min")},
		{plan: types.StringValue("90s"), state: types.StringValue("1min"), want: types.StringValue("90s")},
		{plan: types.StringValue("60s"), state: types.StringNull(), want: types.StringValue("60s")},
		{plan: types.StringUnknown(), state: types.StringValue("1min"), want: types.StringUnknown()},
	} {
		resp := &planmodifier.StringResponse{PlanValue: c.plan}
		KeepEquivalentState(PostgresTimeType{}).PlanModifyString(ctx, planmodifier.StringRequest{
			Path: path.Root("x"), PlanValue: c.plan, StateValue: c.state, ConfigValue: c.plan,
		}, resp)
		if !resp.PlanValue.Equal(c.want) {
			t.Errorf("plan %v, state %v: planned %v, want %v", c.plan, c.state, resp.PlanValue, c.want)
		}
	}
}

// TestSameConnection covers what SameConnection decides: whether the
// subscription's conninfo in the configuration and on the server are the
// same connection (no ALTER SUBSCRIPTION … CONNECTION, no publisher probe,
// the text written kept in the state).
func TestSameConnection(t *testing.T) {
	for _, c := range []struct {
		name string
		a, b string
		same bool
	}{
		{"identical", "host=a port=5432", "host=a port=5432", true},
		{"order", "host=a port=5432 user=u", "user=u port=5432 host=a", true},
		{"spacing", "host=a port=5432", "  host = a\tport=5432\n", true},
		{"quoting", "host=a user=u", "host='a' user='u'", true},
		{"quoted space", "host=a password='x y'", `password=x\ y host=a`, true},
		{"quoted quote", `user='o\'brien'`, `user=o\'brien`, true},
		{"repeated keyword, last wins", "host=a host=b", "host=b", true},
		{"empty", "", "", true},
		{"other value", "host=a port=5432", "host=a port=5433", false},
		{"one more parameter", "host=a", "host=a application_name=b", false},
		{"keywords are case-sensitive", "host=a", "HOST=a", false},
		// A new password is a new connection: ALTER SUBSCRIPTION … CONNECTION.
		{"password changed", "host=a password=x", "host=a password=y", false},
		{"password removed", "host=a password=x", "host=a", false},
		{"password quoted differently", "host=a password=x", "host=a password='x'", true},
		// A URI is the same connection as the keyword form with its
		// parameters, whatever the spelling (libpq's percent-decoding).
		{"same URI", "postgresql://u@a:5432/app", "postgresql://u@a:5432/app", true},
		{"other URI", "postgresql://a", "postgresql://b", false},
		{"URI against keywords", "postgresql://u@a:5432/app", "host=a port=5432 user=u dbname=app", true},
		{"URI query against keywords", "postgres://a/app?user=u&sslmode=disable", "sslmode=disable dbname=app user=u host=a", true},
		{"URI password encoded", "postgresql://u:p%40%27%5C@a/app", `host=a user=u dbname=app password='p@\'\\'`, true},
		{"URI password changed", "postgresql://u:p1@a/app", "host=a user=u dbname=app password=p2", false},
		{"URI with one more parameter", "postgresql://u@a/app?application_name=x", "host=a user=u dbname=app", false},
		{"URI bad percent-encoding", "postgresql://u:%zz@a/app", "postgresql://u:%zz@a/app ", false},
		{"unterminated quote", "host='a", "host=a", false},
		{"unterminated quote, same text", "host='a", "host='a", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := SameConnection(c.a, c.b); got != c.same {
				t.Errorf("SameConnection(%q, %q) = %v, want %v", c.a, c.b, got, c.same)
			}
			if got := SameConnection(c.b, c.a); got != c.same {
				t.Errorf("SameConnection(%q, %q) = %v, want %v (not symmetric)", c.b, c.a, got, c.same)
			}
		})
	}
}

// TestTypesAreDistinct: the three types share one implementation, but the
// framework must see three types, each making values of its own.
func TestTypesAreDistinct(t *testing.T) {
	ctx := context.Background()
	all := []basetypes.StringTypable{PostgresTimeType{}, DurationType{}, ConninfoType{}}
	names := []string{"normalized.PostgresTimeType", "normalized.DurationType", "normalized.ConninfoType"}
	for i, typ := range all {
		if typ.String() != names[i] {
			t.Errorf("type %d is named %q, want %q", i, typ.String(), names[i])
		}
		for j, other := range all {
			if typ.Equal(other) != (i == j) {
				t.Errorf("%s.Equal(%s) = %v", typ, other, typ.Equal(other))
			}
		}
		v, err := typ.ValueFromTerraform(ctx, tftypes.NewValue(tftypes.String, "60s"))
		if err != nil {
			t.Fatal(err)
		}
		if !v.Type(ctx).Equal(typ) || !typ.ValueType(ctx).Type(ctx).Equal(typ) {
			t.Errorf("%s makes a value of type %s", typ, v.Type(ctx))
		}
		fromString, _ := typ.ValueFromString(ctx, basetypes.NewStringValue("60s"))
		if !fromString.Equal(v) {
			t.Errorf("%s: ValueFromString %v, ValueFromTerraform %v", typ, fromString, v)
		}
		if u, err := typ.ValueFromTerraform(ctx, tftypes.NewValue(tftypes.String, tftypes.UnknownValue)); err != nil || !u.IsUnknown() {
			t.Errorf("%s: unknown read as %v (%v)", typ, u, err)
		}
	}
	if NewDuration("60s").Equal(NewPostgresTime("60s")) {
		t.Error("a Duration equals a PostgresTime of the same text")
	}
	if eq, _ := NewDuration("60s").StringSemanticEquals(ctx, NewDuration("60s").StringValue); !eq {
		t.Error("a Duration is not semantically equal to its own text")
	}
}

// String, which the framework logs at TRACE, never shows a connection's
// secrets, nor a string that does not parse (it may hold a password); a URI
// shows as keywords, its password masked.
func TestConninfoStringMasksSecrets(t *testing.T) {
	for in, want := range map[string]string{
		"host=db password='s3cret' sslpassword=k3y user=rep": `"host='db' user='rep' password='REDACTED' sslpassword='REDACTED'"`,
		"postgresql://rep:s3cret@db/app":                     `"host='db' user='rep' dbname='app' password='REDACTED'"`,
		"postgresql://rep:s3cret%zz@db/app":                  `"(a connection string that does not parse, not shown)"`,
	} {
		if got := NewConninfo(in).String(); got != want {
			t.Errorf("String() of %q = %s, want %s", in, got, want)
		}
	}
	if got := NewPostgresTime("60s").String(); got != `"60s"` {
		t.Errorf(`PostgresTime("60s").String() = %s`, got)
	}
}
