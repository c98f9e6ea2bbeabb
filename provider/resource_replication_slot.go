package provider

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/boolplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/createonly"
	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/importid"
	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/normalized"
	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/pgsql"
	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/statement"
	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/syncrep"
	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/validate"
)

var (
	_ resource.ResourceWithConfigure        = (*replicationSlotResource)(nil)
	_ resource.ResourceWithImportState      = (*replicationSlotResource)(nil)
	_ resource.ResourceWithModifyPlan       = (*replicationSlotResource)(nil)
	_ resource.ResourceWithConfigValidators = (*replicationSlotResource)(nil)
)

// slotType is pg_replication_slots.slot_type.
type slotType string

const (
	slotPhysical slotType = "physical"
	slotLogical  slotType = "logical"
)

// slotTypes feeds both the validator and the description of `type`.
var slotTypes = []string{string(slotPhysical), string(slotLogical)}

const (
	defaultSlotPlugin        = "pgoutput"
	defaultSlotCreateTimeout = "5m"
)

// slotNamePattern is PostgreSQL's rule for replication slot names
// (ReplicationSlotValidateName): lower-case letters, digits and underscores.
var slotNamePattern = regexp.MustCompile(`^[a-z0-9_]+$`)

func newReplicationSlotResource() resource.Resource { return &replicationSlotResource{} }

// replicationSlotResource is a persistent physical or logical replication slot
// on the provider's server: a primary, or (PostgreSQL 16+ for logical slots) a
// standby.
type replicationSlotResource struct {
	server *server
}

func (r *replicationSlotResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_replication_slot"
}

func (r *replicationSlotResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = replicationSlotSchema()
}

func replicationSlotSchema() schema.Schema {
	return schema.Schema{
		MarkdownDescription: "A persistent replication slot: `physical` (a standby streams from it) or `logical` (a subscription " +
			"or another logical decoding client reads changes from it). PostgreSQL cannot alter a slot's name, type, " +
			"database or plugin, so changing any of them drops the slot and creates a new one — which loses the position a " +
			"consumer had reached. `failover` (and `two_phase` on PostgreSQL 18 and later) change in place; `two_phase` before 18 " +
			"replaces the slot too. A plan that replaces a slot with a logical slot of another plugin (or a physical slot " +
			"with a logical one) first makes sure the server loads that plugin, since the apply drops the old slot before it " +
			"creates the new one: it creates a temporary slot of the plugin, in a session of its own, and drops it at once. " +
			"A plugin the server cannot load stops the plan before anything is dropped; a check that cannot run (no free " +
			"slot, a role without `REPLICATION`, a server that does not answer) leaves a warning, as does a plugin named by a " +
			"path (one with a `/`), which a plan never loads. " +
			"Temporary slots are not offered: a temporary slot " +
			"disappears with the session that made it, and a Terraform-managed object must persist.\n\n" +
			"The computed health attributes (`active`, `restart_lsn`, `retained_wal_bytes`, …) are read on every refresh, so " +
			"`terraform plan` shows them current; they never make a plan non-empty by themselves, and a plan that updates the " +
			"slot keeps them as refreshed rather than showing them as known after apply.\n\n" +
			"Destroying a slot that a consumer is using fails with an error that names the consumer, unless " +
			"`terminate_active_on_destroy = true`. Destroying or replacing an inactive logical slot of `pgoutput` warns at plan: " +
			"a disabled subscription that still names it looks the same from the publisher, and once the slot is dropped that " +
			"subscription fails on every start and its position is lost. Drop such a subscription first, or detach it " +
			"(`ALTER SUBSCRIPTION ... SET (slot_name = NONE)`). The drop itself goes ahead, since a slot nobody uses looks the same.\n\n" +
			"A logical slot can be created on a standby on PostgreSQL 16 and later (the primary needs `wal_level = logical`). " +
			"Creation there waits until the primary writes its next running-transactions record: at a checkpoint, every 15 " +
			"seconds while the primary is busy, or at once with `SELECT pg_log_standby_snapshot()` on the primary. " +
			"`create_timeout` bounds the wait. The provider creates slots outside any transaction, as a standby requires." +
			privilegesText(
				requirement{replicationPrivilege, "creating and dropping slots."},
				requirement{signalBackendPrivilege, "`terminate_active_on_destroy = true` only: ending the process that uses the slot. " +
					"PostgreSQL lets only a superuser end a superuser's process, so the consumer (a standby's `primary_user`) must not be a superuser."},
			) +
			planPrivilegesText("`CONNECT` on the database, nothing more: `pg_replication_slots` and `wal_level` are readable by every role. "+
				"The one exception is the plugin check of a replacement (above): its temporary slot needs `REPLICATION`; a role without "+
				"it (a drift audit's) is not made to try, and the plan warns that the plugin is not verified."),
		Attributes: map[string]schema.Attribute{
			// Required
			"name": schema.StringAttribute{
				Required: true,
				MarkdownDescription: "The slot's name: lower-case letters, digits and underscores only, at most 63 bytes " +
					"(PostgreSQL's rule for slot names). Changing it replaces the slot.",
				Validators:    []validator.String{slotNameValidator},
				PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplace()},
			},
			"type": schema.StringAttribute{
				Required:            true,
				MarkdownDescription: "The slot's type: " + quotedList(slotTypes) + ". Changing it replaces the slot.",
				Validators:          []validator.String{stringvalidator.OneOf(slotTypes...)},
				PlanModifiers:       []planmodifier.String{stringplanmodifier.RequiresReplace()},
			},

			// Optional
			"database": schema.StringAttribute{
				Optional: true,
				Computed: true,
				MarkdownDescription: "Logical slots only: the database whose changes the slot decodes. Defaults to the " +
					"provider's `database`; null for physical slots. Changing it replaces the slot.",
				Validators: []validator.String{identifierValidator},
			},
			"plugin": schema.StringAttribute{
				Optional: true,
				Computed: true,
				MarkdownDescription: "Logical slots only: the output plugin. Defaults to `" + defaultSlotPlugin + "` (what " +
					"subscriptions use); null for physical slots. Changing it replaces the slot.",
				Validators: []validator.String{identifierValidator},
			},
			"two_phase": schema.BoolAttribute{
				Optional: true,
				Computed: true,
				Default:  booldefault.StaticBool(false),
				MarkdownDescription: "Logical slots only: decode prepared transactions at PREPARE TRANSACTION time. " +
					"Defaults to `false`. Needs PostgreSQL 14 or later. On PostgreSQL 18 and later it is changed in place, keeping the slot " +
					"and its consumer's position, as `failover` is (`ALTER_REPLICATION_SLOT` over the replication protocol, only while no " +
					"consumer uses the slot); before 18, changing it replaces the slot, which loses its consumer's position (the plan warns). " +
					"A consumer that decodes with two-phase on turns it on itself: declare `two_phase = true` for a slot that a subscription " +
					"with `two_phase = true` reads.",
			},
			"failover": schema.BoolAttribute{
				Optional: true,
				Computed: true,
				Default:  booldefault.StaticBool(false),
				MarkdownDescription: "Logical slots only: a failover slot, which standbys with `sync_replication_slots = on` " +
					"keep in sync so that subscribers can continue after a failover. Defaults to `false`. Needs PostgreSQL 17 " +
					"or later, on a primary. Changed in place, keeping the slot and its consumer's position: PostgreSQL changes it " +
					"only over the replication protocol (`ALTER_REPLICATION_SLOT`), which the provider opens to the slot's database " +
					"as its own role (`REPLICATION`), and only while no consumer uses the slot. A subscription with `failover = true` " +
					"sets it on its slot itself: declare the slot with `failover = true` too.",
			},
			"immediately_reserve": schema.BoolAttribute{
				Optional: true,
				Computed: true,
				MarkdownDescription: "Physical slots only: reserve WAL from the moment the slot is created, rather than from " +
					"when a standby first connects. Defaults to `false`; a slot made for a standby that will connect should " +
					"usually set it, so that no WAL the standby needs is removed in between. Used at create time only: " +
					"PostgreSQL does not record it, so it never replaces the slot (that would drop the WAL it holds for its " +
					"consumer). Import infers it from whether the slot has a `restart_lsn`; left out of the configuration, an " +
					"existing slot keeps that value and plans nothing, and a value set later only updates the state.",
				PlanModifiers: []planmodifier.Bool{createonly.Bool(false)},
			},
			"terminate_active_on_destroy": schema.BoolAttribute{
				Optional: true,
				Computed: true,
				Default:  booldefault.StaticBool(false),
				MarkdownDescription: "When the slot is destroyed while a consumer uses it, terminate that consumer's " +
					"session (`pg_terminate_backend`) and drop the slot. Defaults to `false`: destroying an active slot " +
					"fails with an error that names the consumer. Even when `true`, the drop is refused (nothing changed) while the consumer is a " +
					"standby that `synchronous_standby_names` lists and fewer than `num_sync` other listed standbys stream: without its slot it could " +
					"not stream again, and every commit on the primary would wait for it. Take it out of the list first. An inactive physical slot is " +
					"not dropped either while fewer than `num_sync` listed standbys stream and a listed one is not connected: a primary cannot tell " +
					"which standby's `primary_slot_name` names a slot, and if it is that standby's, it could never connect again. For an inactive slot " +
					"the provider's role needs no more than the slot's privileges: without `pg_read_all_stats` it sees which standbys are connected, " +
					"not their state, and refuses only when fewer than `num_sync` listed standbys are connected. A slot that lost its WAL " +
					"(`wal_status = lost`, or invalidated) is always dropped: no standby can use it again. For an active slot, where the provider's " +
					"role cannot tell (it needs `pg_read_all_stats` to see the standbys' state), the drop is refused with the grant that lets it tell. " +
					"A replacement asked for with `terraform apply -replace` cannot be warned of at plan (Terraform shows no provider warning for it): " +
					"its plan is refused when the drop would fail or be refused, naming the consumer, and apply names the session it terminated. " +
					"A replacement after `terraform taint` is planned as a create, with no prior state: its plan warns what the drop meets when " +
					"a slot of that name is on the server (the consumer, the position lost), judged with the configuration's value of this attribute. " +
					"Changes in place.",
			},
			// An attribute, not terraform-plugin-framework-timeouts' `timeouts
			// { create = … }` block: that block is configuration only (no
			// default in the state, nothing Read can fill in), so importing a
			// slot whose configuration sets it would plan an in-place update,
			// where create_timeout (computed, filled in on import like
			// terminate_active_on_destroy) keeps an import a no-op.
			"create_timeout": schema.StringAttribute{
				Optional:      true,
				Computed:      true,
				CustomType:    normalized.DurationType{},
				PlanModifiers: []planmodifier.String{normalized.KeepEquivalentState(normalized.DurationType{})},
				Default:       stringdefault.StaticString(defaultSlotCreateTimeout),
				MarkdownDescription: "How long creating the slot may take, as a Go duration (`90s`, `5m`). Creating a " +
					"logical slot waits for running transactions to finish, and on a standby for the primary's next " +
					"running-transactions record. Defaults to `" + defaultSlotCreateTimeout + "`. Changes in place.",
				Validators: []validator.String{durationValidator},
			},

			// Computed
			"id": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "The import ID: the slot's name.",
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"active": schema.BoolAttribute{
				Computed:            true,
				PlanModifiers:       []planmodifier.Bool{boolplanmodifier.UseStateForUnknown()},
				MarkdownDescription: "Whether a consumer is using the slot now. Read on every refresh.",
			},
			"active_pid": schema.Int64Attribute{
				Computed:            true,
				PlanModifiers:       []planmodifier.Int64{int64planmodifier.UseStateForUnknown()},
				MarkdownDescription: "The process ID of the session using the slot; null when the slot is inactive. Read on every refresh.",
			},
			"restart_lsn": schema.StringAttribute{
				Computed:      true,
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
				MarkdownDescription: "The oldest WAL location the slot's consumer may still need: the server keeps WAL from " +
					"here on. Null for a physical slot that reserves nothing yet. Read on every refresh.",
			},
			"confirmed_flush_lsn": schema.StringAttribute{
				Computed:            true,
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
				MarkdownDescription: "Logical slots: the location up to which the consumer confirmed receiving data. Null for physical slots. Read on every refresh.",
			},
			"wal_status": schema.StringAttribute{
				Computed:      true,
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
				MarkdownDescription: "Whether the WAL the slot needs is still there: `reserved`, `extended`, `unreserved` or " +
					"`lost` (the slot is unusable and should be recreated). Null when the slot reserves no WAL. Read on every refresh.",
			},
			"safe_wal_size": schema.Int64Attribute{
				Computed:      true,
				PlanModifiers: []planmodifier.Int64{int64planmodifier.UseStateForUnknown()},
				MarkdownDescription: "Bytes of WAL that can still be written before the slot is in danger of becoming `lost`; " +
					"null when `max_slot_wal_keep_size` is `-1` (no limit). Read on every refresh.",
			},
			"retained_wal_bytes": schema.Int64Attribute{
				Computed:      true,
				PlanModifiers: []planmodifier.Int64{int64planmodifier.UseStateForUnknown()},
				MarkdownDescription: "Bytes of WAL the slot holds back: from `restart_lsn` to the current WAL location " +
					"(`pg_current_wal_lsn()` on a primary, `pg_last_wal_replay_lsn()` on a standby). Null when the slot " +
					"reserves nothing. Read on every refresh.",
			},
		},
	}
}

