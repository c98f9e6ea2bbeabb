package provider

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/listvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/mapvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/float64planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64default"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/conninfo"
	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/guc"
	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/normalized"
	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/pgsql"
	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/statement"
	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/validate"
)

var (
	_ resource.ResourceWithImportState    = (*standbyResource)(nil)
	_ resource.ResourceWithModifyPlan     = (*standbyResource)(nil)
	_ resource.ResourceWithValidateConfig = (*standbyResource)(nil)
)

func newStandbyResource() resource.Resource { return &standbyResource{} }

// standbyResource is the standby side of physical streaming replication:
// where a server in recovery streams its WAL from (primary_conninfo,
// primary_slot_name) and how it treats that stream. One per server, so its
// import ID is fixed.
type standbyResource struct {
	server *server
}

// standbyImportID is the import ID and id of every pgreplication_standby: a
// server has one standby configuration, and the provider instance names the
// server.
const standbyImportID = "standby"

// Defaults of the standby settings: PostgreSQL's own, so that declaring a
// standby without them changes nothing on a server that has the defaults.
const (
	defaultPrimaryPort              = 5432
	defaultPrimarySSLMode           = "prefer"
	defaultRecoveryMinApplyDelay    = "0"
	defaultMaxStandbyStreamingDelay = "30s"
	defaultWalReceiverTimeout       = "60s"
	defaultStandbyWaitTimeout       = "60s"
)

// standbyManagedParams are the primary_conninfo keywords that have their own
// attribute; primary_conninfo_params holds every other one.
var standbyManagedParams = []string{"host", "port", "user", "sslmode", "passfile", "password", "application_name"}

// standbyRequirements are what a role that is not a superuser needs to apply
// a standby.
var standbyRequirements = []requirement{
	{alterSystemPrivilege(standbySettings...), "writing the settings (`ALTER SYSTEM`)."},
	{alterSystemPrivilege(standbyOwnerSetting), "writing the token that tells a `create_before_destroy` replacement's old object from the new one " +
		"(see `reset_on_destroy`). Without it, create warns and goes on without a token of its own (it takes the server's, if any), " +
		"and destroy warns that it left the token in place."},
	{reloadConfPrivilege, "applying them (`pg_reload_conf()`)."},
	{readAllSettingsPrivilege, "reading `primary_conninfo` back, which PostgreSQL shows only to these roles (it may hold a password)."},
	{readAllStatsPrivilege, "reading the WAL receiver's state (`pg_stat_wal_receiver`), to wait until the standby streams."},
}

// standbyReadPrivileges are what reading a standby's settings and WAL
// receiver needs.
var standbyReadPrivileges = []privilege{readAllSettingsPrivilege, readAllStatsPrivilege}

// standbySettings are the server settings the resource manages, in the
// order it writes them; reset_on_destroy resets the same list.
var standbySettings = []string{
	"primary_conninfo", "primary_slot_name", "hot_standby_feedback",
	"recovery_min_apply_delay", "max_standby_streaming_delay", "wal_receiver_timeout",
}

func (r *standbyResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_standby"
}

func (r *standbyResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = standbySchema()
}

