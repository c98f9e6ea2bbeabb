package provider

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

var _ datasource.DataSourceWithConfigure = (*serverDataSource)(nil)

func newServerDataSource() datasource.DataSource { return &serverDataSource{} }

// serverDataSource reads what a replication topology needs to know about one
// server: its version, whether it is a standby, and where its WAL is.
type serverDataSource struct {
	server *server
}

func (d *serverDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_server"
}

func (d *serverDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "Reads the provider's server: version, whether it is in recovery (a standby), its system identifier, " +
			"`wal_level`, its WAL position and its replication capacity. On a primary `current_lsn` is `pg_current_wal_lsn()`; " +
			"on a standby it is `pg_last_wal_replay_lsn()`.",
		Attributes: map[string]schema.Attribute{
			"id":                    schema.StringAttribute{Computed: true, MarkdownDescription: "The system identifier."},
			"version":               schema.StringAttribute{Computed: true, MarkdownDescription: "`server_version`, e.g. `17.10`."},
			"version_num":           schema.Int64Attribute{Computed: true, MarkdownDescription: "`server_version_num`, e.g. `170010`."},
			"in_recovery":           schema.BoolAttribute{Computed: true, MarkdownDescription: "`pg_is_in_recovery()`: true on a standby."},
			"system_identifier":     schema.StringAttribute{Computed: true, MarkdownDescription: "The cluster's system identifier (`pg_control_system()`). A primary and its physical standbys share it."},
			"wal_level":             schema.StringAttribute{Computed: true, MarkdownDescription: "`wal_level`: `replica` or `logical` (logical replication needs `logical` on the publisher)."},
			"current_lsn":           schema.StringAttribute{Computed: true, MarkdownDescription: "The current WAL location: written on a primary, replayed on a standby."},
			"max_wal_senders":       schema.Int64Attribute{Computed: true, MarkdownDescription: "`max_wal_senders`."},
			"max_replication_slots": schema.Int64Attribute{Computed: true, MarkdownDescription: "`max_replication_slots`."},
		},
	}
}

func (d *serverDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	d.server = serverFromProviderData(req.ProviderData, &resp.Diagnostics)
}

func (d *serverDataSource) Read(ctx context.Context, _ datasource.ReadRequest, resp *datasource.ReadResponse) {
	pool := d.server.PoolOrDiag(ctx, "", &resp.Diagnostics)
	if pool == nil {
		return
	}
	var m serverDataSourceModel
	var (
		version, sysid, walLevel, lsn string
		versionNum, senders, slots    int64
		inRecovery                    bool
	)
	const sql = `
SELECT current_setting('server_version'),
       current_setting('server_version_num')::bigint,
       pg_is_in_recovery(),
       (SELECT system_identifier::text FROM pg_control_system()),
       current_setting('wal_level'),
       COALESCE(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END::text, ''),
       current_setting('max_wal_senders')::bigint,
       current_setting('max_replication_slots')::bigint`
	err := pool.QueryRow(ctx, sql).Scan(&version, &versionNum, &inRecovery, &sysid, &walLevel, &lsn, &senders, &slots)
	if err != nil {
		resp.Diagnostics.AddError("Cannot Read Server Facts", "Reading version, recovery state and WAL position from "+d.server.describe()+" failed: "+
			d.server.queryError(ctx, sql, err).Error())
		return
	}
	m.ID = types.StringValue(sysid)
	m.Version = types.StringValue(version)
	m.VersionNum = types.Int64Value(versionNum)
	m.InRecovery = types.BoolValue(inRecovery)
	m.SystemIdentifier = types.StringValue(sysid)
	m.WalLevel = types.StringValue(walLevel)
	m.CurrentLSN = types.StringValue(lsn)
	m.MaxWalSenders = types.Int64Value(senders)
	m.MaxReplicationSlots = types.Int64Value(slots)
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}