func (r *replicationSlotResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.server = serverFromProviderData(req.ProviderData, &resp.Diagnostics)
}

func (r *replicationSlotResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan replicationSlotModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(resp.Private.SetKey(ctx, inPlaceKey, nil)...) // a plan's mark, not the state's
	if resp.Diagnostics.HasError() {
		return
	}
	ctx = statement.WithObject(ctx, "replication slot "+pgsql.Ident(plan.Name.ValueString()))
	name := plan.Name.ValueString()
	timeout, err := time.ParseDuration(plan.CreateTimeout.ValueString())
	if err != nil {
		resp.Diagnostics.AddAttributeError(path.Root("create_timeout"), "Invalid Create Timeout", err.Error())
		return
	}
	facts, ok := r.server.FactsOrDiag(ctx, &resp.Diagnostics)
	if !ok {
		return
	}
	database := ""
	if slotType(plan.Type.ValueString()) == slotLogical {
		// A logical slot belongs to the database it is created in.
		database = plan.Database.ValueString()
	}
	pool := r.server.PoolOrDiag(ctx, database, &resp.Diagnostics)
	if pool == nil {
		return
	}
	createCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// QueryRow on the pool runs in autocommit mode: no transaction is opened,
	// which a standby requires (it refuses read-write transactions) and which
	// a logical slot requires anywhere (it cannot be created in a transaction
	// that has written).
	sql, args := createSlotSQL(facts.Major(), plan)
	conn, err := pool.Acquire(createCtx)
	if err != nil {
		r.createError(ctx, plan, timeout, createCtx.Err(), statement.Error(ctx, sql, err), &resp.Diagnostics)
		return
	}
	creator := conn.Conn().PgConn().PID()
	var ignored any
	err = conn.QueryRow(createCtx, sql, args...).Scan(&ignored)
	conn.Release()
	if err != nil {
		// The provider stopped waiting (create_timeout, the apply
		// interrupted, the answer lost), which does not stop the server:
		// it may have created the slot, and then it must be in the state.
		err = unanswered(creator, err)
		row, outcome := createdAnyway(ctx, pool, err, func(ctx context.Context) (slotRow, bool, error) {
			return r.readSlot(ctx, name)
		})
		if outcome == createDone && row.declared(plan) {
			resp.Diagnostics.AddWarning("Replication Slot Created After the Provider Stopped Waiting",
				fmt.Sprintf("Replication slot %q was created on %s, although the provider stopped waiting for the answer (%v). "+
					"It is in the state, so nothing is left behind; nothing needs to be done.", name, r.server.describe(), statement.MaskedError(ctx, err)))
			row.apply(&plan)
			resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
			return
		}
		r.createError(ctx, plan, timeout, createCtx.Err(), statement.Error(ctx, sql, err), &resp.Diagnostics)
		return
	}

	row, found, err := slotReadBack(r, ctx, name)
	if err != nil {
		// The slot exists: record it, or the next apply would fail with
		// "already exists". Its health is read on the next refresh.
		resp.Diagnostics.AddWarning("Replication Slot Created, Not Read Back",
			fmt.Sprintf("Replication slot %q was created on %s, but reading it back failed, so its health attributes are "+
				"unknown until the next refresh (terraform plan or terraform refresh reads them). The slot is in the state; "+
				"nothing needs to be done about it.\n\nServer error: %s", name, r.server.describe(), statement.MaskedError(ctx, err)))
		plan.ID = types.StringValue(importid.Format(name))
		if plan.Database.IsUnknown() {
			plan.Database = types.StringValue(r.server.defaultDatabase())
		}
		plan.Active = types.BoolNull()
		plan.ActivePID = types.Int64Null()
		plan.RestartLSN = types.StringNull()
		plan.ConfirmedFlushLSN = types.StringNull()
		plan.WalStatus = types.StringNull()
		plan.SafeWalSize = types.Int64Null()
		plan.RetainedWalBytes = types.Int64Null()
		resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
		return
	}
	if !found {
		resp.Diagnostics.AddError("Replication Slot Missing After Create",
			fmt.Sprintf("Replication slot %q was created on %s, but pg_replication_slots does not list it. Something dropped it at once; check the server log.", name, r.server.describe()))
		return
	}
	row.apply(&plan)
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

// declared reports whether the slot row describes is the one plan declares:
// its type and, for a logical slot, its plugin and database.
func (row slotRow) declared(plan replicationSlotModel) bool {
	same := row.Type == plan.Type.ValueString()
	if slotType(row.Type) == slotLogical {
		same = same && row.Plugin != nil && *row.Plugin == plan.Plugin.ValueString() &&
			row.Database != nil && (plan.Database.IsUnknown() || *row.Database == plan.Database.ValueString())
	}
	return same
}

// slotReadBack reads the slot Create just made. A variable only so that a
// test can make it fail, which no server does on demand.
var slotReadBack = (*replicationSlotResource).readSlot

// createSlotSQL is the function call that creates the slot, with the
// arguments the server's version knows.
func createSlotSQL(major int, m replicationSlotModel) (string, []any) {
	name := m.Name.ValueString()
	if slotType(m.Type.ValueString()) == slotPhysical {
		return `SELECT pg_create_physical_replication_slot($1, $2)`, []any{name, m.ImmediatelyReserve.ValueBool()}
	}
	plugin := m.Plugin.ValueString()
	switch {
	case major >= 17:
		return `SELECT pg_create_logical_replication_slot($1, $2, false, $3, $4)`,
			[]any{name, plugin, m.TwoPhase.ValueBool(), m.Failover.ValueBool()}
	case major >= 14:
		return `SELECT pg_create_logical_replication_slot($1, $2, false, $3)`, []any{name, plugin, m.TwoPhase.ValueBool()}
	default:
		return `SELECT pg_create_logical_replication_slot($1, $2, false)`, []any{name, plugin}
	}
}

// createError explains a failed creation (err, built by statement.Error): a
// slot that already exists, a timeout (on a standby, usually a primary that
// is idle), or the server's error.
func (r *replicationSlotResource) createError(ctx context.Context, plan replicationSlotModel, timeout time.Duration, ctxErr, err error, diags *diag.Diagnostics) {
	name := plan.Name.ValueString()
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &pgErr) && pgErr.Code == "42710" && r.temporarySlot(ctx, name) != "":
		diags.AddAttributeError(path.Root("name"), "Replication Slot Name Taken by a Temporary Slot", r.temporarySlot(ctx, name)+". Let that session end, then apply again, or choose another name.")
	case errors.As(err, &pgErr) && pgErr.Code == "42710": // duplicate_object
		diags.AddAttributeError(path.Root("name"), "Replication Slot Already Exists",
			fmt.Sprintf("Replication slot %q already exists on %s. If this apply is replacing this resource, the slot is most likely its own old "+
				"object, still there because the replacement is create_before_destroy: Terraform creates the new slot before it drops the old one, "+
				"and one server cannot hold two slots of one name, so such a replacement always fails (and an import is refused: the slot is "+
				"already in the state). Remove create_before_destroy where it is set: on this resource, or on a resource that depends on it "+
				"(create_before_destroy on a dependent passes down to this slot), then apply again; or give the new slot another name. "+
				"Otherwise the slot was made outside this configuration: import it (terraform import <address> %s) or choose another name.\n\nServer error: %v",
				name, r.server.describe(), importid.Format(name), err))
	case errors.Is(ctxErr, context.DeadlineExceeded):
		detail := fmt.Sprintf("Creating replication slot %q on %s did not finish within create_timeout (%s).", name, r.server.describe(), timeout)
		if slotType(plan.Type.ValueString()) == slotLogical {
			detail += " A logical slot waits until every transaction running on the server has finished"
			if r.inRecovery(ctx) {
				detail += ", and on a standby until the primary writes a running-transactions record: run " +
					"SELECT pg_log_standby_snapshot() on the primary, or wait for its next checkpoint"
			}
			detail += ". Look for long-running transactions in pg_stat_activity, or raise create_timeout."
		}
		diags.AddError("Timed Out Creating Replication Slot", detail+"\n\nServer error: "+err.Error())
	case errors.As(err, &pgErr) && pgErr.Code == "58P01" && slotType(plan.Type.ValueString()) == slotLogical: // undefined_file: the plugin's library
		diags.AddAttributeError(path.Root("plugin"), "Output Plugin Not Installed",
			fmt.Sprintf("Creating logical replication slot %q on %s failed: the server has no output plugin %q (no shared library of that name in its library directory). "+
				"Install it on the server (pgoutput and test_decoding come with PostgreSQL; others, such as wal2json, are packages of their own), or correct plugin; then apply again.\n\nServer error: %v",
				name, r.server.describe(), plan.Plugin.ValueString(), err))
	case errors.As(err, &pgErr) && pgErr.Code == "3D000": // invalid_catalog_name
		diags.AddAttributeError(path.Root("database"), "Database Does Not Exist",
			fmt.Sprintf("Creating logical replication slot %q on %s failed: database %q does not exist there, and a logical slot belongs to one database. "+
				"Create the database first (a resource this slot depends on may create it), or correct database; then apply again.\n\nServer error: %v",
				name, r.server.describe(), plan.Database.ValueString(), err))
	default:
		diags.AddError("Cannot Create Replication Slot",
			fmt.Sprintf("Creating %s replication slot %q on %s failed.\n\nServer error: %v", plan.Type.ValueString(), name, r.server.describe(),
				r.server.withGrants(ctx, err, replicationPrivilege)))
	}
}