func standbySchema() schema.Schema {
	return schema.Schema{
		MarkdownDescription: "The standby side of physical streaming replication: which primary a standby streams its WAL from, " +
			"through which replication slot, and how it treats the stream. Apply it with a provider instance that points at " +
			"the **standby** (a server in recovery); planning it against a primary fails. PostgreSQL 13 or later " +
			"(`primary_conninfo` and `primary_slot_name` change with a reload, without a restart).\n\n" +
			"The provider writes the settings with `ALTER SYSTEM` (to `postgresql.auto.conf`), reloads the configuration, " +
			"and waits, at most `wait_timeout`, until the standby streams from that primary (`pg_stat_wal_receiver`). " +
			"Read parses the standby's effective `primary_conninfo` back into `primary_host`, `primary_port`, … so that a hand " +
			"edit shows in `terraform plan` as a change of the one field that changed.\n\n" +
			"The computed attributes (`status`, `sender_host`, `sender_port`, `received_lsn`, `replay_lsn`, `replay_lag`) are the " +
			"standby's live state as of the last refresh: `terraform plan` reads them, their changes never make a plan by " +
			"themselves, and a plan that updates the resource keeps them as refreshed instead of showing them as known after " +
			"apply, so a drift plan shows only the settings that drifted. Apply does not read them again (create does, once); " +
			"for a current view use `data.pgreplication_replication_status` or the next refresh.\n\n" +
			"Destroying the resource forgets it and leaves replication running, unless `reset_on_destroy` is set.\n\n" +
			halfCreatedText(", a standby that does not stream with them and did not before either", "either way resetting what the create wrote when `reset_on_destroy` is set (and otherwise forgetting it)") +
			privilegesText(standbyRequirements...) +
			planPrivilegesText("`pg_read_all_settings` (a member of `pg_monitor`), to read `primary_conninfo`, and `pg_read_all_stats` "+
				"(also in `pg_monitor`), to see the WAL receiver's state and sender in `pg_stat_wal_receiver`."),
		Attributes: map[string]schema.Attribute{
			// Required
			"primary_host": schema.StringAttribute{
				Required:            true,
				Validators:          []validator.String{stringvalidator.LengthAtLeast(1)},
				MarkdownDescription: "Host name or address of the primary, as the standby reaches it (`host` in `primary_conninfo`). A comma-separated list is accepted, as libpq accepts it.",
			},
			"primary_user": schema.StringAttribute{
				Required:            true,
				Validators:          []validator.String{stringvalidator.LengthAtLeast(1)},
				MarkdownDescription: "Role the standby connects to the primary as (`user`); it needs the `REPLICATION` attribute and a `replication` line in the primary's `pg_hba.conf`.",
			},

			// Optional
			"primary_port": schema.Int64Attribute{
				Optional:   true,
				Computed:   true,
				Default:    int64default.StaticInt64(defaultPrimaryPort),
				Validators: []validator.Int64{int64validator.Between(1, 65535)},
				MarkdownDescription: fmt.Sprintf("Port of the primary (`port`); with a `primary_host` list, the port of every host in it. "+
					"Defaults to `%d`. Conflicts with `primary_ports`.", defaultPrimaryPort),
			},
			"primary_ports": schema.ListAttribute{
				Optional:    true,
				ElementType: types.Int64Type,
				Validators: []validator.List{
					listvalidator.SizeAtLeast(2),
					listvalidator.ValueInt64sAre(int64validator.Between(1, 65535)),
					listvalidator.ConflictsWith(path.MatchRoot("primary_port")),
				},
				MarkdownDescription: "Ports of the hosts of a `primary_host` list, one for each host, in its order (`port=5433,5434` in " +
					"`primary_conninfo`, as libpq takes it): for hosts that listen on different ports. A `primary_conninfo` that has a port " +
					"list reads back here (an empty entry, libpq's default port, as `" + strconv.Itoa(defaultPrimaryPort) + "`), and " +
					"`primary_port` then reads `" + strconv.Itoa(defaultPrimaryPort) + "`, its default. Conflicts with `primary_port`. Default: none.",
			},
			"primary_sslmode": schema.StringAttribute{
				Optional:            true,
				Computed:            true,
				Default:             stringdefault.StaticString(defaultPrimarySSLMode),
				Validators:          []validator.String{stringvalidator.OneOf(sslModes...)},
				MarkdownDescription: "libpq `sslmode` of the standby's connection: " + quotedList(sslModes) + ". Defaults to `" + defaultPrimarySSLMode + "`, libpq's default; a `primary_conninfo` without `sslmode` reads back as `" + defaultPrimarySSLMode + "`.",
			},
			"primary_password": schema.StringAttribute{
				Optional:  true,
				Sensitive: true,
				Validators: []validator.String{
					stringvalidator.ConflictsWith(path.MatchRoot("passfile"), path.MatchRoot("primary_password_wo")),
				},
				MarkdownDescription: "Password of `primary_user` (`password`). It is stored in `primary_conninfo` in the standby's " +
					"`postgresql.auto.conf` (PostgreSQL has no other place for it) and read back to detect changes, but never shown. " +
					"It is also stored in the Terraform state: with Terraform 1.11 or OpenTofu 1.11 and later, prefer `primary_password_wo`. " +
					"Conflicts with `passfile` and `primary_password_wo`. Default: none.",
			},
			"primary_password_wo": schema.StringAttribute{
				Optional:  true,
				Sensitive: true,
				WriteOnly: true,
				Validators: []validator.String{
					stringvalidator.ConflictsWith(path.MatchRoot("passfile")),
					stringvalidator.AlsoRequires(path.MatchRoot("primary_password_wo_version")),
				},
				MarkdownDescription: "Password of `primary_user`, write-only: " + writeOnlyText("primary_password_wo_version") +
					" It is written into `primary_conninfo` in the standby's `postgresql.auto.conf`, as `primary_password` is. " +
					"Conflicts with `primary_password` and `passfile`; needs `primary_password_wo_version`. Default: none.",
			},
			"primary_password_wo_version": schema.Int64Attribute{
				Optional: true,
				Validators: []validator.Int64{
					int64validator.AlsoRequires(path.MatchRoot("primary_password_wo")),
				},
				MarkdownDescription: "Version of `primary_password_wo`: " + writeOnlyVersionText("primary_password_wo") + " Default: none.",
			},
			"passfile": schema.StringAttribute{
				Optional:            true,
				Validators:          []validator.String{stringvalidator.LengthAtLeast(1)},
				MarkdownDescription: "Path, on the standby's host, of a password file (`passfile`) that holds the password of `primary_user`. Conflicts with `primary_password` and `primary_password_wo`. Default: libpq's (`~/.pgpass` of the server's operating-system user).",
			},
			"application_name": schema.StringAttribute{
				Optional:   true,
				Validators: []validator.String{stringvalidator.LengthBetween(1, 63)},
				MarkdownDescription: "Name the standby reports to the primary (`application_name`): the name in the primary's `pg_stat_replication` " +
					"and the name that `synchronous_standby_names` (`pgreplication_synchronous_replication`) must list to make this standby " +
					"synchronous. When unset the standby reports its `cluster_name`, or `walreceiver`. Default: unset. At most 63 bytes; " +
					"the primary shows non-ASCII characters as `?` (PostgreSQL 15) or `\\xNN` (16 and later), so only an ASCII name can be listed in " +
					"`synchronous_standby_names`.",
			},
			"primary_conninfo_params": schema.MapAttribute{
				Optional:    true,
				ElementType: types.StringType,
				Validators:  []validator.Map{mapvalidator.SizeAtLeast(1)},
				MarkdownDescription: "Other libpq connection parameters of `primary_conninfo`, such as `sslrootcert`, `keepalives_idle` or " +
					"`target_session_attrs`. Keys are libpq keywords: " + quotedList(standbyConninfoParams()) + ". Keywords with their own attribute (" +
					quotedList(standbyManagedParams) + "), `hostaddr`, `service`, `replication` and those holding secrets are refused at plan time, and so is a value libpq would refuse " +
					"when the WAL receiver connects (a `target_session_attrs` or `sslcertmode` outside libpq's choices, a `port` or `connect_timeout` that is not a number). " +
					"A keyword someone added to `primary_conninfo` by hand shows here as a change. Default: none.",
			},
			"primary_slot_name": schema.StringAttribute{
				Optional:   true,
				Validators: []validator.String{slotNameValidator},
				MarkdownDescription: "Physical replication slot on the primary that the standby streams through (`primary_slot_name`), so " +
					"the primary keeps the WAL the standby has not received yet. The slot must exist on the primary (`pgreplication_replication_slot`) " +
					"or streaming does not start. Default: no slot (the standby relies on the primary's `wal_keep_size`).",
			},
			"hot_standby_feedback": schema.BoolAttribute{
				Optional:            true,
				Computed:            true,
				Default:             booldefault.StaticBool(false),
				MarkdownDescription: "`hot_standby_feedback`: the standby tells the primary which rows its queries still need, so that vacuum on the primary does not cancel them. Defaults to `false`, PostgreSQL's default.",
			},
			"recovery_min_apply_delay": schema.StringAttribute{
				Optional:      true,
				Computed:      true,
				CustomType:    normalized.PostgresTimeType{},
				PlanModifiers: []planmodifier.String{normalized.KeepEquivalentState(normalized.PostgresTimeType{})},
				Default:       stringdefault.StaticString(defaultRecoveryMinApplyDelay),
				Validators:    []validator.String{postgresTimeAtLeast(0)},
				MarkdownDescription: "`recovery_min_apply_delay`: how long after the primary committed a transaction the standby applies it, " +
					"a PostgreSQL time such as `\"30s\"` or `\"5min\"` (no unit: milliseconds). Compared by value: `\"300s\"` and the server's " +
					"`\"5min\"` are equal. Defaults to `\"" + defaultRecoveryMinApplyDelay + "\"`, PostgreSQL's default.",
			},
			"max_standby_streaming_delay": schema.StringAttribute{
				Optional:      true,
				Computed:      true,
				CustomType:    normalized.PostgresTimeType{},
				PlanModifiers: []planmodifier.String{normalized.KeepEquivalentState(normalized.PostgresTimeType{})},
				Default:       stringdefault.StaticString(defaultMaxStandbyStreamingDelay),
				Validators:    []validator.String{postgresTimeAtLeast(-1)},
				MarkdownDescription: "`max_standby_streaming_delay`: how long replay waits for conflicting standby queries before cancelling them; " +
					"`\"-1\"` waits forever. A PostgreSQL time, compared by value. Defaults to `\"" + defaultMaxStandbyStreamingDelay + "\"`, PostgreSQL's default.",
			},
			"wal_receiver_timeout": schema.StringAttribute{
				Optional:      true,
				Computed:      true,
				CustomType:    normalized.PostgresTimeType{},
				PlanModifiers: []planmodifier.String{normalized.KeepEquivalentState(normalized.PostgresTimeType{})},
				Default:       stringdefault.StaticString(defaultWalReceiverTimeout),
				Validators:    []validator.String{postgresTimeAtLeast(0)},
				MarkdownDescription: "`wal_receiver_timeout`: how long the standby waits for the primary before dropping the connection; `\"0\"` " +
					"never. A PostgreSQL time, compared by value. Defaults to `\"" + defaultWalReceiverTimeout + "\"`, PostgreSQL's default.",
			},
			"wait_timeout": schema.StringAttribute{
				Optional:      true,
				Computed:      true,
				CustomType:    normalized.DurationType{},
				PlanModifiers: []planmodifier.String{normalized.KeepEquivalentState(normalized.DurationType{})},
				Default:       stringdefault.StaticString(defaultStandbyWaitTimeout),
				Validators:    []validator.String{durationValidator},
				MarkdownDescription: "How long apply waits for the standby to stream from the primary after changing its settings, a Go duration " +
					"such as `\"60s\"` or `\"5m\"`. If it does not stream by then, apply fails with what the standby reports; a standby that streamed " +
					"before the apply gets the settings it streamed with written back (and is waited for again, as long), so a mistake does not cut it off its primary. Settings the server does not take within it (a configuration file with an error ignores reloads) " +
					"are written back too, so that no later reload puts them in effect. It bounds the " +
					"wait as a whole: a standby that stops answering fails the apply when it ends, and one that restarts meanwhile is waited for. Only used by the " +
					"provider. Defaults to `\"" + defaultStandbyWaitTimeout + "\"`.",
			},
			"reset_on_destroy": schema.BoolAttribute{
				Optional: true,
				Computed: true,
				Default:  booldefault.StaticBool(false),
				MarkdownDescription: "What destroying the resource does. `false` (the default): nothing on the server; Terraform forgets the " +
					"resource and the standby keeps streaming. `true`: `ALTER SYSTEM RESET` of every setting this resource manages " +
					"(" + quotedList(standbySettings) + ") and a reload, which **stops streaming** unless `postgresql.conf` sets `primary_conninfo` too. " +
					"It does not bring back the `primary_conninfo` the standby had before the resource was created (the create's plan names it in " +
					"a warning; `terraform import` adopts it instead). Refused, and warned of at plan, while the primary's " +
					"`synchronous_standby_names` needs this standby: every commit there would wait for it. The provider asks the primary the way " +
					"the standby connects (its `primary_conninfo`, at the WAL receiver's sender host and port, or, while the standby does not stream, " +
					"at the hosts `primary_conninfo` names, where the WAL receiver connects once the primary is back: each in turn, 5 s each, the first that " +
					"answers and is not in recovery) from Terraform's machine; a primary " +
					"it cannot reach or log in to from there (one that is down too), or that does not show enough, is warned of, at plan and apply, and not refused. A primary that accepts the connection and does not answer " +
					"within 5 s (frozen, overloaded), or refuses it for now (too many connections, every WAL sender taken, starting up), is asked again for 10 s, then " +
					"the destroy is refused: it comes back, and may need the standby. Skipped, with a warning, when the settings " +
					"are no longer the resource's: another `pgreplication_standby` object wrote them since, such as the new object of a `create_before_destroy` " +
					"replacement, which Terraform creates before it destroys the old one (and does for every resource a `create_before_destroy` resource " +
					"depends on). Create writes a random token of its own to the custom setting `" + standbyOwnerSetting + "` (`ALTER SYSTEM`; it shows " +
					"in `postgresql.auto.conf`, not in `pg_settings`) and keeps it in the resource's private state, so that the old object's destroy tells " +
					"the new object's settings from its own even when their values are the same; destroy resets the token too (a role that may not reset " +
					"it gets a warning: the settings are reset). A role that may not write the token takes the one the server holds, if any, as the " +
					"resource's own, as an import does. A standby without a token " +
					"(imported from a hand-made configuration, or created by an older provider or a role that may not write it) is reset unless its " +
					"primary host, port, user, `application_name` or slot differ from the resource's.",
			},

			// Computed
			"id": schema.StringAttribute{
				Computed:            true,
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
				MarkdownDescription: "Always `" + standbyImportID + "`: a server has one standby configuration. The import ID.",
			},
			"status": schema.StringAttribute{
				Computed:      true,
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
				MarkdownDescription: "The WAL receiver's `status` from `pg_stat_wal_receiver`: `streaming` when all is well; `starting`, " +
					"`waiting`, `restarting` or `stopping` in between; `stopped` when no WAL receiver runs (the standby cannot reach the primary, or replays from an archive).",
			},
			"sender_host": schema.StringAttribute{
				Computed:            true,
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
				MarkdownDescription: "The host the WAL receiver is connected to (`pg_stat_wal_receiver.sender_host`); null when it is not connected.",
			},
			"sender_port": schema.Int64Attribute{
				Computed:            true,
				PlanModifiers:       []planmodifier.Int64{int64planmodifier.UseStateForUnknown()},
				MarkdownDescription: "The port the WAL receiver is connected to (`pg_stat_wal_receiver.sender_port`); null when it is not connected.",
			},
			"received_lsn": schema.StringAttribute{
				Computed:            true,
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
				MarkdownDescription: "The last WAL location received and flushed (`pg_last_wal_receive_lsn()`), such as `0/3000148`; null before the standby has streamed.",
			},
			"replay_lsn": schema.StringAttribute{
				Computed:            true,
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
				MarkdownDescription: "The last WAL location replayed (`pg_last_wal_replay_lsn()`).",
			},
			"replay_lag": schema.Float64Attribute{
				Computed:      true,
				PlanModifiers: []planmodifier.Float64{float64planmodifier.UseStateForUnknown()},
				MarkdownDescription: "Seconds the standby's replay is behind: `now() - pg_last_xact_replay_timestamp()`, or `0` when it has " +
					"replayed everything it received (an idle primary sends no transactions, so the last one's age would not be lag). " +
					"Null before any transaction was replayed.",
			},
		},
	}
}

