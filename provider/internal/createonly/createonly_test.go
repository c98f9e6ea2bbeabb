package createonly

import (
	"context"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
)

func TestBool(t *testing.T) {
	existing := tfsdk.State{Raw: tftypes.NewValue(tftypes.Object{}, map[string]tftypes.Value{})}
	created := tfsdk.State{Raw: tftypes.NewValue(tftypes.Object{}, nil)}
	for _, c := range []struct {
		name          string
		state         tfsdk.State
		config, prior types.Bool
		want          types.Bool
	}{
		{"create, unset: the default", created, types.BoolNull(), types.BoolNull(), types.BoolValue(false)},
		{"create, set", created, types.BoolValue(true), types.BoolNull(), types.BoolValue(true)},
		{"imported as true, unset: no change", existing, types.BoolNull(), types.BoolValue(true), types.BoolValue(true)},
		{"existing, set otherwise: the configuration", existing, types.BoolValue(false), types.BoolValue(true), types.BoolValue(false)},
		{"existing, unknown: stays unknown", existing, types.BoolUnknown(), types.BoolValue(true), types.BoolUnknown()},
	} {
		plan := c.config
		if c.config.IsNull() {
			plan = types.BoolUnknown() // what the framework plans for a Computed attribute left out
		}
		resp := &planmodifier.BoolResponse{PlanValue: plan}
		Bool(false).PlanModifyBool(context.Background(), planmodifier.BoolRequest{
			State: c.state, ConfigValue: c.config, StateValue: c.prior, PlanValue: plan,
		}, resp)
		if !resp.PlanValue.Equal(c.want) {
			t.Errorf("%s: planned %v, want %v", c.name, resp.PlanValue, c.want)
		}
	}
}
