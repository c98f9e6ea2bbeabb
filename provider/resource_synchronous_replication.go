package provider

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/listvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64default"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/mapplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/pgsql"
	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/statement"
	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/syncrep"
	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/validate"
)

var (
	_ resource.ResourceWithImportState    = (*synchronousReplicationResource)(nil)
	_ resource.ResourceWithModifyPlan     = (*synchronousReplicationResource)(nil)
	_ resource.ResourceWithValidateConfig = (*synchronousReplicationResource)(nil)
)

func newSynchronousReplicationResource() resource.Resource {
	return &synchronousReplicationResource{}
}

// synchronousReplicationResource is a primary's synchronous replication:
// synchronous_standby_names, rendered from method, num_sync and the
// standbys' application names, and synchronous_commit. One per server.
type synchronousReplicationResource struct {
	server *server
}

// synchronousReplicationImportID is the import ID and id: a server has one
// synchronous_standby_names.
const synchronousReplicationImportID = "synchronous_replication"

// synchronousCommitLevels are synchronous_commit's values, strongest first.
var synchronousCommitLevels = []string{"remote_apply", "on", "remote_write", "local", "off"}

// syncSettleTimeout bounds how long apply waits for the server to take a new
// setting, and for its WAL senders to report their new sync_state.
const syncSettleTimeout = 30 * time.Second

// syncConfirmTimeout bounds how long plan and apply wait for the listed
// standbys to stream and confirm the primary's WAL (checkAvailable): a
// standby that does not within it is refused. Tests shorten it per provider
// (pgreplicationProvider.syncConfirmWait).
const syncConfirmTimeout = 30 * time.Second

// confirmWait is how long s's checks wait for the standbys (syncConfirmTimeout).
func (s *server) confirmWait() time.Duration {
	if s.syncConfirmWait > 0 {
		return s.syncConfirmWait
	}
	return syncConfirmTimeout
}

func (r *synchronousReplicationResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_synchronous_replication"
}

func (r *synchronousReplicationResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "A primary's synchronous replication: which standbys must confirm a commit before it returns " +
			"(`synchronous_standby_names`) and what they confirm (`synchronous_commit`). Apply it with the provider instance of the **primary**.\n\n" +
			"A synchronous primary **blocks every commit** while fewer than `num_sync` of the listed standbys are connected. So plan and " +
			"apply refuse a change of the standby list when fewer than `num_sync` of the listed standbys stream from the primary now " +
			"(`pg_stat_replication`) and confirm its WAL, unless `allow_unavailable = true`, and so they refuse a `synchronous_commit` " +
			"raised to wait for more (`remote_apply` waits until the standbys replay each commit, which one whose replay is paused never does). A standby that stopped answering keeps its " +
			"connection, and shows as streaming, for up to `wal_sender_timeout`: the plan, which only reads, refuses one that has not answered the primary " +
			"for longer than half of `wal_sender_timeout` (a standby that runs answers at least that often: the primary asks it to) and stayed silent while the plan watched it; " +
			"apply writes a commit record (a transaction ID, nothing else) " +
			"that each listed standby must confirm, as far as `synchronous_commit` will wait for, before commits wait for it. A listed standby that is connected but still starting or " +
			"catching up (a standby the same apply has just pointed at its slot, for example), or whose connection broke during the check (its WAL receiver or the primary restarted), is waited for, at most 30 seconds.\n\n" +
			"The provider writes the settings with `ALTER SYSTEM` and reloads; Read parses the server's `synchronous_standby_names` " +
			"back (every form PostgreSQL accepts, including `a, b` and `2 (a, b)`), so a hand edit shows as a change of `method`, " +
			"`num_sync` or `standby_names`; `synchronous_standby_names` emptied by hand (synchronous replication off) shows as " +
			"`standby_names` changing from `[]`. Destroy resets both settings (`ALTER SYSTEM RESET`), so that commits never stay blocked; it does not bring back a value the " +
			"server had before the resource was created, which the create's plan names in a warning: to manage that value, `terraform import` it instead. " +
			"A destroy resets nothing, with a warning, when the settings are no longer the resource's: another `pgreplication_synchronous_replication` " +
			"object wrote them since, such as the new object of a `create_before_destroy` replacement, which Terraform creates before it destroys the old " +
			"one (and does for every resource a `create_before_destroy` resource depends on). Create writes a random token of its own to the custom " +
			"setting `" + syncOwnerSetting + "` (`ALTER SYSTEM`; it shows in `postgresql.auto.conf`, not in `pg_settings`) and keeps it in the " +
			"resource's private state, so that the old object's destroy tells the new object's settings from its own even when their values are " +
			"the same; destroy resets the token too (a role that may not reset it gets a warning: the settings are reset). A role that may not write " +
			"the token takes the one the server holds, if any, as the resource's own, as an import does. A resource without a token (imported from a " +
			"hand-made configuration, or created by an older provider or a role that may not write it) is reset unless the server's " +
			"`synchronous_standby_names` differs from the resource's.\n\n" +
			halfCreatedText("", "either way resetting what the create wrote") +

			privilegesText(
				requirement{alterSystemPrivilege("synchronous_standby_names", "synchronous_commit"), "writing the settings (`ALTER SYSTEM`)."},
				requirement{alterSystemPrivilege(syncOwnerSetting), "writing the token that tells a `create_before_destroy` replacement's old object " +
					"from the new one (see above). Without it, create warns and goes on without a token of its own (it takes the server's, if any), " +
					"and destroy warns that it left the token in place."},
				requirement{reloadConfPrivilege, "applying them (`pg_reload_conf()`)."},
				requirement{readAllStatsPrivilege, "reading which standbys stream and their `sync_state` (`pg_stat_replication`), which PostgreSQL hides from other roles."},
				requirement{readAllSettingsPrivilege, "when a configuration file sets one of the settings to a value other than the one the provider's last apply " +
					"wrote: telling whether it is postgresql.auto.conf (`pg_settings.sourcefile`), so that an apply that fails after writing writes back " +
					"what that file held. Without it such an apply is refused before it writes anything. The provider's own values need no such grant."},
			) +
			planPrivilegesText("`pg_read_all_stats` (a member of `pg_monitor`), to see each standby's state in `pg_stat_replication`; the settings are readable by every role."),
		Attributes: map[string]schema.Attribute{
			// Required
			"standby_names": schema.ListAttribute{
				Required:    true,
				ElementType: types.StringType,
				Validators: []validator.List{
					listvalidator.SizeAtLeast(1),
					standbyNamesDistinct{},
					listvalidator.ValueStringsAre(stringvalidator.LengthBetween(1, 63), syncStandbyNameValidator),
				},
				MarkdownDescription: "The standbys' `application_name`s (`pgreplication_standby.application_name`), in priority order for " +
					"`method = \"first\"`. Each is written double-quoted, so spaces, quotes and upper case work; PostgreSQL matches them case-insensitively, " +
					"so names that differ only in case name the same standby and are refused as a duplicate. " +
					"Printable ASCII only: PostgreSQL escapes any other character of the application_name a standby reports, so such a name would never match. " +
					"`\"*\"` matches every standby.",
			},

			// Optional
			"method": schema.StringAttribute{
				Optional:   true,
				Computed:   true,
				Default:    stringdefault.StaticString(syncrep.First),
				Validators: []validator.String{stringvalidator.OneOf(syncrep.Methods...)},
				MarkdownDescription: "How the synchronous standbys are chosen: " + quotedList(syncrep.Methods) + ". `first`: the first " +
					"`num_sync` connected standbys of the list, by priority; `any`: any `num_sync` of them (quorum). Defaults to `" + syncrep.First + "`.",
			},
			"num_sync": schema.Int64Attribute{
				Optional:            true,
				Computed:            true,
				Default:             int64default.StaticInt64(1),
				Validators:          []validator.Int64{int64validator.AtLeast(1)},
				MarkdownDescription: "How many standbys must confirm each commit; at most the number of `standby_names` (unless one is `\"*\"`). Defaults to `1`.",
			},
			"synchronous_commit": schema.StringAttribute{
				Optional:   true,
				Computed:   true,
				Default:    stringdefault.StaticString("on"),
				Validators: []validator.String{stringvalidator.OneOf(synchronousCommitLevels...)},
				MarkdownDescription: "`synchronous_commit`, the server-wide default of what a commit waits for: " + quotedList(synchronousCommitLevels) +
					". `remote_apply`: the standbys applied it; `on`: they flushed it to disk; `remote_write`: they wrote it; `local` and `off`: " +
					"no standby. Roles, databases and sessions can still override it. Defaults to `on`, PostgreSQL's default.",
			},
			"allow_unavailable": schema.BoolAttribute{
				Optional: true,
				Computed: true,
				Default:  booldefault.StaticBool(false),
				MarkdownDescription: "Apply a standby list even though fewer than `num_sync` of the listed standbys are connected now. " +
					"Every commit on the primary then **waits** until enough of them connect. Only used by the provider. Defaults to `false`.",
			},

			// Computed
			"id": schema.StringAttribute{
				Computed:            true,
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
				MarkdownDescription: "Always `" + synchronousReplicationImportID + "`: a server has one `synchronous_standby_names`. The import ID.",
			},
			"sync_state": schema.MapAttribute{
				Computed:      true,
				ElementType:   types.StringType,
				PlanModifiers: []planmodifier.Map{mapplanmodifier.UseStateForUnknown()},
				MarkdownDescription: "Each connected standby's `sync_state` from `pg_stat_replication`, by `application_name`: `sync`, " +
					"`quorum` (`method = \"any\"`), `potential` (would take over as synchronous) or `async`, as of the last refresh: " +
					"its changes never make a plan by themselves, a plan that updates the resource keeps it as refreshed (so a drift plan " +
					"shows only what drifted), and apply does not read it again (create does, once). For a current view use " +
					"`data.pgreplication_replication_status`.",
			},
		},
	}
}