func (r *standbyResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.server = serverFromProviderData(req.ProviderData, &resp.Diagnostics)
}

func (r *standbyResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	ctx = r.logObject(ctx)
	var plan standbyResourceModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	password := primaryPasswordFor(ctx, &plan, nil, req.Config, &resp.Diagnostics)
	if resp.Diagnostics.HasError() {
		return
	}
	pool := r.server.PoolOrDiag(ctx, "", &resp.Diagnostics)
	if pool == nil {
		return
	}
	claim, ok := r.server.claimOwner(ctx, pool, standbyOwnerSetting, "pgreplication_standby", &resp.Diagnostics)
	if !ok {
		return
	}
	plan.ID = types.StringValue(standbyImportID)
	undo := "reset_on_destroy is not set, so its destroy forgets the settings and the standby keeps them"
	if plan.ResetOnDestroy.ValueBool() {
		undo = "reset_on_destroy is set, so its destroy resets the standby settings"
	}
	if ok, left := r.apply(ctx, &plan, password, false, &resp.Diagnostics); !ok {
		if left {
			keepTainted(ctx, &resp.State, resp.Private, &plan, claim, r.server, "pgreplication_standby", undo, &resp.Diagnostics)
		} else if left := r.server.release(ctx, pool, claim); left != "" {
			resp.Diagnostics.AddError("Cannot Write Back "+standbyOwnerSetting, left)
		}
		return
	}
	if err := r.server.settle(ctx, pool, claim); err != nil {
		if settingsLeft(err) {
			resp.Diagnostics.AddError("Owner Token Not in Effect", fmt.Sprintf("The owner token (%s) on %s does not take effect: %v.",
				standbyOwnerSetting, r.server.describe(), err))
			keepTainted(ctx, &resp.State, resp.Private, &plan, claim, r.server, "pgreplication_standby", undo, &resp.Diagnostics)
			return
		}
		resp.Diagnostics.AddError("Owner Token Not in Effect", fmt.Sprintf("The owner token (%s) on %s does not take effect: %v.%s",
			standbyOwnerSetting, r.server.describe(), err, r.server.release(ctx, pool, claim)))
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
	resp.Diagnostics.Append(claim.keep(ctx, resp.Private)...)
}

func (r *standbyResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	ctx = r.logObject(ctx)
	var state standbyResourceModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	pool := r.server.PoolOrDiag(ctx, "", &resp.Diagnostics)
	if pool == nil {
		return
	}
	cur, err := r.read(ctx, pool)
	if err != nil {
		resp.Diagnostics.AddError("Cannot Read Standby Configuration", "Reading the standby settings of "+r.server.describe()+" failed: "+err.Error())
		return
	}
	if cur.Conninfo == "" {
		// No primary_conninfo: nothing says where to stream from, so the
		// standby configuration is gone; plan to create it again.
		resp.State.RemoveResource(ctx)
		return
	}
	if state.ID.IsNull() {
		state.ID = types.StringValue(standbyImportID)
	}
	if err := cur.fill(ctx, &state); err != nil {
		resp.Diagnostics.AddError("Cannot Read Standby Configuration", "The standby settings of "+r.server.describe()+" cannot be read back: "+err.Error())
		return
	}
	if keys := cur.handSecrets(); len(keys) > 0 {
		resp.Diagnostics.AddAttributeWarning(path.Root("primary_conninfo_params"), "Secret in primary_conninfo Not Read",
			fmt.Sprintf("primary_conninfo on %s has %s, which pgreplication_standby does not manage: someone added it by hand. "+
				"Its value is a secret, so the state and the plan show %q instead, and the next apply writes primary_conninfo "+
				"without it. If the standby needs it, keep the secret in a file on the standby's host instead "+
				"(an sslkey without a passphrase, a passfile).", r.server.describe(), strings.Join(keys, ", "), secretNotRead))
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

func (r *standbyResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	ctx = r.logObject(ctx)
	var plan, state standbyResourceModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	password := primaryPasswordFor(ctx, &plan, &state, req.Config, &resp.Diagnostics)
	if resp.Diagnostics.HasError() {
		return
	}
	refreshed := plan // the live attributes as planned: the last refresh's
	if ok, _ := r.apply(ctx, &plan, password, true, &resp.Diagnostics); !ok {
		return
	}
	plan.Status, plan.SenderHost, plan.SenderPort = refreshed.Status, refreshed.SenderHost, refreshed.SenderPort
	plan.ReceivedLSN, plan.ReplayLSN, plan.ReplayLag = refreshed.ReceivedLSN, refreshed.ReplayLSN, refreshed.ReplayLag
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

func (r *standbyResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	ctx = r.logObject(ctx)
	var state standbyResourceModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if !state.ResetOnDestroy.ValueBool() {
		// Forget only: cutting a standby off its primary is not something a
		// resource should do because it left the configuration.
		return
	}
	pool := r.server.PoolOrDiag(ctx, "", &resp.Diagnostics)
	if pool == nil {
		return
	}
	// The Delete of a create_before_destroy replacement's old object comes
	// after the new object wrote its settings and its token
	// (system_settings_owner.go): they are not this object's to reset,
	// whatever their values.
	owner := r.server.ownedElsewhere(ctx, pool, standbyOwnerSetting, req.Private)
	if owner.elsewhere {
		resp.Diagnostics.AddWarning("Standby Configuration Left As Is",
			fmt.Sprintf("reset_on_destroy is set, but the standby settings of %s were written by another pgreplication_standby object since "+
				"this one was created (%s holds its token, not this one's): the new object of a create_before_destroy replacement, "+
				"which Terraform creates before it destroys this one, or another configuration. So the destroy resets nothing and the "+
				"standby keeps streaming as it does. If nothing manages them now and they should be reset, a superuser runs ALTER SYSTEM "+
				"RESET for %s and %s, then SELECT pg_reload_conf().", r.server.describe(), standbyOwnerSetting, andList(standbySettings), standbyOwnerSetting))
		return
	}
	// A value that differs tells the same, for an object without a token;
	// not for one whose token postgresql.auto.conf holds, not in effect
	// (owner.written): the values in effect are not the ones its create
	// wrote there.
	if changed := r.notOwnConninfo(ctx, pool, &state); changed != "" && !owner.written {
		resp.Diagnostics.AddWarning("Standby Configuration Left As Is",
			fmt.Sprintf("reset_on_destroy is set, but the standby settings of %s are no longer this resource's: %s differs from its state. "+
				"Another object wrote them since (the replacement of a create_before_destroy replacement, or a change by hand), so the "+
				"destroy resets nothing and the standby keeps streaming as it does. Reset them by hand (ALTER SYSTEM RESET) if that was meant.",
				r.server.describe(), changed))
		return
	}
	if r.refuseReset(ctx, pool, &resp.Diagnostics) {
		return
	}
	// The settings first, then the token (resetOwned): a token that cannot
	// be reset must not fail the destroy once the settings are.
	if err := r.server.resetOwned(ctx, pool, standbySettings, standbyOwnerSetting, owner.token, "pgreplication_standby",
		"the standby settings ("+andList(standbySettings)+")", &resp.Diagnostics); err != nil {
		resp.Diagnostics.AddError("Cannot Reset Standby Configuration",
			"reset_on_destroy is set, but resetting the standby settings of "+r.server.describe()+" failed; every setting that could be reset was:\n"+err.Error()+
				"\nFix the privilege, or set reset_on_destroy = false to only forget the resource.")
	}
}

func (r *standbyResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	if req.ID != standbyImportID {
		resp.Diagnostics.AddError("Invalid Import ID",
			fmt.Sprintf("The import ID of pgreplication_standby is always %q (a server has one standby configuration; the provider instance names the server), not %q.", standbyImportID, req.ID))
		return
	}
	// The provider-only attributes have no server value: import their
	// defaults, so that a configuration that leaves them out plans nothing.
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), standbyImportID)...)
	// The time settings start at their defaults too, so that Read keeps the
	// default's spelling when the server's value means the same ("60s", not
	// SHOW's "1min": normalized.PostgresTime).
	for attr, value := range map[string]any{
		"wait_timeout":                defaultStandbyWaitTimeout,
		"reset_on_destroy":            false,
		"recovery_min_apply_delay":    defaultRecoveryMinApplyDelay,
		"max_standby_streaming_delay": defaultMaxStandbyStreamingDelay,
		"wal_receiver_timeout":        defaultWalReceiverTimeout,
	} {
		resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root(attr), value)...)
	}
	// An import connects (Read, which follows at once, would too): it
	// cannot take the server's token without asking, and an object imported
	// without it would take that token for another object's and never reset.
	if pool := r.server.PoolOrDiag(ctx, "", &resp.Diagnostics); pool != nil {
		resp.Diagnostics.Append(r.server.adoptOwner(ctx, pool, standbyOwnerSetting, "pgreplication_standby", resp.Private)...)
	}
}

