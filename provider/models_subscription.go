package provider

import "github.com/hashicorp/terraform-plugin-framework/types"

// subscriptionResourceModel is resource.pgreplication_subscription.
type subscriptionResourceModel struct {
	ID                types.String `tfsdk:"id"`
	Name              types.String `tfsdk:"name"`
	Conninfo          types.String `tfsdk:"conninfo"`
	Publications      types.Set    `tfsdk:"publications"`
	Database          types.String `tfsdk:"database"`
	Enabled           types.Bool   `tfsdk:"enabled"`
	SlotName          types.String `tfsdk:"slot_name"`
	CreateSlot        types.Bool   `tfsdk:"create_slot"`
	CopyData          types.Bool   `tfsdk:"copy_data"`
	SynchronousCommit types.String `tfsdk:"synchronous_commit"`
	Binary            types.Bool   `tfsdk:"binary"`
	Streaming         types.String `tfsdk:"streaming"`
	DisableOnError    types.Bool   `tfsdk:"disable_on_error"`
	Origin            types.String `tfsdk:"origin"`
	Owner             types.String `tfsdk:"owner"`
	DropSlotOnDestroy types.Bool   `tfsdk:"drop_slot_on_destroy"`
}