func (r *synchronousReplicationResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.server = serverFromProviderData(req.ProviderData, &resp.Diagnostics)
}

func (r *synchronousReplicationResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan synchronousReplicationResourceModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	ctx = statement.WithObject(ctx, "synchronous replication on "+r.server.describe())
	pool := r.server.PoolOrDiag(ctx, "", &resp.Diagnostics)
	if pool == nil {
		return
	}
	claim, ok := r.server.claimOwner(ctx, pool, syncOwnerSetting, "pgreplication_synchronous_replication", &resp.Diagnostics)
	if !ok {
		return
	}
	plan.ID = types.StringValue(synchronousReplicationImportID)
	const undo = "its destroy resets synchronous_standby_names and synchronous_commit"
	if ok, left := r.apply(ctx, &plan, nil, &resp.Diagnostics); !ok {
		if left {
			keepTainted(ctx, &resp.State, resp.Private, &plan, claim, r.server, "pgreplication_synchronous_replication", undo, &resp.Diagnostics)
		} else if left := r.server.release(ctx, pool, claim); left != "" {
			resp.Diagnostics.AddError("Cannot Write Back "+syncOwnerSetting, left)
		}
		return
	}
	if err := r.server.settle(ctx, pool, claim); err != nil {
		if settingsLeft(err) {
			resp.Diagnostics.AddError("Owner Token Not in Effect", fmt.Sprintf("The owner token (%s) on %s does not take effect: %v.",
				syncOwnerSetting, r.server.describe(), err))
			keepTainted(ctx, &resp.State, resp.Private, &plan, claim, r.server, "pgreplication_synchronous_replication", undo, &resp.Diagnostics)
			return
		}
		resp.Diagnostics.AddError("Owner Token Not in Effect", fmt.Sprintf("The owner token (%s) on %s does not take effect: %v.%s",
			syncOwnerSetting, r.server.describe(), err, r.server.release(ctx, pool, claim)))
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
	resp.Diagnostics.Append(claim.keep(ctx, resp.Private)...)
}

func (r *synchronousReplicationResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state synchronousReplicationResourceModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	ctx = statement.WithObject(ctx, "synchronous replication on "+r.server.describe())
	pool := r.server.PoolOrDiag(ctx, "", &resp.Diagnostics)
	if pool == nil {
		return
	}
	imported := state.Method.IsNull()
	found, err := r.server.readSynchronousReplication(ctx, pool, &state)
	if err != nil {
		resp.Diagnostics.AddError("Cannot Read Synchronous Replication", "Reading synchronous_standby_names on "+r.server.describe()+" failed: "+err.Error())
		return
	}
	if !found && imported {
		// Nothing to import: synchronous replication is off.
		resp.State.RemoveResource(ctx)
		return
	}
	state.ID = types.StringValue(synchronousReplicationImportID)
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

func (r *synchronousReplicationResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, state synchronousReplicationResourceModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	ctx = statement.WithObject(ctx, "synchronous replication on "+r.server.describe())
	refreshed := plan.SyncState // as planned: the last refresh's
	if ok, _ := r.apply(ctx, &plan, &state, &resp.Diagnostics); !ok {
		return
	}
	plan.SyncState = refreshed
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

func (r *synchronousReplicationResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state synchronousReplicationResourceModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	ctx = statement.WithObject(ctx, "synchronous replication on "+r.server.describe())
	pool := r.server.PoolOrDiag(ctx, "", &resp.Diagnostics)
	if pool == nil {
		return
	}
	// The Delete of a create_before_destroy replacement's old object comes
	// after the new object wrote its settings and its token
	// (system_settings_owner.go): they are not this object's to reset,
	// whatever their values.
	owner := r.server.ownedElsewhere(ctx, pool, syncOwnerSetting, req.Private)
	if owner.elsewhere {
		resp.Diagnostics.AddWarning("Synchronous Replication Left As Is",
			fmt.Sprintf("synchronous_standby_names and synchronous_commit on %s were written by another pgreplication_synchronous_replication "+
				"object since this one was created (%s holds its token, not this one's): the new object of a create_before_destroy "+
				"replacement, which Terraform creates before it destroys this one, or another configuration. So the destroy resets "+
				"nothing. If nothing manages them now and synchronous replication should be off, a superuser runs ALTER SYSTEM RESET "+
				"synchronous_standby_names; ALTER SYSTEM RESET synchronous_commit; ALTER SYSTEM RESET %s; SELECT pg_reload_conf().",
				r.server.describe(), syncOwnerSetting, syncOwnerSetting))
		return
	}
	// A value that differs tells the same, for an object without a token.
	// Read refreshed state before a destroy, so a by-hand change is this
	// object's value by now. Not for one whose token postgresql.auto.conf
	// holds, not in effect (owner.written): the values in effect are not
	// the ones its create wrote there.
	var cur string
	if err := pool.QueryRow(ctx, `SELECT current_setting('synchronous_standby_names')`).Scan(&cur); err == nil && !owner.written {
		if c, found, err := syncrep.Parse(cur); err == nil && found && len(state.StandbyNames.Elements()) > 0 && c.String() != state.config(ctx).String() {
			resp.Diagnostics.AddWarning("Synchronous Replication Left As Is",
				fmt.Sprintf("synchronous_standby_names on %s is %s, not this resource's %s: another object wrote it since (the new "+
					"object of a create_before_destroy replacement, or a change by hand), so the destroy resets nothing. Reset it by "+
					"hand (ALTER SYSTEM RESET synchronous_standby_names, then SELECT pg_reload_conf()) if that was meant.",
					r.server.describe(), pgsql.Literal(cur), pgsql.Literal(state.config(ctx).String())))
			return
		}
	}
	// ALTER SYSTEM writes no WAL, so this works even while commits wait
	// for a standby that is not there.
	// The settings first, then the token (resetOwned): a token that cannot
	// be reset must not fail the destroy once the settings are.
	err := r.server.resetOwned(ctx, pool, []string{"synchronous_standby_names", "synchronous_commit"}, syncOwnerSetting, owner.token,
		"pgreplication_synchronous_replication", "synchronous_standby_names and synchronous_commit", &resp.Diagnostics)
	if err != nil {
		resp.Diagnostics.AddError("Cannot Reset Synchronous Replication",
			"Resetting synchronous_standby_names and synchronous_commit on "+r.server.describe()+" failed; every setting that could be reset was:\n"+err.Error()+
				"\nCommits on the primary may keep waiting for standbys until it is reset: fix the privilege and destroy again.")
		return
	}
	// Wait until new sessions no longer see the resource's value, so that a
	// following step (or a test) does not see the old one. postgresql.conf
	// may set the same value: then this gives up quietly.
	rendered := state.config(ctx).String()
	_, _ = pollUntil(ctx, syncSettleTimeout/3, func(ctx context.Context) (bool, error) {
		var cur string
		err := pool.QueryRow(ctx, `SELECT current_setting('synchronous_standby_names')`).Scan(&cur)
		return err == nil && cur != rendered, nil
	})
}

func (r *synchronousReplicationResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	if req.ID != synchronousReplicationImportID {
		resp.Diagnostics.AddError("Invalid Import ID",
			fmt.Sprintf("The import ID of pgreplication_synchronous_replication is always %q (a server has one synchronous_standby_names; the provider instance names the server), not %q.",
				synchronousReplicationImportID, req.ID))
		return
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), synchronousReplicationImportID)...)
	// Provider-only: import the default, so that leaving it out plans nothing.
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("allow_unavailable"), false)...)
	// An import connects (Read, which follows at once, would too): it
	// cannot take the server's token without asking, and an object imported
	// without it would take that token for another object's and never reset.
	if pool := r.server.PoolOrDiag(ctx, "", &resp.Diagnostics); pool != nil {
		resp.Diagnostics.Append(r.server.adoptOwner(ctx, pool, syncOwnerSetting, "pgreplication_synchronous_replication", resp.Private)...)
	}
}

