package provider

import "github.com/hashicorp/terraform-plugin-framework/types"

// providerModel is the provider block.
type providerModel struct {
	Host           types.String `tfsdk:"host"`
	Port           types.Int64  `tfsdk:"port"`
	Database       types.String `tfsdk:"database"`
	Username       types.String `tfsdk:"username"`
	Password       types.String `tfsdk:"password"`
	SSLMode        types.String `tfsdk:"sslmode"`
	SSLRootCert    types.String `tfsdk:"sslrootcert"`
	SSLCert        types.String `tfsdk:"sslcert"`
	SSLKey         types.String `tfsdk:"sslkey"`
	ConnectTimeout types.Int64  `tfsdk:"connect_timeout"`
	MaxConnections types.Int64  `tfsdk:"max_connections"`
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