func (r *replicationSlotResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state replicationSlotModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	ctx = statement.WithObject(ctx, "replication slot "+pgsql.Ident(state.Name.ValueString()))
	if r.server.PoolOrDiag(ctx, "", &resp.Diagnostics) == nil {
		return
	}
	row, found, err := r.readSlot(ctx, state.Name.ValueString())
	if err != nil {
		resp.Diagnostics.AddError("Cannot Read Replication Slot", fmt.Sprintf("Reading replication slot %q on %s failed: %s", state.Name.ValueString(), r.server.describe(), statement.MaskedError(ctx, err)))
		return
	}
	if !found {
		resp.State.RemoveResource(ctx)
		return
	}
	row.apply(&state)
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

// Update changes failover, and two_phase on PostgreSQL 18 and later, in place
// (ALTER_REPLICATION_SLOT), and otherwise
// only what lives in Terraform (terminate_active_on_destroy, create_timeout,
// immediately_reserve): everything else PostgreSQL records about a slot
// replaces it. The health attributes stay as the plan has them (the last
// refresh's), so an update never shows them as known after apply.
func (r *replicationSlotResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, state replicationSlotModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	resp.Diagnostics.Append(resp.Private.SetKey(ctx, inPlaceKey, nil)...) // a plan's mark, not the state's
	if resp.Diagnostics.HasError() {
		return
	}
	ctx = statement.WithObject(ctx, "replication slot "+pgsql.Ident(plan.Name.ValueString()))
	name := plan.Name.ValueString()
	if r.server.PoolOrDiag(ctx, "", &resp.Diagnostics) == nil {
		return
	}
	row, found, err := r.readSlot(ctx, name)
	if err != nil {
		resp.Diagnostics.AddError("Cannot Read Replication Slot", fmt.Sprintf("Reading replication slot %q on %s failed: %s", name, r.server.describe(), statement.MaskedError(ctx, err)))
		return
	}
	if !found {
		resp.Diagnostics.AddError("Replication Slot Not Found",
			fmt.Sprintf("Replication slot %q is no longer on %s: it was dropped after the plan was made. Run terraform apply again to recreate it.", name, r.server.describe()))
		return
	}
	if !r.alterSlot(ctx, plan, row, &resp.Diagnostics) {
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

// alterSlot sets the slot's failover and two_phase flags as planned where
// the server's differ (ModifyPlan lets two_phase change here only on
// PostgreSQL 18 and later), over a replication connection to its database:
// PostgreSQL has no SQL for them, and dropping the slot to create it again
// would lose its consumer's position. PostgreSQL waits for an active slot to
// be released rather than refusing, so an active slot is refused here.
func (r *replicationSlotResource) alterSlot(ctx context.Context, plan replicationSlotModel, row slotRow, diags *diag.Diagnostics) bool {
	name := plan.Name.ValueString()
	var options, changes, declare []string
	attr := path.Root("failover")
	for _, o := range []struct {
		attr, option string
		server, plan bool
	}{
		{"failover", "FAILOVER", row.Failover, plan.Failover.ValueBool()},
		{"two_phase", "TWO_PHASE", row.TwoPhase, plan.TwoPhase.ValueBool()},
	} {
		if o.server == o.plan {
			continue
		}
		if len(options) == 0 {
			attr = path.Root(o.attr)
		}
		options = append(options, fmt.Sprintf("%s %t", o.option, o.plan))
		changes = append(changes, fmt.Sprintf("%s = %t (the server has %t)", o.attr, o.plan, o.server))
		declare = append(declare, fmt.Sprintf("%s = %t", o.attr, o.server))
	}
	if len(options) == 0 {
		return true
	}
	what := strings.Join(changes, " and ")
	if row.ActivePID != nil {
		diags.AddAttributeError(attr, "Cannot Change an Active Replication Slot",
			fmt.Sprintf("The configuration sets %s on replication slot %q on %s, but PostgreSQL changes these only while no consumer "+
				"uses the slot, and process %d does. A subscription with failover = true or two_phase = true sets them on its slot itself: "+
				"if that is the consumer, declare %s here. Otherwise stop the consumer and apply again. The slot is unchanged.",
				what, name, r.server.describe(), *row.ActivePID, strings.Join(declare, " and ")))
		return false
	}
	sql := fmt.Sprintf("ALTER_REPLICATION_SLOT %s ( %s )", pgsql.Ident(name), strings.Join(options, ", "))
	err := r.server.replicationExec(ctx, plan.Database.ValueString(), sql)
	if err == nil {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "55006" { // object_in_use: a consumer took the slot meanwhile
		diags.AddAttributeError(attr, "Cannot Change an Active Replication Slot",
			fmt.Sprintf("The configuration sets %s on replication slot %q on %s, but PostgreSQL changes these only while no consumer "+
				"uses the slot, and one does. A subscription with failover = true or two_phase = true sets them on its slot itself: "+
				"if that is the consumer, declare %s here. Otherwise stop the consumer and apply again. The slot is unchanged.\n\n%s",
				what, name, r.server.describe(), strings.Join(declare, " and "), err))
		return false
	}
	diags.AddAttributeError(attr, "Cannot Change Replication Slot",
		fmt.Sprintf("Setting %s on replication slot %q on %s over a replication connection to database %q failed. The slot is unchanged.\n\n%s",
			what, name, r.server.describe(), plan.Database.ValueString(), r.server.withGrants(ctx, err, replicationPrivilege)))
	return false
}

func (r *replicationSlotResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state replicationSlotModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	ctx = statement.WithObject(ctx, "replication slot "+pgsql.Ident(state.Name.ValueString()))
	name := state.Name.ValueString()
	pool := r.server.PoolOrDiag(ctx, "", &resp.Diagnostics)
	if pool == nil {
		return
	}
	terminate := state.TerminateActiveOnDestroy.ValueBool()
	// A consumer that was terminated may reconnect at once (a standby's WAL
	// receiver retries every wal_retrieve_retry_interval): terminate and drop
	// until the drop wins, within a bound.
	deadline := time.Now().Add(time.Minute)
	var terminated []string
	// Consumers terminated by an earlier pass whose drop a new consumer
	// beat (55006) are said also when a later pass refuses.
	warnTerminated := func() {
		for _, detail := range terminated {
			resp.Diagnostics.AddWarning("Replication Slot Consumer Terminated", detail)
		}
	}
	refuse := func(risk commitRisk) {
		resp.Diagnostics.AddError(risk.summary, risk.detail)
		warnTerminated()
	}
	for {
		row, found, err := r.readSlot(ctx, name)
		if err != nil {
			resp.Diagnostics.AddError("Cannot Read Replication Slot", fmt.Sprintf("Reading replication slot %q on %s before dropping it failed: %s", name, r.server.describe(), statement.MaskedError(ctx, err)))
			return
		}
		if !found {
			return
		}
		// An inactive physical slot may be the one a listed standby that is
		// away streams through. On every pass: a pass comes after the first
		// only when a consumer took the slot before the drop (55006), so
		// the slot is as found again, whoever held it meanwhile (a slot
		// this pass frees by terminating its holder passed the check for
		// held slots, and is dropped in the same pass). Not an invalidated
		// one: no standby can stream through it again (and the provider's
		// advice for it is a replacement).
		if row.ActivePID == nil && slotType(row.Type) == slotPhysical && !row.Invalidated {
			if risk := r.dropRiskAfterGrace(ctx, pool, name, nil); risk.summary != "" {
				refuse(risk)
				return
			}
		}
		if row.ActivePID != nil {
			if !terminate {
				resp.Diagnostics.AddError("Cannot Drop Active Replication Slot", r.activeSlotDetail(ctx, name, *row.ActivePID))
				warnTerminated()
				return
			}
			if risk := r.dropRiskAfterGrace(ctx, pool, name, row.ActivePID); risk.summary != "" {
				refuse(risk)
				return
			}
			who := r.consumer(ctx, *row.ActivePID)
			const terminateSQL = `SELECT pg_terminate_backend($1)`
			if _, err := pool.Exec(ctx, terminateSQL, *row.ActivePID); err != nil {
				resp.Diagnostics.AddError("Cannot Terminate Replication Slot Consumer",
					fmt.Sprintf("Terminating process %d, which uses replication slot %q on %s, failed: %v", *row.ActivePID, name, r.server.describe(),
						r.server.withGrants(ctx, statement.Error(ctx, terminateSQL, err), signalBackendPrivilege)))
				return
			}
			r.waitInactive(ctx, name, *row.ActivePID)
			terminated = append(terminated, terminatedConsumer(name, r.server.describe(), who, row))
		}
		const dropSQL = `SELECT pg_drop_replication_slot($1)`
		_, err = pool.Exec(ctx, dropSQL, name)
		var pgErr *pgconn.PgError
		switch {
		case err == nil, errors.As(err, &pgErr) && pgErr.Code == "42704": // undefined_object: dropped meanwhile
			// Said after the fact too: a replacement that terraform apply
			// -replace asked for had no plan warning (see ModifyPlan).
			warnTerminated()
			return
		case errors.As(err, &pgErr) && pgErr.Code == "55006" && time.Now().Before(deadline) && ctx.Err() == nil:
			// object_in_use: a consumer took the slot between our read and
			// the drop; look again.
			time.Sleep(100 * time.Millisecond)
			continue
		default:
			resp.Diagnostics.AddError("Cannot Drop Replication Slot",
				fmt.Sprintf("Dropping replication slot %q on %s failed.\n\nServer error: %v", name, r.server.describe(),
					r.server.withGrants(ctx, statement.Error(ctx, dropSQL, err), replicationPrivilege)))
			warnTerminated()
			return
		}
	}
}

// syncRiskGrace is how long Delete looks again at a drop that would block
// commits before it refuses it. The same apply may be changing
// synchronous_standby_names meanwhile: a pgreplication_synchronous_replication
// that names its standbys as literals (or one whose value was changed by
// hand) has no dependency on the slots, so terraform destroy deletes it and
// the slots in parallel, and which comes first is chance. Without the grace
// the same destroy was refused or not from one run to the next.
const syncRiskGrace = 10 * time.Second

// dropRiskAfterGrace is dropBlocksCommits for the slot's holder pid after
// the grace of commitRiskAfterGrace, each look after the first on the
// slot's holder of the moment.
func (r *replicationSlotResource) dropRiskAfterGrace(ctx context.Context, pool *pgxpool.Pool, name string, pid *int64) commitRisk {
	look := func(ctx context.Context, pid *int64) syncLook {
		var names string
		risk := r.dropBlocksCommitsSeen(ctx, pool, name, pid, &names)
		// A risk is only found under a non-empty setting: "" with a risk
		// is a read that failed.
		return syncLook{commitRisk: risk, seen: names != "" || risk.summary == "", names: names}
	}
	last := commitRiskAfterGrace(ctx, look(ctx, pid), func(ctx context.Context) syncLook {
		row, found, err := r.readSlot(ctx, name)
		switch {
		case err != nil:
			return syncLook{} // not seen: the last verdict stands
		case !found:
			// Dropped meanwhile: the drop that follows finds nothing.
			return syncLook{gone: true}
		case row.ActivePID == nil && (slotType(row.Type) != slotPhysical || row.Invalidated):
			// No standby streams through it again (as Delete's check).
			return syncLook{gone: true}
		}
		return look(ctx, row.ActivePID)
	})
	risk := last.commitRisk
	if risk.summary != "" && ctx.Err() == nil {
		risk.detail += " If this run also destroys or changes a pgreplication_synchronous_replication, nothing orders it before this slot when it names its " +
			"standbys by literal (and under -parallelism=1 this wait holds the only operation, so it cannot run meanwhile): make it reference " +
			"the standby (standby_names = [pgreplication_standby.x.application_name], that standby's primary_slot_name referencing this slot: " +
			"primary_slot_name = pgreplication_replication_slot.x.name), so that Terraform orders it first; or run the command again: " +
			"Terraform goes on with the resources that do not depend on this slot, so the same run resets synchronous_standby_names " +
			"after this refusal, and the next one drops the slot."
	}
	return risk
}

// dropBlocksCommits tells whether dropping slot name, held by the session
// pid or an inactive physical slot (pid nil), makes synchronous replication
// on its server wait for good: the standby that streams through it could
// not stream again, and synchronous_standby_names needs it.
//
//   - Held: the holder is the WAL sender of a listed standby, and fewer than
//     num_sync other listed standbys stream. terminate_active_on_destroy
//     would end it, and every commit would then wait for it.
//   - Inactive: fewer than num_sync listed standbys stream (commits already
//     wait) and a listed standby is not connected. A primary cannot tell
//     which standby's primary_slot_name names a slot, so the slot may be
//     that standby's: dropped, the standby could not connect again and the
//     wait would last until synchronous_standby_names changes. When every
//     listed standby is connected, none of them uses an inactive slot.
//     Commits must be known to wait: where the states are hidden, the
//     connected listed standbys (their WAL senders and application_name,
//     which every role sees) are taken to stream, so that the check needs
//     no more than the slot's own privileges; fewer of them connected than
//     num_sync is a wait for certain.
//
// Only a primary's commits wait: on a standby (a cascading standby's slot)
// it finds nothing. synchronous_commit = off or local does not make the
// drop safe: commits of sessions, roles or databases that set it to on,
// remote_write or remote_apply still wait, and the detail says so. Where
// the provider cannot tell (pg_stat_replication hides the other standbys'
// state from a role without pg_read_all_stats, from a held slot's check; or
// the read fails) the drop is refused, with the grant that would let it tell.
func (r *replicationSlotResource) dropBlocksCommits(ctx context.Context, pool *pgxpool.Pool, name string, pid *int64) commitRisk {
	return r.dropBlocksCommitsSeen(ctx, pool, name, pid, nil)
}

// dropBlocksCommitsSeen is dropBlocksCommits that also sets *seen (when
// seen is not nil) to the synchronous_standby_names it judged by, read in
// the same statement; *seen is left alone when the read failed.
func (r *replicationSlotResource) dropBlocksCommitsSeen(ctx context.Context, pool *pgxpool.Pool, name string, pid *int64, seen *string) commitRisk {
	const blocks = "Dropping Replication Slot Would Block Commits"
	const unknown = "Cannot Tell Whether Dropping Replication Slot Blocks Commits"
	snap, err := readSyncSnapshot(ctx, pool)
	if err != nil {
		return commitRisk{unknown, fmt.Sprintf("Replication slot %q on %s: reading synchronous_standby_names and pg_stat_replication, "+
			"to tell whether commits would wait for the standby that streams through the slot once it is gone, failed: %v. Nothing was changed.",
			name, r.server.describe(), statement.MaskedError(ctx, statement.Error(ctx, syncRiskSQL, err)))}
	}
	names, commit := snap.names, snap.commit
	if seen != nil {
		*seen = names
	}
	c, found, err := syncrep.Parse(names)
	if snap.inRecovery || err != nil || !found {
		// A standby (a cascading standby's slot) waits for no standby
		// whatever its synchronous_standby_names says; off; or a value the
		// server accepted and the parser did not: not a reason to refuse.
		return commitRisk{}
	}
	isSelf := func(w walSenderRow) bool { return pid != nil && w.pid == *pid }
	var self *walSenderRow
	if i := slices.IndexFunc(snap.senders, isSelf); i >= 0 {
		self = &snap.senders[i]
	}
	if pid != nil && (self == nil || !listedStandby(c, self.app)) {
		return commitRisk{}
	}
	streaming, connected, hidden := snap.othersListed(c, isSelf)
	var absent []string
	if pid == nil {
		_, absent = listedStreaming(c, snap.apps())
		if len(absent) == 0 && !slices.Contains(c.Standbys, "*") {
			return commitRisk{}
		}
		if hidden && connected >= c.NumSync {
			// Commits are not known to wait: the hidden ones may stream.
			return commitRisk{}
		}
	}
	if streaming >= c.NumSync {
		return commitRisk{}
	}
	setting := fmt.Sprintf("synchronous_standby_names = %q", names)
	fix := "Take %s out of synchronous_standby_names first (pgreplication_synchronous_replication, or list another standby that streams), apply, then destroy the slot."
	if hidden && connected >= c.NumSync {
		// Held slots only: an inactive one returned above.
		hiddenErr := r.server.withGrants(ctx, hiddenStatsError{view: "pg_stat_replication"}, readAllStatsPrivilege)
		return commitRisk{unknown, fmt.Sprintf("Replication slot %q on %s is in use by %s, the WAL sender of standby %q, which %s lists. "+
			"Whether %d other listed standbys stream, so that commits would not wait for it once terminate_active_on_destroy ended its session "+
			"and the slot was gone, cannot be told: %v\n\nNothing was changed. Grant the role that privilege and apply again, or "+lowerFirst(fix),
			name, r.server.describe(), r.consumer(ctx, *pid), self.app, setting, c.NumSync, hiddenErr, fmt.Sprintf("standby %q", self.app))}
	}
	// Hidden states: those connected are all that may stream.
	count := strconv.Itoa(streaming)
	if hidden {
		count = fmt.Sprintf("at most %d (the others' state is hidden from the provider's role)", connected)
	}
	waiting := ""
	if commit == "off" || commit == "local" {
		waiting = fmt.Sprintf(" synchronous_commit is %s for the provider's session (the server's default unless a role or database sets its own): "+
			"commits under it wait for no standby, but those of sessions, roles or databases that set synchronous_commit to on, remote_write or "+
			"remote_apply wait, and they are the ones that would wait for good, so the drop is refused all the same.", commit)
	}
	if pid != nil {
		return commitRisk{blocks, fmt.Sprintf("Replication slot %q on %s is in use by %s, the WAL sender of standby %q, which %s needs: "+
			"%s other listed standbys stream, and it needs %d. terminate_active_on_destroy would end that session, and the drop would leave the "+
			"standby no slot to stream through, so commits on the primary would wait for it until synchronous_standby_names changes.%s\n\n"+
			"Nothing was changed. "+fix,
			name, r.server.describe(), r.consumer(ctx, *pid), self.app, setting, count, c.NumSync, waiting, fmt.Sprintf("standby %q", self.app))}
	}
	return commitRisk{blocks, fmt.Sprintf("Replication slot %q on %s is inactive, and commits on the primary already wait: %s needs %d listed "+
		"standbys streaming and %s stream; %s. A primary cannot tell which standby's primary_slot_name names a slot: if this "+
		"slot is the one it streams through, the drop leaves it nothing to connect through when it returns, and commits would wait until "+
		"synchronous_standby_names changes.%s\n\nNothing was changed. Bring that standby back, so that it streams, or "+lowerFirst(fix),
		name, r.server.describe(), setting, c.NumSync, count, awayText(absent), waiting, standbysText(absent))}
}

// awayText says which listed standbys are away: those with no WAL sender,
// or, when synchronous_standby_names lists "*" and every name it lists is
// connected, a standby it matches, which is not known by name.
func awayText(absent []string) string {
	if len(absent) == 0 {
		return standbysText(absent) + " may be away"
	}
	return standbysText(absent) + " " + isAre(absent) + " not connected"
}

// standbysText names the listed standbys that have no WAL sender, already
// quoted: `standby "a"`, `standbys "a", "b"`, or, when synchronous_standby_names
// lists "*" and every name it lists is connected, any standby.
func standbysText(absent []string) string {
	switch len(absent) {
	case 0:
		return `a standby that "*" in it matches`
	case 1:
		return "standby " + absent[0]
	}
	return "standbys " + strings.Join(absent, ", ")
}

func isAre(absent []string) string {
	if len(absent) > 1 {
		return "are"
	}
	return "is"
}

func lowerFirst(s string) string { return strings.ToLower(s[:1]) + s[1:] }

// temporarySlot says, when the server has a temporary slot named name, whose
// it is and that the provider does not manage it: "" otherwise, or when the
// server cannot be asked. Read sees persistent slots only, so without it an
// import of such a slot said there was no such object, and a create that
// the name already existed and to import it.
func (r *replicationSlotResource) temporarySlot(ctx context.Context, name string) string {
	if r.server == nil || r.server.unknown {
		return ""
	}
	pool, err := r.server.Pool(ctx, "")
	if err != nil {
		return ""
	}
	var pid *int64
	if err := pool.QueryRow(ctx, `SELECT active_pid::bigint FROM pg_replication_slots WHERE slot_name = $1 AND temporary`, name).Scan(&pid); err != nil {
		return ""
	}
	holder := "a session that has ended"
	if pid != nil {
		holder = r.consumer(ctx, *pid)
	}
	return fmt.Sprintf("Replication slot %q on %s is a temporary slot of %s: it disappears when that session ends, "+
		"and Terraform manages persistent slots only (a temporary one cannot outlive the session that made it)", name, r.server.describe(), holder)
}

// activeSlotDetail names the session holding a slot and how to free it.
func (r *replicationSlotResource) activeSlotDetail(ctx context.Context, name string, pid int64) string {
	return fmt.Sprintf("Replication slot %q on %s is in use by %s, so PostgreSQL cannot drop it. "+
		"Stop that consumer first (for a standby, clear its primary_slot_name; for a subscription, disable it or set its slot_name to NONE), "+
		"or set terminate_active_on_destroy = true and apply, so that destroying the slot terminates the consumer's session first.",
		name, r.server.describe(), r.consumer(ctx, pid))
}

// consumer names the session with process ID pid on the slot's server: its
// backend type, application_name and client, as far as the provider's role
// may read them in pg_stat_activity.
func (r *replicationSlotResource) consumer(ctx context.Context, pid int64) string {
	if r.server == nil || r.server.unknown {
		return describeConsumer(pid, consumerRow{})
	}
	pool, err := r.server.Pool(ctx, "")
	if err != nil {
		return describeConsumer(pid, consumerRow{})
	}
	var row consumerRow
	if err := pool.QueryRow(ctx, consumerQuery, pid).Scan(&row.backend, &row.app, &row.addr, &row.port); err != nil {
		return describeConsumer(pid, consumerRow{})
	}
	return describeConsumer(pid, row)
}

// consumerQuery reads what pg_stat_activity shows of a session. A role
// without pg_read_all_stats (or membership in the session's role) reads NULL
// for the backend type, client address and port of another role's session,
// and a Unix-socket client has no address and port -1: so a NULL port means
// "not shown", never "local".
const consumerQuery = `SELECT backend_type, application_name, host(client_addr), client_port
FROM pg_stat_activity WHERE pid = $1`

type consumerRow struct {
	backend, app, addr *string
	port               *int32
}

// describeConsumer names a session by what is known of it and leaves out what
// is not, so an unprivileged role's view never reads as a local client.
func describeConsumer(pid int64, row consumerRow) string {
	var parts []string
	if row.backend != nil && *row.backend != "" {
		parts = append(parts, *row.backend)
	}
	if row.app != nil && *row.app != "" {
		parts = append(parts, fmt.Sprintf("application_name %q", *row.app))
	}
	switch {
	case row.addr != nil:
		parts = append(parts, "client "+*row.addr)
	case row.port != nil && *row.port == -1:
		parts = append(parts, "client on a Unix socket")
	}
	if len(parts) == 0 {
		return fmt.Sprintf("process %d", pid)
	}
	return fmt.Sprintf("process %d (%s)", pid, strings.Join(parts, ", "))
}

// waitInactive waits, briefly, until the terminated process lets the slot go.
func (r *replicationSlotResource) waitInactive(ctx context.Context, name string, pid int64) {
	_, _ = pollUntil(ctx, 5*time.Second, func(ctx context.Context) (bool, error) {
		row, found, err := r.readSlot(ctx, name)
		return err != nil || !found || row.ActivePID == nil || *row.ActivePID != pid, nil
	})
}

func (r *replicationSlotResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	parts, err := importid.Parse(req.ID, "slot name")
	if err != nil {
		resp.Diagnostics.AddError("Invalid Import ID", err.Error())
		return
	}
	name := parts[0]
	if err := validateSlotName(name); err != nil {
		resp.Diagnostics.AddError("Invalid Import ID", fmt.Sprintf("Import ID %q is not a replication slot name: %v", req.ID, err))
		return
	}
	if why := r.temporarySlot(ctx, name); why != "" {
		resp.Diagnostics.AddError("Cannot Import a Temporary Replication Slot", why+". To manage a slot of that name, let that session end, then apply: the provider creates it.")
		return
	}
	// Read fills in what PostgreSQL records; what only Terraform knows takes
	// its default.
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("name"), name)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), importid.Format(name))...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("terminate_active_on_destroy"), false)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("create_timeout"), defaultSlotCreateTimeout)...)
}