// standbyNamesDistinct refuses a standby listed twice: the same name, or
// names that differ only in the case of A to Z, which the primary compares
// case-insensitively with each standby's application_name, quoted or not
// (syncrep.Fold), so both name the same standbys. Such a list counts one
// standby as two: with method = "any" and num_sync = 2, ("a", "A") would
// have every commit wait for a second standby that cannot exist.
type standbyNamesDistinct struct{}

func (standbyNamesDistinct) Description(context.Context) string {
	return "each standby listed once: names are compared case-insensitively, as PostgreSQL compares them"
}

func (v standbyNamesDistinct) MarkdownDescription(ctx context.Context) string {
	return v.Description(ctx)
}

func (standbyNamesDistinct) ValidateList(ctx context.Context, req validator.ListRequest, resp *validator.ListResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	first := map[string]int{} // by Fold: the index of the first name
	for i, e := range req.ConfigValue.Elements() {
		s, ok := e.(types.String)
		if !ok || s.IsNull() || s.IsUnknown() {
			continue
		}
		name := s.ValueString()
		j, seen := first[syncrep.Fold(name)]
		if !seen {
			first[syncrep.Fold(name)] = i
			continue
		}
		var had string
		if h, ok := req.ConfigValue.Elements()[j].(types.String); ok {
			had = h.ValueString()
		}
		how := "the same name"
		if had != name {
			how = "names that differ only in case, which PostgreSQL compares with a standby's application_name case-insensitively (quoted or not)"
		}
		resp.Diagnostics.AddAttributeError(req.Path.AtListIndex(i), "Duplicate Standby Name",
			fmt.Sprintf("standby_names lists %q (item %d) and %q (item %d): %s, so both name the same standby, which counts once toward num_sync "+
				"and a commit could wait for a standby that does not exist. Remove one of them.", had, j+1, name, i+1, how))
	}
}