func (r *standbyResource) ValidateConfig(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	for _, attr := range []string{"primary_password", "primary_password_wo"} {
		var password types.String
		resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root(attr), &password)...)
		if strings.ContainsAny(password.ValueString(), "\r\n") {
			resp.Diagnostics.AddAttributeError(path.Root(attr), "Password Contains a Line Break",
				attr+" contains a line break, which PostgreSQL cannot store in primary_conninfo (ALTER SYSTEM refuses a value with a newline). "+
					"A password read with file() keeps the file's last newline: use trimspace(file(…)), or change the password.")
		}
	}
	// The other values of primary_conninfo: ALTER SYSTEM refuses a line
	// break anywhere in it, which apply would only learn from the server.
	for _, attr := range []string{"primary_host", "primary_user", "passfile", "application_name"} {
		var value types.String
		resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root(attr), &value)...)
		if strings.ContainsAny(value.ValueString(), "\r\n") {
			resp.Diagnostics.AddAttributeError(path.Root(attr), "Value Contains a Line Break",
				fmt.Sprintf("%s = %q contains a line break, which PostgreSQL cannot store in primary_conninfo (ALTER SYSTEM refuses "+
					"a value with a newline). Remove it; a value read with file() keeps the file's last newline: use trimspace(file(…)).", attr, value.ValueString()))
		}
	}
	// libpq refuses a port list whose length is not the host list's.
	var host types.String
	var ports types.List
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("primary_host"), &host)...)
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("primary_ports"), &ports)...)
	if !host.IsNull() && !host.IsUnknown() && !ports.IsNull() && !ports.IsUnknown() {
		if hosts := len(strings.Split(host.ValueString(), ",")); hosts != len(ports.Elements()) {
			resp.Diagnostics.AddAttributeError(path.Root("primary_ports"), "Ports Do Not Match Hosts",
				fmt.Sprintf("primary_ports has %d ports and primary_host = %q has %d hosts: libpq needs one port for each host, in the same order. "+
					"List one port per host, or, when every host listens on the same port, set primary_port instead.", len(ports.Elements()), host.ValueString(), hosts))
		}
	}
	var params types.Map
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("primary_conninfo_params"), &params)...)
	if resp.Diagnostics.HasError() || params.IsNull() || params.IsUnknown() {
		return
	}
	for key, value := range params.Elements() {
		attr := path.Root("primary_conninfo_params").AtMapKey(key)
		if problem := standbyParamProblem(key); problem != "" {
			resp.Diagnostics.AddAttributeError(attr, "Invalid Connection Parameter", problem)
			continue
		}
		if v, ok := value.(types.String); ok && strings.ContainsAny(v.ValueString(), "\r\n") {
			resp.Diagnostics.AddAttributeError(attr, "Invalid Connection Parameter",
				fmt.Sprintf("The value of %q contains a line break, which PostgreSQL cannot store in primary_conninfo (ALTER SYSTEM refuses it). Remove it.", key))
		}
		if v, ok := value.(types.String); ok && !v.IsUnknown() {
			if err := conninfo.CheckValue(key, v.ValueString()); err != nil {
				resp.Diagnostics.AddAttributeError(attr, "Invalid Connection Parameter", err.Error()+".")
			}
		}
	}
}

