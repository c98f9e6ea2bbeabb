package provider

import "github.com/hashicorp/terraform-plugin-framework/types"

// replicationSlotModel is resource.pgreplication_replication_slot.
type replicationSlotModel struct {
	ID                       types.String `tfsdk:"id"`
	Name                     types.String `tfsdk:"name"`
	Type                     types.String `tfsdk:"type"`
	Database                 types.String `tfsdk:"database"`
	Plugin                   types.String `tfsdk:"plugin"`
	TwoPhase                 types.Bool   `tfsdk:"two_phase"`
	Failover                 types.Bool   `tfsdk:"failover"`
	ImmediatelyReserve       types.Bool   `tfsdk:"immediately_reserve"`
	TerminateActiveOnDestroy types.Bool   `tfsdk:"terminate_active_on_destroy"`
	CreateTimeout            types.String `tfsdk:"create_timeout"`
	Active                   types.Bool   `tfsdk:"active"`
	ActivePID                types.Int64  `tfsdk:"active_pid"`
	RestartLSN               types.String `tfsdk:"restart_lsn"`
	ConfirmedFlushLSN        types.String `tfsdk:"confirmed_flush_lsn"`
	WalStatus                types.String `tfsdk:"wal_status"`
	SafeWalSize              types.Int64  `tfsdk:"safe_wal_size"`
	RetainedWalBytes         types.Int64  `tfsdk:"retained_wal_bytes"`
}

// replicationStatusModel is data.pgreplication_replication_status.
type replicationStatusModel struct {
	ID       types.String                    `tfsdk:"id"`
	Standbys []replicationStatusStandbyModel `tfsdk:"standbys"`
	Slots    []replicationStatusSlotModel    `tfsdk:"slots"`
}

// replicationStatusStandbyModel is one row of pg_stat_replication.
type replicationStatusStandbyModel struct {
	PID             types.Int64   `tfsdk:"pid"`
	ApplicationName types.String  `tfsdk:"application_name"`
	ClientAddr      types.String  `tfsdk:"client_addr"`
	State           types.String  `tfsdk:"state"`
	SyncState       types.String  `tfsdk:"sync_state"`
	SyncPriority    types.Int64   `tfsdk:"sync_priority"`
	SentLSN         types.String  `tfsdk:"sent_lsn"`
	WriteLSN        types.String  `tfsdk:"write_lsn"`
	FlushLSN        types.String  `tfsdk:"flush_lsn"`
	ReplayLSN       types.String  `tfsdk:"replay_lsn"`
	WriteLag        types.Float64 `tfsdk:"write_lag_seconds"`
	FlushLag        types.Float64 `tfsdk:"flush_lag_seconds"`
	ReplayLag       types.Float64 `tfsdk:"replay_lag_seconds"`
	LagBytes        types.Int64   `tfsdk:"replay_lag_bytes"`
}

// replicationStatusSlotModel is one row of pg_replication_slots.
type replicationStatusSlotModel struct {
	Name             types.String `tfsdk:"name"`
	Type             types.String `tfsdk:"type"`
	Database         types.String `tfsdk:"database"`
	Active           types.Bool   `tfsdk:"active"`
	ActivePID        types.Int64  `tfsdk:"active_pid"`
	WalStatus        types.String `tfsdk:"wal_status"`
	RestartLSN       types.String `tfsdk:"restart_lsn"`
	RetainedWalBytes types.Int64  `tfsdk:"retained_wal_bytes"`
}