// syncStandbyNameValidator refuses a standby name that no standby can
// report: PostgreSQL replaces every byte of an application_name outside
// printable ASCII (with \xNN from 16 on, with ? in 15), and compares
// synchronous_standby_names with what it kept.
var syncStandbyNameValidator = validate.String("Invalid Standby Name",
	"printable ASCII characters only", func(name string) error {
		for i := 0; i < len(name); i++ {
			if c := name[i]; c < 32 || c > 126 {
				return fmt.Errorf("%q has characters outside printable ASCII. PostgreSQL replaces them in the application_name a standby "+
					"reports (PostgreSQL 16 and later write é as \\xc3\\xa9, 15 writes ?), so this name would never match a standby and "+
					"commits would wait for one that never confirms. Give the standby an ASCII application_name, or list the name "+
					"exactly as the primary's pg_stat_replication shows it", name)
			}
		}
		return nil
	})

func (r *synchronousReplicationResource) ValidateConfig(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	var cfg synchronousReplicationResourceModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &cfg)...)
	if resp.Diagnostics.HasError() || cfg.StandbyNames.IsUnknown() || cfg.StandbyNames.IsNull() || cfg.NumSync.IsUnknown() || cfg.NumSync.IsNull() {
		return
	}
	var names []string
	resp.Diagnostics.Append(cfg.StandbyNames.ElementsAs(ctx, &names, true)...)
	if resp.Diagnostics.HasError() || slices.Contains(names, "*") {
		return
	}
	if n := cfg.NumSync.ValueInt64(); n > int64(len(names)) {
		resp.Diagnostics.AddAttributeError(path.Root("num_sync"), "num_sync Exceeds the Standby List",
			fmt.Sprintf("num_sync is %d, but standby_names lists %d standby(s): no commit could ever be confirmed by enough standbys, so every commit would wait forever. "+
				"Lower num_sync or list more standbys.", n, len(names)))
	}
}

// ModifyPlan refuses, at plan time, a new standby list that would block
// commits: fewer than num_sync of the listed standbys connected now.
func (r *synchronousReplicationResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() || r.server == nil || r.server.unknown {
		return // destroy, or the server cannot be asked yet
	}
	if pool, err := r.server.Pool(ctx, ""); err == nil {
		if req.State.Raw.IsNull() {
			if v, from, found := settingInEffect(ctx, pool, "synchronous_standby_names"); found {
				resp.Diagnostics.Append(overwriteWarning("pgreplication_synchronous_replication", synchronousReplicationImportID,
					"synchronous_standby_names", pgsql.Literal(v), from))
			}
		} else {
			resp.Diagnostics.Append(r.server.pendingWarning(ctx, pool, "the primary", []string{"synchronous_standby_names", "synchronous_commit"},
				func(_, v string) string { return pgsql.Literal(v) })...)
		}
	}
	var plan synchronousReplicationResourceModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() || plan.AllowUnavailable.ValueBool() || plan.AllowUnavailable.IsUnknown() ||
		plan.StandbyNames.IsUnknown() || plan.NumSync.IsUnknown() || plan.Method.IsUnknown() {
		return
	}
	for _, name := range plan.StandbyNames.Elements() {
		if name.IsUnknown() {
			return // known at apply, which checks again
		}
	}
	var prior *synchronousReplicationResourceModel
	if !req.State.Raw.IsNull() {
		prior = &synchronousReplicationResourceModel{}
		resp.Diagnostics.Append(req.State.Get(ctx, prior)...)
		if resp.Diagnostics.HasError() {
			return
		}
	}
	if !waitGrows(ctx, &plan, prior) {
		return // commits wait for the same standbys, for as much or less
	}
	pool, err := r.server.Pool(ctx, "")
	if err != nil {
		return // unreachable now: Read or apply reports it
	}
	// Read-only at plan time: the WAL written so far is what the standbys
	// must confirm (see checkAvailable).
	const sql = `SELECT pg_current_wal_flush_lsn()::text`
	var target string
	if err := pool.QueryRow(ctx, sql).Scan(&target); err != nil {
		resp.Diagnostics.Append(r.planUnchecked("Reading the primary's WAL position", r.server.queryError(ctx, sql, err)))
		return
	}
	d, err := r.checkAvailable(ctx, pool, &plan, target, r.server.confirmWait(), &replyWatch{})
	var hidden hiddenStatsError
	switch {
	case errors.As(err, &hidden):
		// Which standbys stream is hidden from this role: say so now, not at apply.
		resp.Diagnostics.AddError("Cannot Read Replication Status", "Reading pg_stat_replication on "+r.server.describe()+" failed: "+err.Error())
	case err != nil:
		resp.Diagnostics.Append(r.planUnchecked("Reading pg_stat_replication", err))
	case d != nil:
		resp.Diagnostics.Append(d)
	}
}

// planUnchecked is the warning of a plan whose check of the standbys failed
// (what, with err): the plan goes on, since apply checks them again before
// it changes anything, but a failure here is not silent (a query that
// cannot be read would otherwise turn the plan's check off unnoticed).
func (r *synchronousReplicationResource) planUnchecked(what string, err error) diag.Diagnostic {
	return diag.NewWarningDiagnostic("Standbys Not Checked at Plan Time", fmt.Sprintf(
		"%s on %s failed, so the plan could not check that the listed standbys stream and confirm the primary's WAL: %s\n\n"+
			"Apply checks them again, and refuses the change if they do not, before it changes anything.",
		what, r.server.describe(), err))
}

