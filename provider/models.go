// Every tfsdk model struct of the provider, in one place.

package provider

import (
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/normalized"
)

// providerModel is the provider block.
type providerModel struct {
	Host             types.String `tfsdk:"host"`
	Port             types.Int64  `tfsdk:"port"`
	Database         types.String `tfsdk:"database"`
	Username         types.String `tfsdk:"username"`
	Password         types.String `tfsdk:"password"`
	SSLMode          types.String `tfsdk:"sslmode"`
	SSLRootCert      types.String `tfsdk:"sslrootcert"`
	SSLCert          types.String `tfsdk:"sslcert"`
	SSLKey           types.String `tfsdk:"sslkey"`
	ConnectTimeout   types.Int64  `tfsdk:"connect_timeout"`
	StatementTimeout types.String `tfsdk:"statement_timeout"`
	MaxConnections   types.Int64  `tfsdk:"max_connections"`
}

// serverDataSourceModel is data.pgreplication_server.
type serverDataSourceModel struct {
	ID                  types.String `tfsdk:"id"`
	Version             types.String `tfsdk:"version"`
	VersionNum          types.Int64  `tfsdk:"version_num"`
	InRecovery          types.Bool   `tfsdk:"in_recovery"`
	SystemIdentifier    types.String `tfsdk:"system_identifier"`
	WalLevel            types.String `tfsdk:"wal_level"`
	CurrentLSN          types.String `tfsdk:"current_lsn"`
	MaxWalSenders       types.Int64  `tfsdk:"max_wal_senders"`
	MaxReplicationSlots types.Int64  `tfsdk:"max_replication_slots"`
}

// publicationModel is resource pgreplication_publication.
type publicationModel struct {
	ID                      types.String `tfsdk:"id"`
	Name                    types.String `tfsdk:"name"`
	Database                types.String `tfsdk:"database"`
	Owner                   types.String `tfsdk:"owner"`
	AllTables               types.Bool   `tfsdk:"all_tables"`
	Tables                  types.Map    `tfsdk:"tables"` // of publicationTableModel, keyed by tableKey
	TablesInSchema          types.Set    `tfsdk:"tables_in_schema"`
	Publish                 types.Set    `tfsdk:"publish"`
	PublishViaPartitionRoot types.Bool   `tfsdk:"publish_via_partition_root"`
	PublishGeneratedColumns types.String `tfsdk:"publish_generated_columns"`
}

// publicationTableModel is one table of pgreplication_publication's tables.
type publicationTableModel struct {
	Columns types.Set    `tfsdk:"columns"`
	Where   types.String `tfsdk:"where"`
}

// publicationTableAttrTypes is the object type of a table, for building the
// map that Read returns.
var publicationTableAttrTypes = map[string]attr.Type{
	"columns": types.SetType{ElemType: types.StringType},
	"where":   types.StringType,
}

// publicationModelV0 is pgreplication_publication in schema version 0,
// which declared each table in a table block; only the state upgrader reads
// it.
type publicationModelV0 struct {
	ID                      types.String `tfsdk:"id"`
	Name                    types.String `tfsdk:"name"`
	Database                types.String `tfsdk:"database"`
	Owner                   types.String `tfsdk:"owner"`
	AllTables               types.Bool   `tfsdk:"all_tables"`
	Tables                  types.Set    `tfsdk:"table"` // of publicationTableModelV0
	TablesInSchema          types.Set    `tfsdk:"tables_in_schema"`
	Publish                 types.Set    `tfsdk:"publish"`
	PublishViaPartitionRoot types.Bool   `tfsdk:"publish_via_partition_root"`
	PublishGeneratedColumns types.String `tfsdk:"publish_generated_columns"`
}

// publicationTableModelV0 is one table block of schema version 0.
type publicationTableModelV0 struct {
	Schema  types.String `tfsdk:"schema"`
	Name    types.String `tfsdk:"name"`
	Columns types.Set    `tfsdk:"columns"`
	Where   types.String `tfsdk:"where"`
}

