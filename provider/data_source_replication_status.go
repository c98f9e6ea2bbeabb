package provider

import (
	"context"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/jackc/pgx/v5"
)

var _ datasource.DataSourceWithConfigure = (*replicationStatusDataSource)(nil)

func newReplicationStatusDataSource() datasource.DataSource { return &replicationStatusDataSource{} }

// replicationStatusDataSource reads, on a primary, who streams from it and
// how far behind they are, and how much WAL each slot holds back.
type replicationStatusDataSource struct {
	server *server
}

func (d *replicationStatusDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_replication_status"
}

func (d *replicationStatusDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	lagSeconds := func(what string) schema.Float64Attribute {
		return schema.Float64Attribute{Computed: true, MarkdownDescription: "Seconds between the primary flushing recent WAL and the standby " +
			what + " it (`pg_stat_replication`'s interval, in seconds with microsecond precision). Null when the standby has caught up " +
			"and nothing has been written since, as PostgreSQL reports it."}
	}
	lsn := func(what string) schema.StringAttribute {
		return schema.StringAttribute{Computed: true, MarkdownDescription: "The last WAL location " + what + "."}
	}
	resp.Schema = schema.Schema{
		MarkdownDescription: "Reads replication health on a primary: each connected standby from `pg_stat_replication` (state, " +
			"synchronous state, WAL locations and lag) and each replication slot from `pg_replication_slots` with the WAL it retains. " +
			"Use the provider alias of the primary: on a standby (a server in recovery) reading fails with an error that says so, " +
			"because lag and retained WAL are measured from the primary's current WAL location. A role that is not a superuser needs " +
			"`pg_read_all_stats` (`pg_monitor` has it) to see the standbys' state: without it the read fails with the statement that grants it.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{Computed: true, MarkdownDescription: "The primary's system identifier."},
			"standbys": schema.ListNestedAttribute{
				Computed:            true,
				MarkdownDescription: "The WAL senders of the primary, one per connected standby (or other physical or logical streaming client), ordered by `application_name`.",
				NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
					"pid":                schema.Int64Attribute{Computed: true, MarkdownDescription: "The WAL sender's process ID."},
					"application_name":   schema.StringAttribute{Computed: true, MarkdownDescription: "The standby's `application_name` (the name `synchronous_standby_names` uses)."},
					"client_addr":        schema.StringAttribute{Computed: true, MarkdownDescription: "The standby's IP address; null for a Unix-socket connection."},
					"state":              schema.StringAttribute{Computed: true, MarkdownDescription: "`startup`, `catchup`, `streaming`, `backup` or `stopping`."},
					"sync_state":         schema.StringAttribute{Computed: true, MarkdownDescription: "`async`, `potential`, `sync` or `quorum`."},
					"sync_priority":      schema.Int64Attribute{Computed: true, MarkdownDescription: "The standby's priority as a synchronous standby; 0 for an asynchronous one."},
					"sent_lsn":           lsn("sent to the standby"),
					"write_lsn":          lsn("the standby has written"),
					"flush_lsn":          lsn("the standby has flushed to disk"),
					"replay_lsn":         lsn("the standby has replayed"),
					"write_lag_seconds":  lagSeconds("writing"),
					"flush_lag_seconds":  lagSeconds("flushing"),
					"replay_lag_seconds": lagSeconds("replaying"),
					"replay_lag_bytes": schema.Int64Attribute{Computed: true, MarkdownDescription: "Bytes of WAL the standby has yet to replay: " +
						"`pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)`. Unlike the lag in seconds, it does not go null when the primary is idle."},
				}},
			},
			"slots": schema.ListNestedAttribute{
				Computed:            true,
				MarkdownDescription: "The persistent replication slots of the primary, ordered by name.",
				NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
					"name":        schema.StringAttribute{Computed: true, MarkdownDescription: "The slot's name."},
					"type":        schema.StringAttribute{Computed: true, MarkdownDescription: "`physical` or `logical`."},
					"database":    schema.StringAttribute{Computed: true, MarkdownDescription: "The database of a logical slot; null for a physical slot."},
					"active":      schema.BoolAttribute{Computed: true, MarkdownDescription: "Whether a consumer is using the slot."},
					"active_pid":  schema.Int64Attribute{Computed: true, MarkdownDescription: "The process ID of the session using the slot; null when inactive."},
					"wal_status":  schema.StringAttribute{Computed: true, MarkdownDescription: "`reserved`, `extended`, `unreserved` or `lost`; null when the slot reserves no WAL."},
					"restart_lsn": schema.StringAttribute{Computed: true, MarkdownDescription: "The oldest WAL location the slot keeps."},
					"retained_wal_bytes": schema.Int64Attribute{Computed: true, MarkdownDescription: "Bytes of WAL the slot holds back: " +
						"`pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)`. Null when the slot reserves no WAL."},
				}},
			},
		},
	}
}

func (d *replicationStatusDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	d.server = serverFromProviderData(req.ProviderData, &resp.Diagnostics)
}