// waitGrows reports whether applying plan makes commits wait for other
// standbys (always on create), or for more of what the same standbys do:
// synchronous_commit raised to remote_apply makes every commit wait until
// they have replayed it, which a standby whose replay is paused or stuck
// never does. Lowering it (to unblock commits in an incident) is never
// checked.
func waitGrows(ctx context.Context, plan, prior *synchronousReplicationResourceModel) bool {
	if prior == nil || plan.config(ctx).String() != prior.config(ctx).String() {
		return true
	}
	strength := func(level string) int { // local and off wait for no standby
		switch level {
		case "remote_apply":
			return 3
		case "on":
			return 2
		case "remote_write":
			return 1
		}
		return 0
	}
	return strength(plan.SynchronousCommit.ValueString()) > strength(prior.SynchronousCommit.ValueString())
}

// checkAvailable returns an error diagnostic when fewer than num_sync of the
// listed standbys stream from the server now and have confirmed the WAL up
// to target, the server's WAL at the check (a pg_lsn), as far as the
// commits will wait for under plan's synchronous_commit. A listed standby
// whose WAL sender is still starting or catching up, or has yet to
// confirm target, is waited for, at most wait: a standby whose
// primary_conninfo or slot an apply has just changed streams from its own
// point of view (pg_stat_wal_receiver, which pgreplication_standby waits
// for) before the primary's WAL sender has caught up and shows it
// streaming, and only a streaming sender can be synchronous.
//
// A WAL sender shows "streaming" as long as its connection stands, for up
// to wal_sender_timeout (a minute by default) after its standby stopped
// answering (stopped with SIGSTOP, hung, cut off by a firewall that drops
// packets): made synchronous, such a standby would block every commit. A
// standby that answers confirms new WAL within milliseconds of receiving
// it, so apply writes a commit record first (see walTarget) and is the
// authority. The read-only plan has only the WAL written so far, which a
// stopped standby has confirmed too when the primary was idle; there watch
// (nil at apply) also finds standbys silent by how long they have not
// answered (see replyWatch).
func (r *synchronousReplicationResource) checkAvailable(ctx context.Context, pool *pgxpool.Pool, plan *synchronousReplicationResourceModel, target string, wait time.Duration, watch *replyWatch) (diag.Diagnostic, error) {
	c := plan.config(ctx)
	var v walSenderView
	// Listed standbys seen connected during this check, which may be gone
	// now: one whose connection broke (its WAL receiver restarted, or the
	// primary restarted under both) reconnects on its own within seconds
	// (wal_retrieve_retry_interval), so it is waited for like one joining.
	seen := map[string]string{} // by lower-cased name: as shown
	var left []string
	_, err := pollUntil(ctx, wait, func(ctx context.Context) (bool, error) {
		var err error
		if v, err = r.server.walSenders(ctx, pool, target, plan.SynchronousCommit.ValueString(), watch); err != nil {
			return false, err
		}
		connected := slices.Concat(v.streaming, v.joining, v.silent, v.quiet)
		left = left[:0]
		for key, name := range seen {
			if !slices.ContainsFunc(connected, func(s string) bool { return strings.EqualFold(s, name) }) {
				left = append(left, key)
			}
		}
		for _, s := range connected {
			if listedStandby(c, s) {
				seen[strings.ToLower(s)] = s
			}
		}
		listed, _ := listedStreaming(c, v.streaming)
		// Waited for: those that may yet stream or confirm, and those
		// not yet shown silent or answering; not those shown silent.
		waitingFor, _ := listedStreaming(c, slices.Concat(v.joining, v.quiet,
			slices.DeleteFunc(slices.Clone(v.silent), func(s string) bool { _, ok := v.unanswered[s]; return ok })))
		return listed >= c.NumSync && len(outranking(c, v.streaming, slices.Concat(v.silent, v.quiet))) == 0 || waitingFor+len(left) == 0, nil
	})
	if err != nil {
		return nil, err
	}
	// A standby still quiet when the wait ends was not shown silent: it counts.
	streaming, silent := slices.Concat(v.streaming, v.quiet), v.silent
	listed, missing := listedStreaming(c, streaming)
	if listed >= c.NumSync {
		ahead := outranking(c, streaming, silent)
		if len(ahead) == 0 {
			return nil, nil
		}
		return diag.NewAttributeErrorDiagnostic(path.Root("standby_names"), "Synchronous Standby Not Confirming", fmt.Sprintf(
			"synchronous_standby_names = %s on %s: with method = \"first\" the primary makes synchronous the %d listed standbys of highest priority whose WAL senders stream, and %s, ahead of the standbys that confirm: every commit would wait for it until wal_sender_timeout ends its sender. "+
				"Fix or stop that standby, list it after the others, use method = \"any\", or set allow_unavailable = true if commits may wait.",
			c.String(), r.server.describe(), c.NumSync, v.whySilent(ahead, wait))), nil
	}
	connected := "none"
	if len(streaming) > 0 {
		connected = `"` + strings.Join(streaming, `", "`) + `"`
	}
	if len(v.joining) > 0 {
		connected += fmt.Sprintf(`; still starting or catching up after %s: "%s"`, wait, strings.Join(v.joining, `", "`))
	}
	if len(silent) > 0 {
		connected += "; connected, but silent: " + v.whySilent(silent, wait)
		missing = slices.DeleteFunc(missing, func(m string) bool {
			return slices.ContainsFunc(silent, func(s string) bool { return syncrep.Matches(m, fmt.Sprintf("%q", s)) })
		})
	}
	notConnected := "none"
	if len(missing) > 0 {
		notConnected = strings.Join(missing, ", ")
	}
	if len(left) > 0 {
		slices.Sort(left)
		var names []string
		for _, key := range left {
			names = append(names, fmt.Sprintf("%q", seen[key]))
		}
		notConnected += fmt.Sprintf(" (%s was connected during this check, disconnected, and did not come back within %s: "+
			"look at that standby's log, and whether it runs)", strings.Join(names, ", "), wait)
	}
	return diag.NewAttributeErrorDiagnostic(path.Root("standby_names"), "Too Few Synchronous Standbys Connected", fmt.Sprintf(
		"synchronous_standby_names = %s on %s needs %d of the listed standbys streaming, but %d are. Not connected: %s. "+
			"Streaming now (pg_stat_replication application_name): %s. With this setting every commit on the primary would wait "+
			"until enough of them connect. Start or fix the missing standbys (their primary_conninfo application_name must match), "+
			"correct standby_names or num_sync, or set allow_unavailable = true if commits may wait.",
		c.String(), r.server.describe(), c.NumSync, listed, notConnected, connected)), nil
}

