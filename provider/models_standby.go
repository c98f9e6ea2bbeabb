package provider

import "github.com/hashicorp/terraform-plugin-framework/types"

// standbyResourceModel is pgreplication_standby.
type standbyResourceModel struct {
	ID                       types.String  `tfsdk:"id"`
	PrimaryHost              types.String  `tfsdk:"primary_host"`
	PrimaryPort              types.Int64   `tfsdk:"primary_port"`
	PrimaryUser              types.String  `tfsdk:"primary_user"`
	PrimarySSLMode           types.String  `tfsdk:"primary_sslmode"`
	PrimaryPassword          types.String  `tfsdk:"primary_password"`
	Passfile                 types.String  `tfsdk:"passfile"`
	ApplicationName          types.String  `tfsdk:"application_name"`
	PrimaryConninfoParams    types.Map     `tfsdk:"primary_conninfo_params"`
	PrimarySlotName          types.String  `tfsdk:"primary_slot_name"`
	HotStandbyFeedback       types.Bool    `tfsdk:"hot_standby_feedback"`
	RecoveryMinApplyDelay    types.String  `tfsdk:"recovery_min_apply_delay"`
	MaxStandbyStreamingDelay types.String  `tfsdk:"max_standby_streaming_delay"`
	WalReceiverTimeout       types.String  `tfsdk:"wal_receiver_timeout"`
	WaitTimeout              types.String  `tfsdk:"wait_timeout"`
	ResetOnDestroy           types.Bool    `tfsdk:"reset_on_destroy"`
	Status                   types.String  `tfsdk:"status"`
	SenderHost               types.String  `tfsdk:"sender_host"`
	SenderPort               types.Int64   `tfsdk:"sender_port"`
	ReceivedLSN              types.String  `tfsdk:"received_lsn"`
	ReplayLSN                types.String  `tfsdk:"replay_lsn"`
	ReplayLag                types.Float64 `tfsdk:"replay_lag"`
}