// replicationSlotModel is resource.pgreplication_replication_slot.
type replicationSlotModel struct {
	ID                       types.String        `tfsdk:"id"`
	Name                     types.String        `tfsdk:"name"`
	Type                     types.String        `tfsdk:"type"`
	Database                 types.String        `tfsdk:"database"`
	Plugin                   types.String        `tfsdk:"plugin"`
	TwoPhase                 types.Bool          `tfsdk:"two_phase"`
	Failover                 types.Bool          `tfsdk:"failover"`
	ImmediatelyReserve       types.Bool          `tfsdk:"immediately_reserve"`
	TerminateActiveOnDestroy types.Bool          `tfsdk:"terminate_active_on_destroy"`
	CreateTimeout            normalized.Duration `tfsdk:"create_timeout"`
	Active                   types.Bool          `tfsdk:"active"`
	ActivePID                types.Int64         `tfsdk:"active_pid"`
	RestartLSN               types.String        `tfsdk:"restart_lsn"`
	ConfirmedFlushLSN        types.String        `tfsdk:"confirmed_flush_lsn"`
	WalStatus                types.String        `tfsdk:"wal_status"`
	SafeWalSize              types.Int64         `tfsdk:"safe_wal_size"`
	RetainedWalBytes         types.Int64         `tfsdk:"retained_wal_bytes"`
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

// routerConfigModel is pgreplication_router_config. The blocks stay
// types.Object / types.List here, not structs, because a dynamic block can
// be unknown at plan time as a whole; they are converted to the structs
// below once known.
type routerConfigModel struct {
	ID             types.String `tfsdk:"id"`
	Path           types.String `tfsdk:"path"`
	FilePermission types.String `tfsdk:"file_permission"`
	Content        types.String `tfsdk:"content"`
	SHA256         types.String `tfsdk:"sha256"`
	Primary        types.Object `tfsdk:"primary"`
	Replica        types.List   `tfsdk:"replica"`
	ReadPolicy     types.Object `tfsdk:"read_policy"`
	Consistency    types.Object `tfsdk:"consistency"`
	Health         types.Object `tfsdk:"health"`
	Route          types.List   `tfsdk:"route"`
	Pool           types.Object `tfsdk:"pool"`
}

// routerNodeModel is a primary or replica block.
type routerNodeModel struct {
	Name        types.String        `tfsdk:"name"`
	Host        types.String        `tfsdk:"host"`
	Port        types.Int64         `tfsdk:"port"`
	Database    types.String        `tfsdk:"database"`
	User        types.String        `tfsdk:"user"`
	SSLMode     types.String        `tfsdk:"sslmode"`
	SSLRootCert types.String        `tfsdk:"sslrootcert"`
	PasswordEnv types.String        `tfsdk:"password_env"`
	Passfile    types.String        `tfsdk:"passfile"`
	Zone        types.String        `tfsdk:"zone"`
	Weight      types.Int64         `tfsdk:"weight"`
	MaxLag      normalized.Duration `tfsdk:"max_lag"`
	MaxLagBytes types.Int64         `tfsdk:"max_lag_bytes"`
	Synchronous types.Bool          `tfsdk:"synchronous"`
}

// routerReadPolicyModel is the read_policy block.
type routerReadPolicyModel struct {
	Strategy types.String `tfsdk:"strategy"`
	Fallback types.String `tfsdk:"fallback"`
}

// routerConsistencyModel is the consistency block.
type routerConsistencyModel struct {
	Mode        types.String        `tfsdk:"mode"`
	WaitTimeout normalized.Duration `tfsdk:"wait_timeout"`
}

// routerHealthModel is the health block.
type routerHealthModel struct {
	Interval       normalized.Duration `tfsdk:"interval"`
	Timeout        normalized.Duration `tfsdk:"timeout"`
	ConnectTimeout normalized.Duration `tfsdk:"connect_timeout"`
	EjectAfter     types.Int64         `tfsdk:"eject_after"`
	ReadmitAfter   types.Int64         `tfsdk:"readmit_after"`
}

// routerRouteModel is a route block.
type routerRouteModel struct {
	Name     types.String `tfsdk:"name"`
	Nodes    types.List   `tfsdk:"nodes"`
	Strategy types.String `tfsdk:"strategy"`
	Fallback types.String `tfsdk:"fallback"`
}

// routerPoolModel is the pool block.
type routerPoolModel struct {
	MaxConns        types.Int64         `tfsdk:"max_conns"`
	MinConns        types.Int64         `tfsdk:"min_conns"`
	MaxConnLifetime normalized.Duration `tfsdk:"max_conn_lifetime"`
}

// standbyResourceModel is pgreplication_standby.
type standbyResourceModel struct {
	ID                       types.String            `tfsdk:"id"`
	PrimaryHost              types.String            `tfsdk:"primary_host"`
	PrimaryPort              types.Int64             `tfsdk:"primary_port"`
	PrimaryPorts             types.List              `tfsdk:"primary_ports"`
	PrimaryUser              types.String            `tfsdk:"primary_user"`
	PrimarySSLMode           types.String            `tfsdk:"primary_sslmode"`
	PrimaryPassword          types.String            `tfsdk:"primary_password"`
	PrimaryPasswordWO        types.String            `tfsdk:"primary_password_wo"` // write-only: null in plan and state
	PrimaryPasswordWOVersion types.Int64             `tfsdk:"primary_password_wo_version"`
	Passfile                 types.String            `tfsdk:"passfile"`
	ApplicationName          types.String            `tfsdk:"application_name"`
	PrimaryConninfoParams    types.Map               `tfsdk:"primary_conninfo_params"`
	PrimarySlotName          types.String            `tfsdk:"primary_slot_name"`
	HotStandbyFeedback       types.Bool              `tfsdk:"hot_standby_feedback"`
	RecoveryMinApplyDelay    normalized.PostgresTime `tfsdk:"recovery_min_apply_delay"`
	MaxStandbyStreamingDelay normalized.PostgresTime `tfsdk:"max_standby_streaming_delay"`
	WalReceiverTimeout       normalized.PostgresTime `tfsdk:"wal_receiver_timeout"`
	WaitTimeout              normalized.Duration     `tfsdk:"wait_timeout"`
	ResetOnDestroy           types.Bool              `tfsdk:"reset_on_destroy"`
	Status                   types.String            `tfsdk:"status"`
	SenderHost               types.String            `tfsdk:"sender_host"`
	SenderPort               types.Int64             `tfsdk:"sender_port"`
	ReceivedLSN              types.String            `tfsdk:"received_lsn"`
	ReplayLSN                types.String            `tfsdk:"replay_lsn"`
	ReplayLag                types.Float64           `tfsdk:"replay_lag"`
}

// subscriptionResourceModel is resource.pgreplication_subscription.
type subscriptionResourceModel struct {
	ID                types.String        `tfsdk:"id"`
	Name              types.String        `tfsdk:"name"`
	Conninfo          normalized.Conninfo `tfsdk:"conninfo"`
	PasswordWO        types.String        `tfsdk:"password_wo"` // write-only: null in plan and state
	PasswordWOVersion types.Int64         `tfsdk:"password_wo_version"`
	Publications      types.Set           `tfsdk:"publications"`
	Database          types.String        `tfsdk:"database"`
	Enabled           types.Bool          `tfsdk:"enabled"`
	SlotName          types.String        `tfsdk:"slot_name"`
	CreateSlot        types.Bool          `tfsdk:"create_slot"`
	CopyData          types.Bool          `tfsdk:"copy_data"`
	SynchronousCommit types.String        `tfsdk:"synchronous_commit"`
	Binary            types.Bool          `tfsdk:"binary"`
	Streaming         types.String        `tfsdk:"streaming"`
	DisableOnError    types.Bool          `tfsdk:"disable_on_error"`
	TwoPhase          types.Bool          `tfsdk:"two_phase"`
	PasswordRequired  types.Bool          `tfsdk:"password_required"`
	RunAsOwner        types.Bool          `tfsdk:"run_as_owner"`
	Failover          types.Bool          `tfsdk:"failover"`
	Origin            types.String        `tfsdk:"origin"`
	Owner             types.String        `tfsdk:"owner"`
	DropSlotOnDestroy types.Bool          `tfsdk:"drop_slot_on_destroy"`
	PublisherTimeout  normalized.Duration `tfsdk:"publisher_timeout"`
}

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
