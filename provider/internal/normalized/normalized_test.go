package normalized

import (
	"context"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-framework/types/basetypes"
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