// standbyParamProblem says why key cannot be a key of primary_conninfo_params,
// or "" when it can: it must be one of libpq's keywords, and not one that has
// its own attribute or would undo what those attributes say.
func standbyParamProblem(key string) string {
	switch {
	case slices.Contains(standbyManagedParams, key):
		return fmt.Sprintf("%q cannot be set in primary_conninfo_params: pgreplication_standby has an attribute for it. Use that attribute instead (%s).",
			key, quotedList(standbyManagedParams))
	case key == "hostaddr":
		return `"hostaddr" cannot be set in primary_conninfo_params: it overrides the address of primary_host. Put the address in primary_host.`
	case key == "service":
		return `"service" cannot be set in primary_conninfo_params: a service file can set the host, user and password that have their own attributes. Set those attributes instead.`
	case key == "replication":
		return `"replication" cannot be set in primary_conninfo_params: the standby's WAL receiver sets it itself.`
	case slices.Contains(conninfo.SecretKeywords, key):
		return fmt.Sprintf("%q cannot be set in primary_conninfo_params: its value is a secret, and this map is neither sensitive nor masked. Use a file on the standby's host instead (sslkey without a passphrase, passfile).", key)
	case !slices.Contains(conninfo.Keywords, key):
		return fmt.Sprintf("%q is not a libpq connection keyword, so it cannot be part of primary_conninfo. Use one of: %s.", key, quotedList(standbyConninfoParams()))
	}
	return ""
}

// standbyConninfoParams are the keywords primary_conninfo_params accepts.
func standbyConninfoParams() []string {
	var ok []string
	for _, k := range conninfo.Keywords {
		if standbyParamProblem(k) == "" {
			ok = append(ok, k)
		}
	}
	return ok
}

// ModifyPlan refuses, at plan time, a server that is not a standby, and one
// too old to change primary_conninfo with a reload.
func (r *standbyResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() {
		r.warnDestroy(ctx, req.State, &resp.Diagnostics)
		return
	}
	var state standbyResourceModel
	var wo types.String
	if !req.State.Raw.IsNull() {
		resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
		resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("primary_password_wo"), &wo)...)
		if state.PrimaryPassword.ValueString() != "" && !wo.IsUnknown() && wo.ValueString() == state.PrimaryPassword.ValueString() {
			object := "the standby"
			if r.server != nil {
				object += " on " + r.server.describe()
			}
			resp.Diagnostics.Append(passwordLeavesState("primary_password_wo", object, "primary_password"))
		}
	}
	if r.server == nil || r.server.unknown {
		return // the server cannot be asked yet
	}
	r.server.requireMajor(ctx, 13, "Changing a standby's primary_conninfo and primary_slot_name with a reload", path.Root("primary_host"), &resp.Diagnostics)
	pool, err := r.server.Pool(ctx, "")
	if err != nil {
		return
	}
	var inRecovery bool
	if err := pool.QueryRow(ctx, `SELECT pg_is_in_recovery()`).Scan(&inRecovery); err != nil {
		return // unreachable now: Read or apply reports it
	}
	if !inRecovery {
		resp.Diagnostics.Append(notAStandby(r.server))
		return
	}
	if req.State.Raw.IsNull() {
		// pg_settings shows primary_conninfo only to roles with
		// pg_read_all_settings: for others the plan cannot tell.
		if v, from, found := settingInEffect(ctx, pool, "primary_conninfo"); found {
			p, _ := conninfo.Parse(v)
			resp.Diagnostics.Append(overwriteWarning("pgreplication_standby", standbyImportID, "primary_conninfo", pgsql.Literal(p.Redacted()), from))
		}
		return
	}
	resp.Diagnostics.Append(r.server.pendingWarning(ctx, pool, "the standby", standbySettings, func(name, v string) string {
		if name == "primary_conninfo" {
			p, _ := conninfo.Parse(v)
			return p.Redacted()
		}
		return pgsql.Literal(v)
	})...)
}

// logObject names the standby in the log lines of the statements run with ctx.
func (r *standbyResource) logObject(ctx context.Context) context.Context {
	if r.server == nil {
		return ctx
	}
	return statement.WithObject(ctx, "standby on "+r.server.describe())
}

func notAStandby(s *server) diag.Diagnostic {
	return diag.NewErrorDiagnostic("Server Is Not a Standby",
		"pgreplication_standby configures a standby, but "+s.describe()+" is not in recovery (pg_is_in_recovery() is false): it is a primary. "+
			"Point the resource's provider at the standby (provider = pgreplication.<standby alias>), or, if this server was promoted, "+
			"remove the resource from the configuration (and from the state with terraform state rm).")
}

// apply writes the planned settings, reloads, and waits until the standby
// streams from the planned primary; then it fills the computed attributes.
// An update that changes no server setting (only wait_timeout or
// reset_on_destroy) touches nothing and waits for nothing. After a failure,
// left tells whether the settings it wrote stay written on the server (in
// effect, or waiting in postgresql.auto.conf for a reload): a failed create
// keeps its object then (keepTainted).
func (r *standbyResource) apply(ctx context.Context, plan *standbyResourceModel, password primaryPassword, update bool, diags *diag.Diagnostics) (ok, left bool) {
	pool := r.server.PoolOrDiag(ctx, "", diags)
	if pool == nil {
		return false, false
	}
	timeout, err := time.ParseDuration(plan.WaitTimeout.ValueString())
	if err != nil {
		diags.AddAttributeError(path.Root("wait_timeout"), "Invalid Duration", err.Error())
		return false, false
	}
	deadline := time.Now().Add(timeout)
	before, err := r.read(ctx, pool)
	if err != nil {
		diags.AddError("Cannot Read Standby Configuration", "Reading the standby settings of "+r.server.describe()+" failed: "+err.Error())
		return false, false
	}
	if !before.InRecovery {
		diags.Append(notAStandby(r.server))
		return false, false
	}
	if password.keep {
		current, _ := conninfo.Parse(before.Conninfo)
		password.value = current["password"]
	}
	want, werr := standbyWanted(ctx, plan, password.value)
	if werr != nil {
		diags.AddError("Invalid Standby Configuration", werr.Error())
		return false, false
	}
	if normalized.SameConnection(before.Conninfo, want.Conninfo) {
		// The connection the standby has, written another way (a URI, by
		// hand, other order or quoting): its text stays, since a new text
		// restarts the WAL receiver and streaming stops meanwhile.
		want.Conninfo = before.Conninfo
	}
	// The settings before this apply are written back if the new ones do
	// not stream: their secrets are masked too.
	had, _ := conninfo.Parse(before.Conninfo)
	ctx = statement.WithSecrets(ctx, append(had.Secrets(), want.password)...)
	if update && want.matches(before) {
		if err := before.fill(ctx, plan); err != nil {
			diags.AddError("Cannot Read Standby Configuration", "The standby settings of "+r.server.describe()+" cannot be read back: "+err.Error())
			return false, false
		}
		return true, false
	}
	// No values the prior state wrote: a standby's role has
	// pg_read_all_settings (primary_conninfo), which shows the file.
	change, err := r.server.alterSystem(ctx, pool, want.settings(), nil)
	if err != nil {
		diags.AddError("Cannot Configure Standby", "Writing the standby settings of "+r.server.describe()+" failed: "+err.Error())
		return false, settingsLeft(err)
	}

	// The reload reaches sessions asynchronously; wait until the server's
	// effective settings are the planned ones.
	var cur standbyState
	applied, err := pollUntil(ctx, time.Until(deadline), func(ctx context.Context) (bool, error) {
		var err error
		cur, err = r.read(ctx, pool)
		return err == nil && want.matches(cur), err
	})
	if err != nil {
		diags.AddError("Cannot Read Standby Configuration", "Reading the standby settings of "+r.server.describe()+" back failed: "+err.Error())
		return false, true
	}
	if !applied {
		msg, left := r.server.notTaken(ctx, pool, change)
		diags.AddError("Standby Settings Not Applied", fmt.Sprintf(
			"ALTER SYSTEM and pg_reload_conf() succeeded on %s, but after %s its effective settings still differ: %s. "+
				"The server ignores a reload when a configuration file has an error (its log says which), and takes none while its postmaster is stopped. %s",
			r.server.describe(), timeout, want.differences(cur), msg))
		return false, left
	}

	// A new primary_conninfo or slot restarts the WAL receiver: wait for a new
	// one, not the old one that is still streaming with the old settings
	// until the startup process takes the reload. Or the one running has
	// them already: after a hand edit that this apply reverts before the
	// startup process took the first reload, it reads the configuration
	// once, sees no change, and never restarts the receiver (this apply
	// then waited wait_timeout for a restart and failed, at load 35).
	restart := before.Conninfo != want.Conninfo || before.SlotName != want.SlotName
	streaming, err := pollUntil(ctx, time.Until(deadline), func(ctx context.Context) (bool, error) {
		var err error
		cur, err = r.read(ctx, pool)
		if err != nil {
			return false, err
		}
		return cur.streamingFrom(want) && (!restart || cur.ReceiverPID != before.ReceiverPID || cur.runsAlready(before, want)), nil
	})
	if err != nil {
		diags.AddError("Cannot Read Standby Status", "Reading pg_stat_wal_receiver on "+r.server.describe()+" failed: "+err.Error())
		return false, true
	}
	if !streaming {
		restored, left := r.restore(ctx, pool, before, want, timeout)
		diags.AddError("Standby Is Not Streaming", fmt.Sprintf(
			"%s does not stream from %s after %s. The standby reports: %s. It was asked to connect with primary_conninfo = %s "+
				"and primary_slot_name = %q. %s Check that the primary is "+
				"reachable from the standby at that address, that its pg_hba.conf allows a replication connection for %q, "+
				"that the password is right and that the slot exists on the primary; the standby's server log says why it "+
				"cannot connect. Then apply again, or raise wait_timeout if the standby needs longer.",
			r.server.describe(), want.primariesText(), timeout,
			cur.describeReceiver(), want.redactedConninfo, want.SlotName, restored, plan.PrimaryUser.ValueString()))
		return false, left
	}
	if err := cur.fill(ctx, plan); err != nil {
		diags.AddError("Cannot Read Standby Configuration", "The standby settings of "+r.server.describe()+" cannot be read back: "+err.Error())
		return false, true
	}
	return true, false
}

