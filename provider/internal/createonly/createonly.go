// Package createonly plans the arguments that only shape how an object is
// created and that PostgreSQL does not record, such as a physical slot's
// immediately_reserve or a subscription's copy_data. Such an argument must
// never replace the object (recreating a slot loses its WAL position;
// recreating a subscription copies every table again), and after an import,
// where the provider can only guess or default it, a configuration that
// leaves it out must plan nothing.
package createonly

import (
	"context"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

// Bool plans an Optional+Computed create-time argument: the configuration's
// value when it sets one; otherwise def for a new object, and the state's
// value for an existing one (a default written into the plan there would
// show a change that does nothing). Use it instead of a schema Default.
func Bool(def bool) planmodifier.Bool { return boolModifier{def: def} }

type boolModifier struct{ def bool }

func (m boolModifier) Description(context.Context) string {
	return fmt.Sprintf("Used only when the object is created; defaults to %t. Left out, an existing object keeps its value.", m.def)
}

func (m boolModifier) MarkdownDescription(ctx context.Context) string { return m.Description(ctx) }

func (m boolModifier) PlanModifyBool(_ context.Context, req planmodifier.BoolRequest, resp *planmodifier.BoolResponse) {
	switch {
	case !req.ConfigValue.IsNull():
		// Set, or unknown until apply: the framework plans the config's value.
	case req.State.Raw.IsNull() || req.StateValue.IsNull() || req.StateValue.IsUnknown():
		resp.PlanValue = types.BoolValue(m.def)
	default:
		resp.PlanValue = req.StateValue
	}
}