// whySilent says, for each of the named silent standbys, what shows it.
func (v walSenderView) whySilent(names []string, wait time.Duration) string {
	var unconfirmed, answering []string
	for _, n := range names {
		if _, ok := v.unanswered[n]; !ok {
			unconfirmed = append(unconfirmed, n)
		}
	}
	var why []string
	if len(unconfirmed) > 0 {
		why = append(why, fmt.Sprintf(`"%s" streams (pg_stat_replication) but has not confirmed the WAL the primary wrote as this check began within %s `+
			`(stopped, hung, unreachable, or far behind: pg_stat_replication's reply_time shows when it last answered)`, strings.Join(unconfirmed, `", "`), wait))
	}
	for _, n := range names {
		if silence, ok := v.unanswered[n]; ok {
			answering = append(answering, fmt.Sprintf(`"%s" streams (pg_stat_replication) but has not answered the primary for %s (reply_time), `+
				`though a standby that runs answers within half of wal_sender_timeout (%s), when the primary asks, and did not while this check watched it `+
				`(stopped with SIGSTOP, hung, or unreachable; or its clock runs that far behind the primary's: fix the clock)`,
				n, silence.Round(time.Second), v.senderTimeout/2))
		}
	}
	return strings.Join(append(why, answering...), "; ")
}

// walSenderState is one row of pg_stat_replication.
type walSenderState struct {
	ApplicationName string
	SyncState       string
}

// listedStandby reports whether c lists a standby of that application name,
// matching as the server does (syncrep.Matches: ASCII letters folded, not
// others; "*" matching all).
func listedStandby(c syncrep.Config, applicationName string) bool {
	return c.Lists(applicationName)
}

// outranking names the silent standbys (streaming, not confirming) that
// method first would make synchronous: PostgreSQL takes the num_sync
// listed WAL senders of highest priority (earliest in the list; "*" ranks
// where it stands) among those that stream, silent or not. A silent one
// ranked no lower than the num_sync-th of the confirming ones may be
// taken (equal ranks, under "*", are a tie the server breaks).
func outranking(c syncrep.Config, confirming, silent []string) []string {
	if c.Method != syncrep.First {
		return nil // quorum: any num_sync confirmations do
	}
	rank := func(app string) int {
		return slices.IndexFunc(c.Standbys, func(name string) bool { return syncrep.Matches(name, app) })
	}
	var ranks []int
	for _, s := range confirming {
		if r := rank(s); r >= 0 {
			ranks = append(ranks, r)
		}
	}
	if len(ranks) < c.NumSync {
		return nil // too few confirm: refused as such
	}
	slices.Sort(ranks)
	var ahead []string
	for _, s := range silent {
		if r := rank(s); r >= 0 && r <= ranks[c.NumSync-1] {
			ahead = append(ahead, s)
		}
	}
	return ahead
}

// listedStreaming counts the streaming WAL senders that c lists, matching
// names as the server does (syncrep.Matches), and
// names the listed standbys that do not stream.
func listedStreaming(c syncrep.Config, streaming []string) (listed int, missing []string) {
	for _, s := range streaming {
		if listedStandby(c, s) {
			listed++
		}
	}
	for _, name := range c.Standbys {
		if name != "*" && !slices.ContainsFunc(streaming, func(s string) bool { return syncrep.Matches(name, s) }) {
			missing = append(missing, fmt.Sprintf("%q", name))
		}
	}
	return listed, missing
}

// walSenderView is pg_stat_replication as one poll of checkAvailable sees
// it: application names by what their WAL senders show.
type walSenderView struct {
	streaming []string // stream and have confirmed the target
	joining   []string // connected, still starting or catching up (states startup and catchup)
	silent    []string // stream, but have not confirmed the target, or (plan) have been shown silent by replyWatch
	quiet     []string // plan: stream and confirmed, but have not answered for a while; watched (replyWatch)
	// unanswered are the silent ones replyWatch showed silent, with how
	// long they had not answered.
	unanswered map[string]time.Duration
	// senderTimeout is the server's wal_sender_timeout (0: none).
	senderTimeout time.Duration
}

// walSenders reads pg_stat_replication: which WAL senders stream and have
// confirmed the WAL up to target (a pg_lsn; "" for any) as far as a commit
// waits for under synchronous_commit = commit, which are connected but
// still starting or catching up, and which stream but have not confirmed
// target. With a watch (at plan), a standby that confirmed target but has
// not answered the primary for long is quiet or silent (see replyWatch).
// A role that may not see their state gets hiddenStatsError. A failure is
// explained (queryError).
func (s *server) walSenders(ctx context.Context, pool *pgxpool.Pool, target, commit string, watch *replyWatch) (walSenderView, error) {
	confirmed := "flush_lsn" // on, and local and off, under which a session may still ask for on
	switch commit {
	case "remote_apply":
		confirmed = "replay_lsn"
	case "remote_write":
		confirmed = "write_lsn"
	}
	// The last answer: reply_time, the standby's clock when it sent its
	// last status (NULL before the first); before it, the connection. A
	// role without pg_read_all_stats sees NULL for all but pid (and the
	// application name): state == nil below says so, so nothing else may
	// fail to scan first.
	sql := `SELECT pid, application_name, state, coalesce(` + confirmed + ` >= nullif($1, '')::pg_lsn, true),
  coalesce(reply_time::text, ''), coalesce(extract(epoch FROM clock_timestamp() - coalesce(reply_time, backend_start))::float8, 0),
  coalesce(reply_time < backend_start, false),
  (SELECT setting::bigint FROM pg_catalog.pg_settings WHERE name = 'wal_sender_timeout')
FROM pg_stat_replication ORDER BY application_name`
	rows, err := pool.Query(ctx, sql, target)
	if err != nil {
		return walSenderView{}, s.queryError(ctx, sql, err, readAllStatsPrivilege)
	}
	defer rows.Close()
	var v walSenderView
	now := time.Now()
	for rows.Next() {
		var pid int32
		var n, reply string
		var state *string
		var caughtUp, skewed bool
		var ageSeconds float64
		var timeoutMS int64
		if err := rows.Scan(&pid, &n, &state, &caughtUp, &reply, &ageSeconds, &skewed, &timeoutMS); err != nil {
			return walSenderView{}, s.queryError(ctx, sql, err, readAllStatsPrivilege)
		}
		v.senderTimeout = time.Duration(timeoutMS) * time.Millisecond
		switch {
		case state == nil:
			return walSenderView{}, s.queryError(ctx, sql, hiddenStatsError{view: "pg_stat_replication"}, readAllStatsPrivilege)
		case *state == "streaming" && caughtUp:
			age := time.Duration(ageSeconds * float64(time.Second))
			switch watch.judge(pid, reply, age, skewed, v.senderTimeout, now) {
			case replyQuiet:
				v.quiet = append(v.quiet, n)
			case replySilent:
				v.silent = append(v.silent, n)
				if v.unanswered == nil {
					v.unanswered = map[string]time.Duration{}
				}
				v.unanswered[n] = age
			default:
				v.streaming = append(v.streaming, n)
			}
		case *state == "streaming":
			v.silent = append(v.silent, n)
		case *state == "startup" || *state == "catchup":
			v.joining = append(v.joining, n)
		}
	}
	return v, s.queryError(ctx, sql, rows.Err(), readAllStatsPrivilege)
}