func (d *replicationStatusDataSource) Read(ctx context.Context, _ datasource.ReadRequest, resp *datasource.ReadResponse) {
	pool := d.server.PoolOrDiag(ctx, "", &resp.Diagnostics)
	if pool == nil {
		return
	}
	var (
		m          replicationStatusModel
		inRecovery bool
		sysid      string
	)
	const recoverySQL = `SELECT pg_is_in_recovery(), (SELECT system_identifier::text FROM pg_control_system())`
	if err := pool.QueryRow(ctx, recoverySQL).Scan(&inRecovery, &sysid); err != nil {
		resp.Diagnostics.AddError("Cannot Read Replication Status", "Reading the recovery state of "+d.server.describe()+" failed: "+
			d.server.queryError(ctx, recoverySQL, err).Error())
		return
	}
	if inRecovery {
		resp.Diagnostics.AddError("Replication Status Needs a Primary",
			fmt.Sprintf("%s is a standby (in recovery). pgreplication_replication_status measures lag and retained WAL from the "+
				"primary's current WAL location, so read it with the primary's provider alias (provider = pgreplication.<primary>).", d.server.describe()))
		return
	}
	m.ID = types.StringValue(sysid)

	const standbysSQL = `
SELECT pid::bigint, application_name, host(client_addr), state, sync_state, sync_priority::bigint,
       sent_lsn::text, write_lsn::text, flush_lsn::text, replay_lsn::text,
       extract(epoch FROM write_lag)::float8, extract(epoch FROM flush_lag)::float8, extract(epoch FROM replay_lag)::float8,
       greatest(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn), 0)::bigint
FROM pg_stat_replication
ORDER BY application_name, pid`
	rows, err := pool.Query(ctx, standbysSQL)
	if err != nil {
		resp.Diagnostics.AddError("Cannot Read Replication Status", "Reading pg_stat_replication on "+d.server.describe()+" failed: "+
			d.server.queryError(ctx, standbysSQL, err, readAllStatsPrivilege).Error())
		return
	}
	m.Standbys, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (replicationStatusStandbyModel, error) {
		var (
			s                             replicationStatusStandbyModel
			pid, priority                 *int64
			app, addr, state, sync        *string
			sent, write, flush, replay    *string
			writeLag, flushLag, replayLag *float64
			lagBytes                      *int64
		)
		err := row.Scan(&pid, &app, &addr, &state, &sync, &priority, &sent, &write, &flush, &replay,
			&writeLag, &flushLag, &replayLag, &lagBytes)
		s.PID = types.Int64PointerValue(pid)
		s.ApplicationName = types.StringPointerValue(app)
		s.ClientAddr = types.StringPointerValue(addr)
		s.State = types.StringPointerValue(state)
		s.SyncState = types.StringPointerValue(sync)
		s.SyncPriority = types.Int64PointerValue(priority)
		s.SentLSN = types.StringPointerValue(sent)
		s.WriteLSN = types.StringPointerValue(write)
		s.FlushLSN = types.StringPointerValue(flush)
		s.ReplayLSN = types.StringPointerValue(replay)
		s.WriteLag = types.Float64PointerValue(writeLag)
		s.FlushLag = types.Float64PointerValue(flushLag)
		s.ReplayLag = types.Float64PointerValue(replayLag)
		s.LagBytes = types.Int64PointerValue(lagBytes)
		if err == nil && state == nil {
			// A role without pg_read_all_stats sees only the pid.
			err = hiddenStatsError{view: "pg_stat_replication"}
		}
		return s, err
	})
	if err != nil {
		resp.Diagnostics.AddError("Cannot Read Replication Status", "Reading pg_stat_replication on "+d.server.describe()+" failed: "+
			d.server.queryError(ctx, standbysSQL, err, readAllStatsPrivilege).Error())
		return
	}

	const slotsSQL = `
SELECT slot_name::text, slot_type, database::text, active, active_pid::bigint, wal_status, restart_lsn::text,
       CASE WHEN restart_lsn IS NOT NULL THEN greatest(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn), 0)::bigint END
FROM pg_replication_slots
WHERE NOT temporary
ORDER BY slot_name`
	rows, err = pool.Query(ctx, slotsSQL)
	if err != nil {
		resp.Diagnostics.AddError("Cannot Read Replication Status", "Reading pg_replication_slots on "+d.server.describe()+" failed: "+
			d.server.queryError(ctx, slotsSQL, err).Error())
		return
	}
	m.Slots, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (replicationStatusSlotModel, error) {
		var (
			s                     replicationStatusSlotModel
			name, typ             string
			database, status, lsn *string
			active                bool
			pid, retained         *int64
		)
		err := row.Scan(&name, &typ, &database, &active, &pid, &status, &lsn, &retained)
		s.Name = types.StringValue(name)
		s.Type = types.StringValue(typ)
		s.Database = types.StringPointerValue(database)
		s.Active = types.BoolValue(active)
		s.ActivePID = types.Int64PointerValue(pid)
		s.WalStatus = types.StringPointerValue(status)
		s.RestartLSN = types.StringPointerValue(lsn)
		s.RetainedWalBytes = types.Int64PointerValue(retained)
		return s, err
	})
	if err != nil {
		resp.Diagnostics.AddError("Cannot Read Replication Status", "Reading pg_replication_slots on "+d.server.describe()+" failed: "+
			d.server.queryError(ctx, slotsSQL, err).Error())
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}