// ConfigValidators refuses settings that do not apply to the slot's type.
func (r *replicationSlotResource) ConfigValidators(context.Context) []resource.ConfigValidator {
	return []resource.ConfigValidator{slotTypeAttributesValidator{}}
}

// ModifyPlan fills the defaults that depend on the slot's type and the
// provider, decides replacement for them, and checks the server: version
// gates, wal_level, and whether it is a standby.
func (r *replicationSlotResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() {
		r.warnActiveDestroy(ctx, req, resp)
		return
	}
	// The mark is this plan's to set (markInPlace), never one left from
	// before: a plan that returns early (type unknown) and then replaces
	// the slot must not read as terraform apply -replace at its second plan.
	// Read first: the framework hands ModifyPlan one private state as both
	// req.Private and resp.Private.
	terminate, requested := replaceRequested(ctx, req.Private)
	resp.Diagnostics.Append(resp.Private.SetKey(ctx, inPlaceKey, nil)...)
	var plan, config replicationSlotModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.Config.Get(ctx, &config)...)
	if resp.Diagnostics.HasError() || plan.Type.IsUnknown() {
		return
	}
	var state *replicationSlotModel
	if !req.State.Raw.IsNull() {
		state = &replicationSlotModel{}
		resp.Diagnostics.Append(req.State.Get(ctx, state)...)
		if resp.Diagnostics.HasError() {
			return
		}
	}

	logical := slotType(plan.Type.ValueString()) == slotLogical
	switch {
	case !logical:
		plan.Database = types.StringNull()
		plan.Plugin = types.StringNull()
	default:
		if config.Database.IsNull() {
			plan.Database = types.StringUnknown()
			if r.server != nil && r.server.settings.Database != "" {
				plan.Database = types.StringValue(r.server.settings.Database)
			}
		}
		if config.Plugin.IsNull() {
			plan.Plugin = types.StringValue(defaultSlotPlugin)
		}
	}
	replacing := state == nil
	if state != nil {
		for _, a := range []struct {
			attr        string
			plan, state types.String
		}{{"database", plan.Database, state.Database}, {"plugin", plan.Plugin, state.Plugin}} {
			// Unknown until apply: it may differ, and only a new slot can take it.
			if !a.plan.Equal(a.state) {
				resp.RequiresReplace = append(resp.RequiresReplace, path.Root(a.attr))
			}
		}
		if logical && !plan.Database.IsUnknown() && !state.Database.IsNull() && !plan.Database.Equal(state.Database) {
			refuseMoveToClosedDatabase(ctx, r.server, "replication slot", state.Name.ValueString(), state.Database.ValueString(), plan.Database.ValueString(), &resp.Diagnostics)
		}
		// immediately_reserve is not here: PostgreSQL does not record it, so
		// it never replaces a slot (createonly.Bool).
		// failover is not here either: Update changes it in place, and
		// two_phase too on PostgreSQL 18 and later.
		if !plan.TwoPhase.Equal(state.TwoPhase) && !r.alterTwoPhase(ctx) {
			resp.RequiresReplace = append(resp.RequiresReplace, path.Root("two_phase"))
		}
		replacing = len(resp.RequiresReplace) > 0 || !plan.Name.Equal(state.Name) || !plan.Type.Equal(state.Type)
	}
	// onServer is the slot a create meets on the server (tainted, or made
	// elsewhere: see warnTaintedReplace); nil if none.
	var onServer *replicationSlotModel
	if state != nil {
		resp.Diagnostics.Append(markInPlace(ctx, resp.Private, *state, replacing)...)
	} else if requested {
		r.checkRequestedReplace(ctx, plan.Name.ValueString(), terminate, &resp.Diagnostics)
	} else {
		onServer = r.warnTaintedReplace(ctx, plan, &resp.Diagnostics)
	}
	alters := state != nil && !replacing && !(plan.Failover.Equal(state.Failover) && plan.TwoPhase.Equal(state.TwoPhase))
	if state != nil && replacing && logical && !state.ConfirmedFlushLSN.IsNull() {
		resp.Diagnostics.AddWarning("Replacing a Replication Slot Loses Its Position", replacingSlotWarning(plan, *state, r.server))
	}
	if state != nil && replacing {
		r.warnActiveDrop(ctx, *state, "replacing", &resp.Diagnostics)
	}
	if r.server != nil && state != nil && !replacing && state.WalStatus.ValueString() == "lost" {
		// Every invalidated slot reads wal_status = lost (PostgreSQL 16 and
		// later); invalidation_reason says why, and not always for WAL
		// removed (idle_timeout, rows_removed, wal_level_insufficient).
		why := "the server removed WAL its consumer still needed (max_slot_wal_keep_size)"
		if row, found, err := r.readSlot(ctx, plan.Name.ValueString()); err == nil && found && row.InvalidationReason != nil {
			why = "the server invalidated it (invalidation_reason = " + *row.InvalidationReason + ")"
		}
		resp.Diagnostics.AddWarning("Replication Slot Lost Its WAL",
			fmt.Sprintf("Replication slot %q on %s has wal_status = lost: %s, and the slot can no longer be used. Recreate it with "+
				"terraform apply -replace=<address>, then resynchronise its consumer.", plan.Name.ValueString(), r.server.describe(), why))
	}
	resp.Diagnostics.Append(resp.Plan.Set(ctx, &plan)...)
	if resp.Diagnostics.HasError() || !replacing && !alters {
		return
	}

	// What follows only matters for a slot about to be created, or whose
	// failover or two_phase change in place.
	if plan.TwoPhase.ValueBool() {
		r.server.requireMajor(ctx, 14, "A two-phase logical slot (two_phase = true)", path.Root("two_phase"), &resp.Diagnostics)
	}
	if plan.Failover.ValueBool() {
		r.server.requireMajor(ctx, 17, "A failover slot (failover = true)", path.Root("failover"), &resp.Diagnostics)
	}
	inRecovery, walLevel, ok := r.serverRole(ctx)
	if !ok {
		return
	}
	if plan.Failover.ValueBool() && inRecovery {
		resp.Diagnostics.AddAttributeError(path.Root("failover"), "Failover Slot Needs a Primary",
			fmt.Sprintf("%s is a standby (in recovery); PostgreSQL creates failover slots only on a primary, and standbys "+
				"with sync_replication_slots = on copy them. Create the slot with the primary's provider, or set failover = false.", r.server.describe()))
	}
	if !logical || !replacing {
		return
	}
	if inRecovery {
		r.server.requireMajor(ctx, 16, "A logical replication slot on a standby (logical decoding on a server in recovery)", path.Root("type"), &resp.Diagnostics)
	}
	if walLevel != "logical" {
		fix := "Run ALTER SYSTEM SET wal_level = logical on it and restart the server."
		if inRecovery {
			fix = "Run ALTER SYSTEM SET wal_level = logical on this standby and on its primary, and restart both."
		}
		resp.Diagnostics.AddAttributeError(path.Root("type"), "Logical Replication Needs wal_level = logical",
			fmt.Sprintf("%s runs with wal_level = %s; a logical replication slot needs wal_level = logical. %s", r.server.describe(), walLevel, fix))
	}
	if resp.Diagnostics.HasError() {
		return
	}
	if plan.Plugin.IsUnknown() {
		if state != nil {
			resp.Diagnostics.AddAttributeWarning(path.Root("plugin"), "Output Plugin Not Verified",
				fmt.Sprintf("Replacing replication slot %q on %s: its new plugin is known only at apply, so the provider could not make sure at "+
					"plan that the server loads it, and the apply drops the old slot before it creates the new one. If the server cannot "+
					"load it, the old slot and its position are lost and the create fails. Give plugin a value known at plan to have it checked.",
					state.Name.ValueString(), r.server.describe()))
		}
		return
	}
	// A create that meets a slot on the server: tainted (terraform taint,
	// a create that failed halfway), which the apply drops first as any
	// replaced slot, or made outside this configuration.
	old := state
	if old == nil {
		old = onServer
	}
	if old == nil || plan.Plugin.Equal(old.Plugin) {
		return
	}
	if state != nil {
		r.checkPlugin(ctx, plan.Plugin.ValueString(), *old, &resp.Diagnostics)
		return
	}
	// Met by a create: the check's findings hold only if the apply drops
	// it (tainted); made outside this configuration, the create fails
	// on it whatever the plugin, and the fix is an import. Terraform does
	// not tell the provider which, so the diagnostics say both.
	var found diag.Diagnostics
	r.checkPlugin(ctx, plan.Plugin.ValueString(), *old, &found)
	lead := metByCreate(plan.Name.ValueString(), r.server.describe())
	for _, d := range found {
		at := path.Root("plugin")
		if dp, ok := d.(diag.DiagnosticWithPath); ok {
			at = dp.Path()
		}
		if d.Severity() == diag.SeverityError {
			resp.Diagnostics.AddAttributeError(at, d.Summary(), lead+d.Detail())
		} else {
			resp.Diagnostics.AddAttributeWarning(at, d.Summary(), lead+d.Detail())
		}
	}
}