// Plan-time silence, from the primary's side alone. An idle standby
// answers the primary by itself every wal_receiver_status_interval (10
// seconds by default), and at once when its WAL sender asks, which the
// sender does once half of wal_sender_timeout has passed without an
// answer; so a standby that runs never goes longer than half of
// wal_sender_timeout without answering, whatever its own interval.
const (
	// standbyStatusInterval is PostgreSQL's default
	// wal_receiver_status_interval. A standby quiet for longer (plus
	// replySlack) either has a longer one or stopped: it is watched.
	standbyStatusInterval = 10 * time.Second
	// replySlack is what a loaded machine and the network may add to an
	// answer's time.
	replySlack = 5 * time.Second
)

// replyVerdict is what replyWatch makes of one WAL sender's last answer.
type replyVerdict int

const (
	replyAnswering replyVerdict = iota // answered lately, or cannot be judged: counts as streaming
	replyQuiet                         // not answered for a while: watched
	replySilent                        // shown silent
)

// replyWatch finds, at plan time, the standbys that stopped answering
// though their WAL senders still stream and the idle primary has written
// nothing they could fail to confirm. It never refuses a standby that
// runs: one quiet for longer than standbyStatusInterval is watched, over
// the polls of one check, and counts as silent only once it has gone
// longer than half of wal_sender_timeout without answering (so it missed
// the answer its sender asked for) and its last answer stayed the same for
// standbyStatusInterval of watching (so a standby whose clock runs behind
// the primary's, making its last answer look old, is seen answering on its
// own). A reply_time before the connection began (a clock behind, or a
// client that sends no time) is not judged. Left to apply: a standby
// stopped since less than standbyStatusInterval, one whose sender was given
// a longer wal_sender_timeout than the server's (in its primary_conninfo),
// and any when wal_sender_timeout is 0.
type replyWatch struct {
	watched map[int32]watchedReply // by WAL sender PID
}

// watchedReply is a quiet WAL sender's last answer when the watch began.
type watchedReply struct {
	reply string    // reply_time, as text
	since time.Time // when the watch began, by the provider's clock
}

// judge classifies a WAL sender that streams and confirmed the check's
// target: reply is its reply_time, age how long ago that was by the
// server's clock, skewed whether it predates the connection, timeout the
// server's wal_sender_timeout, now the provider's clock. A nil watch (apply)
// judges every sender answering.
func (w *replyWatch) judge(pid int32, reply string, age time.Duration, skewed bool, timeout time.Duration, now time.Time) replyVerdict {
	if w == nil || skewed || timeout <= 0 || age <= standbyStatusInterval+replySlack {
		if w != nil {
			delete(w.watched, pid)
		}
		return replyAnswering
	}
	if w.watched == nil {
		w.watched = map[int32]watchedReply{}
	}
	seen, ok := w.watched[pid]
	switch {
	case !ok:
		seen = watchedReply{reply: reply, since: now}
		w.watched[pid] = seen
	case seen.reply != reply:
		delete(w.watched, pid) // it answered while watched; judged afresh
		return replyAnswering
	}
	if age > timeout/2+replySlack && now.Sub(seen.since) >= standbyStatusInterval+replySlack {
		return replySilent
	}
	return replyQuiet
}

// walTarget writes a commit record on the primary and returns the WAL
// position just past where it begins: what every standby that answers
// confirms within moments (see checkAvailable), and one that stopped
// answering never does. The transaction only takes a transaction ID (no
// privilege needed) and writes nothing else, so PostgreSQL commits it
// without waiting for any standby or even for its own flush: the WAL
// writer flushes the record within wal_writer_delay (200 ms by default),
// and the WAL senders send it on. Where it begins is the insert position
// before COMMIT (the ID's assignment writes no WAL); any later WAL
// confirmed proves the same.
func (s *server) walTarget(ctx context.Context, pool *pgxpool.Pool) (string, error) {
	const sql = `SELECT pg_catalog.pg_current_xact_id(), pg_catalog.pg_current_wal_insert_lsn()::text`
	tx, err := pool.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadWrite})
	if err != nil {
		return "", s.queryError(ctx, sql, err)
	}
	defer func() { _ = tx.Rollback(context.Background()) }()
	var xid uint64
	var before string
	if err := tx.QueryRow(ctx, sql).Scan(&xid, &before); err != nil {
		return "", s.queryError(ctx, sql, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return "", s.queryError(ctx, sql, err)
	}
	lsn, err := pgsql.ParseLSN(before)
	if err != nil {
		return "", err
	}
	return (lsn + 1).String(), nil
}