// restore writes back the settings the standby had before an apply whose
// settings do not stream, when it streamed with them: a failed apply must
// not leave a standby cut off from its primary (and a synchronous one
// holding every commit there). It waits, within timeout, for the standby to
// stream again, and says what it did, for the apply's error; left is true
// when the apply's settings stay in effect.
func (r *standbyResource) restore(ctx context.Context, pool *pgxpool.Pool, before standbyState, want standbyWant, timeout time.Duration) (msg string, left bool) {
	if before.Status == nil || *before.Status != "streaming" || before.SenderHost == nil || before.SenderPort == nil {
		return "The settings are written (ALTER SYSTEM) and stay in effect: the standby did not stream before this apply either.", true
	}
	var back []systemSetting
	wanted := want.settings()
	for i, s := range before.settings() {
		if *s.Value != *wanted[i].Value {
			back = append(back, s)
		}
	}
	if _, err := r.server.alterSystem(ctx, pool, back, nil); err != nil {
		return fmt.Sprintf("Writing back the settings it had before, with which it streamed, failed, so the new ones stay in effect: %v.", err), true
	}
	var cur standbyState
	again, err := pollUntil(ctx, timeout, func(ctx context.Context) (bool, error) {
		var err error
		cur, err = r.read(ctx, pool)
		return err == nil && cur.Status != nil && *cur.Status == "streaming" && cur.SenderHost != nil && cur.SenderPort != nil &&
			*cur.SenderHost == *before.SenderHost && *cur.SenderPort == *before.SenderPort, err
	})
	if err != nil || !again {
		return fmt.Sprintf("The settings it had before, with which it streamed from %s:%d, are written back (ALTER SYSTEM), but it does not stream "+
			"again yet after %s (%s).", *before.SenderHost, *before.SenderPort, timeout, cur.describeReceiver()), false
	}
	return fmt.Sprintf("The settings it had before are written back (ALTER SYSTEM), and it streams again from %s:%d: this apply changed nothing on it.",
		*before.SenderHost, *before.SenderPort), false
}

// settings are s's settings as apply writes them (standbyWant.settings), in
// SHOW's form: what restore writes back.
func (s standbyState) settings() []systemSetting {
	return standbySystemSettings(s.Conninfo, s.SlotName, s.HotStandbyFeedback, s.ApplyDelay, s.StreamingDelay, s.ReceiverTimeout)
}

// primaryPassword is the password apply writes into primary_conninfo.
type primaryPassword struct {
	value string
	keep  bool // the one primary_conninfo has now (write-only, version unchanged)
}

// primaryPasswordFor decides where the password comes from: primary_password;
// or, with the write-only pair, primary_password_wo from the configuration
// when the resource is created or primary_password_wo_version changed, and
// otherwise the password the server has, which Terraform cannot compare.
func primaryPasswordFor(ctx context.Context, plan, prior *standbyResourceModel, config tfsdk.Config, diags *diag.Diagnostics) primaryPassword {
	if plan.PrimaryPasswordWOVersion.IsNull() {
		return primaryPassword{value: plan.PrimaryPassword.ValueString()}
	}
	if prior != nil && prior.PrimaryPasswordWOVersion.Equal(plan.PrimaryPasswordWOVersion) {
		return primaryPassword{keep: true}
	}
	var wo types.String
	diags.Append(config.GetAttribute(ctx, path.Root("primary_password_wo"), &wo)...)
	return primaryPassword{value: wo.ValueString()}
}

// standbyWant is the planned configuration, as the server will show it.
type standbyWant struct {
	Conninfo                                       string
	redactedConninfo                               string
	password                                       string // in Conninfo: never to be shown
	SlotName                                       string
	HotStandbyFeedback                             bool
	ApplyDelay, StreamingDelay, ReceiverTimeout    string
	applyDelayMs, streamingDelayMs, receiverTimeMs int64
}

func standbyWanted(ctx context.Context, m *standbyResourceModel, password string) (standbyWant, error) {
	p := conninfo.Params{}
	if !m.PrimaryConninfoParams.IsNull() {
		extra := map[string]string{}
		if d := m.PrimaryConninfoParams.ElementsAs(ctx, &extra, false); d.HasError() {
			return standbyWant{}, fmt.Errorf("primary_conninfo_params: cannot read the map")
		}
		for k, v := range extra {
			p[k] = v
		}
	}
	p["host"] = m.PrimaryHost.ValueString()
	p["port"] = strconv.FormatInt(m.PrimaryPort.ValueInt64(), 10)
	if !m.PrimaryPorts.IsNull() {
		var ports []int64
		if d := m.PrimaryPorts.ElementsAs(ctx, &ports, false); d.HasError() {
			return standbyWant{}, fmt.Errorf("primary_ports: cannot read the list")
		}
		p["port"] = joinPorts(ports)
	}
	p["user"] = m.PrimaryUser.ValueString()
	p["sslmode"] = m.PrimarySSLMode.ValueString()
	p["passfile"] = m.Passfile.ValueString()
	p["password"] = password
	p["application_name"] = m.ApplicationName.ValueString()
	w := standbyWant{
		Conninfo:           p.String(),
		redactedConninfo:   p.Redacted(),
		password:           p["password"],
		SlotName:           m.PrimarySlotName.ValueString(),
		HotStandbyFeedback: m.HotStandbyFeedback.ValueBool(),
		ApplyDelay:         m.RecoveryMinApplyDelay.ValueString(),
		StreamingDelay:     m.MaxStandbyStreamingDelay.ValueString(),
		ReceiverTimeout:    m.WalReceiverTimeout.ValueString(),
	}
	var err error
	if w.applyDelayMs, err = guc.Milliseconds(w.ApplyDelay); err != nil {
		return w, fmt.Errorf("recovery_min_apply_delay: %w", err)
	}
	if w.streamingDelayMs, err = guc.Milliseconds(w.StreamingDelay); err != nil {
		return w, fmt.Errorf("max_standby_streaming_delay: %w", err)
	}
	if w.receiverTimeMs, err = guc.Milliseconds(w.ReceiverTimeout); err != nil {
		return w, fmt.Errorf("wal_receiver_timeout: %w", err)
	}
	return w, nil
}