// pluginCheckTimeout bounds checkPlugin's temporary slot: loading the
// plugin takes milliseconds, and what follows it (a consistent snapshot:
// every transaction running on the server must end; on a standby, the
// primary's next running-transactions record) is not the check's, and
// says the plugin loaded.
const pluginCheckTimeout = 5 * time.Second

// tryPlugin creates and drops a temporary logical slot of plugin named
// name on conn, in a transaction whose statement_timeout is
// pluginCheckTimeout: the server ends a slot that waits longer itself,
// without the cancel request the client would send (a provider's process
// ends with its plan, and may not have sent it), and the slot goes with
// the statement. The context bounds what the server cannot (a node that
// stopped answering).
func tryPlugin(ctx context.Context, conn *pgxpool.Conn, name, plugin string) error {
	ctx, cancel := context.WithTimeout(ctx, pluginCheckTimeout+5*time.Second)
	defer cancel()
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	// A rollback that fails leaves the connection closed, and Release
	// destroys it (through the pool's BeforeClose, which keeps the
	// connection rooms' counts); a drop that fails is a server ERROR,
	// whose recovery drops the session's temporary slots.
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, fmt.Sprintf("SET LOCAL statement_timeout = %d", pluginCheckTimeout.Milliseconds())); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `SELECT pg_create_logical_replication_slot($1, $2, true)`, name, plugin); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `SELECT pg_drop_replication_slot($1)`, name); err != nil {
		return fmt.Errorf("dropping the check's temporary slot %q: %w", name, err)
	}
	return nil
}