// apply checks the standbys (when the list changes), writes both settings,
// reloads, waits until they are in effect, and reads the result into plan.
// After a failure, left tells whether the settings it wrote stay written
// on the server (in effect, or waiting in postgresql.auto.conf for a
// reload): a failed create keeps its object then (keepTainted).
func (r *synchronousReplicationResource) apply(ctx context.Context, plan, prior *synchronousReplicationResourceModel, diags *diag.Diagnostics) (ok, left bool) {
	pool := r.server.PoolOrDiag(ctx, "", diags)
	if pool == nil {
		return false, false
	}
	c := plan.config(ctx)
	if !plan.AllowUnavailable.ValueBool() && waitGrows(ctx, plan, prior) {
		// Again at apply: standbys may have gone since the plan, or
		// stopped answering with their connections still up.
		target, err := r.server.walTarget(ctx, pool)
		if err != nil {
			diags.AddError("Cannot Check the Standbys", "Writing a commit record on "+r.server.describe()+
				", which each listed standby must confirm before commits wait for it, failed: "+err.Error())
			return false, false
		}
		// No replyWatch: a standby that confirms the commit record just
		// written has answered, which is what counts here.
		d, err := r.checkAvailable(ctx, pool, plan, target, r.server.confirmWait(), nil)
		if err != nil {
			diags.AddError("Cannot Read Replication Status", "Reading pg_stat_replication on "+r.server.describe()+" failed: "+err.Error())
			return false, false
		}
		if d != nil {
			diags.Append(d)
			return false, false
		}
	}
	rendered, commit := c.String(), plan.SynchronousCommit.ValueString()
	var wrote map[string]string
	if prior != nil {
		wrote = map[string]string{"synchronous_standby_names": prior.config(ctx).String(), "synchronous_commit": prior.SynchronousCommit.ValueString()}
	}
	change, err := r.server.alterSystem(ctx, pool, []systemSetting{setTo("synchronous_standby_names", rendered), setTo("synchronous_commit", commit)}, wrote)
	if err != nil {
		diags.AddError("Cannot Configure Synchronous Replication", "Writing synchronous replication settings on "+r.server.describe()+" failed: "+err.Error())
		return false, settingsLeft(err)
	}
	const settingsSQL = `SELECT current_setting('synchronous_standby_names'), current_setting('synchronous_commit')`
	var curNames, curCommit string
	applied, err := pollUntil(ctx, syncSettleTimeout, func(ctx context.Context) (bool, error) {
		err := pool.QueryRow(ctx, settingsSQL).Scan(&curNames, &curCommit)
		return curNames == rendered && curCommit == commit, err
	})
	if err != nil {
		diags.AddError("Cannot Read Synchronous Replication", "Reading synchronous_standby_names on "+r.server.describe()+" back failed: "+
			r.server.queryError(ctx, settingsSQL, err).Error())
		return false, true
	}
	if !applied {
		msg, left := r.server.notTaken(ctx, pool, change)
		diags.AddError("Synchronous Replication Settings Not Applied", fmt.Sprintf(
			"ALTER SYSTEM and pg_reload_conf() succeeded on %s, but after %s it still shows synchronous_standby_names = %q and synchronous_commit = %q. "+
				"The server ignores a reload when a configuration file has an error (its log says which), and takes none while its postmaster is stopped. %s",
			r.server.describe(), syncSettleTimeout, curNames, curCommit, msg))
		return false, left
	}
	// Each WAL sender takes the new list when it processes the reload, on its
	// own time. Wait (without failing: sync_state is informative) until every
	// one reports a sync_state that agrees with the new list, so that
	// sync_state describes the new configuration.
	_, _ = pollUntil(ctx, syncSettleTimeout, func(ctx context.Context) (bool, error) {
		rows, err := pool.Query(ctx, `SELECT application_name, sync_state FROM pg_stat_replication`)
		if err != nil {
			return false, nil
		}
		senders, err := pgx.CollectRows(rows, pgx.RowToStructByPos[walSenderState])
		if err != nil {
			return false, nil
		}
		for _, s := range senders {
			if listedStandby(c, s.ApplicationName) != (s.SyncState != "async") {
				return false, nil
			}
		}
		return true, nil
	})
	if _, err := r.server.readSynchronousReplication(ctx, pool, plan); err != nil {
		diags.AddError("Cannot Read Synchronous Replication", "Reading synchronous replication on "+r.server.describe()+" failed: "+err.Error())
		return false, true
	}
	return true, false
}

// config is the model's synchronous_standby_names.
func (m *synchronousReplicationResourceModel) config(ctx context.Context) syncrep.Config {
	var names []string
	m.StandbyNames.ElementsAs(ctx, &names, false)
	return syncrep.Config{Method: m.Method.ValueString(), NumSync: int(m.NumSync.ValueInt64()), Standbys: names}
}

// readSynchronousReplication fills m from the server; found is false when
// synchronous_standby_names is empty (synchronous replication is off): then
// standby_names is empty, and method and num_sync keep m's values. A
// failure is explained (queryError).
func (s *server) readSynchronousReplication(ctx context.Context, pool *pgxpool.Pool, m *synchronousReplicationResourceModel) (found bool, err error) {
	const settingsSQL = `SELECT current_setting('synchronous_standby_names'), current_setting('synchronous_commit')`
	var names, commit string
	if err := pool.QueryRow(ctx, settingsSQL).Scan(&names, &commit); err != nil {
		return false, s.queryError(ctx, settingsSQL, err)
	}
	c, found, err := syncrep.Parse(names)
	if err != nil {
		return false, err
	}
	if found {
		m.Method = types.StringValue(c.Method)
		m.NumSync = types.Int64Value(int64(c.NumSync))
	} else {
		// Emptied: no standby is synchronous. The list shows it; method
		// and num_sync mean nothing without one and keep their values, so
		// that the plan names the one field that changed.
		c.Standbys = []string{}
	}
	list, d := types.ListValueFrom(ctx, types.StringType, c.Standbys)
	if d.HasError() {
		return false, fmt.Errorf("cannot build standby_names")
	}
	m.StandbyNames = list
	m.SynchronousCommit = types.StringValue(commit)

	// One state per application name; when two WAL senders share a name,
	// the more synchronous one is shown.
	const statesSQL = `
SELECT application_name, sync_state FROM pg_stat_replication
WHERE application_name <> ''
ORDER BY application_name, array_position(ARRAY['async', 'potential', 'quorum', 'sync'], sync_state::text)`
	rows, err := pool.Query(ctx, statesSQL)
	if err != nil {
		return false, s.queryError(ctx, statesSQL, err, readAllStatsPrivilege)
	}
	defer rows.Close()
	states := map[string]string{}
	for rows.Next() {
		var name string
		var state *string
		if err := rows.Scan(&name, &state); err != nil {
			return false, s.queryError(ctx, statesSQL, err, readAllStatsPrivilege)
		}
		if state == nil {
			return false, s.queryError(ctx, statesSQL, hiddenStatsError{view: "pg_stat_replication"}, readAllStatsPrivilege)
		}
		states[name] = *state
	}
	if err := rows.Err(); err != nil {
		return false, s.queryError(ctx, statesSQL, err, readAllStatsPrivilege)
	}
	m.SyncState, d = types.MapValueFrom(ctx, types.StringType, states)
	if d.HasError() {
		return false, fmt.Errorf("cannot build sync_state")
	}
	return found, nil
}
