package provider

import "github.com/hashicorp/terraform-plugin-framework/types"

// synchronousReplicationResourceModel is pgreplication_synchronous_replication.
type synchronousReplicationResourceModel struct {
	ID                types.String `tfsdk:"id"`
	Method            types.String `tfsdk:"method"`
	NumSync           types.Int64  `tfsdk:"num_sync"`
	StandbyNames      types.List   `tfsdk:"standby_names"`
	SynchronousCommit types.String `tfsdk:"synchronous_commit"`
	AllowUnavailable  types.Bool   `tfsdk:"allow_unavailable"`
	SyncState         types.Map    `tfsdk:"sync_state"`
}