// pluginChecks numbers checkPlugin's temporary slots, so that the checks
// of several slots in one plan do not take each other's names.
var pluginChecks atomic.Int64

// checkPlugin makes sure, at plan, that the server loads plugin, the output
// plugin of the logical slot that replaces the slot of state, which had
// another plugin or was physical. Terraform drops the old slot before it
// creates the new one (one server holds one slot of a name), so a plugin
// the server cannot load, a typo or a package not installed, would lose
// the old slot and the position its consumer had reached, and then fail.
// Only the server knows whether it can load a library, and only by loading
// it: a temporary slot of that plugin, in a session of the provider's
// own, loads it as the new slot will, and is dropped at once (the session's
// end drops it too). A plugin the server cannot load, or a server that
// cannot create a logical slot now, is an error here, before anything is
// dropped; a slot still waiting for its snapshot at pluginCheckTimeout
// loaded its plugin. A check that cannot run (no free slot, a role without
// REPLICATION, which is not made to try, a server that stopped answering)
// is a warning, and the plan goes on.
func (r *replicationSlotResource) checkPlugin(ctx context.Context, plugin string, state replicationSlotModel, diags *diag.Diagnostics) {
	old := "physical slot"
	if state.Plugin.ValueString() != "" {
		old = fmt.Sprintf("slot of plugin %q", state.Plugin.ValueString())
	}
	subject := fmt.Sprintf("Replacing replication slot %q (a %s) on %s with a logical slot of plugin %q", state.Name.ValueString(), old, r.server.describe(), plugin)
	unverified := func(err error) {
		diags.AddAttributeWarning(path.Root("plugin"), "Output Plugin Not Verified",
			fmt.Sprintf("%s: the provider could not make sure at plan that the server loads %q, and the apply drops the old slot before it creates "+
				"the new one. If the server cannot load it, the old slot and its position are lost and the create fails.\n\nCause: %s", subject, plugin, statement.MaskedError(ctx, err)))
	}
	if strings.Contains(plugin, "/") {
		// The server loads a name with a slash as a file path, not from
		// its library directory: a plan loads no library of a
		// configuration's choosing (a plan may run on a change nobody
		// has reviewed yet).
		unverified(errors.New("a plugin named by a path is not loaded at plan: only a name the server looks up in its library directory is"))
		return
	}
	pool, err := r.server.Pool(ctx, "")
	if err != nil {
		unverified(err)
		return
	}
	// A role that may not create slots (a drift audit's, which only
	// reads) is not made to try.
	var may bool
	if err := pool.QueryRow(ctx, `SELECT rolsuper OR rolreplication FROM pg_catalog.pg_roles WHERE rolname = current_user`).Scan(&may); err != nil {
		unverified(err)
		return
	}
	if !may {
		unverified(errors.New("the provider's role has no REPLICATION, which a temporary slot needs (the apply needs it too)"))
		return
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		unverified(err)
		return
	}
	defer conn.Release()
	// Named for the slot it checks, for whoever sees it in
	// pg_replication_slots meanwhile; at most 63 bytes.
	checked := state.Name.ValueString()
	checked = checked[:min(len(checked), 24)]
	name := fmt.Sprintf("pgreplication_check_%s_%d_%d", checked, os.Getpid(), pluginChecks.Add(1))
	err = tryPlugin(ctx, conn, name, plugin)
	if err == nil {
		return
	}
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &pgErr) && pgErr.Code == "58P01": // undefined_file
		diags.AddAttributeError(path.Root("plugin"), "Output Plugin Not Installed",
			fmt.Sprintf("%s would fail: the server has no output plugin %q (no shared library of that name in its library directory), and the "+
				"apply would drop the old slot, with its position, before it found out. Nothing was dropped. Install the plugin on the server "+
				"(pgoutput and test_decoding come with PostgreSQL; others, such as wal2json, are packages of their own), or correct plugin; "+
				"then plan again.\n\nServer error: %s", subject, plugin, statement.MaskedError(ctx, err)))
	case errors.As(err, &pgErr) && strings.Contains(pgErr.Message, "_PG_output_plugin_init"): // a library, but no output plugin (XX000)
		diags.AddAttributeError(path.Root("plugin"), "Not an Output Plugin",
			fmt.Sprintf("%s would fail: the server's library %q is not a logical decoding output plugin (it has no _PG_output_plugin_init), and "+
				"the apply would drop the old slot, with its position, before it found out. Nothing was dropped. Correct plugin (pgoutput is "+
				"what subscriptions use), then plan again.\n\nServer error: %s", subject, plugin, statement.MaskedError(ctx, err)))
	case errors.As(err, &pgErr) && pgErr.Code == "57014": // statement_timeout
		// The slot loads its plugin first, and only then waits, for every
		// transaction running on the server to end (on a standby, for the
		// primary's next running-transactions record): the wait is the
		// only place the timeout can end it, so the plugin loaded.
	case errors.As(err, &pgErr) && pgErr.Code == "55000": // object_not_in_prerequisite_state
		// The server cannot create a logical slot at all now (a standby
		// whose primary runs with wal_level below logical): neither can
		// the apply, after it dropped the old slot.
		diags.AddAttributeError(path.Root("type"), "Cannot Create the New Slot",
			fmt.Sprintf("%s would fail: the server cannot create a logical slot now, and the apply would drop the old slot, with its "+
				"position, before it found out. Nothing was dropped. Fix what the server says, then plan again.\n\nServer error: %s",
				subject, statement.MaskedError(ctx, err)))
	default:
		unverified(err)
	}
}

// inPlaceKey is the private state key by which a plan of an existing slot
// that the provider does not replace tells Terraform's second plan of the
// same resource that a replacement is the user's request (terraform apply
// -replace), and what the prior state says of terminate_active_on_destroy,
// which Delete will use. Terraform plans a requested replacement twice:
// first with the prior state, as an ordinary plan (the provider cannot know
// of the request), then with no prior state but this plan's private state,
// and it shows only the errors of that second plan, never its warnings.
// So a requested replacement of an active slot cannot be warned of: the
// second plan refuses the ones that apply would refuse anyway, and Delete
// says afterwards whose session it terminated.
const inPlaceKey = "planned_in_place"

type inPlaceMark struct {
	TerminateActiveOnDestroy bool `json:"terminate_active_on_destroy"`
}

// markInPlace sets or clears inPlaceKey in the plan's private state: set
// when the plan keeps the slot, cleared when the provider replaces it (its
// own warnings then said what that does).
func markInPlace(ctx context.Context, private privateState, state replicationSlotModel, replacing bool) diag.Diagnostics {
	if replacing {
		return private.SetKey(ctx, inPlaceKey, nil)
	}
	mark, _ := json.Marshal(inPlaceMark{TerminateActiveOnDestroy: state.TerminateActiveOnDestroy.ValueBool()})
	return private.SetKey(ctx, inPlaceKey, mark)
}

// privateState is the framework's private state of a resource.
type privateState interface {
	GetKey(ctx context.Context, key string) ([]byte, diag.Diagnostics)
	SetKey(ctx context.Context, key string, value []byte) diag.Diagnostics
}