func (w standbyWant) settings() []systemSetting {
	return standbySystemSettings(w.Conninfo, w.SlotName, w.HotStandbyFeedback, w.ApplyDelay, w.StreamingDelay, w.ReceiverTimeout)
}

// standbySystemSettings are the ALTER SYSTEM settings of a standby configuration.
// An unset slot is written as an empty string rather than reset, so that a slot in
// postgresql.conf cannot come back underneath the declared configuration.
func standbySystemSettings(conninfo, slot string, feedback bool, applyDelay, streamingDelay, receiverTimeout string) []systemSetting {
	on := "off"
	if feedback {
		on = "on"
	}
	return []systemSetting{
		setTo("primary_conninfo", conninfo),
		setTo("primary_slot_name", slot),
		setTo("hot_standby_feedback", on),
		setTo("recovery_min_apply_delay", applyDelay),
		setTo("max_standby_streaming_delay", streamingDelay),
		setTo("wal_receiver_timeout", receiverTimeout),
	}
}

func (w standbyWant) matches(s standbyState) bool {
	return w.differences(s) == ""
}

// differences names the settings whose effective value is not the planned
// one, for an error message; the password stays out of it.
func (w standbyWant) differences(s standbyState) string {
	var d []string
	if s.Conninfo != w.Conninfo {
		d = append(d, "primary_conninfo")
	}
	if s.SlotName != w.SlotName {
		d = append(d, fmt.Sprintf("primary_slot_name = %q", s.SlotName))
	}
	if s.HotStandbyFeedback != w.HotStandbyFeedback {
		d = append(d, fmt.Sprintf("hot_standby_feedback = %v", s.HotStandbyFeedback))
	}
	for _, t := range []struct {
		name string
		got  string
		want int64
	}{
		{"recovery_min_apply_delay", s.ApplyDelay, w.applyDelayMs},
		{"max_standby_streaming_delay", s.StreamingDelay, w.streamingDelayMs},
		{"wal_receiver_timeout", s.ReceiverTimeout, w.receiverTimeMs},
	} {
		if ms, err := guc.Milliseconds(t.got); err != nil || ms != t.want {
			d = append(d, fmt.Sprintf("%s = %s", t.name, t.got))
		}
	}
	return strings.Join(d, ", ")
}

// standbyState is what a standby shows: its effective settings, in SHOW's
// form, and its WAL receiver.
type standbyState struct {
	InRecovery                                  bool
	Conninfo                                    string
	SlotName                                    string
	HotStandbyFeedback                          bool
	ApplyDelay, StreamingDelay, ReceiverTimeout string

	ReceiverPID      int32   // 0: no WAL receiver
	Status           *string // pg_stat_wal_receiver
	SenderHost       *string
	SenderPort       *int32
	ReceiverSlot     *string
	ReceiverConninfo *string // obfuscated by the server: no password
	ReceivedLSN      *string
	ReplayLSN        *string
	ReplayLag        *float64
}

// read is readStandby, its failure explained (queryError): the statement,
// the server's message, and the grants that fix a refusal.
func (r *standbyResource) read(ctx context.Context, pool *pgxpool.Pool) (standbyState, error) {
	s, err := readStandby(ctx, pool)
	return s, r.server.queryError(ctx, readStandbySQL, err, standbyReadPrivileges...)
}

// readStandbySQL reads the effective settings (those of a new session after
// the last reload) and pg_stat_wal_receiver in one round trip.
const readStandbySQL = `
SELECT pg_is_in_recovery(),
       current_setting('primary_conninfo'),
       current_setting('primary_slot_name'),
       current_setting('hot_standby_feedback')::bool,
       current_setting('recovery_min_apply_delay'),
       current_setting('max_standby_streaming_delay'),
       current_setting('wal_receiver_timeout'),
       r.pid, r.status, r.sender_host, r.sender_port, r.slot_name, r.conninfo,
       pg_last_wal_receive_lsn()::text,
       pg_last_wal_replay_lsn()::text,
       CASE WHEN pg_last_wal_receive_lsn() <= pg_last_wal_replay_lsn() THEN 0
            ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8 END
FROM (SELECT 1) AS one LEFT JOIN pg_stat_wal_receiver AS r ON true`

// readStandby runs readStandbySQL.
func readStandby(ctx context.Context, pool *pgxpool.Pool) (standbyState, error) {
	var s standbyState
	var pid *int32
	err := pool.QueryRow(ctx, readStandbySQL).Scan(
		&s.InRecovery, &s.Conninfo, &s.SlotName, &s.HotStandbyFeedback,
		&s.ApplyDelay, &s.StreamingDelay, &s.ReceiverTimeout,
		&pid, &s.Status, &s.SenderHost, &s.SenderPort, &s.ReceiverSlot, &s.ReceiverConninfo,
		&s.ReceivedLSN, &s.ReplayLSN, &s.ReplayLag)
	if errors.Is(err, pgx.ErrNoRows) {
		return s, fmt.Errorf("no row from pg_stat_wal_receiver query")
	}
	if pid != nil {
		s.ReceiverPID = *pid
		if err == nil && s.Status == nil {
			err = hiddenStatsError{view: "pg_stat_wal_receiver"}
		}
	}
	return s, err
}

// streamingFrom reports whether the WAL receiver streams from the planned
// primary (one of the hosts of a list, at its port) through the planned slot.
func (s standbyState) streamingFrom(w standbyWant) bool {
	if s.Status == nil || *s.Status != "streaming" || s.SenderHost == nil || s.SenderPort == nil {
		return false
	}
	slot := ""
	if s.ReceiverSlot != nil {
		slot = *s.ReceiverSlot
	}
	return slices.Contains(w.primaries(), hostPort{*s.SenderHost, int64(*s.SenderPort)}) && slot == w.SlotName
}

// hostPort is one address a standby may stream from.
type hostPort struct {
	host string
	port int64
}

func (a hostPort) String() string { return fmt.Sprintf("%s:%d", a.host, a.port) }

// primaries are the addresses of w's primary_conninfo, as libpq pairs them:
// a host list with a port list of the same length, or one port for every
// host; an empty port is the default one.
func (w standbyWant) primaries() []hostPort {
	p, _ := conninfo.Parse(w.Conninfo)
	ports, err := parsePorts(p["port"])
	if err != nil {
		return nil
	}
	var out []hostPort
	for i, h := range strings.Split(p["host"], ",") {
		port := int64(defaultPrimaryPort)
		switch {
		case len(ports) == 1:
			port = ports[0]
		case i < len(ports):
			port = ports[i]
		}
		out = append(out, hostPort{strings.TrimSpace(h), port})
	}
	return out
}

// primariesText names w's primary addresses for a message: "h:5432", or
// "h1:5433 or h2:5434" for a host list.
func (w standbyWant) primariesText() string {
	var names []string
	for _, a := range w.primaries() {
		names = append(names, a.String())
	}
	return strings.Join(names, " or ")
}