// replaceRequested tells whether a plan without prior state is Terraform's
// second plan of a replacement the user asked for, and the prior state's
// terminate_active_on_destroy: see inPlaceKey.
func replaceRequested(ctx context.Context, private privateState) (terminate, requested bool) {
	if private == nil {
		return false, false
	}
	b, d := private.GetKey(ctx, inPlaceKey)
	var mark inPlaceMark
	if d.HasError() || len(b) == 0 || json.Unmarshal(b, &mark) != nil {
		return false, false
	}
	return mark.TerminateActiveOnDestroy, true
}

// checkRequestedReplace refuses, at plan, a replacement that terraform apply
// -replace asked for and that apply would refuse or fail: the slot is in
// use and terminate_active_on_destroy is false (the drop fails), or the
// drop would leave commits waiting for good (dropBlocksCommits). Terraform
// shows only errors of this plan (see inPlaceKey), so these are errors: the
// plan stops before anything changes, naming the consumer.
func (r *replicationSlotResource) checkRequestedReplace(ctx context.Context, name string, terminate bool, diags *diag.Diagnostics) {
	if r.server == nil || r.server.unknown {
		return
	}
	pool, err := r.server.Pool(ctx, "")
	if err != nil {
		return
	}
	row, found, err := r.readSlot(ctx, name)
	if err != nil || !found {
		return
	}
	asked := fmt.Sprintf("This plan replaces replication slot %q on %s, as terraform apply -replace asked. ", name, r.server.describe())
	switch {
	case row.ActivePID != nil && !terminate:
		diags.AddError("Cannot Replace Active Replication Slot", asked+fmt.Sprintf("The slot is in use by %s, so dropping it would fail. "+
			"Terraform shows no provider warning for a replacement asked for this way, so the plan stops here and nothing changes. "+
			"Stop the consumer first (for a standby, clear its primary_slot_name; for a subscription, disable it), or set "+
			"terminate_active_on_destroy = true and apply that alone: the replacement then terminates the consumer's session, and a "+
			"logical slot's consumer loses its position (a subscription must be resynchronised).", r.consumer(ctx, *row.ActivePID)))
	case row.ActivePID != nil:
		if risk := r.dropBlocksCommits(ctx, pool, name, row.ActivePID); risk.summary != "" {
			diags.AddError(risk.summary, asked+risk.detail)
		}
	case slotType(row.Type) == slotPhysical && !row.Invalidated:
		// A slot of that name is created again at once, but Delete, which
		// comes first, cannot tell a replacement from a destroy, and
		// refuses the drop: say so now, not halfway through the apply.
		if risk := r.dropBlocksCommits(ctx, pool, name, nil); risk.summary != "" {
			diags.AddError(risk.summary, asked+"The drop comes first, and it cannot tell a replacement from a destroy, so apply would refuse it. "+
				risk.detail)
		}
	}
}

// warnTaintedReplace warns at plan of what dropping the slot that plan
// creates would do when a slot of its name is on the server already. The
// replacement of a slot that terraform taint marked (or whose create failed
// halfway) is planned once, as a create: Terraform gives the provider no
// prior state and no private state for a tainted object, so the provider
// cannot tell it from a create that meets a slot made elsewhere. Unlike
// terraform apply -replace (see inPlaceKey) this plan's warnings are shown,
// so what the drop meets (the consumer, the position a logical slot loses,
// the commits a physical slot's drop would leave waiting) is said here, as
// for a replacement the provider plans, under a first sentence that names
// both cases. Delete uses terminate_active_on_destroy as the tainted state
// has it, which the plan cannot see: the configuration's value stands in.
// It returns that slot as the server has it (for ModifyPlan's plugin
// check), nil if there is none or it cannot be read.
func (r *replicationSlotResource) warnTaintedReplace(ctx context.Context, plan replicationSlotModel, diags *diag.Diagnostics) *replicationSlotModel {
	if r.server == nil || r.server.unknown || plan.Name.IsUnknown() {
		return nil
	}
	row, found, err := r.readSlot(ctx, plan.Name.ValueString())
	if err != nil || !found {
		return nil
	}
	existing := replicationSlotModel{Name: plan.Name, TerminateActiveOnDestroy: plan.TerminateActiveOnDestroy}
	row.apply(&existing)
	var dropDiags diag.Diagnostics
	if slotType(row.Type) == slotLogical && row.ConfirmedFlushLSN != nil && !row.Invalidated {
		dropDiags.AddWarning("Replacing a Replication Slot Loses Its Position", replacingSlotWarning(plan, existing, r.server))
	}
	r.warnActiveDrop(ctx, existing, "replacing", &dropDiags)
	if len(dropDiags) == 0 {
		return &existing
	}
	lead := metByCreate(plan.Name.ValueString(), r.server.describe())
	for _, d := range dropDiags {
		diags.AddWarning(d.Summary(), lead+d.Detail())
	}
	return &existing
}

// metByCreate leads a diagnostic of the plan of a create that meets slot
// name on the server where: true only if the apply drops that slot first.
func metByCreate(name, where string) string {
	return fmt.Sprintf("Replication slot %q is on %s already, and this plan creates it: either Terraform replaces it because it is tainted "+
		"(terraform taint, or a create that failed halfway), and the apply drops it first, or it was made outside this configuration, and the "+
		"create will fail (import it instead). Terraform does not tell the provider which. If it is tainted: ", name, where)
}

// terminatedConsumer says, for a warning, that dropping slot name on where
// terminated who, its consumer, and what that consumer does now.
func terminatedConsumer(name, where, who string, row slotRow) string {
	detail := fmt.Sprintf("Dropping replication slot %q on %s terminated %s, which used it (terminate_active_on_destroy = true). ", name, where, who)
	if slotType(row.Type) == slotLogical {
		position := "its confirmed position"
		if row.ConfirmedFlushLSN != nil {
			position = "its position (confirmed up to " + *row.ConfirmedFlushLSN + ")"
		}
		return detail + "A logical consumer lost " + position + " with the slot: a subscription reading it must be resynchronised."
	}
	return detail + "A standby streaming through it streams again once a slot of that name exists (a replacement creates it); " +
		"until then the primary keeps no WAL for it."
}

// alterTwoPhase tells whether the server changes a slot's two_phase in place
// (ALTER_REPLICATION_SLOT … TWO_PHASE, PostgreSQL 18 and later). A server
// that cannot be asked yet gets the replacement, which works on every version.
func (r *replicationSlotResource) alterTwoPhase(ctx context.Context) bool {
	if r.server == nil || r.server.unknown {
		return false
	}
	facts, err := r.server.Facts(ctx)
	return err == nil && facts.Major() >= 18
}

// replacingSlotWarning says what replacing an existing logical slot costs:
// its consumer's position, so the changes decoded between it and the new
// slot never reach that consumer. A slot whose two_phase the server turned
// on gets the reason, since its configuration did not change.
func replacingSlotWarning(plan, state replicationSlotModel, s *server) string {
	where := "the server"
	if s != nil {
		where = s.describe()
	}
	text := fmt.Sprintf("This plan drops logical replication slot %q on %s and creates it again. Its consumer confirmed changes up to %s; "+
		"the new slot starts at the WAL position of its creation, so the changes in between never reach that consumer, and a "+
		"subscription reading it must be resynchronised.", state.Name.ValueString(), where, state.ConfirmedFlushLSN.ValueString())
	if state.TwoPhase.ValueBool() && !plan.TwoPhase.ValueBool() {
		text += " The slot has two_phase = true on the server while the configuration says false: a consumer that decodes with " +
			"two-phase on (a subscription with two_phase = true) turns it on, and before PostgreSQL 18 it cannot be turned off in place. If that is " +
			"the consumer, declare two_phase = true to keep the slot."
	}
	return text
}

// warnActiveDestroy tells at plan time what destroying an active slot does.
func (r *replicationSlotResource) warnActiveDestroy(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	var state replicationSlotModel
	if req.State.Raw.IsNull() || req.State.Get(ctx, &state).HasError() {
		return
	}
	r.warnActiveDrop(ctx, state, "destroying", &resp.Diagnostics)
}

// warnActiveDrop tells at plan time that a plan which drops the slot
// (destroying or replacing it) meets a consumer, as the refresh just before
// the plan found: the drop will fail, or, with terminate_active_on_destroy
// (the prior state's value, which Delete uses), end the consumer's session:
// a standby streaming through the slot stops until it streams again.
func (r *replicationSlotResource) warnActiveDrop(ctx context.Context, state replicationSlotModel, doing string, diags *diag.Diagnostics) {
	name := state.Name.ValueString()
	if !state.Active.ValueBool() || state.ActivePID.IsNull() {
		if slotType(state.Type.ValueString()) == slotLogical {
			r.warnIdleSubscriptionSlot(ctx, state, doing, diags)
			return
		}
		if r.server == nil || r.server.unknown {
			return
		}
		if pool, err := r.server.Pool(ctx, ""); err == nil {
			if risk := r.dropBlocksCommits(ctx, pool, name, nil); risk.summary != "" {
				diags.AddWarning(risk.summary, fmt.Sprintf("This plan drops replication slot %q (%s it), and apply will refuse the drop while this is so: %s",
					name, doing, strings.Replace(risk.detail, "Nothing was changed. ", "", 1)))
			}
		}
		return
	}
	pid := state.ActivePID.ValueInt64()
	if !state.TerminateActiveOnDestroy.ValueBool() {
		diags.AddWarning("Replication Slot Is Active",
			fmt.Sprintf("This plan drops replication slot %q (%s it), which is in use by %s, so the drop will fail. Stop the consumer first, "+
				"or set terminate_active_on_destroy = true and apply that alone before %s the slot.", name, doing, r.consumer(ctx, pid), doing))
		return
	}
	detail := fmt.Sprintf("This plan drops replication slot %q (%s it) with terminate_active_on_destroy = true, so it first terminates %s, "+
		"which uses the slot: a standby streaming through it stops streaming until it connects through a slot that exists, and the "+
		"primary no longer keeps WAL or row versions for it meanwhile.", name, doing, r.consumer(ctx, pid))
	if r.server == nil || r.server.unknown {
		diags.AddWarning("Dropping an Active Replication Slot Ends Its Consumer's Session", detail)
		return
	}
	if pool, err := r.server.Pool(ctx, ""); err == nil {
		if risk := r.dropBlocksCommits(ctx, pool, name, &pid); risk.summary != "" {
			detail += " Apply will refuse the drop while this is so: " + strings.Replace(risk.detail, "Nothing was changed. ", "", 1)
		}
	}
	diags.AddWarning("Dropping an Active Replication Slot Ends Its Consumer's Session", detail)
}