// parsePorts reads libpq's port parameter: one port, or a comma-separated
// list of them, where an empty entry is the default port. Empty: none.
func parsePorts(v string) ([]int64, error) {
	if v == "" {
		return nil, nil
	}
	var ports []int64
	for _, part := range strings.Split(v, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			ports = append(ports, defaultPrimaryPort)
			continue
		}
		port, err := strconv.ParseInt(part, 10, 64)
		if err != nil || port < 1 || port > 65535 {
			return nil, fmt.Errorf("port=%q is not a port number or a comma-separated list of them; set the port by hand "+
				"(ALTER SYSTEM SET primary_conninfo) or with this resource's primary_port or primary_ports", v)
		}
		ports = append(ports, port)
	}
	return ports, nil
}

// joinPorts writes ports as libpq's port list.
func joinPorts(ports []int64) string {
	parts := make([]string, len(ports))
	for i, p := range ports {
		parts[i] = strconv.FormatInt(p, 10)
	}
	return strings.Join(parts, ",")
}

// runsAlready reports whether the WAL receiver s shows runs w's connection
// settings already, though apply changed them from before's (see apply):
// its conninfo holds each parameter w sets, as key=value (the server shows
// the values unquoted). The password is hidden there (********), so it must
// be before's; a server that shows no conninfo tells nothing. dbname and
// fallback_application_name are the receiver's own.
func (s standbyState) runsAlready(before standbyState, w standbyWant) bool {
	if s.ReceiverConninfo == nil {
		return false
	}
	old, _ := conninfo.Parse(before.Conninfo)
	if old["password"] != w.password {
		return false
	}
	shown := " " + *s.ReceiverConninfo + " "
	p, _ := conninfo.Parse(w.Conninfo)
	for k, v := range p {
		switch k {
		case "password", "dbname", "fallback_application_name":
			continue
		}
		if v != "" && !strings.Contains(shown, " "+k+"="+v+" ") {
			return false
		}
	}
	return true
}

// describeReceiver says what pg_stat_wal_receiver shows, for an error.
func (s standbyState) describeReceiver() string {
	if s.Status == nil {
		return "no WAL receiver is running (pg_stat_wal_receiver is empty): it cannot connect to the primary, or the primary refused it"
	}
	str := func(p *string) string {
		if p == nil {
			return "none"
		}
		return *p
	}
	sender := "none"
	if s.SenderHost != nil && s.SenderPort != nil {
		sender = fmt.Sprintf("%s:%d", *s.SenderHost, *s.SenderPort)
	}
	return fmt.Sprintf("pg_stat_wal_receiver status %s, sender %s, slot %s, received up to %s, conninfo %q",
		*s.Status, sender, str(s.ReceiverSlot), str(s.ReceivedLSN), str(s.ReceiverConninfo))
}

// fill sets m from what the server shows. Time settings that equal m's
// values keep m's spelling ("300s" stays "300s" though SHOW says "5min").
func (s standbyState) fill(ctx context.Context, m *standbyResourceModel) error {
	p, err := conninfo.Parse(s.Conninfo)
	if err != nil {
		return fmt.Errorf("primary_conninfo: %w", err)
	}
	optional := func(key string) types.String {
		if v, ok := p[key]; ok && v != "" {
			return types.StringValue(v)
		}
		return types.StringNull()
	}
	m.PrimaryHost = optional("host")
	m.PrimaryUser = optional("user")
	m.Passfile = optional("passfile")
	m.PrimaryPassword = optional("password")
	if !m.PrimaryPasswordWOVersion.IsNull() {
		// Write-only: the password stays on the server, never in the state.
		m.PrimaryPassword = types.StringNull()
	}
	m.ApplicationName = optional("application_name")
	m.PrimarySSLMode = types.StringValue(defaultPrimarySSLMode)
	if v := p["sslmode"]; v != "" {
		m.PrimarySSLMode = types.StringValue(v)
	}
	m.PrimaryPort = types.Int64Value(defaultPrimaryPort)
	m.PrimaryPorts = types.ListNull(types.Int64Type)
	ports, err := parsePorts(p["port"])
	if err != nil {
		return fmt.Errorf("primary_conninfo: %w", err)
	}
	switch {
	case len(ports) > 1:
		list, d := types.ListValueFrom(ctx, types.Int64Type, ports)
		if d.HasError() {
			return fmt.Errorf("primary_ports: cannot build the list")
		}
		m.PrimaryPorts = list
	case len(ports) == 1:
		m.PrimaryPort = types.Int64Value(ports[0])
	}
	extra := map[string]string{}
	for k, v := range p {
		switch {
		case slices.Contains(standbyManagedParams, k):
		case slices.Contains(conninfo.SecretKeywords, k):
			// Added by hand (the map refuses it): the plan shows the key
			// going away, never its value (Read warns: handSecrets).
			extra[k] = secretNotRead
		default:
			extra[k] = v
		}
	}
	if len(extra) == 0 {
		m.PrimaryConninfoParams = types.MapNull(types.StringType)
	} else {
		var d diag.Diagnostics
		m.PrimaryConninfoParams, d = types.MapValueFrom(ctx, types.StringType, extra)
		if d.HasError() {
			return fmt.Errorf("primary_conninfo_params: cannot build the map")
		}
	}

	m.PrimarySlotName = types.StringNull()
	if s.SlotName != "" {
		m.PrimarySlotName = types.StringValue(s.SlotName)
	}
	m.HotStandbyFeedback = types.BoolValue(s.HotStandbyFeedback)
	// The server's spelling ("1min"); the framework keeps the prior value
	// when it means the same ("60s"): see normalized.PostgresTime.
	m.RecoveryMinApplyDelay = normalized.NewPostgresTime(s.ApplyDelay)
	m.MaxStandbyStreamingDelay = normalized.NewPostgresTime(s.StreamingDelay)
	m.WalReceiverTimeout = normalized.NewPostgresTime(s.ReceiverTimeout)

	m.Status = types.StringValue("stopped")
	if s.Status != nil {
		m.Status = types.StringValue(*s.Status)
	}
	m.SenderHost = types.StringPointerValue(s.SenderHost)
	m.SenderPort = types.Int64Null()
	if s.SenderPort != nil {
		m.SenderPort = types.Int64Value(int64(*s.SenderPort))
	}
	m.ReceivedLSN = types.StringPointerValue(s.ReceivedLSN)
	m.ReplayLSN = types.StringPointerValue(s.ReplayLSN)
	m.ReplayLag = types.Float64PointerValue(s.ReplayLag)
	return nil
}

// secretNotRead stands in primary_conninfo_params for the value of a secret
// keyword (sslpassword, …) that someone wrote into primary_conninfo by hand:
// the map is neither sensitive nor masked, so the value never enters it.
const secretNotRead = "(secret, not read)"

// handSecrets are the secret keywords of primary_conninfo that no attribute
// manages (all but password), which someone must have added by hand.
func (s standbyState) handSecrets() []string {
	p, err := conninfo.Parse(s.Conninfo)
	if err != nil {
		return nil
	}
	var keys []string
	for _, k := range conninfo.SecretKeywords {
		if _, ok := p[k]; ok && !slices.Contains(standbyManagedParams, k) {
			keys = append(keys, k)
		}
	}
	return keys
}

// postgresTimeValidator accepts a PostgreSQL time setting ("30s", "5min").
var postgresTimeValidator = postgresTimeAtLeast(math.MinInt32)

// postgresTimeAtLeast is postgresTimeValidator for a setting whose
// PostgreSQL minimum is minimum milliseconds, so that a value the server
// would refuse at ALTER SYSTEM, after the apply wrote the settings before
// it, fails the plan instead.
func postgresTimeAtLeast(minimum int64) validator.String {
	description := "a PostgreSQL time: a number with an optional unit (us, ms, s, min, h, d), such as \"30s\" or \"5min\""
	if minimum > math.MinInt32 {
		description += fmt.Sprintf(", at least %d", minimum)
	}
	return validate.String("Invalid PostgreSQL Time", description, func(s string) error {
		ms, err := guc.Milliseconds(s)
		if err == nil && ms < minimum {
			err = fmt.Errorf("%q is below PostgreSQL's minimum for this setting, %d", s, minimum)
		}
		return err
	})
}