// warnIdleSubscriptionSlot warns at plan that dropping an inactive logical
// slot of pgoutput (destroying or replacing it) may cut a subscription off
// for good: a disabled subscription, or one whose apply worker is
// restarting, keeps its slot_name while no session streams from the slot,
// and the publisher cannot tell it from a slot nobody uses. Enabled again,
// that subscription fails on every start ("replication slot ... does not
// exist"), and the changes after its confirmed position are lost. The drop
// is not refused: from the publisher a disabled subscription's slot and an
// abandoned one look the same, and a subscription destroyed with
// drop_slot_on_destroy = false leaves just such a slot for this resource to
// drop. A slot that lost its WAL is not warned of: no consumer can use it.
func (r *replicationSlotResource) warnIdleSubscriptionSlot(ctx context.Context, state replicationSlotModel, doing string, diags *diag.Diagnostics) {
	if state.Plugin.ValueString() != defaultSlotPlugin || state.WalStatus.ValueString() == "lost" {
		return
	}
	name := state.Name.ValueString()
	where, since := "the server", ""
	if r.server != nil && !r.server.unknown {
		where = r.server.describe()
		since = r.inactiveSince(ctx, name)
	}
	position := "no confirmed position"
	if !state.ConfirmedFlushLSN.IsNull() {
		position = "confirmed_flush_lsn " + state.ConfirmedFlushLSN.ValueString()
	}
	idle := "No session streams from it now"
	if since != "" {
		idle += " (inactive since " + since + ")"
	}
	diags.AddWarning("Replication Slot May Belong to a Disabled Subscription",
		fmt.Sprintf("This plan drops logical replication slot %q (%s it) of plugin pgoutput in database %q on %s, at %s. %s: "+
			"a subscription that is disabled, or whose apply worker is restarting after an error, and still names this slot "+
			"looks just so from the publisher. Once the slot is dropped, that subscription fails on every start (%s) and "+
			"the changes after its position are lost. If a subscription uses this slot, drop that subscription first, or "+
			"detach it on the subscriber (ALTER SUBSCRIPTION ... DISABLE; ALTER SUBSCRIPTION ... SET (slot_name = NONE)) before you apply.",
			name, doing, state.Database.ValueString(), where, position, idle, fmt.Sprintf("replication slot %q does not exist", name)))
}

// inactiveSince is when slot name last stopped streaming
// (pg_replication_slots.inactive_since, PostgreSQL 17 and later), or ""
// when the server cannot tell.
func (r *replicationSlotResource) inactiveSince(ctx context.Context, name string) string {
	facts, err := r.server.Facts(ctx)
	if err != nil || facts.Major() < 17 {
		return ""
	}
	pool, err := r.server.Pool(ctx, "")
	if err != nil {
		return ""
	}
	var since *string
	if pool.QueryRow(ctx, `SELECT inactive_since::text FROM pg_replication_slots WHERE slot_name = $1`, name).Scan(&since) != nil || since == nil {
		return ""
	}
	return *since
}

// serverRole tells whether the server is a standby, and its wal_level. ok is
// false when the server cannot be asked yet: then apply reports the problem.
func (r *replicationSlotResource) serverRole(ctx context.Context) (inRecovery bool, walLevel string, ok bool) {
	if r.server == nil || r.server.unknown {
		return false, "", false
	}
	// wal_level needs a restart to change: the server facts have it. Whether
	// the server is in recovery can change at any time (a promotion).
	facts, err := r.server.Facts(ctx)
	if err != nil {
		return false, "", false
	}
	pool, err := r.server.Pool(ctx, "")
	if err != nil {
		return false, "", false
	}
	if err := pool.QueryRow(ctx, `SELECT pg_is_in_recovery()`).Scan(&inRecovery); err != nil {
		return false, "", false
	}
	return inRecovery, facts.WalLevel, true
}

func (r *replicationSlotResource) inRecovery(ctx context.Context) bool {
	inRecovery, _, _ := r.serverRole(ctx)
	return inRecovery
}

// slotRow is one row of pg_replication_slots.
type slotRow struct {
	Type              string
	Database, Plugin  *string
	TwoPhase          bool
	Failover          bool
	ActivePID         *int64
	Active            bool
	RestartLSN        *string
	ConfirmedFlushLSN *string
	WalStatus         *string
	SafeWalSize       *int64
	RetainedWalBytes  *int64
	// Invalidated: the server invalidated the slot (wal_status lost, or
	// invalidation_reason, PostgreSQL 17 and later): no consumer can use it
	// again.
	Invalidated bool
	// InvalidationReason is why (PostgreSQL 17 and later: wal_removed,
	// rows_removed, wal_level_insufficient; 18: idle_timeout), nil before.
	InvalidationReason *string
}

// readSlot reads a persistent slot by name from pg_replication_slots, with
// the columns the server's version has (two_phase: 14, failover: 17).
func (r *replicationSlotResource) readSlot(ctx context.Context, name string) (slotRow, bool, error) {
	facts, err := r.server.Facts(ctx)
	if err != nil {
		return slotRow{}, false, err
	}
	pool, err := r.server.Pool(ctx, "")
	if err != nil {
		return slotRow{}, false, err
	}
	twoPhase, failover, invalidated := "false", "false", "coalesce(wal_status = 'lost', false)"
	if facts.Major() >= 14 {
		twoPhase = "two_phase"
	}
	if facts.Major() >= 17 {
		failover = "failover"
		invalidated = "(coalesce(wal_status = 'lost', false) OR invalidation_reason IS NOT NULL)"
	}
	var row slotRow
	err = pool.QueryRow(ctx, `
SELECT slot_type, database::text, plugin::text, `+twoPhase+`, `+failover+`, active, active_pid::bigint,
       restart_lsn::text, confirmed_flush_lsn::text, wal_status, safe_wal_size,
       CASE WHEN restart_lsn IS NOT NULL -- greatest() would make the NULL of a slot that reserves nothing 0
            THEN greatest(pg_wal_lsn_diff(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END,
                                          restart_lsn), 0)::bigint END, `+invalidated+`,
       to_jsonb(s) ->> 'invalidation_reason'
FROM pg_replication_slots s
WHERE slot_name = $1 AND NOT temporary`, name).Scan(
		&row.Type, &row.Database, &row.Plugin, &row.TwoPhase, &row.Failover, &row.Active, &row.ActivePID,
		&row.RestartLSN, &row.ConfirmedFlushLSN, &row.WalStatus, &row.SafeWalSize, &row.RetainedWalBytes, &row.Invalidated,
		&row.InvalidationReason)
	if errors.Is(err, pgx.ErrNoRows) {
		return slotRow{}, false, nil
	}
	if err != nil {
		return slotRow{}, false, err
	}
	return row, true, nil
}

// apply writes what the server records into m. immediately_reserve is not
// recorded: it keeps m's value, or after an import is inferred from whether a
// physical slot reserves WAL.
func (row slotRow) apply(m *replicationSlotModel) {
	m.ID = types.StringValue(importid.Format(m.Name.ValueString()))
	m.Type = types.StringValue(row.Type)
	m.Database = types.StringPointerValue(row.Database)
	m.Plugin = types.StringPointerValue(row.Plugin)
	m.TwoPhase = types.BoolValue(row.TwoPhase)
	m.Failover = types.BoolValue(row.Failover)
	if m.ImmediatelyReserve.IsNull() || m.ImmediatelyReserve.IsUnknown() {
		m.ImmediatelyReserve = types.BoolValue(slotType(row.Type) == slotPhysical && row.RestartLSN != nil)
	}
	if m.TerminateActiveOnDestroy.IsNull() || m.TerminateActiveOnDestroy.IsUnknown() {
		m.TerminateActiveOnDestroy = types.BoolValue(false)
	}
	if m.CreateTimeout.IsNull() || m.CreateTimeout.IsUnknown() {
		m.CreateTimeout = normalized.NewDuration(defaultSlotCreateTimeout)
	}
	m.Active = types.BoolValue(row.Active)
	m.ActivePID = types.Int64PointerValue(row.ActivePID)
	m.RestartLSN = types.StringPointerValue(row.RestartLSN)
	m.ConfirmedFlushLSN = types.StringPointerValue(row.ConfirmedFlushLSN)
	m.WalStatus = types.StringPointerValue(row.WalStatus)
	m.SafeWalSize = types.Int64PointerValue(row.SafeWalSize)
	m.RetainedWalBytes = types.Int64PointerValue(row.RetainedWalBytes)
}

// validateSlotName applies PostgreSQL's rule for slot names, so that a bad
// name fails at plan time rather than in CREATE.
func validateSlotName(name string) error {
	if err := pgsql.ValidateName(name); err != nil {
		return err
	}
	if !slotNamePattern.MatchString(name) {
		return fmt.Errorf("replication slot names may contain only lower-case letters (a-z), digits and underscores; %q has other characters", name)
	}
	return nil
}

// The string validators of the provider's names and durations, from one
// constructor (provider/internal/validate).
var (
	// slotNameValidator: PostgreSQL's rule for replication slot names.
	slotNameValidator = validate.String("Invalid Replication Slot Name",
		"lower-case letters, digits and underscores, at most 63 bytes", validateSlotName)
	// identifierValidator refuses names PostgreSQL would truncate or reject.
	identifierValidator = validate.String("Invalid Name",
		"a PostgreSQL identifier: not empty, no NUL byte, at most 63 bytes", pgsql.ValidateName)
	// durationValidator accepts a Go duration greater than zero.
	durationValidator = validate.String("Invalid Duration",
		"a positive duration such as \"90s\" or \"5m\"", validate.PositiveDuration)
)

// slotTypeAttributesValidator refuses attributes that the declared slot type
// does not have: PostgreSQL would ignore them or fail at apply.
type slotTypeAttributesValidator struct{}

func (slotTypeAttributesValidator) Description(context.Context) string {
	return "database, plugin, two_phase and failover apply to logical slots; immediately_reserve to physical slots"
}

func (v slotTypeAttributesValidator) MarkdownDescription(ctx context.Context) string {
	return v.Description(ctx)
}

func (slotTypeAttributesValidator) ValidateResource(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	var m replicationSlotModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() || m.Type.IsNull() || m.Type.IsUnknown() {
		return
	}
	typ := m.Type.ValueString()
	var wrong []string
	if slotType(typ) == slotPhysical {
		for _, a := range []struct {
			name string
			set  bool
		}{
			{"database", !m.Database.IsNull()},
			{"plugin", !m.Plugin.IsNull()},
			{"two_phase", m.TwoPhase.ValueBool()},
			{"failover", m.Failover.ValueBool()},
		} {
			if a.set {
				wrong = append(wrong, a.name)
			}
		}
	} else if m.ImmediatelyReserve.ValueBool() {
		wrong = append(wrong, "immediately_reserve")
	}
	for _, a := range wrong {
		resp.Diagnostics.AddAttributeError(path.Root(a), "Attribute Does Not Apply to This Slot Type",
			fmt.Sprintf("%s does not apply to a %s replication slot: %s. Remove it, or change type.",
				a, typ, strings.TrimSuffix(slotTypeAttributesValidator{}.Description(ctx), ".")))
	}
}
