package provider

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/setvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/conninfo"
	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/createonly"
	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/guc"
	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/importid"
	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/normalized"
	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/pgsql"
	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/statement"
)

var (
	_ resource.ResourceWithConfigure      = (*subscriptionResource)(nil)
	_ resource.ResourceWithImportState    = (*subscriptionResource)(nil)
	_ resource.ResourceWithModifyPlan     = (*subscriptionResource)(nil)
	_ resource.ResourceWithValidateConfig = (*subscriptionResource)(nil)
)

func newSubscriptionResource() resource.Resource { return &subscriptionResource{} }

// subscriptionResource is a logical replication subscription: CREATE
// SUBSCRIPTION on the subscriber (the provider's server), streaming from a
// publisher named by a connection string. Everything PostgreSQL can ALTER is
// changed in place; create_slot and copy_data only shape the CREATE, so
// changing them later changes nothing on the server and never recreates the
// subscription (recreating would copy every table again).
type subscriptionResource struct {
	server *server
}

// Subscription streaming modes: `parallel` needs PostgreSQL 16.
const (
	subscriptionStreamingOff      = "off"
	subscriptionStreamingOn       = "on"
	subscriptionStreamingParallel = "parallel"
)

var subscriptionStreamingModes = []string{subscriptionStreamingOff, subscriptionStreamingOn, subscriptionStreamingParallel}

// Subscription origins (PostgreSQL 16+): `none` skips changes that the
// publisher itself received by replication, which is how bidirectional
// setups avoid loops.
const (
	subscriptionOriginAny  = "any"
	subscriptionOriginNone = "none"
)

var subscriptionOrigins = []string{subscriptionOriginAny, subscriptionOriginNone}

// subscriptionSyncCommitLevels are the synchronous_commit values a
// subscription's apply worker accepts.
var subscriptionSyncCommitLevels = []string{"off", "local", "remote_write", "remote_apply", "on"}

// subscriptionSlotNone is slot_name = NONE: a subscription with no slot on
// the publisher. Upper case, so it can never be the name of a slot.
const subscriptionSlotNone = "NONE"

// slotNameNoneText says why slot (any case of "none") cannot name a
// subscription's slot.
func slotNameNoneText(slot string) string {
	return fmt.Sprintf("PostgreSQL reads slot_name %q as NONE, no slot at all (CREATE and ALTER SUBSCRIPTION compare the value with "+
		"\"none\" whether it is quoted or not): the subscription would have no slot, and could be neither enabled nor created with one.", slot)
}

// replicationSlotName is what PostgreSQL accepts as a slot name.
var replicationSlotName = regexp.MustCompile(`^[a-z0-9_]{1,63}$`)

// subscriptionRequirements are what a role that is not a superuser needs to
// apply a subscription in database that replicates into tables.
func subscriptionRequirements(database string, tables ...string) []requirement {
	reqs := []requirement{
		{createSubscriptionPrivilege, "creating subscriptions."},
		{createOnDatabasePrivilege(database), "creating one in the database (here `" + database + "`)."},
		{subconninfoPrivilege, "reading the subscription's connection back: PostgreSQL shows `subconninfo` only to superusers. " +
			"Run this one connected to the subscription's database (`psql -d " + database + "`): privileges on `pg_subscription`, " +
			"one catalog for every database, are kept in each database."},
	}
	for _, t := range tables {
		reqs = append(reqs, requirement{tableOwnerPrivilege(t), "for each table the subscription replicates into (here `" + t + "`): " +
			"from PostgreSQL 16 on, the apply worker writes as the table's owner, which the subscription's owner must be able to become."})
	}
	return reqs
}

// slotReleaseWait is how long apply looks again at a slot in use before it
// refuses a subscription to stream from it (publisherSlotProblem).
const slotReleaseWait = 10 * time.Second

// publisherProbeTimeout bounds the plan-time wal_level check of the publisher.
const publisherProbeTimeout = 5 * time.Second

func (r *subscriptionResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_subscription"
}

func (r *subscriptionResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = subscriptionSchema()
}

func subscriptionSchema() schema.Schema {
	return schema.Schema{
		MarkdownDescription: "A logical replication subscription (`CREATE SUBSCRIPTION`) on the provider's server, the subscriber, " +
			"streaming from publications on another server, the publisher. Connection, publications, `enabled`, the options and " +
			"the name change in place with `ALTER SUBSCRIPTION`; only `database` recreates it.\n\n" +
			"`lifecycle { create_before_destroy = true }` creates the new subscription while the old one exists, which Terraform does not " +
			"tell the provider at plan. Moved to another `database`, the new one asks the publisher for the slot the old one holds " +
			"(`slot_name`, by default the subscription's name): `CREATE SUBSCRIPTION` fails (\"replication slot … already exists\") and the old " +
			"subscription stays. Replaced in the same database (`terraform apply -replace`, `replace_triggered_by`), its name is still taken: " +
			"the apply fails as a `pgreplication_publication`'s does, and Terraform keeps the old one as a deposed object that every later plan " +
			"refuses (recover with `terraform state rm <address>` and an import). Leave `create_before_destroy` off, or give the new " +
			"subscription another `name` and `slot_name` in the same change.\n\n" +
			"Changing `publications` runs `ALTER SUBSCRIPTION … SET PUBLICATION … WITH (refresh = true, copy_data = false)` " +
			"(`refresh = false` while the subscription is disabled): tables already subscribed are never copied again, and tables " +
			"that a new publication adds start replicating from that moment without an initial copy. Rotating the password in " +
			"`conninfo` is an `ALTER SUBSCRIPTION … CONNECTION`, never a new subscription.\n\n" +
			"The publisher must have `wal_level = logical`. `terraform plan` checks it when it can reach the publisher with `conninfo` " +
			"from where Terraform runs; when it cannot, the check is left to PostgreSQL at apply. A `conninfo` host that is a loopback address, " +
			"`localhost` or a Unix socket directory means the subscriber's own machine, and the check runs on Terraform's: when the provider " +
			"reaches the subscriber at an address that is not local, what the checks of the publisher find (its `wal_level`, publications, slot) " +
			"is a warning, never a refusal, since the server checked may not be the subscriber's publisher." +
			privilegesText(subscriptionRequirements("app", "public.orders")...) + " A subscription owned by a role that is not a superuser must authenticate to the publisher with a password " +
			"(`password_wo` or `password` in `conninfo`), as PostgreSQL requires (`password_required`). Changing and dropping the " +
			"subscription needs its ownership, which the role has when it created it." +
			planPrivilegesText("`SELECT` on `pg_subscription`'s `subconninfo` column, which PostgreSQL gives only to superusers "+
				"(`GRANT SELECT (subconninfo) ON pg_catalog.pg_subscription TO …`, as a superuser, connected to each database that has subscriptions: "+
				"privileges on that catalog are kept per database): it holds the connection string, so keep the password "+
				"out of it first (a passfile, or `password_wo`). The plan also connects to the publisher, with the subscription's own connection string, to check its `wal_level`."),
		Attributes: map[string]schema.Attribute{
			// Required
			"name": schema.StringAttribute{
				Required:            true,
				MarkdownDescription: "Subscription name. Renamed in place (`ALTER SUBSCRIPTION … RENAME TO`); the replication slot keeps its name.",
			},
			"conninfo": schema.StringAttribute{
				Required:      true,
				Sensitive:     true,
				CustomType:    normalized.ConninfoType{},
				PlanModifiers: []planmodifier.String{normalized.KeepEquivalentState(normalized.ConninfoType{})},
				// Not "connection": Terraform reserves that name for provisioners.
				MarkdownDescription: "libpq connection string to the publisher (the subscription's `CONNECTION`), keyword/value (`host=db1 port=5432 user=replicator dbname=app password=…`) or URI (`postgresql://replicator@db1:5432/app?sslmode=verify-full`). " +
					"The subscriber server opens it, not Terraform; at plan time the provider connects once itself (with a 5 s timeout) to check " +
					"the publisher's `wal_level`, sending only what this string says: never the `PGPASSWORD`, passfile, service file or client " +
					"certificate of the user running Terraform. Sensitive as a whole, because it may hold a password; the provider never " +
					"prints the password. Changed in place (`ALTER SUBSCRIPTION … CONNECTION`), so rotating a password copies nothing again. " +
					"Compared by its parameters: a string written differently with the same parameters (a URI against the keyword/value form, too) is no change, and the text you wrote is kept; " +
					"a change is named, keyword by keyword, in a plan warning, without secrets. A `password` here is stored in the Terraform state too: with Terraform 1.11 or " +
					"OpenTofu 1.11 and later, leave it out and set `password_wo`. A keyword that libpq " + strconv.Itoa(conninfo.KeywordsMajor) + " does not have is refused at plan " +
					"when the subscriber runs PostgreSQL " + strconv.Itoa(conninfo.KeywordsMajor) + " or older, and only warned of on a newer one, which checks it with its own libpq " +
					"when it stores the connection. A subscriber whose libpq is newer than its server (Debian's and Ubuntu's packages load the system's newest libpq) " +
					"takes keywords the plan refuses: leave such a keyword out, or put it in a service file on the subscriber's host (`service=…`). " +
					"A keyword that libpq added after the subscriber's PostgreSQL version (`require_auth` on 15, `sslkeylogfile` on 17) is warned of at plan: " +
					"the subscriber's own libpq of that version refuses it.",
			},
			"publications": schema.SetAttribute{
				Required:    true,
				ElementType: types.StringType,
				Validators:  []validator.Set{setvalidator.SizeAtLeast(1)},
				MarkdownDescription: "Names of the publications on the publisher. Changed in place with `SET PUBLICATION … WITH (refresh = true, copy_data = false)`: data already copied is never copied again. " +
					"A name with a backslash is refused at plan: PostgreSQL's apply worker cannot stream from such a publication (rename it on the publisher). " +
					"A publication the publisher does not have is warned at plan and refused at apply, changing nothing, when the provider can reach " +
					"the publisher: before PostgreSQL 18 the subscription would stop replicating altogether. Reference a `pgreplication_publication` " +
					"made in the same apply (`[pgreplication_publication.<name>.name]`), so that Terraform makes it first.",
			},

			// Optional
			"database": schema.StringAttribute{
				Optional:            true,
				Computed:            true,
				MarkdownDescription: "Database on the subscriber that the subscription belongs to and writes into. Defaults to the provider's `database`. Changing it recreates the subscription.",
			},
			"enabled": schema.BoolAttribute{
				Optional:            true,
				Computed:            true,
				Default:             booldefault.StaticBool(true),
				MarkdownDescription: "Whether the subscription is replicating (`ALTER SUBSCRIPTION … ENABLE`/`DISABLE`). Defaults to `true`.",
			},
			"slot_name": schema.StringAttribute{
				Optional: true,
				Computed: true,
				MarkdownDescription: "Replication slot on the publisher (lower-case letters, digits and `_`). Defaults to the subscription name, as in PostgreSQL, " +
					"so a name that is not a valid slot name needs `slot_name`. Changed in place (`SET (slot_name = …)`), which does not create or " +
					"drop any slot on the publisher: the new slot must exist there, a logical `pgoutput` slot of the publisher's database that no " +
					"session uses and that the publisher has not invalidated (`wal_status = lost`: `max_slot_wal_keep_size`, or on PostgreSQL 18 " +
					"`idle_replication_slot_timeout` for a subscription disabled that long), or the subscription stops replicating; the plan warns and the apply refuses, changing nothing, when the publisher " +
					"shows otherwise (when the provider can reach it). A slot in use is looked at again for 10 s at apply, so a consumer that lets it go " +
					"in the same apply does not fail it. A subscription with `enabled = false` streams nothing: its slot is checked when it is enabled. The old slot stays on the publisher, retaining WAL, until dropped there. `\"NONE\"` is `slot_name = NONE`: no slot, which PostgreSQL " +
					"allows only with `enabled = false` and `create_slot = false` (to prepare a subscription whose slot is made later); " +
					"PostgreSQL reads `\"none\"` the same way, so it is refused, as is a subscription named `none` without `slot_name`. " +
					"When the publisher invalidates the subscription's own slot (`invalidation_reason` set), the subscription never streams again: " +
					"the refresh looks at the slot of an enabled subscription when the provider can reach the publisher, and the plan then replaces the " +
					"subscription (`id`) with a warning that names the slot and the reason, so that it streams again from a new slot. A slot lost after " +
					"the refresh (a saved plan applied later), or one the refresh could not look at, is not replaced by that plan: its apply refuses " +
					"the changes planned in place, changing nothing, and the next plan replaces it. The replacement copies the tables again with " +
					"`copy_data = true`, which the plan refuses while they have rows on the subscriber, a partitioned table's in its partitions (empty them, or set `copy_data = false`, which copies " +
					"nothing: the changes made while the slot was invalidated are then not replicated); when it cannot look at them, it only warns. The apply looks at them again before it drops anything, and refuses, " +
					"changing nothing, when they have rows by then (a saved plan applied later). " +
					"`copy_data` and `create_slot` are the new subscription's: as the configuration sets them, " +
					"or their defaults (`true`), whatever the state holds. With `create_slot = false` it only warns, and with `drop_slot_on_destroy = false` " +
					"too (the slot left on the publisher would make the new subscription's create fail): drop the slot there, then " +
					"`terraform apply -replace=<address>`.",
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"create_slot": schema.BoolAttribute{
				Optional:      true,
				Computed:      true,
				PlanModifiers: []planmodifier.Bool{createonly.Bool(true)},
				MarkdownDescription: "Create the replication slot on the publisher when the subscription is created. Defaults to `true`. " +
					"With `false`, an enabled subscription streams from the slot `slot_name` that the publisher must have already: a slot it lacks, " +
					"or one another session streams from, is warned at plan and refused at apply, creating nothing, when the provider can reach the publisher. " +
					"Used at create time only: PostgreSQL does not keep it, so a change later only updates the state, an import sets the default, and " +
					"left out of the configuration an existing subscription keeps its value and plans nothing.",
			},
			"copy_data": schema.BoolAttribute{
				Optional:      true,
				Computed:      true,
				PlanModifiers: []planmodifier.Bool{createonly.Bool(true)},
				MarkdownDescription: "Copy the tables' existing data when the subscription is created. Defaults to `true`. " +
					"Used at create time only: PostgreSQL does not keep it, so a change later only updates the state (it never recreates the " +
					"subscription or copies anything again), an import sets the default, and left out of the configuration an existing subscription " +
					"keeps its value and plans nothing.",
			},
			"synchronous_commit": schema.StringAttribute{
				Optional:            true,
				Computed:            true,
				Default:             stringdefault.StaticString("off"),
				Validators:          []validator.String{stringvalidator.OneOf(subscriptionSyncCommitLevels...)},
				MarkdownDescription: "`synchronous_commit` of the apply worker: " + quotedList(subscriptionSyncCommitLevels) + ". Defaults to `off`, as in PostgreSQL.",
			},
			"binary": schema.BoolAttribute{
				Optional:            true,
				Computed:            true,
				Default:             booldefault.StaticBool(false),
				MarkdownDescription: "Ask the publisher for the binary format of data types. Defaults to `false`.",
			},
			"streaming": schema.StringAttribute{
				Optional:   true,
				Computed:   true,
				Validators: []validator.String{stringvalidator.OneOf(subscriptionStreamingModes...)},
				MarkdownDescription: "How in-progress large transactions are streamed: " + quotedList(subscriptionStreamingModes) + ". " +
					"Defaults to the server's default: `off` up to PostgreSQL 17, `parallel` from 18. `parallel` needs PostgreSQL 16 or later.",
			},
			"two_phase": schema.BoolAttribute{
				Optional: true,
				Computed: true,
				Default:  booldefault.StaticBool(false),
				MarkdownDescription: "Replicate prepared transactions at `PREPARE TRANSACTION` rather than at commit (`two_phase`). Defaults to `false`. " +
					"`true` needs PostgreSQL 15 or later. PostgreSQL 18 changes it in place on a disabled subscription only: a change is " +
					"planned with `enabled = false` (apply disables the subscription first, then sets it) and refused at plan time on a " +
					"subscription that stays enabled. Before PostgreSQL 18 it cannot change, and a change is refused at plan time: recreate " +
					"the subscription (`terraform apply -replace=…`) if you must.",
			},
			"password_required": schema.BoolAttribute{
				Optional: true,
				Computed: true,
				Default:  booldefault.StaticBool(true),
				MarkdownDescription: "Whether a non-superuser owner must authenticate to the publisher with a password (`password_required`). " +
					"Defaults to `true`. Only a superuser can set it to `false`, which needs PostgreSQL 16 or later.",
			},
			"run_as_owner": schema.BoolAttribute{
				Optional: true,
				Computed: true,
				Default:  booldefault.StaticBool(false),
				MarkdownDescription: "Apply changes with the permissions of the subscription's owner rather than of each table's owner (`run_as_owner`). " +
					"Defaults to `false`. `true` needs PostgreSQL 16 or later.",
			},
			"failover": schema.BoolAttribute{
				Optional: true,
				Computed: true,
				Default:  booldefault.StaticBool(false),
				MarkdownDescription: "Make the subscription's slot on the publisher a failover slot, which the publisher's standbys with " +
					"`sync_replication_slots = on` keep, so that the subscription can continue after the publisher fails over (`failover`). " +
					"Defaults to `false`. `true` needs PostgreSQL 17 or later on the subscriber and on the publisher (the publisher's checked at plan when the provider can reach it). PostgreSQL changes it only on a disabled " +
					"subscription: apply disables an enabled one for that statement and enables it again. Read reports it as the publisher's slot has it " +
					"(when the provider can reach the publisher), so a slot whose failover was turned off there plans `false` → `true`, which the apply repairs.",
			},
			"disable_on_error": schema.BoolAttribute{
				Optional:            true,
				Computed:            true,
				Default:             booldefault.StaticBool(false),
				MarkdownDescription: "Disable the subscription when the apply worker hits an error, instead of retrying. Defaults to `false`. `true` needs PostgreSQL 15 or later.",
			},
			"origin": schema.StringAttribute{
				Optional:   true,
				Computed:   true,
				Default:    stringdefault.StaticString(subscriptionOriginAny),
				Validators: []validator.String{stringvalidator.OneOf(subscriptionOrigins...)},
				MarkdownDescription: "Which changes to apply: " + quotedList(subscriptionOrigins) + " (`none`: only changes made on the publisher itself, not ones it replicated). Defaults to `any`. `none` needs PostgreSQL 16 or later, " +
					"on the subscriber and on the publisher, which applies it (PostgreSQL does not send it to an older publisher, and says nothing); " +
					"the publisher's version is checked at plan when the provider can reach it.",
			},
			"owner": schema.StringAttribute{
				Optional: true,
				Computed: true,
				MarkdownDescription: "Role that owns the subscription (`ALTER SUBSCRIPTION … OWNER TO`). Defaults to the provider's user. Unset, it is read but not managed. " +
					"On PostgreSQL 16 and later an owner that is not a superuser needs a password in the connection that the publisher asks for " +
					"(`password_wo`, or `password_required = false`): without one the subscription neither replicates nor can be dropped while it " +
					"has a slot (`password is required`), and the plan warns.",
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"password_wo": schema.StringAttribute{
				Optional:  true,
				Sensitive: true,
				WriteOnly: true,
				Validators: []validator.String{
					stringvalidator.AlsoRequires(path.MatchRoot("password_wo_version")),
				},
				MarkdownDescription: "Password of the publisher connection, write-only: " + writeOnlyText("password_wo_version") +
					" The provider adds it to `conninfo` as `password`, so the subscriber's catalog (`pg_subscription.subconninfo`) holds it, " +
					"as it holds a password written in `conninfo`. Conflicts with a `password` in `conninfo`; needs `password_wo_version`. Default: none.",
			},
			"password_wo_version": schema.Int64Attribute{
				Optional: true,
				Validators: []validator.Int64{
					int64validator.AlsoRequires(path.MatchRoot("password_wo")),
				},
				MarkdownDescription: "Version of `password_wo`: " + writeOnlyVersionText("password_wo") +
					" A new version is an `ALTER SUBSCRIPTION … CONNECTION`, never a new subscription. Default: none.",
			},
			"drop_slot_on_destroy": schema.BoolAttribute{
				Optional: true,
				Computed: true,
				Default:  booldefault.StaticBool(true),
				MarkdownDescription: "Destroy drops the replication slot on the publisher too (plain `DROP SUBSCRIPTION`), which needs the publisher " +
					"to be reachable. Defaults to `true`. With `false`, destroy runs PostgreSQL's documented sequence for a publisher that is gone " +
					"(`DISABLE`, `SET (slot_name = NONE)`, `DROP`): the slot, if the publisher still has it, is left there and keeps retaining WAL until " +
					"someone drops it with `pg_drop_replication_slot`.",
			},
			// An attribute, not a `timeouts` block, for create_timeout's
			// reason (resource_replication_slot.go): Read fills it in, so an
			// import plans nothing.
			"publisher_timeout": schema.StringAttribute{
				Optional:      true,
				Computed:      true,
				CustomType:    normalized.DurationType{},
				PlanModifiers: []planmodifier.String{normalized.KeepEquivalentState(normalized.DurationType{})},
				Default:       stringdefault.StaticString(defaultPublisherTimeout),
				Validators:    []validator.String{durationValidator},
				MarkdownDescription: "How long one statement that makes the subscriber reach the publisher may take, as a Go duration " +
					"(`90s`, `5m`): `CREATE SUBSCRIPTION` (it connects, and creating the slot waits for the publisher's running write " +
					"transactions to end), `DROP SUBSCRIPTION` with a slot, `SET PUBLICATION`/`REFRESH PUBLICATION` (they read the " +
					"publications' tables) and a `failover` or `two_phase` change (it alters the slot). A publisher that accepts " +
					"connections but does not answer (a stopped host, a network path that drops packets) would otherwise hold the apply " +
					"until the provider's `statement_timeout`. Past it the provider cancels the statement, which PostgreSQL rolls back, " +
					"and the apply fails saying what the subscriber was waiting for. At most the provider's `statement_timeout`. " +
					"Defaults to `" + defaultPublisherTimeout + "`. Only used by the provider; changes in place.",
			},

			// Computed
			"id": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "The import ID: `database/name`, with `%` and `/` inside a part written `%25` and `%2F`.",
			},
		},
	}
}

func (r *subscriptionResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.server = serverFromProviderData(req.ProviderData, &resp.Diagnostics)
}

func (r *subscriptionResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan subscriptionResourceModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	database := plan.Database.ValueString()
	if plan.Database.IsUnknown() || database == "" {
		database = r.server.settings.Database
	}
	name := plan.Name.ValueString()
	ctx = statement.WithObject(ctx, "subscription "+pgsql.Ident(name)+" in database "+pgsql.Ident(database))
	pool, major := r.connect(ctx, database, &resp.Diagnostics)
	if resp.Diagnostics.HasError() {
		return
	}
	var publications []string
	resp.Diagnostics.Append(plan.Publications.ElementsAs(ctx, &publications, false)...)
	if resp.Diagnostics.HasError() {
		return
	}
	slices.Sort(publications)
	slot := plan.SlotName.ValueString()
	if plan.SlotName.IsUnknown() || plan.SlotName.IsNull() {
		slot = name
	}
	opts := []string{
		"enabled = " + strconv.FormatBool(plan.Enabled.ValueBool()),
		"create_slot = " + strconv.FormatBool(plan.CreateSlot.ValueBool()),
		"copy_data = " + strconv.FormatBool(plan.CopyData.ValueBool()),
		"slot_name = " + slotNameOption(slot),
	}
	opts = append(opts, subscriptionOptions(plan, nil, major)...)
	connection := plan.Conninfo.ValueString()
	if !plan.PasswordWOVersion.IsNull() {
		var wo types.String
		resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("password_wo"), &wo)...)
		if resp.Diagnostics.HasError() {
			return
		}
		connection = withPassword(connection, wo.ValueString())
	}
	params, _ := conninfo.Parse(connection)
	ctx = statement.WithSecrets(ctx, params.Secrets()...)
	publisher := r.newPublisherProbe(connection)
	if !r.publicationsThere(ctx, plan, publisher, "Nothing was created.", &resp.Diagnostics) {
		return
	}
	if !plan.CreateSlot.ValueBool() && plan.Enabled.ValueBool() && !strings.EqualFold(slot, subscriptionSlotNone) {
		// CREATE SUBSCRIPTION … WITH (create_slot = false) checks nothing
		// either: an enabled subscription would start on a slot that is not
		// there (and never stream), or share one in use (each consumer then
		// gets part of the changes).
		if problem, err := publisherSlotProblem(ctx, publisher, slot, slotReleaseWait); err == nil && problem != "" &&
			publisher.refuse(&resp.Diagnostics, path.Root("slot_name"), "Subscription Would Not Replicate",
				fmt.Sprintf("The subscription %s in database %q on %s was to be created with create_slot = false, streaming from the "+
					"replication slot %q, and %s. Nothing was created.\n\n%s", pgsql.Ident(name), database, r.server.describe(), slot, problem,
					existingSlotFix(slot))) {
			return
		}
	}
	create := createSubscriptionSQL(name, connection, publications, opts)
	bound := r.publisherBound(plan)
	err := execSubscription(ctx, pool, bound, create)
	// The provider stopped waiting (the apply interrupted, the answer
	// lost), which does not stop the server: it may have created the
	// subscription (and its slot on the publisher), and then it must be in
	// the state, or the next apply fails with "already exists". Only the
	// subscription declared is recorded.
	found, outcome := createdAnyway(ctx, pool, err, func(ctx context.Context) (*subscriptionCatalog, bool, error) {
		cat, err := readSubscription(ctx, pool, major, name)
		return cat, cat != nil, err
	})
	switch {
	case outcome == createDone && found.declared(connection, publications, slot):
		resp.Diagnostics.AddWarning("Subscription Created After the Provider Stopped Waiting",
			fmt.Sprintf("Subscription %s was created in database %q on %s, although the provider stopped waiting for the server's answer (%s). "+
				"It is in the state, so nothing is left behind; nothing needs to be done.",
				pgsql.Ident(name), database, r.server.describe(), statement.MaskedError(ctx, err)))
		err = nil
	case outcome == createDone:
		resp.Diagnostics.AddError("Cannot Create Subscription",
			fmt.Sprintf("CREATE SUBSCRIPTION %s in database %q on %s got no answer (%s), and a subscription of that name is there now, "+
				"but not the one declared: it connects to %s, subscribes to %s and uses the slot %s. It is not recorded and was not dropped. "+
				"If it is the one you want, import it (terraform import <address> %s) and apply again; otherwise drop it there "+
				"(DROP SUBSCRIPTION %s, which drops its slot on its publisher too) and apply again.",
				pgsql.Ident(name), database, r.server.describe(), statement.MaskedError(ctx, err), found.publisher(), strings.Join(found.Publications, ", "),
				found.slot(), importid.Format(database, name), pgsql.Ident(name)))
		return
	case outcome == createUnknown:
		resp.Diagnostics.AddError("Cannot Create Subscription",
			fmt.Sprintf("CREATE SUBSCRIPTION %s in database %q on %s got no answer (%s), and whether the server created it could not be found out. "+
				"Look in pg_subscription there: if it is listed, import it (terraform import <address> %s) or drop it (DROP SUBSCRIPTION %s, "+
				"which drops its slot on the publisher too), then apply again.",
				pgsql.Ident(name), database, r.server.describe(), statement.MaskedError(ctx, err), importid.Format(database, name), pgsql.Ident(name)))
		return
	case outcome == createNotDone && plan.CreateSlot.ValueBool():
		resp.Diagnostics.AddError("Cannot Create Subscription",
			fmt.Sprintf("CREATE SUBSCRIPTION %s in database %q on %s got no answer (%s), and no subscription of that name is there: nothing was created "+
				"on the subscriber. The publisher (%s) may still hold the replication slot %q it created for it: should pg_replication_slots "+
				"there list it, drop it there (SELECT pg_drop_replication_slot(%s)), or the next apply fails with \"already exists\".",
				pgsql.Ident(name), database, r.server.describe(), statement.MaskedError(ctx, err), params.Redacted(), slot, pgsql.Literal(slot)))
		return
	}
	if err != nil {
		var timeout *publisherTimeoutError
		if errors.As(err, &timeout) {
			outcome := "no subscription was created."
			if plan.CreateSlot.ValueBool() && strings.EqualFold(timeout.waitEvent, "LibPQWalReceiverReceive") {
				outcome = fmt.Sprintf("no subscription was created. The publisher was creating the replication slot %q, and drops it "+
					"when it sees the subscriber gone; should pg_replication_slots there still list it, drop it there "+
					"(SELECT pg_drop_replication_slot(%s)), or the next apply fails with \"already exists\".", slot, pgsql.Literal(slot))
			}
			resp.Diagnostics.AddError("Cannot Create Subscription", r.timeoutDetail("CREATE SUBSCRIPTION "+pgsql.Ident(name), database, params, timeout,
				outcome, "Bring the publisher back, or fix the path from the subscriber to it, and apply again."))
			return
		}
		resp.Diagnostics.AddError("Cannot Create Subscription",
			fmt.Sprintf("CREATE SUBSCRIPTION %s in database %q on %s failed. The subscriber server connects to the publisher (%s) itself: "+
				"check that it is reachable from there, that it accepts replication connections from the subscriber (pg_hba.conf), "+
				"that the publications exist, and that wal_level = logical on the publisher.\n\n%s",
				pgsql.Ident(name), database, r.server.describe(), params.Redacted(),
				r.server.queryError(ctx, create, err, createSubscriptionPrivilege, createOnDatabasePrivilege(pgsql.Ident(database)))))
		return
	}
	// From here on, a failure drops the subscription again (and the slot it
	// created on the publisher): a create either completes or leaves nothing,
	// never a subscription the state does not know, which the next apply
	// could only fail on with "already exists".
	// It runs on a context of its own: the step it undoes failed because the
	// apply was interrupted (its context cancelled) as often as for any
	// other reason, and it must run then too.
	undo := func() string {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), bound.d+cancelProbeTimeout)
		defer cancel()
		if err := dropSubscription(ctx, pool, bound, name, plan.CreateSlot.ValueBool()); err != nil {
			return fmt.Sprintf("Dropping the new subscription again failed too, so it is still in database %q on %s: drop it there "+
				"(DROP SUBSCRIPTION %s) or import it, then apply again.\n\n%s", database, r.server.describe(), pgsql.Ident(name), statement.MaskedError(ctx, err))
		}
		if plan.CreateSlot.ValueBool() {
			return fmt.Sprintf("The subscription was dropped again, with the replication slot %q it had created on the publisher: nothing is left half-applied.", slot)
		}
		return "The subscription was dropped again (its replication slot, which it did not create, was left on the publisher): nothing is left half-applied."
	}
	if owner := plan.Owner.ValueString(); !plan.Owner.IsUnknown() && owner != "" {
		if err := execSubscription(ctx, pool, bound, alterSubscriptionOwnerSQL(name, owner)); err != nil {
			fix := "The new owner must exist, have CREATE on the database (PostgreSQL 16+), and be a superuser on PostgreSQL 15 and older. " +
				"Fix the role, or change owner, and apply again."
			if ctx.Err() != nil {
				fix = "The apply was interrupted; apply again."
			}
			resp.Diagnostics.AddAttributeError(path.Root("owner"), "Cannot Change Subscription Owner",
				fmt.Sprintf("The subscription %s was created in database %q on %s, but ALTER SUBSCRIPTION … OWNER TO %s failed: %s\n\n%s\n\n%s",
					pgsql.Ident(name), database, r.server.describe(), pgsql.Ident(owner), statement.MaskedError(ctx, err), fix, undo()))
			return
		}
	}
	cat, err := readSubscription(ctx, pool, major, name)
	if err != nil {
		resp.Diagnostics.AddError("Cannot Read Subscription", r.readFailure(ctx, name, database, err)+"\n\n"+undo())
		return
	}
	if cat == nil {
		resp.Diagnostics.AddError("Subscription Missing After Create",
			fmt.Sprintf("CREATE SUBSCRIPTION %s succeeded in database %q on %s, but pg_subscription has no such subscription afterwards. "+
				"Something dropped it at once; check the server log.", pgsql.Ident(name), database, r.server.describe()))
		return
	}
	plan.Database = types.StringValue(database)
	state := plan.fromCatalog(cat)
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

func (r *subscriptionResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state subscriptionResourceModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	database, name := state.Database.ValueString(), state.Name.ValueString()
	ctx = statement.WithObject(ctx, "subscription "+pgsql.Ident(name)+" in database "+pgsql.Ident(database))
	pool, major := r.connect(ctx, database, &resp.Diagnostics)
	if resp.Diagnostics.HasError() {
		return
	}
	cat, err := readSubscription(ctx, pool, major, name)
	if err != nil {
		resp.Diagnostics.AddError("Cannot Read Subscription", r.readFailure(ctx, name, database, err))
		return
	}
	if cat == nil {
		resp.State.RemoveResource(ctx)
		return
	}
	state = state.fromCatalog(cat)
	var lost *lostSlot
	if slot := ptrString(cat.SlotName); slot != "" && !strings.EqualFold(slot, subscriptionSlotNone) && (cat.Failover || cat.Enabled) {
		s, where, elsewhere, err := r.lookOwnSlot(ctx, cat, cat.Enabled)
		if err == nil && cat.Failover && !elsewhere && s.failover != nil {
			state.Failover = types.BoolValue(*s.failover)
		}
		if err == nil && cat.Enabled && s.invalidated() {
			lost = &lostSlot{Slot: slot, Publisher: where, Reason: s.reason()}
		}
	}
	if resp.Private != nil { // nil only where Read is called without the framework
		resp.Diagnostics.Append(recordLostSlot(ctx, resp.Private, lost)...)
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

// lostSlotKey is the private state key under which Read records that the
// publisher invalidated the slot of an enabled subscription (lostSlot), and
// from which the plan decides to replace it (replaceLostSlot). The plan
// must not decide on what it sees itself: at apply, Terraform plans a
// saved plan's changes again, with the prior state and its private state
// as the plan had them, and a slot lost since (or a publisher unreachable
// at plan, reachable at apply) would turn the planned update into a
// replacement there, which Terraform refuses as a provider bug
// ("inconsistent final plan"). Update refuses such an update instead.
const lostSlotKey = "lost_slot"

// lostSlot is what Read found of an invalidated slot: its name, the
// publisher's address (host and port, no secret) and the reason, in
// pg_replication_slots' words (publisherSlot.reason).
type lostSlot struct {
	Slot      string `json:"slot"`
	Publisher string `json:"publisher"`
	Reason    string `json:"reason"`
}

// recordLostSlot records lost in private, or removes the record when lost
// is nil: only what the last Read found decides a replacement.
func recordLostSlot(ctx context.Context, private privateState, lost *lostSlot) diag.Diagnostics {
	var b []byte
	if lost != nil {
		b, _ = json.Marshal(lost)
	}
	return private.SetKey(ctx, lostSlotKey, b)
}

// recordedLostSlot is what the last Read recorded of slot (recordLostSlot),
// or nil.
func recordedLostSlot(ctx context.Context, private privateState, slot string) *lostSlot {
	if private == nil {
		return nil
	}
	b, d := private.GetKey(ctx, lostSlotKey)
	var lost lostSlot
	if d.HasError() || len(b) == 0 || json.Unmarshal(b, &lost) != nil || lost.Slot != slot {
		return nil
	}
	return &lost
}

// lookOwnSlot reads the publisher's row of the subscription c's slot, and
// the publisher's address. elsewhere: the probe may reach another server
// than the subscriber's publisher (publisherMayDiffer). Such a probe is not
// made at all unless lost is asked for (errSlotElsewhere): the slot's
// failover, what it would read, must not be taken from another server,
// while an invalidated slot seen there only makes the plan warn, saying
// so (replaceLostSlot), and is still worth the warning. Best effort, and
// quiet: an error when the publisher cannot be asked from here.
func (r *subscriptionResource) lookOwnSlot(ctx context.Context, c *subscriptionCatalog, lost bool) (s publisherSlot, where string, elsewhere bool, err error) {
	publisher := r.newPublisherProbe(c.ConnInfo)
	if publisher.elsewhere != "" && !lost {
		return s, "", true, errSlotElsewhere
	}
	p, _ := conninfo.Parse(c.ConnInfo)
	ctx = statement.WithSecrets(ctx, p.Secrets()...)
	conn, params, err := publisher.open(ctx)
	if err != nil {
		return s, "", publisher.elsewhere != "", err
	}
	s, err = lookPublisherSlot(ctx, conn, *c.SlotName)
	return s, publisherAddress(params), publisher.elsewhere != "", err
}

// errSlotElsewhere is lookOwnSlot's answer when the slot's failover alone
// is asked for and the probe may reach another server than the
// subscriber's publisher.
var errSlotElsewhere = errors.New("the publisher checked may not be the subscriber's")

// publisherSlotFailover is failover as the publisher's slot of the
// subscription c has it, which pg_subscription cannot tell: a slot whose
// failover was turned off there (ALTER_REPLICATION_SLOT, or the slot
// recreated by hand) is not kept by the publisher's standbys, and the
// subscription cannot continue after a failover. Best effort, and quiet:
// c.Failover when the publisher cannot be asked from here, or the probe may
// reach another server than the subscriber's publisher (publisherMayDiffer).
func (r *subscriptionResource) publisherSlotFailover(ctx context.Context, c *subscriptionCatalog) bool {
	s, _, _, err := r.lookOwnSlot(ctx, c, false)
	if err != nil || s.failover == nil {
		return c.Failover
	}
	return *s.failover
}

func (r *subscriptionResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, state subscriptionResourceModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	database := state.Database.ValueString()
	pool, major := r.connect(ctx, database, &resp.Diagnostics)
	if resp.Diagnostics.HasError() {
		return
	}
	oldParams, _ := conninfo.Parse(state.Conninfo.ValueString())
	newParams, _ := conninfo.Parse(plan.Conninfo.ValueString())
	ctx = statement.WithSecrets(ctx, append(oldParams.Secrets(), newParams.Secrets()...)...)
	name := state.Name.ValueString()
	ctx = statement.WithObject(ctx, "subscription "+pgsql.Ident(name)+" in database "+pgsql.Ident(database))
	// Read once, before any statement: the connection's password when the
	// version stays, whether the subscriber already has the new one, and
	// that the subscription is there at all. One dropped since the plan (a
	// saved plan, or a drop between refresh and apply) cannot be updated:
	// each ALTER would fail on its own, after those before it ran.
	current, err := readSubscription(ctx, pool, major, name)
	if err != nil {
		resp.Diagnostics.AddError("Cannot Read Subscription", r.readFailure(ctx, name, database, fmt.Errorf("before changing it: %w", err)))
		return
	}
	if current == nil {
		resp.Diagnostics.AddError("Subscription Missing",
			fmt.Sprintf("The subscription %s is not in database %q on %s any more: something dropped it after this plan was made. "+
				"This apply changed nothing. Run terraform apply again (not a saved plan): its refresh finds the subscription gone and plans to create it.",
				pgsql.Ident(name), database, r.server.describe()))
		return
	}
	// The publisher the subscription streams from after this apply: the
	// planned connection with the password the subscriber will have, or the
	// one it has when the connection does not change.
	after := current.ConnInfo
	if !normalized.SameConnection(plan.Conninfo.ValueString(), state.Conninfo.ValueString()) || !plan.PasswordWOVersion.Equal(state.PasswordWOVersion) {
		after = plan.Conninfo.ValueString()
		if !plan.PasswordWOVersion.IsNull() {
			var wo types.String
			resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("password_wo"), &wo)...)
			if resp.Diagnostics.HasError() {
				return
			}
			after = withPassword(after, wo.ValueString())
		}
	}
	// A write-only password is in neither the state nor the plan, only in
	// the subscriber's connection and the configuration: declared too, a
	// server message that quotes it (a hook's, an extension's) without
	// "password=" before it is masked like the others.
	for _, c := range []string{current.ConnInfo, after} {
		p, _ := conninfo.Parse(c)
		ctx = statement.WithSecrets(ctx, p.Secrets()...)
	}
	publisher := r.newPublisherProbe(after)
	if !plan.Publications.Equal(state.Publications) && !r.publicationsThere(ctx, plan, publisher, "This apply changed nothing.", &resp.Diagnostics) {
		return
	}
	// The slot is checked when the subscription streams from it after this
	// apply and did not before: a new slot_name, or the subscription
	// enabled. A disabled subscription streams nothing; its slot is checked
	// when it is enabled.
	slot, was := plan.SlotName.ValueString(), ptrString(current.SlotName)
	enabling := plan.Enabled.ValueBool() && !current.Enabled
	if !plan.SlotName.IsUnknown() && plan.Enabled.ValueBool() && (slot != was || enabling) && !strings.EqualFold(slot, subscriptionSlotNone) {
		switch problem, err := publisherSlotProblem(ctx, publisher, slot, slotReleaseWait); {
		case err != nil:
			resp.Diagnostics.AddAttributeWarning(path.Root("slot_name"), "Replication Slot Not Checked",
				fmt.Sprintf("The provider could not ask the publisher whether it has the replication slot %q that the subscription %s streams from "+
					"after this apply (%s). If it does not, the subscription stops replicating: check that it streams (pg_stat_subscription on the subscriber).",
					slot, pgsql.Ident(name), statement.MaskedError(ctx, err)))
		case problem != "":
			what, fix := fmt.Sprintf("use the replication slot %q instead of %q", slot, was), slotChangeFix(name, was, slot)
			if slot == was {
				what, fix = fmt.Sprintf("be enabled, streaming from the replication slot %q", slot), enableSlotFix(slot)
			}
			if publisher.refuse(&resp.Diagnostics, path.Root("slot_name"), "Subscription Would Stop Replicating",
				fmt.Sprintf("The subscription %s in database %q on %s was to %s, and %s. "+
					"This apply changed nothing.\n\n%s", pgsql.Ident(name), database, r.server.describe(), what, problem, fix)) {
				return
			}
		}
	}
	// A slot that streams before and after this apply, invalidated since
	// the plan's refresh (or not seen by it, the publisher unreachable then):
	// the plan is an update, and the subscription only streams again when
	// replaced, which a plan decides (replaceLostSlot) and this apply
	// cannot. A slot the refresh saw lost was planned with a warning.
	if current.Enabled && plan.Enabled.ValueBool() && !plan.SlotName.IsUnknown() && slot == was && !strings.EqualFold(slot, subscriptionSlotNone) &&
		recordedLostSlot(ctx, req.Private, slot) == nil {
		if conn, p, err := publisher.open(ctx); err == nil {
			if s, err := lookPublisherSlot(ctx, conn, slot); err == nil && s.invalidated() &&
				publisher.refuse(&resp.Diagnostics, path.Root("slot_name"), "Subscription Slot Lost After the Plan",
					fmt.Sprintf("The replication slot %q of the subscription %s in database %q on %s is invalidated on the publisher (%s): %s, "+
						"and the plan this apply runs did not know it (the slot was lost after the plan's refresh, or the refresh could not reach "+
						"the publisher). PostgreSQL never streams from that slot again, so the changes planned in place would leave a subscription "+
						"that replicates nothing; only a new subscription, with a new slot, streams again. This apply changed nothing. "+
						"The slot was lost after the plan: plan again (terraform plan, or terraform apply without a saved plan), and the plan "+
						"replaces the subscription, saying what the new one copies.",
						slot, pgsql.Ident(name), database, r.server.describe(), publisherAddress(p), s.reason())) {
				return
			}
		}
	}
	// The statements PostgreSQL runs inside a transaction block (RENAME,
	// OWNER, CONNECTION, ENABLE, DISABLE, SET of the options, SET
	// PUBLICATION without refresh) are queued and run together in one
	// transaction, so a failing one undoes those queued before it: a
	// CONNECTION refused after an OWNER TO leaves neither the new owner nor
	// the new name. The ones that refuse a transaction block (REFRESH
	// PUBLICATION, SET PUBLICATION with refresh, SET (failover), SET
	// (two_phase)) run on their own: run commits the queue first, as they
	// need what it changes (an ENABLE before a refresh, a DISABLE before
	// failover).
	bound := r.publisherBound(plan)
	type alterStep struct {
		attr path.Path
		on   string // the subscription's name in sql
		what string // "RENAME TO …", for messages
		sql  string
		done func() // after its transaction committed
	}
	var queued []alterStep
	var made []string // the statements this apply committed
	// undo, when set, puts back what the failed statement's step needed
	// changed first (an enabled subscription disabled for it) and says so.
	var undo func() string
	flush := func() bool {
		batch := queued
		queued = nil
		if len(batch) == 0 {
			return true
		}
		sqls := make([]string, len(batch))
		for i, s := range batch {
			sqls[i] = s.sql
		}
		i, err := execSubscriptionTx(ctx, pool, bound, sqls)
		if err == nil {
			for _, s := range batch {
				made = append(made, s.what)
				if s.done != nil {
					s.done()
				}
			}
			return true
		}
		var whats []string
		for _, s := range batch {
			whats = append(whats, s.what)
		}
		// i == len(batch): the COMMIT failed; i < 0: the BEGIN did.
		failed, with := alterStep{attr: path.Empty(), on: batch[0].on, what: strings.Join(whats, ", ") + " (at COMMIT)"}, ""
		switch {
		case i < 0:
			failed.what = strings.Join(whats, ", ")
			with = " Its transaction could not begin (the cause is below), so none of it ran: apply again once the server answers."
			var begin *txBeginError
			if errors.As(err, &begin) {
				err = begin.err // said above: the cause alone
			}
		case i < len(batch):
			failed = batch[i]
		}
		if len(batch) > 1 && i >= 0 && i < len(batch) {
			var others []string
			for j, s := range batch {
				if j != i {
					others = append(others, s.what)
				}
			}
			with = fmt.Sprintf(" It ran in one transaction with %s, which PostgreSQL rolled back with it.", strings.Join(others, ", "))
		}
		outcome := with + " This apply changed nothing."
		if len(made) > 0 {
			outcome = with + fmt.Sprintf(" This apply had made %s before it: the next plan shows what is left.", strings.Join(made, ", "))
		}
		if undo != nil {
			outcome += " " + undo()
		}
		addError := resp.Diagnostics.AddError
		if !failed.attr.Equal(path.Empty()) {
			addError = func(summary, detail string) { resp.Diagnostics.AddAttributeError(failed.attr, summary, detail) }
		}
		var timeout *publisherTimeoutError
		if errors.As(err, &timeout) {
			// newParams: the connection the subscription has by now.
			addError("Cannot Alter Subscription", r.timeoutDetail("ALTER SUBSCRIPTION "+pgsql.Ident(failed.on)+" "+failed.what, database, newParams, timeout,
				"this statement changed nothing."+outcome, "Bring the publisher back, or fix the path from the subscriber to it, and apply again."))
			return false
		}
		addError("Cannot Alter Subscription",
			fmt.Sprintf("ALTER SUBSCRIPTION %s %s in database %q on %s failed.%s\n\n%s",
				pgsql.Ident(failed.on), failed.what, database, r.server.describe(), outcome, statement.MaskedError(ctx, err)))
		return false
	}
	queue := func(attr path.Path, what, sql string) {
		queued = append(queued, alterStep{attr: attr, on: name, what: what, sql: sql})
	}
	// run runs a statement that refuses a transaction block, after the
	// queue.
	run := func(attr path.Path, what, sql string) bool {
		if !flush() {
			return false
		}
		queue(attr, what, sql)
		return flush()
	}

	if newName := plan.Name.ValueString(); newName != name {
		queue(path.Root("name"), "RENAME TO "+pgsql.Ident(newName), alterSubscriptionSQL(name, "RENAME TO "+pgsql.Ident(newName)))
		// Should a later statement fail once the rename is committed, the
		// state must still find the subscription by its new name, or the
		// next plan would create it.
		queued[len(queued)-1].done = func() {
			resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("name"), newName)...)
			resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), importid.Format(database, newName))...)
		}
		name = newName
	}
	if owner := plan.Owner.ValueString(); !plan.Owner.IsUnknown() && owner != "" && owner != state.Owner.ValueString() {
		queue(path.Root("owner"), "OWNER TO "+pgsql.Ident(owner), alterSubscriptionOwnerSQL(name, owner))
	}
	// Publications change while the subscription is enabled if it is enabled
	// before or after this apply: a refresh is only allowed then.
	enabled := state.Enabled.ValueBool()
	// The options are set in the queue's transaction before CONNECTION and
	// ENABLE, and after DISABLE, as PostgreSQL checks each statement
	// against what those before it left: it refuses ENABLE on a
	// subscription without a slot (slot_name = NONE until the SET gives it
	// one), SET (slot_name = NONE) on an enabled one, and a CONNECTION
	// without a password while password_required is still true for an
	// owner that is not a superuser. Run after them, an apply that gave
	// back a slot and enabled, or disabled and took the slot away, failed
	// (TestAccSubscription_subreviewSlotNoneOrder). A subscription to be
	// disabled whose publications change is disabled after their refresh,
	// which needs it enabled: its options then wait for that DISABLE.
	setOptions := func() {
		if opts := subscriptionOptions(plan, &state, major); len(opts) > 0 {
			clause := "SET (" + strings.Join(opts, ", ") + ")"
			queue(path.Empty(), clause, alterSubscriptionSQL(name, clause))
		}
	}
	optionsSet := false
	if !plan.Enabled.ValueBool() && enabled && plan.Publications.Equal(state.Publications) {
		queue(path.Root("enabled"), "DISABLE", alterSubscriptionSQL(name, "DISABLE"))
		enabled = false
	}
	if plan.Enabled.ValueBool() || !enabled {
		setOptions()
		optionsSet = true
	}
	newVersion := !plan.PasswordWOVersion.Equal(state.PasswordWOVersion)
	if newVersion || plan.Conninfo.ValueString() != state.Conninfo.ValueString() && !normalized.SameConnection(plan.Conninfo.ValueString(), state.Conninfo.ValueString()) {
		connection := plan.Conninfo.ValueString()
		switch {
		case plan.PasswordWOVersion.IsNull():
		case newVersion:
			var wo types.String
			resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("password_wo"), &wo)...)
			if resp.Diagnostics.HasError() {
				return
			}
			connection = withPassword(connection, wo.ValueString())
		default:
			// A new connection, the same write-only password: the one the
			// subscriber has, which the state does not hold.
			p, _ := conninfo.Parse(current.ConnInfo)
			connection = withPassword(connection, p["password"])
		}
		newParams, _ = conninfo.Parse(connection)
		ctx = statement.WithSecrets(ctx, newParams.Secrets()...) // flush reads ctx when it runs
		// The subscriber may have this connection, password included (one
		// imported into password_wo, whose state held the password the
		// first plan then removes): CONNECTION would write the same
		// connection in other words and restart the apply worker.
		same := newVersion && !plan.PasswordWOVersion.IsNull() && normalized.SameConnection(current.ConnInfo, connection)
		if !same {
			queue(path.Root("conninfo"), "CONNECTION "+pgsql.Literal(newParams.Redacted()), alterSubscriptionSQL(name, "CONNECTION "+pgsql.Literal(connection)))
		}
	}
	if plan.Enabled.ValueBool() && !enabled {
		queue(path.Root("enabled"), "ENABLE", alterSubscriptionSQL(name, "ENABLE"))
		enabled = true
		if plan.Publications.Equal(state.Publications) {
			// Publications set, or tables added to them, while it was
			// disabled were not refreshed (a refresh needs an enabled
			// subscription): refresh now, copying nothing again.
			const refresh = "REFRESH PUBLICATION WITH (copy_data = false)"
			if !run(path.Root("enabled"), refresh, alterSubscriptionSQL(name, refresh)) {
				return
			}
		}
	}
	if opts, attr := disabledOnlyOptions(plan, &state, major); len(opts) > 0 {
		// PostgreSQL sets these only on a disabled subscription. One that is
		// to stay enabled (failover only: ModifyPlan refuses two_phase on it)
		// is disabled for the statement and enabled again; one that is to be
		// disabled is disabled now, so it never runs with the old options
		// after this point.
		clause := "SET (" + strings.Join(opts, ", ") + ")"
		steps := []string{clause}
		if enabled {
			steps = []string{"DISABLE", clause}
			if plan.Enabled.ValueBool() {
				steps = append(steps, "ENABLE")
			} else {
				enabled = false
			}
		}
		// Whichever step fails, an interrupted apply's included, an
		// enabled subscription that is to stay enabled is enabled again: a
		// DISABLE interrupted while its commit waited for a synchronous
		// standby stays committed, and an ENABLE interrupted, or not run,
		// leaves it disabled. Replication is never cut by an apply that
		// stopped halfway; when it cannot be enabled, the error says so and
		// the state says enabled = false, so the next plan enables it.
		restore := steps[0] == "DISABLE" && plan.Enabled.ValueBool()
		leftDisabled := false
		// Each step commits on its own: the workers stop once DISABLE is
		// committed, and the SET refuses a transaction block.
		if !flush() {
			return
		}
		for _, step := range steps {
			if step == clause {
				waitWorkersStopped(ctx, pool, name)
			}
			if restore {
				undo = func() string {
					text, enabled := reenableText(ctx, pool, bound, major, name, database)
					leftDisabled = !enabled
					return text
				}
			}
			ok := run(attr, step, alterSubscriptionSQL(name, step))
			undo = nil
			if !ok {
				if leftDisabled {
					resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("enabled"), false)...)
				}
				return
			}
		}
	}
	if !plan.Publications.Equal(state.Publications) {
		var publications []string
		resp.Diagnostics.Append(plan.Publications.ElementsAs(ctx, &publications, false)...)
		if resp.Diagnostics.HasError() {
			return
		}
		slices.Sort(publications)
		with := "WITH (refresh = false)"
		if enabled {
			// copy_data = false: tables already subscribed are never copied
			// again, whatever the publications were before (cyrilgdn #377, #594, #616).
			with = "WITH (refresh = true, copy_data = false)"
		}
		clause := "SET PUBLICATION " + pgsql.IdentList(publications) + " " + with
		if !enabled {
			queue(path.Root("publications"), clause, alterSubscriptionSQL(name, clause))
		} else if !run(path.Root("publications"), clause, alterSubscriptionSQL(name, clause)) {
			return
		}
	}
	if !plan.Enabled.ValueBool() && enabled {
		queue(path.Root("enabled"), "DISABLE", alterSubscriptionSQL(name, "DISABLE"))
	}
	if !optionsSet {
		setOptions()
	}
	if !flush() {
		return
	}

	cat, err := readSubscription(ctx, pool, major, name)
	if err != nil {
		resp.Diagnostics.AddError("Cannot Read Subscription", r.readFailure(ctx, name, database, err))
		return
	}
	if cat == nil {
		resp.Diagnostics.AddError("Subscription Missing After Update",
			fmt.Sprintf("The subscription %s was altered in database %q on %s, but pg_subscription no longer has it. "+
				"Something dropped it meanwhile; plan again to create it.", pgsql.Ident(name), database, r.server.describe()))
		return
	}
	plan.Database = state.Database
	read := state.Failover
	state = plan.fromCatalog(cat)
	switch {
	case !plan.Failover.IsUnknown() && plan.Failover.Equal(read):
		// Not changed by this apply: as Read returned it, from the
		// publisher's slot, which pg_subscription's subfailover does not
		// follow (a slot's failover turned off there). Not looked at again
		// here: a publisher unreachable now but not at the refresh would
		// make the result differ from the plan after the ALTERs ran; the
		// next refresh looks at the slot again.
		state.Failover = plan.Failover
	case cat.Failover && cat.SlotName != nil:
		// Set by this apply, which sets the slot's too: as Read would.
		state.Failover = types.BoolValue(r.publisherSlotFailover(ctx, cat))
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

func (r *subscriptionResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state subscriptionResourceModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	database, name := state.Database.ValueString(), state.Name.ValueString()
	ctx = statement.WithObject(ctx, "subscription "+pgsql.Ident(name)+" in database "+pgsql.Ident(database))
	pool, major := r.connect(ctx, database, &resp.Diagnostics)
	if resp.Diagnostics.HasError() {
		return
	}
	params, _ := conninfo.Parse(state.Conninfo.ValueString())
	ctx = statement.WithSecrets(ctx, params.Secrets()...)
	if !state.PasswordWOVersion.IsNull() {
		// The write-only password is not in the state: declared from the
		// subscriber's connection, as Update does. A failed read leaves
		// the drop to report what fails.
		if cur, err := readSubscription(ctx, pool, major, name); err == nil && cur != nil {
			p, _ := conninfo.Parse(cur.ConnInfo)
			ctx = statement.WithSecrets(ctx, p.Secrets()...)
		}
	}
	slot := state.SlotName.ValueString()
	if copyingReplacement(ctx, req.Private, slot) {
		// The replacement of a lost slot planned with its tables empty:
		// looked at again before anything is dropped.
		full, err := r.subscribedTablesWithRows(ctx, database, name)
		switch {
		case err != nil:
			resp.Diagnostics.AddError("Subscription Not Replaced",
				fmt.Sprintf("The plan replaces the subscription %s in database %q on %s, whose replication slot %q was invalidated, with a new one "+
					"that copies the tables again (copy_data = true), and the provider could not look again at whether they are still empty on the "+
					"subscriber (%s). This apply changed nothing. Plan again.",
					pgsql.Ident(name), database, r.server.describe(), slot, statement.MaskedError(ctx, err)))
			return
		case len(full) > 0:
			resp.Diagnostics.AddError("Subscription Not Replaced",
				fmt.Sprintf("The plan replaces the subscription %s in database %q on %s, whose replication slot %q was invalidated, with a new one "+
					"that copies the tables again (copy_data = true), and the tables %s have rows on the subscriber now, which they had not at plan: "+
					"the copy would fail on their primary or unique keys at every retry, or duplicate their rows. This apply changed nothing. "+
					"Either empty those tables on the subscriber, or set copy_data = false (nothing is copied again: the changes made while the "+
					"slot was invalidated are never replicated, resynchronise them by hand), and plan again.",
					pgsql.Ident(name), database, r.server.describe(), slot, pgsql.IdentList(full)))
			return
		}
	}
	bound := r.publisherBound(state)
	drop := "DROP SUBSCRIPTION " + pgsql.Ident(name)
	var timeout *publisherTimeoutError

	if state.DropSlotOnDestroy.IsNull() || state.DropSlotOnDestroy.ValueBool() {
		// The provider does not fall back to leaving the slot by itself: a
		// slot nobody drops retains WAL on the publisher until its disk
		// fills, so that takes the user's word (drop_slot_on_destroy).
		fix := fmt.Sprintf("Dropping a subscription also drops its replication slot %q on the publisher, so the subscriber must reach the "+
			"publisher. If the publisher is only down for a while, bring it back and destroy again. If it is gone, set "+
			"drop_slot_on_destroy = false, apply, and destroy again: the provider then runs PostgreSQL's documented sequence for a "+
			"publisher that cannot be reached (ALTER SUBSCRIPTION … DISABLE; ALTER SUBSCRIPTION … SET (slot_name = NONE); DROP SUBSCRIPTION), "+
			"which does not connect to it, and the slot %q is left on the publisher, retaining WAL there until it is dropped there: "+
			"SELECT pg_drop_replication_slot(%s).", slot, slot, pgsql.Literal(slot))
		err := execSubscription(ctx, pool, bound, "DROP SUBSCRIPTION IF EXISTS "+pgsql.Ident(name))
		if err != nil && publisherSlotGone(slot, err) {
			// The slot is gone already (a pgreplication_replication_slot
			// named by literal, destroyed first by the same run, or dropped
			// by hand): there is nothing to leak, so drop the subscription
			// without it, as drop_slot_on_destroy = false does.
			if err = dropSubscription(ctx, pool, bound, name, false); err == nil {
				resp.Diagnostics.AddWarning("Replication Slot Already Gone",
					fmt.Sprintf("The publisher (%s) has no replication slot %q any more, so DROP SUBSCRIPTION %s could not drop it there. "+
						"Nothing is left to leak: the subscription was dropped without its slot (ALTER SUBSCRIPTION … DISABLE; "+
						"ALTER SUBSCRIPTION … SET (slot_name = NONE); DROP SUBSCRIPTION). If a pgreplication_replication_slot of this "+
						"configuration was that slot, reference it (slot_name = pgreplication_replication_slot.x.name) so that Terraform "+
						"drops the subscription first.", publisherAddress(params), slot, pgsql.Ident(name)))
				return
			}
		}
		switch {
		case isPasswordRequired(err):
			resp.Diagnostics.AddError("Cannot Drop Subscription Without a Password", r.passwordRequiredDetail(ctx, state, err))
		case errors.As(err, &timeout):
			resp.Diagnostics.AddError("Cannot Drop Subscription", r.timeoutDetail(drop, database, params, timeout, "nothing was dropped.", fix))
		case err != nil:
			resp.Diagnostics.AddError("Cannot Drop Subscription",
				fmt.Sprintf("DROP SUBSCRIPTION %s in database %q on %s failed, with the publisher at %s.\n\n%s\n\n%s",
					pgsql.Ident(name), database, r.server.describe(), publisherAddress(params), fix, statement.MaskedError(ctx, err)))
		}
		return
	}

	if err := dropSubscription(ctx, pool, bound, name, false); isPasswordRequired(err) {
		// Tables still waiting for their initial copy have slots on the
		// publisher that even this path must connect to drop.
		resp.Diagnostics.AddError("Cannot Drop Subscription Without a Password", r.passwordRequiredDetail(ctx, state, err))
		return
	} else if errors.As(err, &timeout) {
		// The same: PostgreSQL connects to drop the slots of tables still
		// waiting for their initial copy, and goes on if it cannot.
		resp.Diagnostics.AddError("Cannot Drop Subscription", r.timeoutDetail(drop, database, params, timeout,
			"the subscription is still there, disabled and without a slot (ALTER SUBSCRIPTION … DISABLE and SET (slot_name = NONE) ran before it).",
			"With drop_slot_on_destroy = false the subscription no longer has a slot, but tables still waiting for their initial copy "+
				"have slots of their own on the publisher, which DROP SUBSCRIPTION connects to drop, going on without them only when the "+
				"connection fails. Bring the publisher back and destroy again; or make the connection fail fast (add connect_timeout=10 "+
				"to conninfo and apply), destroy again, and drop the slots named pg_…_sync_… left on the publisher once it is back."))
		return
	} else if err != nil {
		resp.Diagnostics.AddError("Cannot Drop Subscription",
			fmt.Sprintf("Dropping the subscription %s in database %q on %s without touching the publisher (drop_slot_on_destroy = false: "+
				"DISABLE, SET (slot_name = NONE), DROP) failed.\n\n%s",
				pgsql.Ident(name), database, r.server.describe(), statement.MaskedError(ctx, err)))
		return
	}
	if slot != "" && slot != subscriptionSlotNone {
		resp.Diagnostics.AddWarning("Replication Slot Left on the Publisher",
			fmt.Sprintf("The subscription %s was dropped without dropping its replication slot %q on the publisher (%s), because "+
				"drop_slot_on_destroy = false. If the publisher still has that slot, it retains WAL until it is dropped there: "+
				"SELECT pg_drop_replication_slot(%s).", pgsql.Ident(name), slot, params.Redacted(), pgsql.Literal(slot)))
	}
}

// publisherSlotGone tells whether err, DROP SUBSCRIPTION's failure, is the
// publisher answering that the subscription's slot does not exist. The
// error PostgreSQL raises then is a connection failure (08006) whose
// message quotes the publisher's reply: "could not drop replication slot
// "<slot>" on publisher: ERROR:  replication slot "<slot>" does not exist".
// Only that reply, for this very slot, counts. Not "could not connect to
// publisher when attempting to drop replication slot …", also 08006, which
// a missing role or database gives ("role … does not exist"): the slot is
// still there then, and dropping the subscription without it would leave
// it holding WAL. Nor a probe of the publisher from Terraform's machine:
// the connection settings may name another server from there (localhost),
// or lack the password (password_wo), and a slot absent there is not
// absent from the publisher. A server whose messages are not in English
// does not match: the drop is then refused, as before.
func publisherSlotGone(slot string, err error) bool {
	var pgErr *pgconn.PgError
	if slot == "" || strings.EqualFold(slot, subscriptionSlotNone) || !errors.As(err, &pgErr) || pgErr.Code != "08006" {
		return false
	}
	quoted := `"` + slot + `"`
	return strings.HasPrefix(pgErr.Message, "could not drop replication slot "+quoted+" on publisher: ") &&
		strings.Contains(pgErr.Message, "replication slot "+quoted+" does not exist")
}

// reenableText enables again the subscription name, which was enabled and
// was disabled for a change whose statements then failed, says whether it
// is enabled, and returns whether it is (false too when that is not known).
//
// The change failed because the apply was interrupted as often as for any
// other reason, and ctx is then cancelled: the ENABLE runs on a context of
// its own (ENABLE does not reach the publisher, so a few seconds do), or an
// interrupt would leave the subscription disabled for good. A failed ENABLE
// may be done all the same (its answer lost; its commit waiting for a
// synchronous standby when it was cancelled, which keeps it committed), and
// the statement it followed may have disabled the subscription or not:
// pg_subscription tells, once the ENABLE's session is done with it.
func reenableText(ctx context.Context, pool *pgxpool.Pool, bound statementBound, major int, name, database string) (string, bool) {
	interrupted := ""
	if ctx.Err() != nil {
		interrupted = " The apply was interrupted: apply again to make the rest of its changes."
	}
	enableCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), reenableTimeout)
	defer cancel()
	err := execSubscription(enableCtx, pool, bound, alterSubscriptionSQL(name, "ENABLE"))
	for concurrentlyUpdated(err) && enableCtx.Err() == nil {
		// The statement that failed may still run on the server, its
		// session's cancel request on its way (pgx sends one when the
		// apply's context is cancelled): the ENABLE waited for it to end,
		// then found the subscription changed under it. It has ended now.
		err = execSubscription(enableCtx, pool, bound, alterSubscriptionSQL(name, "ENABLE"))
	}
	if err == nil {
		// Whether the failed step had disabled it is not known (a DISABLE that
		// failed was rolled back): the text does not say it was.
		return "The subscription is enabled and replicates: the failed step may have disabled it, and it has been enabled again " +
			"(ALTER SUBSCRIPTION … ENABLE)." + interrupted, true
	}
	readEnabled := func(ctx context.Context) (bool, bool, error) {
		cat, err := readSubscription(ctx, pool, major, name)
		enabled := cat != nil && cat.Enabled
		return enabled, enabled, err
	}
	enabled, outcome := createdAnyway(ctx, pool, err, readEnabled)
	if outcome == createNotAsked {
		readCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), reenableTimeout)
		defer cancel()
		var readErr error
		if enabled, _, readErr = readEnabled(readCtx); readErr != nil {
			outcome = createUnknown
		}
	}
	cause := statement.MaskedError(ctx, err)
	if errors.Is(err, context.DeadlineExceeded) {
		cause = fmt.Sprintf("ENABLE did not finish in %v: another session holds a lock on the subscription, or the subscriber's commits "+
			"wait for a synchronous standby", reenableTimeout)
	}
	fix := fmt.Sprintf("run ALTER SUBSCRIPTION %s ENABLE in database %q once the cause is fixed, or apply again: the state says enabled = false, "+
		"so the next plan enables it (%v).", pgsql.Ident(name), database, cause)
	switch {
	case outcome == createUnknown:
		return "The subscription was disabled for this change, enabling it again failed too, and whether it is enabled could not be read: " +
			"if pg_subscription.subenabled is false for it, it does not replicate: " + fix + interrupted, false
	case !enabled:
		return "The subscription was disabled for this change, and enabling it again failed too, so it is disabled now and does not replicate: " +
			fix + interrupted, false
	}
	return "The subscription is enabled: it replicates (enabling it again after this change failed, but pg_subscription says it is enabled)." +
		interrupted, true
}

// concurrentlyUpdated tells PostgreSQL's refusal to update a catalog row
// that another transaction updated after this statement read it (ALTER
// SUBSCRIPTION reads its row before it locks the subscription): the other
// transaction has ended, and the statement can run again.
func concurrentlyUpdated(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "XX000" && pgErr.Message == "tuple concurrently updated"
}

// isPasswordRequired tells PostgreSQL's refusal (16 and later) to connect a
// subscription owned by a role that is not a superuser to its publisher
// without a password that the publisher checked.
func isPasswordRequired(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "2F003" // s_r_e_prohibited_sql_statement_attempted: "password is required"
}

// passwordRequiredDetail is the detail of a DROP SUBSCRIPTION refused with
// "password is required": the cause and the applies that let it through.
func (r *subscriptionResource) passwordRequiredDetail(ctx context.Context, state subscriptionResourceModel, err error) string {
	cause := "conninfo has none"
	if p, _ := conninfo.Parse(state.Conninfo.ValueString()); p["password"] != "" || !state.PasswordWOVersion.IsNull() {
		cause = "the publisher did not ask for the one it has (its pg_hba.conf lets that user in without a password, e.g. trust)"
	}
	return fmt.Sprintf("DROP SUBSCRIPTION %s in database %q on %s must connect to the publisher to drop the subscription's replication "+
		"slots there, and PostgreSQL refused that connection: the subscription's owner %s is not a superuser and password_required = true, "+
		"so the connection must carry a password that the publisher asks for, and %s. "+
		"The subscription cannot replicate either. To destroy it, first apply one of: password_required = false (applied by a superuser), "+
		"owner = a superuser, or a password in the connection (password_wo and password_wo_version) with a publisher that checks it; "+
		"then destroy again.\n\n%s",
		pgsql.Ident(state.Name.ValueString()), state.Database.ValueString(), r.server.describe(), pgsql.Ident(state.Owner.ValueString()), cause,
		statement.MaskedError(ctx, err))
}

func (r *subscriptionResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	parts, err := importid.Parse(req.ID, "database", "name")
	if err != nil {
		resp.Diagnostics.AddError("Invalid Import ID", err.Error())
		return
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("database"), parts[0])...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("name"), parts[1])...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), importid.Format(parts...))...)
}

func (r *subscriptionResource) ValidateConfig(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	var cfg subscriptionResourceModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &cfg)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if v := cfg.Name; !v.IsNull() && !v.IsUnknown() {
		if err := pgsql.ValidateName(v.ValueString()); err != nil {
			resp.Diagnostics.AddAttributeError(path.Root("name"), "Invalid Subscription Name", err.Error()+".")
		}
	}
	if v := cfg.Database; !v.IsNull() && !v.IsUnknown() {
		if err := pgsql.ValidateName(v.ValueString()); err != nil {
			resp.Diagnostics.AddAttributeError(path.Root("database"), "Invalid Database Name", err.Error()+".")
		}
	}
	if v := cfg.Owner; !v.IsNull() && !v.IsUnknown() {
		if err := pgsql.ValidateName(v.ValueString()); err != nil {
			resp.Diagnostics.AddAttributeError(path.Root("owner"), "Invalid Owner Name", err.Error()+".")
		}
	}
	if v := cfg.SlotName; v.ValueString() == subscriptionSlotNone {
		for _, a := range []struct {
			name  string
			value types.Bool
		}{{"enabled", cfg.Enabled}, {"create_slot", cfg.CreateSlot}} {
			if !a.value.IsUnknown() && (a.value.IsNull() || a.value.ValueBool()) {
				resp.Diagnostics.AddAttributeError(path.Root(a.name), "slot_name = NONE Needs "+a.name+" = false",
					fmt.Sprintf("A subscription without a slot (slot_name = \"NONE\") cannot be %s: PostgreSQL refuses it. "+
						"Set %s = false, or give the subscription a slot.", map[string]string{"enabled": "enabled", "create_slot": "created with a slot"}[a.name], a.name))
			}
		}
	} else if !v.IsNull() && !v.IsUnknown() && strings.EqualFold(v.ValueString(), subscriptionSlotNone) {
		resp.Diagnostics.AddAttributeError(path.Root("slot_name"), "Invalid Replication Slot Name", slotNameNoneText(v.ValueString())+
			" For a subscription without a slot write slot_name = \"NONE\"; otherwise choose another slot name.")
	} else if !v.IsNull() && !v.IsUnknown() && !replicationSlotName.MatchString(v.ValueString()) {
		resp.Diagnostics.AddAttributeError(path.Root("slot_name"), "Invalid Replication Slot Name",
			fmt.Sprintf("%q is not a replication slot name: PostgreSQL allows 1 to 63 lower-case letters, digits and underscores.", v.ValueString()))
	}
	if v := cfg.Conninfo; !v.IsNull() && !v.IsUnknown() {
		if p, err := conninfo.Parse(v.ValueString()); err == nil && !cfg.PasswordWO.IsNull() {
			if _, ok := p["password"]; ok {
				resp.Diagnostics.AddAttributeError(path.Root("password_wo"), "Password Given Twice",
					"password_wo is set and conninfo has a password too. Keep one: remove password=… from conninfo "+
						"(password_wo keeps the password out of the state), or remove password_wo and password_wo_version.")
			}
		}
		if p, err := conninfo.Parse(v.ValueString()); err != nil {
			// The parser's error never quotes the string (a password);
			// the message says what to write instead.
			resp.Diagnostics.AddAttributeError(path.Root("conninfo"), "Invalid Connection String",
				"The connection is not a libpq connection string ("+err.Error()+"). "+
					"Write it as host=… port=… user=… dbname=…, quoting values with spaces in single quotes, "+
					"or as a URI, postgresql://user:password@host:port/dbname?keyword=value, with %XX for a reserved character.")
		} else if err := p.Check(); err != nil {
			// PostgreSQL stores such a connection (it checks the keywords
			// only, and ALTER … CONNECTION does not connect): the apply
			// worker would then fail at every retry.
			resp.Diagnostics.AddAttributeError(path.Root("conninfo"), "Invalid Connection String",
				"The subscriber could not connect to the publisher with this connection: "+err.Error()+".")
		}
	}
	if !cfg.Publications.IsUnknown() && !cfg.Publications.IsNull() {
		for _, e := range cfg.Publications.Elements() {
			s, ok := e.(types.String)
			if !ok || s.IsUnknown() || s.IsNull() {
				continue
			}
			if err := pgsql.ValidateName(s.ValueString()); err != nil {
				resp.Diagnostics.AddAttributeError(path.Root("publications"), "Invalid Publication Name", fmt.Sprintf("%q: %s.", s.ValueString(), err))
			} else if strings.Contains(s.ValueString(), `\`) {
				resp.Diagnostics.AddAttributeError(path.Root("publications"), "Publication Name Cannot Be Subscribed To",
					fmt.Sprintf("%q has a backslash. %s: the subscription would be created and never replicate. "+
						"Rename the publication on the publisher (ALTER PUBLICATION … RENAME TO) to a name without a backslash.",
						s.ValueString(), backslashPublicationName))
			}
		}
	}
}

// refuseUnknownKeyword refuses a connection keyword that libpq
// conninfo.KeywordsMajor does not have, on a subscriber of that major
// version or older, or one whose version is not known: its libpq would
// refuse it at CREATE or ALTER SUBSCRIPTION, after the statements before it
// in the apply were made. A newer subscriber may have a libpq that knows
// the keyword: the plan warns, and the subscriber decides at apply. So it
// does for a keyword that libpq added after the subscriber's major version
// (conninfo.KeywordSince): a subscriber loads the libpq of its build or of
// its system, which may be that old (PostgreSQL 17's own libpq refuses
// sslkeylogfile, and Debian 12's libpq5 15 refuses require_auth).
func refuseUnknownKeyword(connection types.String, facts *serverFacts, diags *diag.Diagnostics) {
	if connection.IsNull() || connection.IsUnknown() {
		return
	}
	p, err := conninfo.Parse(connection.ValueString())
	if err != nil {
		return // ValidateConfig refused it
	}
	k := p.Unknown()
	if k == "" {
		if facts == nil {
			return
		}
		if k, since := p.Newer(facts.Major()); k != "" {
			diags.AddAttributeWarning(path.Root("conninfo"), "Connection Keyword Newer Than the Subscriber",
				fmt.Sprintf("%q is a keyword of libpq %d and later; the subscriber runs PostgreSQL %d, and checks the keywords with the libpq it loads "+
					"when it stores the connection. A libpq older than %d (the one built with a PostgreSQL %d server, or a system's libpq5 package of that "+
					"version) refuses it (invalid connection option %q), and the apply fails there, changing nothing. Leave it out, or make sure the "+
					"subscriber loads libpq %d or later.", k, since, facts.Major(), since, facts.Major(), k, since))
		}
		return
	}
	if facts != nil && facts.Major() > conninfo.KeywordsMajor {
		diags.AddAttributeWarning(path.Root("conninfo"), "Connection Keyword Not Checked",
			fmt.Sprintf("%q is not a keyword of libpq %d, which the provider knows; the subscriber runs PostgreSQL %d, whose libpq may have it. "+
				"The subscriber checks the keywords when it stores the connection: if its libpq does not have %q, the apply fails there. "+
				"If it is a misspelling, correct it.", k, conninfo.KeywordsMajor, facts.Major(), k))
		return
	}
	diags.AddAttributeError(path.Root("conninfo"), "Invalid Connection String",
		fmt.Sprintf("The subscriber could not connect to the publisher with this connection: %q is not a libpq connection keyword "+
			"(libpq %d's keywords): libpq refuses the connection string. Remove it or correct its spelling.", k, conninfo.KeywordsMajor))
}

// backslashPublicationName is why no PostgreSQL subscriber can stream from a
// publication whose name has a backslash (seen on PostgreSQL 15, 17 and 18:
// CREATE SUBSCRIPTION succeeds, then every apply worker fails): the
// subscription refuses such a name at plan, the publication warns.
const backslashPublicationName = "PostgreSQL's apply worker sends the publication names to the publisher as an E'…' string, " +
	"which the replication protocol does not accept (\"could not start WAL streaming: ERROR: syntax error\")"

// ModifyPlan resolves the defaults that depend on the server (database,
// streaming, slot_name), recreates the subscription only when its database
// changes, and runs the plan-time checks: version gates on the subscriber and
// wal_level on the publisher.
func (r *subscriptionResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() {
		// Destroy: DROP SUBSCRIPTION needs what the warning names.
		var state subscriptionResourceModel
		resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
		if !resp.Diagnostics.HasError() && r.server != nil && !r.server.unknown {
			r.warnOwnerWithoutPassword(ctx, state, !state.PasswordWOVersion.IsNull(), &resp.Diagnostics)
		}
		return
	}
	var plan, cfg subscriptionResourceModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.Config.Get(ctx, &cfg)...)
	var state *subscriptionResourceModel
	if !req.State.Raw.IsNull() {
		state = &subscriptionResourceModel{}
		resp.Diagnostics.Append(req.State.Get(ctx, state)...)
	}
	if resp.Diagnostics.HasError() {
		return
	}
	srv := r.server
	known := srv != nil && !srv.unknown

	if cfg.Database.IsNull() {
		switch {
		case known:
			plan.Database = types.StringValue(srv.settings.Database)
		case state != nil:
			plan.Database = state.Database
		default:
			plan.Database = types.StringUnknown()
		}
	}
	if state != nil && resp.Private != nil { // nil only where ModifyPlan is called without the framework
		resp.Diagnostics.Append(markOwnName(ctx, resp.Private, importid.Format(state.Database.ValueString(), state.Name.ValueString()))...)
	}
	// ownName: Terraform's second plan of this subscription's replacement.
	replacing := state == nil && !plan.Database.IsUnknown() && !plan.Name.IsUnknown() &&
		ownName(ctx, req.Private, importid.Format(plan.Database.ValueString(), plan.Name.ValueString()))
	if state != nil && !plan.Database.IsUnknown() && !plan.Database.Equal(state.Database) {
		resp.RequiresReplace = append(resp.RequiresReplace, path.Root("database"))
		refuseMoveToClosedDatabase(ctx, srv, "subscription", state.Name.ValueString(), state.Database.ValueString(), plan.Database.ValueString(), &resp.Diagnostics)
		state = nil // planned as a new subscription from here on
	}
	if !plan.Database.IsUnknown() && !plan.Name.IsUnknown() {
		plan.ID = types.StringValue(importid.Format(plan.Database.ValueString(), plan.Name.ValueString()))
	} else {
		plan.ID = types.StringUnknown()
	}

	if cfg.SlotName.IsNull() {
		switch {
		case state != nil:
			// PostgreSQL keeps the slot name when the subscription is renamed.
			plan.SlotName = state.SlotName
		case plan.Name.IsUnknown():
			plan.SlotName = types.StringUnknown()
		default:
			plan.SlotName = plan.Name
			if strings.EqualFold(plan.Name.ValueString(), subscriptionSlotNone) {
				resp.Diagnostics.AddAttributeError(path.Root("slot_name"), "Subscription Name Is Not a Slot Name",
					"The replication slot of a subscription is named after it by default, and "+slotNameNoneText(plan.Name.ValueString())+" Set slot_name.")
			} else if !replicationSlotName.MatchString(plan.Name.ValueString()) {
				resp.Diagnostics.AddAttributeError(path.Root("slot_name"), "Subscription Name Is Not a Slot Name",
					fmt.Sprintf("The replication slot of a subscription is named after it by default, and %q is not a valid slot name "+
						"(lower-case letters, digits and underscores only). Set slot_name.", plan.Name.ValueString()))
			}
		}
	}
	var facts *serverFacts
	if known {
		if f, err := srv.Facts(ctx); err == nil {
			facts = &f
		}
	}
	refuseUnknownKeyword(cfg.Conninfo.StringValue, facts, &resp.Diagnostics)
	if cfg.Streaming.IsNull() {
		switch {
		case facts != nil:
			plan.Streaming = types.StringValue(defaultSubscriptionStreaming(facts.Major()))
		case state != nil:
			plan.Streaming = state.Streaming
		default:
			plan.Streaming = types.StringUnknown()
		}
	}

	if cfg.Streaming.ValueString() == subscriptionStreamingParallel {
		srv.requireMajor(ctx, 16, `streaming = "parallel"`, path.Root("streaming"), &resp.Diagnostics)
	}
	// A value that an older server has anyway (its only behaviour, which
	// Read reports) sets nothing there: terraform plan -generate-config-out
	// writes every one, and what it writes must plan on every version.
	for _, g := range []struct {
		name            string
		value, implicit attr.Value
		major           int
	}{
		{"disable_on_error", cfg.DisableOnError, types.BoolValue(false), 15},
		{"two_phase", cfg.TwoPhase, types.BoolValue(false), 15},
		{"origin", cfg.Origin, types.StringValue(subscriptionOriginAny), 16},
		{"password_required", cfg.PasswordRequired, types.BoolValue(true), 16},
		{"run_as_owner", cfg.RunAsOwner, types.BoolValue(false), 16},
		{"failover", cfg.Failover, types.BoolValue(false), 17},
	} {
		if !g.value.IsNull() && !g.value.Equal(g.implicit) {
			srv.requireMajor(ctx, g.major, g.name, path.Root(g.name), &resp.Diagnostics)
		}
	}
	if state != nil && !plan.TwoPhase.IsUnknown() && !plan.TwoPhase.Equal(state.TwoPhase) {
		checkTwoPhaseChange(plan, *state, facts, &resp.Diagnostics)
	}

	if state == nil && known && !plan.Database.IsUnknown() {
		r.checkCanReadConnection(ctx, plan.Database.ValueString(), &resp.Diagnostics)
	}
	if known && !replacing && !plan.Database.IsUnknown() && !plan.Name.IsUnknown() && (state == nil || !plan.Name.Equal(state.Name)) {
		r.refuseExisting(ctx, plan.Database.ValueString(), plan.Name.ValueString(), &resp.Diagnostics)
	}
	// One probe of the publisher for every check of this plan: one that
	// does not answer costs one publisherProbeTimeout, said once.
	var publisher *publisherProbe
	if c := plan.Conninfo; !c.IsUnknown() && !c.IsNull() {
		connection := c.ValueString() // as apply writes it
		if !cfg.PasswordWO.IsNull() && !cfg.PasswordWO.IsUnknown() {
			connection = withPassword(connection, cfg.PasswordWO.ValueString())
		}
		publisher = r.newPublisherProbe(connection)
	}
	if known && publisher != nil && !plan.Publications.IsUnknown() && (state == nil || !plan.Publications.Equal(state.Publications)) {
		var names []string
		if !plan.Publications.ElementsAs(ctx, &names, false).HasError() {
			if missing, major, err := missingPublications(ctx, publisher, names); err == nil && len(missing) > 0 {
				p, _ := conninfo.Parse(publisher.connection)
				summary, outcome := "Publication Not on the Publisher", " Apply will refuse it, changing nothing, unless the publisher has them by then."
				if major >= 18 {
					outcome = " This publisher runs PostgreSQL 18 or later, which skips a publication it lacks: nothing of it is replicated until it is made."
				}
				if state == nil {
					// A new topology: the publication may be this apply's,
					// made first, which the subscription's plan cannot see.
					summary = "Publication Not Yet on the Publisher"
					outcome = fmt.Sprintf(" If a pgreplication_publication of this configuration creates it, ignore this: Terraform makes it first. "+
						"Otherwise apply refuses to create the subscription, creating nothing, if the publisher still lacks it then "+
						"(looked at again for up to %s).", syncRiskGrace)
					if major >= 18 {
						outcome = " If a pgreplication_publication of this configuration creates it, ignore this: Terraform makes it first. " +
							"Otherwise: this publisher runs PostgreSQL 18 or later, which skips a publication it lacks, and nothing of it is " +
							"replicated until it is made."
					}
				}
				publisher.warn(&resp.Diagnostics, path.Root("publications"), summary,
					missingPublicationsText(plan.Name.ValueString(), publisherAddress(p), missing, major)+outcome)
			}
		}
	}
	if known && publisher != nil {
		// Checked when the setting turns on, or the subscription moves to
		// another publisher.
		moved := state != nil && !plan.Conninfo.IsUnknown() && !normalized.SameConnection(plan.Conninfo.ValueString(), state.Conninfo.ValueString())
		var needs []publisherFeature
		if !plan.Failover.IsUnknown() && plan.Failover.ValueBool() && (state == nil || moved || !state.Failover.ValueBool()) {
			needs = append(needs, publisherFeature{path.Root("failover"), 17,
				"A failover slot (failover = true) is made on the publisher, which needs PostgreSQL 17 or later there (an older one refuses it at apply)"})
		}
		if !plan.Origin.IsUnknown() && plan.Origin.ValueString() == "none" && (state == nil || moved || state.Origin.ValueString() != "none") {
			needs = append(needs, publisherFeature{path.Root("origin"), 16,
				"origin = \"none\" is applied by the publisher, and PostgreSQL sends it only to a publisher of 16 or later: an older one streams " +
					"every change, those it replicated from elsewhere too, with no error, which is the loop origin = \"none\" is there to break"})
		}
		checkPublisherVersion(ctx, publisher, needs, &resp.Diagnostics)
	}
	// As Update checks: the slot a subscription streams from after the
	// apply and not before (a new slot_name, or enabled), never the slot of
	// one that stays disabled.
	if state != nil && known && !plan.SlotName.IsUnknown() && !plan.Enabled.IsUnknown() && plan.Enabled.ValueBool() &&
		(!plan.SlotName.Equal(state.SlotName) || !state.Enabled.ValueBool()) &&
		!strings.EqualFold(plan.SlotName.ValueString(), subscriptionSlotNone) && publisher != nil {
		if problem, err := publisherSlotProblem(ctx, publisher, plan.SlotName.ValueString(), 0); err == nil && problem != "" {
			name, from, to := plan.Name.ValueString(), state.SlotName.ValueString(), plan.SlotName.ValueString()
			what, fix := fmt.Sprintf("changes the replication slot of the subscription %s from %q to %q", pgsql.Ident(name), from, to), slotChangeFix(name, from, to)
			if from == to {
				what, fix = fmt.Sprintf("enables the subscription %s, streaming from the replication slot %q", pgsql.Ident(name), to), enableSlotFix(to)
			}
			publisher.warn(&resp.Diagnostics, path.Root("slot_name"), "Subscription Would Stop Replicating",
				fmt.Sprintf("The plan %s, and %s. Apply will refuse the change, changing nothing, unless the slot can serve it by then.\n\n%s",
					what, problem, fix))
		}
	}
	if state == nil && known && !plan.CreateSlot.IsUnknown() && !plan.CreateSlot.ValueBool() && plan.Enabled.ValueBool() &&
		!plan.SlotName.IsUnknown() && !strings.EqualFold(plan.SlotName.ValueString(), subscriptionSlotNone) && publisher != nil {
		if problem, err := publisherSlotProblem(ctx, publisher, plan.SlotName.ValueString(), 0); err == nil && problem != "" {
			publisher.warn(&resp.Diagnostics, path.Root("slot_name"), "Subscription Would Not Replicate",
				fmt.Sprintf("The subscription %s is to be created with create_slot = false, streaming from the replication slot %q, and %s. "+
					"Apply will refuse to create it unless the slot is there by then.\n\n%s", pgsql.Ident(plan.Name.ValueString()),
					plan.SlotName.ValueString(), problem, existingSlotFix(plan.SlotName.ValueString())))
		}
	}
	if o := cfg.Owner; known && !o.IsUnknown() && !o.IsNull() && (state == nil || o.ValueString() != state.Owner.ValueString()) {
		r.checkOwner(ctx, o.ValueString(), facts, &resp.Diagnostics)
	}
	if known && !resp.Diagnostics.HasError() {
		r.warnOwnerWithoutPassword(ctx, plan, !cfg.PasswordWO.IsNull() || !cfg.PasswordWOVersion.IsNull(), &resp.Diagnostics)
	}
	if c := plan.Conninfo; !c.IsUnknown() && !c.IsNull() && (state == nil || !normalized.SameConnection(c.ValueString(), state.Conninfo.ValueString())) {
		connection := c.ValueString() // as apply writes it
		wo := !cfg.PasswordWO.IsNull() && !cfg.PasswordWO.IsUnknown()
		if wo {
			connection = withPassword(connection, cfg.PasswordWO.ValueString())
		}
		if state != nil {
			to := c.ValueString()
			if wo && statePassword(state.Conninfo.ValueString()) {
				// The state holds the password the server has (read at
				// import, which has no configuration to say it is
				// write-only, or written in conninfo before): compare it
				// with password_wo, the one apply writes.
				to = connection
				if normalized.SameConnection(state.Conninfo.ValueString(), to) {
					resp.Diagnostics.Append(passwordLeavesState("password_wo", "the subscription "+pgsql.Ident(plan.Name.ValueString()), "conninfo"))
				}
			}
			warnConnectionChanges(plan.Name.ValueString(), state.Conninfo.ValueString(), to, &resp.Diagnostics)
		}
		checkPublisherWalLevel(ctx, publisher, &resp.Diagnostics)
	}
	// An enabled subscription that stays enabled: one enabled by this plan
	// has its slot checked above (warned, refused at apply), and a disabled
	// one streams nothing, so a new slot would only retain WAL.
	if state != nil && known && publisher != nil && !plan.SlotName.IsUnknown() && plan.SlotName.Equal(state.SlotName) &&
		!strings.EqualFold(plan.SlotName.ValueString(), subscriptionSlotNone) && state.Enabled.ValueBool() && plan.Enabled.ValueBool() {
		r.replaceLostSlot(ctx, &plan, cfg, *state, publisher, req.Private, resp)
	}
	if publisher != nil {
		publisher.warnUnreachable(ctx, &resp.Diagnostics)
	}
	if resp.Diagnostics.HasError() {
		return
	}
	resp.Diagnostics.Append(resp.Plan.Set(ctx, &plan)...)
}

// replaceLostSlot plans the replacement of a subscription whose own slot
// the publisher invalidated (max_slot_wal_keep_size, or on PostgreSQL 18
// idle_replication_slot_timeout): its apply worker fails on every start
// ("can no longer access replication slot"), and only a new slot streams
// again, which DROP and CREATE SUBSCRIPTION make. It decides on what Read
// recorded in private (lostSlotKey), never on a look of its own, so that
// Terraform's plan of a saved plan at apply decides the same: a slot lost
// after the refresh, or a publisher Read could not reach, leaves the plan
// an update, which Update refuses on a lost slot. Not the in-use check:
// the subscription's own worker holds its slot.
//
// What the replacement does is the new subscription's create, planned from
// cfg: copy_data and create_slot as the configuration sets them, or their
// defaults, never the state's values that the update plan carries when the
// configuration leaves them out (createonly).
func (r *subscriptionResource) replaceLostSlot(ctx context.Context, plan *subscriptionResourceModel, cfg, state subscriptionResourceModel,
	publisher *publisherProbe, private privateState, resp *resource.ModifyPlanResponse) {
	name, slot := plan.Name.ValueString(), plan.SlotName.ValueString()
	found := recordedLostSlot(ctx, private, slot)
	if found == nil {
		return // a slot missing is the enable check's, and Update's
	}
	lost := fmt.Sprintf("The subscription %s streams from the replication slot %q on the publisher (%s), which is invalidated (%s): "+
		"PostgreSQL never streams from such a slot again, so the subscription's apply worker fails on every start (\"can no longer "+
		"access replication slot\") and nothing is replicated.", pgsql.Ident(name), slot, found.Publisher, found.Reason)
	createSlot, copyData := createTimeBool(cfg.CreateSlot, true), createTimeBool(cfg.CopyData, true)
	switch {
	case publisher.elsewhere != "" || createSlot.IsUnknown() || copyData.IsUnknown() || !createSlot.ValueBool():
		// Not replaced: the slot checked may not be the subscription's, what
		// the new one would do is not known yet, or it would reuse the same
		// slot (create_slot = false).
		publisher.warn(&resp.Diagnostics, path.Root("slot_name"), "Subscription Slot Invalidated",
			lost+fmt.Sprintf(" Drop the slot on the publisher (SELECT pg_drop_replication_slot(%s)) and create it again, then resynchronise "+
				"the tables: the changes made while the slot was invalidated are not replicated.", pgsql.Literal(slot)))
		return
	case !plan.DropSlotOnDestroy.ValueBool():
		// The replacement would drop the subscription, leave the slot
		// (drop_slot_on_destroy = false), and fail to create the new one on
		// it ("already exists"): half-applied. Once the slot is gone, the
		// plan no longer sees it invalidated, so the way out is -replace.
		publisher.warn(&resp.Diagnostics, path.Root("drop_slot_on_destroy"), "Subscription Slot Invalidated",
			lost+fmt.Sprintf(" Only a new subscription, with a new slot, streams again, and drop_slot_on_destroy = false would leave this slot "+
				"on the publisher, where the new subscription's CREATE SUBSCRIPTION (create_slot = true) fails on it (\"already exists\") after "+
				"the old one was dropped. The plan does not replace it. Drop the slot on the publisher (SELECT pg_drop_replication_slot(%s)), "+
				"then replace the subscription (terraform apply -replace=<address of this subscription>), which copies the tables again "+
				"when copy_data = true.", pgsql.Literal(slot)))
		return
	}
	copyText := "copy_data = false: the new subscription does not copy the tables again, so the changes made on the publisher while the " +
		"slot was invalidated are never replicated; resynchronise those tables by hand."
	if copyData.ValueBool() {
		full, err := r.subscribedTablesWithRows(ctx, state.Database.ValueString(), state.Name.ValueString())
		switch {
		case err != nil:
			// Unchecked is not empty: a replacement that copies into rows
			// fails on their keys at every retry, or duplicates them.
			publisher.warn(&resp.Diagnostics, path.Root("copy_data"), "Subscription Slot Invalidated",
				lost+fmt.Sprintf(" Only a new subscription, with a new slot, streams again; it would copy the tables again (copy_data = true), "+
					"and the provider could not check whether they are empty on the subscriber (%s): rows there already make the copy fail on "+
					"a primary or unique key, at every retry, or duplicate them in a table without one. The plan does not replace it. "+
					"Plan again once the subscriber answers, or empty the tables, or set copy_data = false.", statement.MaskedError(ctx, err)))
			return
		case len(full) > 0:
			resp.Diagnostics.AddAttributeError(path.Root("copy_data"), "Subscription Slot Invalidated",
				lost+fmt.Sprintf(" Only a new subscription, with a new slot, streams again; it would copy the tables again (copy_data = true), "+
					"and the tables %s already have rows on the subscriber: the copy would fail on their primary or unique keys at every retry, or "+
					"duplicate their rows. The plan does not replace it. Either empty those tables on the subscriber (the copy then brings them "+
					"back whole), or set copy_data = false (nothing is copied again: the changes made while the slot was invalidated are never "+
					"replicated, resynchronise them by hand), and plan again.", pgsql.IdentList(full)))
			return
		default:
			copyText = "copy_data = true: the new subscription copies the tables again, which are empty on the subscriber."
		}
	}
	if copyData.ValueBool() && resp.Private != nil { // nil only where ModifyPlan is called without the framework
		resp.Diagnostics.Append(markCopyingReplacement(ctx, resp.Private, slot)...)
	}
	plan.ID = types.StringUnknown()
	resp.RequiresReplace = append(resp.RequiresReplace, path.Root("id"))
	publisher.warn(&resp.Diagnostics, path.Root("slot_name"), "Subscription Slot Invalidated",
		lost+fmt.Sprintf(" Only a new slot streams again, so the plan replaces the subscription (id): apply drops the subscription and its slot "+
			"on the publisher, then creates it again with a new slot %q, streaming from then on. %s", slot, copyText))
}

// copyingReplacementKey is the planned private state key by which the plan
// of a lost slot's replacement that copies the tables again (copy_data =
// true) tells the apply's Delete, which Terraform gives the planned private
// state of the replacement, to look at the tables again before it drops
// anything: a saved plan is applied later, and rows that came into them
// since would make the new subscription's copy fail on their keys at every
// retry. Create is given no private state, and by then the old
// subscription is gone.
const copyingReplacementKey = "copying_replacement"

// markCopyingReplacement marks the plan of the replacement of the
// subscription whose slot is slot as one that copies (copyingReplacementKey).
func markCopyingReplacement(ctx context.Context, private privateState, slot string) diag.Diagnostics {
	b, _ := json.Marshal(slot)
	return private.SetKey(ctx, copyingReplacementKey, b)
}

// copyingReplacement tells whether the apply runs the plan of the
// replacement of the subscription whose slot is slot that copies the
// tables again (markCopyingReplacement).
func copyingReplacement(ctx context.Context, private privateState, slot string) bool {
	if private == nil {
		return false
	}
	b, d := private.GetKey(ctx, copyingReplacementKey)
	var marked string
	return !d.HasError() && len(b) > 0 && json.Unmarshal(b, &marked) == nil && marked == slot
}

// createTimeBool is the value a create-time argument (createonly) has in
// the plan of a new object: the configuration's, unknown included, or def.
func createTimeBool(cfg types.Bool, def bool) types.Bool {
	if cfg.IsNull() {
		return types.BoolValue(def)
	}
	return cfg
}

// subscribedTablesWithRows are the tables of the subscription name in
// database that have rows on the subscriber.
func (r *subscriptionResource) subscribedTablesWithRows(ctx context.Context, database, name string) ([]string, error) {
	var diags diag.Diagnostics
	pool := r.server.PoolOrDiag(ctx, database, &diags)
	if pool == nil {
		return nil, fmt.Errorf("no connection to database %q", database)
	}
	// A table partitioned on the subscriber (logical replication routes the
	// publisher's rows into its partitions) has no rows of its own: ONLY
	// would find it empty. Any other table is read without its inheritance
	// children, which the subscription does not write.
	rows, err := pool.Query(ctx, `SELECT r.srrelid::regclass::text, c.relkind = 'p' FROM pg_catalog.pg_subscription_rel r
  JOIN pg_catalog.pg_class c ON c.oid = r.srrelid
  JOIN pg_catalog.pg_subscription s ON s.oid = r.srsubid
 WHERE s.subname = $1 AND s.subdbid = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())
 ORDER BY 1`, name)
	if err != nil {
		return nil, err
	}
	type subscribedTable struct {
		Name        string
		Partitioned bool
	}
	tables, err := pgx.CollectRows(rows, pgx.RowToStructByPos[subscribedTable])
	if err != nil {
		return nil, err
	}
	var full []string
	for _, t := range tables {
		only := "ONLY "
		if t.Partitioned {
			only = ""
		}
		var has bool
		// t.Name is regclass output: quoted by PostgreSQL where it needs to be.
		if err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT FROM `+only+t.Name+`)`).Scan(&has); err != nil {
			return nil, err
		}
		if has {
			full = append(full, t.Name)
		}
	}
	return full, nil
}

// warnConnectionChanges names the parameters of a subscription's connection
// that the plan changes: conninfo is sensitive, so the plan itself shows only
// "(sensitive value)", which leaves a reader to guess (an imported URI that
// means the same as the configuration plans nothing: SameConnection). The
// values of secret keywords are never shown.
func warnConnectionChanges(name, from, to string, diags *diag.Diagnostics) {
	old, errOld := conninfo.Parse(from)
	updated, errNew := conninfo.Parse(to)
	if errOld != nil || errNew != nil {
		return
	}
	changes := conninfo.Changes(old, updated)
	if len(changes) == 0 {
		return
	}
	diags.AddAttributeWarning(path.Root("conninfo"), "Subscription Connection Changes",
		fmt.Sprintf("The plan changes the connection of the subscription %s (ALTER SUBSCRIPTION … CONNECTION): %s. "+
			"If the server's connection is the one you want, write it in conninfo.", pgsql.Ident(name), strings.Join(changes, "; ")))
}

// checkTwoPhaseChange refuses, at plan time, a change of two_phase that
// PostgreSQL would refuse: before 18 it cannot change at all (unrecognized
// subscription parameter), and from 18 only on a disabled subscription
// (55000, cannot set option "two_phase" for enabled subscription). Update
// disables a subscription planned to be disabled before it sets two_phase.
// A server whose version is unknown is left to apply.
func checkTwoPhaseChange(plan, state subscriptionResourceModel, facts *serverFacts, diags *diag.Diagnostics) {
	name := pgsql.Ident(plan.Name.ValueString())
	from, to := state.TwoPhase.ValueBool(), plan.TwoPhase.ValueBool()
	switch {
	case facts == nil:
	case facts.Major() < 18:
		diags.AddAttributeError(path.Root("two_phase"), "Cannot Change two_phase of a Subscription",
			fmt.Sprintf("The subscription %s has two_phase = %t, and PostgreSQL %s cannot change it on an existing subscription "+
				"(PostgreSQL 18 can, on a disabled one). Keep two_phase = %t, or recreate the subscription with "+
				"terraform apply -replace=<address>, which copies its tables again unless copy_data = false.",
				name, from, facts.Version, from))
	case plan.Enabled.IsUnknown() || plan.Enabled.ValueBool():
		diags.AddAttributeError(path.Root("two_phase"), "Disable the Subscription to Change two_phase",
			fmt.Sprintf("The subscription %s would change two_phase from %t to %t while enabled, and PostgreSQL changes two_phase only "+
				"on a disabled subscription. Set enabled = false in the same change (apply disables it first, then sets two_phase) and "+
				"enable it again in a later apply; or recreate the subscription with terraform apply -replace=<address>; or keep two_phase = %t.",
				name, from, to, from))
	}
}

// checkOwner refuses, at plan time, an owner that ALTER SUBSCRIPTION … OWNER
// TO would refuse: a role that does not exist, or (PostgreSQL 15 and older)
// one that is not a superuser. A server that cannot be asked is left to apply.
func (r *subscriptionResource) checkOwner(ctx context.Context, owner string, facts *serverFacts, diags *diag.Diagnostics) {
	if facts == nil {
		return
	}
	exists, super, err := r.ownerRole(ctx, owner)
	switch {
	case err != nil:
		return
	case !exists:
		diags.AddAttributeError(path.Root("owner"), "Subscription Owner Does Not Exist",
			fmt.Sprintf("The role %s does not exist on %s, so it cannot own the subscription. Create the role first "+
				"(it can be managed in the same configuration), or correct owner.", pgsql.Ident(owner), r.server.describe()))
	case !super && facts.Major() < 16:
		diags.AddAttributeError(path.Root("owner"), "Subscription Owner Must Be a Superuser",
			fmt.Sprintf("On PostgreSQL 15 and older the owner of a subscription must be a superuser, and %s is not one on %s (PostgreSQL %s). "+
				"Use a superuser, or upgrade to PostgreSQL 16, where a role with CREATE on the database can own a subscription.",
				pgsql.Ident(owner), r.server.describe(), facts.Version))
	}
}

// ownerRole says whether the role owner (the provider's user when owner is
// empty: the owner CREATE SUBSCRIPTION gives) exists and is a superuser.
func (r *subscriptionResource) ownerRole(ctx context.Context, owner string) (exists, super bool, err error) {
	pool, err := r.server.Pool(ctx, "")
	if err != nil {
		return false, false, err
	}
	err = pool.QueryRow(ctx, `SELECT count(*) > 0, coalesce(bool_or(rolsuper), false) FROM pg_roles WHERE rolname = coalesce(nullif($1, ''), current_user)`,
		owner).Scan(&exists, &super)
	return exists, super, err
}

// warnOwnerWithoutPassword warns when m describes a subscription that
// PostgreSQL 16 and later will not let connect to its publisher: an owner
// that is not a superuser, password_required = true, and no password in the
// connection (hasWriteOnly: password_wo is given). Measured on 16, 17 and 18:
// the apply worker then fails with "password is required" and never
// replicates, and DROP SUBSCRIPTION fails with SQLSTATE 2F003 as long as the
// subscription has a replication slot, enabled or not; a superuser running
// the DROP does not help, the owner is what counts. It says nothing of the
// connection beyond "no password", so no secret can reach it.
func (r *subscriptionResource) warnOwnerWithoutPassword(ctx context.Context, m subscriptionResourceModel, hasWriteOnly bool, diags *diag.Diagnostics) {
	if hasWriteOnly || m.PasswordRequired.IsUnknown() || !m.PasswordRequired.ValueBool() || m.Conninfo.IsUnknown() {
		return
	}
	if p, err := conninfo.Parse(m.Conninfo.ValueString()); err != nil || p["password"] != "" {
		return
	}
	facts, err := r.server.Facts(ctx)
	if err != nil || facts.Major() < 16 {
		return // 15 and older refuse such an owner (checkOwner)
	}
	exists, super, err := r.ownerRole(ctx, m.Owner.ValueString())
	if err != nil || !exists || super {
		return
	}
	owner := "the provider's user"
	if !m.Owner.IsUnknown() && m.Owner.ValueString() != "" {
		owner = pgsql.Ident(m.Owner.ValueString())
	}
	diags.AddWarning("Subscription Owner Has No Password for the Publisher",
		fmt.Sprintf("The subscription %s is owned by %s, which is not a superuser, with password_required = true and no password in "+
			"conninfo or password_wo. PostgreSQL %d then refuses its connections to the publisher (\"password is required\"): it does not "+
			"replicate, and DROP SUBSCRIPTION fails while it has a replication slot, so terraform destroy would fail too. Give it a "+
			"password the publisher checks (password_wo and password_wo_version), set password_required = false (a superuser must apply "+
			"that), or make a superuser its owner.", pgsql.Ident(m.Name.ValueString()), owner, facts.Major()))
}

// connect returns the pool of the subscription's database and the server's
// major version, or reports why not.
func (r *subscriptionResource) connect(ctx context.Context, database string, diags *diag.Diagnostics) (*pgxpool.Pool, int) {
	pool := r.server.PoolOrDiag(ctx, database, diags)
	if pool == nil {
		return nil, 0
	}
	facts, ok := r.server.FactsOrDiag(ctx, diags)
	if !ok {
		return nil, 0
	}
	return pool, facts.Major()
}

func (r *subscriptionResource) readFailure(ctx context.Context, name, database string, err error) string {
	detail := r.server.readFailure(ctx, fmt.Sprintf("the subscription %s from pg_subscription in database %q", pgsql.Ident(name), database),
		err, subconninfoPrivilege)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42501" {
		detail += "\n\n" + subconninfoGrantWhere(database)
	}
	return detail
}

// subconninfoGrantWhere says where GRANT SELECT (subconninfo) must run: the
// grant run in another database (psql's default, postgres) leaves this
// one's refusing.
func subconninfoGrantWhere(database string) string {
	return fmt.Sprintf("Run the GRANT connected to database %q (psql -d %s): pg_subscription is one catalog for every database, "+
		"but privileges on it are kept in each database's own pg_class.", database, shellWord(database))
}

// shellWord quotes s for a POSIX shell when it needs quoting.
func shellWord(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// refuseExisting refuses, at plan time, a subscription that this plan
// creates (or renames) under a name the database already has
// (refuseExistingName); subscription names are per database.
func (r *subscriptionResource) refuseExisting(ctx context.Context, database, name string, diags *diag.Diagnostics) {
	refuseExistingName(ctx, r.server, "subscription", database, name, `SELECT EXISTS (SELECT FROM pg_catalog.pg_subscription
  WHERE subname = $1 AND subdbid = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database()))`, diags)
}

// checkCanReadConnection refuses, at plan time, a subscription that the
// provider's role could create but not read back: PostgreSQL shows
// subconninfo only to superusers and to roles granted it in that database,
// and apply reads the subscription after CREATE SUBSCRIPTION, so it would
// fail there (dropping the subscription and its new slot again). Nothing is
// said when the server cannot be asked (the database does not exist yet, the
// server is down): apply reports that.
func (r *subscriptionResource) checkCanReadConnection(ctx context.Context, database string, diags *diag.Diagnostics) {
	pool, err := r.server.Pool(ctx, database)
	if err != nil {
		return
	}
	// Only a role that may create the subscription is refused here: one
	// that may not is refused by CREATE SUBSCRIPTION itself, before
	// anything is made, with every statement it lacks.
	var may, canCreate bool
	var role string
	const sql = `SELECT has_column_privilege('pg_catalog.pg_subscription', 'subconninfo', 'SELECT'), current_user,
       has_database_privilege(current_database(), 'CREATE')
         AND ((SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user)
           OR EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'pg_create_subscription' AND pg_has_role(current_user, oid, 'USAGE')))`
	if err := pool.QueryRow(ctx, sql).Scan(&may, &role, &canCreate); err != nil || may || !canCreate {
		return
	}
	diags.AddAttributeError(path.Root("database"), "Cannot Read Subscriptions in This Database",
		fmt.Sprintf("The provider's role %s may not read pg_subscription's subconninfo in database %q on %s, which apply reads back after "+
			"CREATE SUBSCRIPTION: the apply would fail and drop the subscription again. A superuser grants it with:\n  %s;\n\n%s Then plan again.",
			pgsql.Ident(role), database, r.server.describe(), fmt.Sprintf(subconninfoPrivilege.grant, pgsql.Ident(role)), subconninfoGrantWhere(database)))
}

// fromCatalog is m with every attribute PostgreSQL keeps replaced by what the
// catalog says. create_slot, copy_data and drop_slot_on_destroy are not in the
// catalog, nor is publisher_timeout: they stay as in m, or take their
// defaults after an import.
func (m subscriptionResourceModel) fromCatalog(c *subscriptionCatalog) subscriptionResourceModel {
	out := m
	out.ID = types.StringValue(importid.Format(m.Database.ValueString(), m.Name.ValueString()))
	catalog := c.ConnInfo
	if !m.PasswordWOVersion.IsNull() {
		// Write-only: the password stays on the server, never in the state.
		catalog = withPassword(catalog, "")
	}
	// The framework keeps the text the user wrote when it means the same
	// connection (normalized.Conninfo).
	out.Conninfo = normalized.NewConninfo(catalog)
	pubs := make([]attr.Value, len(c.Publications))
	for i, p := range c.Publications {
		pubs[i] = types.StringValue(p)
	}
	out.Publications = types.SetValueMust(types.StringType, pubs)
	out.Enabled = types.BoolValue(c.Enabled)
	if c.SlotName != nil {
		out.SlotName = types.StringValue(*c.SlotName)
	} else {
		out.SlotName = types.StringValue(subscriptionSlotNone)
	}
	out.SynchronousCommit = types.StringValue(c.SyncCommit)
	out.Binary = types.BoolValue(c.Binary)
	out.Streaming = types.StringValue(c.Streaming)
	out.DisableOnError = types.BoolValue(c.DisableOnError)
	out.Origin = types.StringValue(c.Origin)
	out.TwoPhase = types.BoolValue(c.TwoPhase)
	out.PasswordRequired = types.BoolValue(c.PasswordRequired)
	out.RunAsOwner = types.BoolValue(c.RunAsOwner)
	out.Failover = types.BoolValue(c.Failover)
	out.Owner = types.StringValue(c.Owner)
	for _, b := range []*types.Bool{&out.CreateSlot, &out.CopyData, &out.DropSlotOnDestroy} {
		if b.IsNull() || b.IsUnknown() {
			*b = types.BoolValue(true)
		}
	}
	if out.PublisherTimeout.IsNull() || out.PublisherTimeout.IsUnknown() {
		out.PublisherTimeout = normalized.NewDuration(defaultPublisherTimeout)
	}
	return out
}

// subscriptionCatalog is one row of pg_subscription.
type subscriptionCatalog struct {
	Owner          string
	Enabled        bool
	ConnInfo       string
	SlotName       *string
	SyncCommit     string
	Publications   []string
	Binary         bool
	Streaming      string
	DisableOnError bool
	Origin         string
	// TwoPhase is true once asked for (subtwophasestate pending or enabled).
	TwoPhase, PasswordRequired, RunAsOwner, Failover bool
}

// declared reports whether c is the subscription a create declared: the
// same connection (PostgreSQL keeps the text it was given), publications and
// slot. A subscription found after a create that got no answer is recorded
// only then.
func (c *subscriptionCatalog) declared(connection string, publications []string, slot string) bool {
	got := slices.Sorted(slices.Values(c.Publications))
	return c.ConnInfo == connection && slices.Equal(got, publications) && c.slot() == slotNameOption(slot)
}

// publisher names c's publisher, without its password.
func (c *subscriptionCatalog) publisher() string {
	params, _ := conninfo.Parse(c.ConnInfo)
	return params.Redacted()
}

// slot is c's slot as slot_name takes it: quoted, or NONE.
func (c *subscriptionCatalog) slot() string {
	if c.SlotName == nil {
		return "NONE"
	}
	return pgsql.Literal(*c.SlotName)
}

// readSubscription reads the subscription name of the pool's database, or
// nil when there is none. Columns that the server's version lacks read as
// that version's behaviour.
func readSubscription(ctx context.Context, pool *pgxpool.Pool, major int, name string) (*subscriptionCatalog, error) {
	binary, stream, disableOnErr, origin := "false", "'f'", "false", "'any'"
	twoPhase, passwordRequired, runAsOwner, failover := "false", "true", "false", "false"
	if major >= 14 {
		// substream is boolean on 14 and 15, "char" (f, t, p) from 16.
		binary, stream = "s.subbinary", "s.substream::text"
	}
	if major >= 15 {
		disableOnErr, twoPhase = "s.subdisableonerr", "s.subtwophasestate <> 'd'"
	}
	if major >= 16 {
		origin, passwordRequired, runAsOwner = "s.suborigin", "s.subpasswordrequired", "s.subrunasowner"
	}
	if major >= 17 {
		failover = "s.subfailover"
	}
	q := `SELECT pg_get_userbyid(s.subowner), s.subenabled, s.subconninfo, s.subslotname::text, s.subsynccommit,
       s.subpublications, ` + binary + `, ` + stream + `, ` + disableOnErr + `, ` + origin + `,
       ` + twoPhase + `, ` + passwordRequired + `, ` + runAsOwner + `, ` + failover + `
  FROM pg_subscription s
 WHERE s.subdbid = (SELECT oid FROM pg_database WHERE datname = current_database()) AND s.subname = $1`
	var c subscriptionCatalog
	var streamText string
	err := pool.QueryRow(ctx, q, name).Scan(&c.Owner, &c.Enabled, &c.ConnInfo, &c.SlotName, &c.SyncCommit,
		&c.Publications, &c.Binary, &streamText, &c.DisableOnError, &c.Origin,
		&c.TwoPhase, &c.PasswordRequired, &c.RunAsOwner, &c.Failover)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	switch streamText {
	case "t", "true":
		c.Streaming = subscriptionStreamingOn
	case "p":
		c.Streaming = subscriptionStreamingParallel
	default:
		c.Streaming = subscriptionStreamingOff
	}
	return &c, nil
}

// defaultSubscriptionStreaming is CREATE SUBSCRIPTION's default streaming mode.
func defaultSubscriptionStreaming(major int) string {
	if major >= 18 {
		return subscriptionStreamingParallel
	}
	return subscriptionStreamingOff
}

// subscriptionOptions renders the SET-able options of plan that differ from
// state (every one when state is nil, for CREATE), skipping those the
// server's version does not have.
func subscriptionOptions(plan subscriptionResourceModel, state *subscriptionResourceModel, major int) []string {
	var opts []string
	changed := func(p, s attr.Value) bool {
		return !p.IsUnknown() && !p.IsNull() && (state == nil || !p.Equal(s))
	}
	var st subscriptionResourceModel
	if state != nil {
		st = *state
		if changed(plan.SlotName, st.SlotName) {
			opts = append(opts, "slot_name = "+slotNameOption(plan.SlotName.ValueString()))
		}
	}
	if changed(plan.SynchronousCommit, st.SynchronousCommit) {
		opts = append(opts, "synchronous_commit = "+pgsql.Literal(plan.SynchronousCommit.ValueString()))
	}
	if major >= 14 && changed(plan.Binary, st.Binary) {
		opts = append(opts, "binary = "+strconv.FormatBool(plan.Binary.ValueBool()))
	}
	if major >= 14 && changed(plan.Streaming, st.Streaming) {
		opts = append(opts, "streaming = "+pgsql.Literal(plan.Streaming.ValueString()))
	}
	if major >= 15 && changed(plan.DisableOnError, st.DisableOnError) {
		opts = append(opts, "disable_on_error = "+strconv.FormatBool(plan.DisableOnError.ValueBool()))
	}
	if major >= 16 && changed(plan.Origin, st.Origin) {
		opts = append(opts, "origin = "+pgsql.Literal(plan.Origin.ValueString()))
	}
	if major >= 16 && changed(plan.PasswordRequired, st.PasswordRequired) {
		opts = append(opts, "password_required = "+strconv.FormatBool(plan.PasswordRequired.ValueBool()))
	}
	if major >= 16 && changed(plan.RunAsOwner, st.RunAsOwner) {
		opts = append(opts, "run_as_owner = "+strconv.FormatBool(plan.RunAsOwner.ValueBool()))
	}
	if state == nil {
		create, _ := disabledOnlyOptions(plan, nil, major)
		opts = append(opts, create...)
	}
	return opts
}

// disabledOnlyOptions renders the options of plan that differ from state
// (every one when state is nil, for CREATE) and that PostgreSQL changes only
// on a disabled subscription: failover (17) and two_phase (settable at
// CREATE from 15, changed from 18; ModifyPlan refuses a change before). attr
// is the one attribute to blame when the statement fails, or the empty path
// when both change.
func disabledOnlyOptions(plan subscriptionResourceModel, state *subscriptionResourceModel, major int) ([]string, path.Path) {
	var opts []string
	var attrs []path.Path
	var st subscriptionResourceModel
	if state != nil {
		st = *state
	}
	for _, o := range []struct {
		name        string
		plan, state types.Bool
		major       int
	}{{"two_phase", plan.TwoPhase, st.TwoPhase, 15}, {"failover", plan.Failover, st.Failover, 17}} {
		if major >= o.major && !o.plan.IsUnknown() && !o.plan.IsNull() && (state == nil || !o.plan.Equal(o.state)) {
			opts = append(opts, o.name+" = "+strconv.FormatBool(o.plan.ValueBool()))
			attrs = append(attrs, path.Root(o.name))
		}
	}
	if len(attrs) == 1 {
		return opts, attrs[0]
	}
	return opts, path.Empty()
}

// subscriptionWorkersStopTimeout bounds the wait for a disabled
// subscription's workers to exit.
const subscriptionWorkersStopTimeout = 30 * time.Second

// waitWorkersStopped waits until no worker of the subscription name (in the
// pool's database) runs. A subscription's workers exit on their own time
// after DISABLE, and PostgreSQL 18 refuses two_phase while one still runs
// (55000, "cannot alter "two_phase" when logical replication worker is still
// running … Try again after some time"), measured right after a DISABLE. Past
// the timeout the statement runs anyway and PostgreSQL's error says why.
func waitWorkersStopped(ctx context.Context, pool *pgxpool.Pool, name string) {
	_, _ = pollUntil(ctx, subscriptionWorkersStopTimeout, func(ctx context.Context) (bool, error) {
		var running bool
		err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_stat_subscription w JOIN pg_subscription s ON s.oid = w.subid
  JOIN pg_database d ON d.oid = s.subdbid WHERE s.subname = $1 AND d.datname = current_database() AND w.pid IS NOT NULL)`, name).Scan(&running)
		return !running, err
	})
}

// slotNameOption renders slot_name's value: NONE, or the name as a literal.
func slotNameOption(slot string) string {
	if slot == subscriptionSlotNone {
		return "NONE"
	}
	return pgsql.Literal(slot)
}

// dropSubscription drops the subscription name. With dropSlot it is a plain
// DROP SUBSCRIPTION, which drops its replication slot on the publisher too.
// Without, it runs PostgreSQL's documented sequence for a slot that must stay
// (or a publisher that is gone): detach the slot first, so DROP does not
// connect. A subscription that is already gone is no error.
func dropSubscription(ctx context.Context, pool *pgxpool.Pool, bound statementBound, name string, dropSlot bool) error {
	steps := []string{"DROP SUBSCRIPTION IF EXISTS " + pgsql.Ident(name)}
	if !dropSlot {
		steps = append([]string{alterSubscriptionSQL(name, "DISABLE"), alterSubscriptionSQL(name, "SET (slot_name = NONE)")}, steps...)
	}
	for _, sql := range steps {
		err := execSubscription(ctx, pool, bound, sql)
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42704" { // undefined_object: already gone
			return nil
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func createSubscriptionSQL(name, connection string, publications, options []string) string {
	return "CREATE SUBSCRIPTION " + pgsql.Ident(name) + " CONNECTION " + pgsql.Literal(connection) +
		" PUBLICATION " + pgsql.IdentList(publications) + " WITH (" + strings.Join(options, ", ") + ")"
}

func alterSubscriptionSQL(name, clause string) string {
	return "ALTER SUBSCRIPTION " + pgsql.Ident(name) + " " + clause
}

func alterSubscriptionOwnerSQL(name, owner string) string {
	return alterSubscriptionSQL(name, "OWNER TO "+pgsql.Ident(owner))
}

// defaultPublisherTimeout is publisher_timeout's default: far above what a
// statement that reaches a live publisher takes, far below the 5 minutes of
// the default statement_timeout that bounded it before.
const defaultPublisherTimeout = "60s"

// reenableTimeout bounds reenableText's ENABLE, which runs on after the
// apply's context is cancelled.
const reenableTimeout = 10 * time.Second

// cancelProbeTimeout bounds what execSubscription does when it gives up on a
// statement: reading what the statement waits for, and the cancel request.
const cancelProbeTimeout = 5 * time.Second

// execSubscription runs one subscription statement with the simple
// protocol, outside any transaction block: CREATE SUBSCRIPTION that creates
// a slot, DROP SUBSCRIPTION with a slot and SET PUBLICATION with refresh
// refuse to run inside one.
//
// Several of them make the subscriber connect to the publisher (CREATE, DROP
// with a slot, SET PUBLICATION with refresh, REFRESH PUBLICATION, a failover
// or two_phase change), and the subscriber waits for a publisher that accepts
// connections but never answers (a stopped host) until statement_timeout.
// So each runs for at most bound: past it the provider reads what the
// statement waits for (pg_stat_activity.wait_event) and cancels it with a
// cancel request, which the server handles as it would statement_timeout:
// the statement is rolled back. The error is then a *publisherTimeoutError.
// A connection whose statement was cancelled is closed, not pooled: a
// cancel request that arrived after its statement ended would cancel that
// connection's next one.
func execSubscription(ctx context.Context, pool *pgxpool.Pool, bound statementBound, sql string) error {
	_, err := execSubscriptionTx(ctx, pool, bound, []string{sql})
	return err
}

// execSubscriptionTx is execSubscription for statements that PostgreSQL
// runs inside a transaction block: several run in order in one transaction
// on one connection, so that one failing undoes those before it. failed is
// the index of the statement that failed, len(sqls) for the COMMIT, -1 for
// the BEGIN, whose error is then a *txBeginError: taken for the first
// statement's, it was reported as that statement's failure, rolled back
// with the others, when none of them ran (TestRoomsSubscriptionTxBeginFails).
// bound covers them all.
func execSubscriptionTx(ctx context.Context, pool *pgxpool.Pool, bound statementBound, sqls []string) (failed int, err error) {
	c, err := pool.Acquire(ctx)
	if err != nil {
		return 0, err
	}
	pid := c.Conn().PgConn().PID()
	var waitEvent string // written before fired is closed
	fired := make(chan struct{})
	timer := time.AfterFunc(bound.d, func() {
		defer close(fired)
		probeCtx, cancelProbe := context.WithTimeout(context.WithoutCancel(ctx), cancelProbeTimeout)
		defer cancelProbe()
		_ = pool.QueryRow(probeCtx, `SELECT coalesce(wait_event, '') FROM pg_catalog.pg_stat_activity WHERE pid = $1`, pid).Scan(&waitEvent)
		cancelCtx, cancelCancel := context.WithTimeout(context.WithoutCancel(ctx), cancelProbeTimeout)
		defer cancelCancel()
		_ = c.Conn().PgConn().CancelRequest(cancelCtx)
	})
	if len(sqls) == 1 {
		_, err = c.Exec(ctx, sqls[0])
	} else {
		if _, err = c.Exec(ctx, "BEGIN"); err != nil {
			failed, err = -1, &txBeginError{err: err}
		} else {
			for failed = 0; err == nil && failed < len(sqls); failed++ {
				if _, err = c.Exec(ctx, sqls[failed]); err != nil {
					break
				}
			}
			if err == nil {
				_, err = c.Exec(ctx, "COMMIT")
			}
		}
	}
	if !timer.Stop() {
		<-fired
		_ = c.Conn().Close(ctx)
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "57014" { // query_canceled
			err = &publisherTimeoutError{bound: bound, waitEvent: waitEvent, err: err}
		}
	} else if err != nil && c.Conn().PgConn().TxStatus() != 'I' {
		// A failed statement aborted the transaction: end it, so the
		// connection goes back to the pool (one left in a transaction is
		// closed by Release).
		rollbackCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cancelProbeTimeout)
		_, _ = c.Exec(rollbackCtx, "ROLLBACK")
		cancel()
	}
	c.Release()
	var begin *txBeginError
	if errors.As(err, &begin) {
		return failed, err // nothing ran: no statement's outcome to find out
	}
	return failed, unanswered(pid, err)
}

// txBeginError is execSubscriptionTx's error when its transaction could not
// begin: the connection was lost (a session the server ended while it was
// idle in the pool) or the server refused the BEGIN. None of the statements
// ran.
type txBeginError struct{ err error }

func (e *txBeginError) Error() string {
	return "the transaction could not begin, so none of its statements ran: " + e.err.Error()
}

func (e *txBeginError) Unwrap() error { return e.err }

// statementBound is how long execSubscription lets a statement run, and
// what set it, for messages.
type statementBound struct {
	d    time.Duration
	what string // "publisher_timeout (60s)"
}

// publisherBound is the bound of m's statements: its publisher_timeout, or
// a second less than the provider's statement_timeout when that is shorter,
// so that the provider, not the server, ends the statement and says why.
func (r *subscriptionResource) publisherBound(m subscriptionResourceModel) statementBound {
	setting := m.PublisherTimeout.ValueString()
	if m.PublisherTimeout.IsNull() || m.PublisherTimeout.IsUnknown() {
		setting = defaultPublisherTimeout // a state written before the attribute existed
	}
	d, err := time.ParseDuration(setting)
	if err != nil || d <= 0 { // the validator refuses both
		d, _ = time.ParseDuration(defaultPublisherTimeout)
	}
	b := statementBound{d: d, what: "publisher_timeout (" + setting + ")"}
	st := r.server.settings.statementTimeout()
	if ms, err := guc.Milliseconds(st); err == nil && ms > 0 {
		if limit := max(time.Duration(ms)*time.Millisecond-time.Second, time.Second); limit < d {
			b = statementBound{d: limit, what: "the provider's statement_timeout (" + st + ", less a second)"}
		}
	}
	return b
}

// publisherTimeoutError is a subscription statement that execSubscription
// cancelled after its bound.
type publisherTimeoutError struct {
	bound     statementBound
	waitEvent string // what the statement waited for then ("" if unknown)
	err       error  // the server's "canceling statement due to user request"
}

func (e *publisherTimeoutError) Error() string {
	return fmt.Sprintf("cancelled after %s (wait event %q): %v", e.bound.what, e.waitEvent, e.err)
}

func (e *publisherTimeoutError) Unwrap() error { return e.err }

// cause says what the subscriber was waiting for when the statement was
// cancelled, the publisher named by its address.
func (e *publisherTimeoutError) cause(publisher string) string {
	switch strings.ToLower(e.waitEvent) {
	case "libpqwalreceiverconnect":
		return fmt.Sprintf("the subscriber was still connecting to the publisher at %s, which did not answer: a server that accepts "+
			"connections but does not respond (stopped, or overloaded), or a network path that drops packets", publisher)
	case "libpqwalreceiverreceive":
		return fmt.Sprintf("the subscriber was connected to the publisher at %s and still waiting for its answer: the publisher stopped "+
			"answering, or it is slow (creating a replication slot waits for the publisher's running write transactions to end)", publisher)
	case "":
		return fmt.Sprintf("the subscriber was still running it (it connects to the publisher at %s for this statement)", publisher)
	}
	return fmt.Sprintf("the subscriber was still running it, waiting for %s (it connects to the publisher at %s for this statement)", e.waitEvent, publisher)
}

// timeoutDetail is the detail of a statement ("DROP SUBSCRIPTION …") that
// execSubscription cancelled: what ran where, what bounded it, the cause,
// what the rollback left (outcome) and the fix. It names the publisher by
// host and port only.
func (r *subscriptionResource) timeoutDetail(statement, database string, params conninfo.Params, e *publisherTimeoutError, outcome, fix string) string {
	return fmt.Sprintf("%s in database %q on %s did not finish within %s: %s. The provider cancelled it and PostgreSQL rolled it back: %s\n\n%s "+
		"If the publisher is only slow, raise publisher_timeout. Adding connect_timeout (e.g. connect_timeout=10) to conninfo also makes "+
		"the subscriber's own connections to the publisher give up on a publisher that does not answer.",
		statement, database, r.server.describe(), e.bound.what, e.cause(publisherAddress(params)), outcome, fix)
}

// publisherAddress names the publisher of a connection by host and port,
// never anything else of the connection string.
func publisherAddress(p conninfo.Params) string {
	host := p["host"]
	if host == "" {
		host = p["hostaddr"]
	}
	if host == "" {
		host = "(libpq's default host)"
	}
	port := p["port"]
	if port == "" {
		port = "5432"
	}
	return host + ":" + port
}

// passwordLeavesState is the plan's warning for a resource whose write-only
// password is the one the server has and the state holds: put there by an
// import's Read, which has no configuration to say it is write-only, or by
// attr before the password became write-only. The version's first update
// writes nothing to the server and takes the password out of the state
// (attr, a sensitive change in the plan).
func passwordLeavesState(wo, object, attr string) diag.Diagnostic {
	return diag.NewAttributeWarningDiagnostic(path.Root(wo), "Password Leaves the State",
		fmt.Sprintf("The state of %s holds the password the server has (read at import, or set in %s before). %s is the same password: "+
			"this apply changes nothing on the server and removes the password from the state (%s, shown as a sensitive change).",
			object, attr, wo, attr))
}

// statePassword reports whether connection has a password.
func statePassword(connection string) bool {
	p, err := conninfo.Parse(connection)
	return err == nil && p["password"] != ""
}

// withPassword is connection with its password set to password, or removed
// when password is empty; connection is returned as is when it does not parse
// (ValidateConfig refuses that before any apply).
func withPassword(connection, password string) string {
	p, err := conninfo.Parse(connection)
	if err != nil {
		return connection
	}
	if password == "" {
		delete(p, "password")
	} else {
		p["password"] = password
	}
	return p.String()
}

// publisherProbe is the checks of one plan, one apply or one refresh of a
// subscription of what its publisher has (wal_level, publications, slot),
// through the process's pool of that publisher (publisherPools): opened
// by the first check that needs it, so that a publisher that does not
// answer (stopped, or behind a path that drops packets) costs one
// publisherProbeTimeout, not one per check, and a refresh of many
// subscriptions to one publisher opens a session or two, not one each.
// A probe that could not reach the publisher does not try again.
type publisherProbe struct {
	connection string
	// elsewhere: the server the probe reaches may not be the one the
	// subscriber reaches (publisherMayDiffer), so what it finds warns and
	// never refuses.
	elsewhere string
	by        *server // the provider instance, whose probes share a failure (publisherPoolSet.reach)
	conn      publisherQuerier
	params    conninfo.Params
	err       error
	tried     bool
}

// publisherQuerier is what the checks ask the publisher through: its pool,
// from which each check takes a connection for its one query, bounded by
// publisherProbeTimeout.
type publisherQuerier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func (r *subscriptionResource) newPublisherProbe(connection string) *publisherProbe {
	return &publisherProbe{connection: connection, elsewhere: publisherMayDiffer(r.server, connection), by: r.server}
}

// publisherMayDiffer says why the publisher that connection names may not
// be the server the subscriber reaches, or "" when it is the same: a
// loopback address or a Unix socket directory in connection means the
// machine that connects, and the probe connects from Terraform's machine,
// while the provider reaches the subscriber at an address that is not
// local, so the subscriber runs on another machine.
func publisherMayDiffer(subscriber *server, connection string) string {
	p, err := conninfo.Parse(connection)
	if err != nil {
		return ""
	}
	local := ""
	for _, h := range slices.Concat(strings.Split(p["host"], ","), strings.Split(p["hostaddr"], ",")) {
		if h = strings.TrimSpace(h); localHost(h) {
			local = h
			break
		}
	}
	if local == "" {
		return ""
	}
	cfg, err := pgconn.ParseConfig(subscriber.settings.conninfo(""))
	if err != nil {
		return ""
	}
	hosts := []string{cfg.Host}
	for _, f := range cfg.Fallbacks {
		hosts = append(hosts, f.Host)
	}
	if !slices.ContainsFunc(hosts, func(h string) bool { return !localHost(h) }) {
		return "" // Terraform runs on the subscriber's machine
	}
	return fmt.Sprintf("conninfo names the publisher at %s, which is the subscriber's own machine for the subscriber but Terraform's machine "+
		"for this check, and the provider reaches the subscriber at %s, so the server checked may not be the one the subscriber will "+
		"reach: this is a warning, not a refusal. Check the publisher from the subscriber's machine", local, subscriber.describe())
}

// localHost reports whether host means the machine that connects: a Unix
// socket directory (an absolute path, or @ for Linux's abstract namespace),
// localhost or a loopback address.
func localHost(host string) bool {
	if strings.HasPrefix(host, "/") || strings.HasPrefix(host, "@") {
		return true
	}
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// refuse reports what the probe found, problem on attr: an error, so that
// the caller refuses, or a warning when the probe may have checked another
// server than the subscriber's publisher (elsewhere), and then false: the
// caller goes on.
func (p *publisherProbe) refuse(diags *diag.Diagnostics, attr path.Path, summary, detail string) bool {
	if p.elsewhere != "" {
		diags.AddAttributeWarning(attr, summary, detail+"\n\n"+p.elsewhere+".")
		return false
	}
	diags.AddAttributeError(attr, summary, detail)
	return true
}

// warn adds a plan's warning about what the probe found, with the reason
// the probe may have checked another server when it may have.
func (p *publisherProbe) warn(diags *diag.Diagnostics, attr path.Path, summary, detail string) {
	if p.elsewhere != "" {
		detail += "\n\n" + p.elsewhere + "."
	}
	diags.AddAttributeWarning(attr, summary, detail)
}

// open reaches the publisher at the first call (publisherPools) and
// returns the same pool, or the same error, at every later one. Its errors
// carry no secret of the connection.
func (p *publisherProbe) open(ctx context.Context) (publisherQuerier, conninfo.Params, error) {
	if !p.tried {
		p.tried = true
		var pool *publisherPool
		if pool, p.params, p.err = publisherPools.reach(ctx, p.by, p.connection); p.err == nil {
			p.conn = pool
		}
	}
	return p.conn, p.params, p.err
}

// warnUnreachable warns, once, that a plan's checks of the publisher were
// not made because it could not be reached from here, naming the publisher
// by host and port only and the cause (which carries no secret of the
// connection). Not an error: the subscriber may reach what Terraform cannot.
func (p *publisherProbe) warnUnreachable(ctx context.Context, diags *diag.Diagnostics) {
	if !p.tried || p.err == nil {
		return
	}
	params, _ := conninfo.Parse(p.connection)
	diags.AddAttributeWarning(path.Root("conninfo"), "Publisher Not Checked",
		fmt.Sprintf("The plan could not connect to the publisher at %s within %s to check its wal_level, publications and replication slot: %v. "+
			"Nothing of it was checked. If the subscriber cannot reach it either, apply fails when CREATE or ALTER SUBSCRIPTION connects "+
			"(publisher_timeout bounds the wait); make sure the publisher is up and answers, or add connect_timeout to conninfo.",
			publisherAddress(params), publisherProbeTimeout, statement.MaskedError(statement.WithSecrets(ctx, params.Secrets()...), p.err)))
}

// missingPublications are the publications of names that the publisher
// connection names does not have, and its major version. Before PostgreSQL
// 18, a subscription to a publication the publisher lacks stops
// replicating altogether: the WAL sender fails on the first change
// ("publication … does not exist") and again at each retry; CREATE and
// ALTER SUBSCRIPTION only warn. PostgreSQL 18 skips it.
func missingPublications(ctx context.Context, publisher *publisherProbe, names []string) ([]string, int, error) {
	conn, _, err := publisher.open(ctx)
	if err != nil {
		return nil, 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, publisherProbeTimeout)
	defer cancel()
	var (
		missing []string
		version int
	)
	err = conn.QueryRow(ctx, `SELECT coalesce(array_agg(n ORDER BY n), '{}'), current_setting('server_version_num')::int
  FROM unnest($1::text[]) n WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_publication WHERE pubname = n)`, names).Scan(&missing, &version)
	if err != nil {
		return nil, 0, err
	}
	return missing, version / 10000, nil
}

// missingPublicationsText says what a subscription to missing would do on
// a publisher of major, and what to do.
func missingPublicationsText(name, where string, missing []string, major int) string {
	return fmt.Sprintf("The publisher (%s) has no publication %s, which the subscription %s would stream. Before PostgreSQL 18 a subscription "+
		"to a publication the publisher lacks stops replicating altogether: the publisher's WAL sender fails on its first change "+
		"(\"publication … does not exist\") and again at every retry. Create the publication on the "+
		"publisher first (a pgreplication_publication that this subscription references, e.g. publications = [pgreplication_publication.<name>.name], "+
		"so that Terraform makes it first), or correct the name.", where, pgsql.IdentList(missing), pgsql.Ident(name))
}

// publicationsThere is the apply-time check of missingPublications: false,
// with an error that ends with outcome, when a publisher older than
// PostgreSQL 18 lacks a publication of plan, which would stop the
// subscription. A publisher that cannot be asked from here is left to
// PostgreSQL, as at plan.
func (r *subscriptionResource) publicationsThere(ctx context.Context, plan subscriptionResourceModel, publisher *publisherProbe, outcome string, diags *diag.Diagnostics) bool {
	var names []string
	if plan.Publications.ElementsAs(ctx, &names, false).HasError() {
		return true
	}
	missing, major, err := missingPublications(ctx, publisher, names)
	if err != nil || len(missing) == 0 || major >= 18 {
		return true
	}
	// Looked at again for up to syncRiskGrace (as a slot's drop that would
	// block commits): a publication named by literal has no dependency on
	// it, so the same apply may be creating it in parallel, and the same
	// apply was refused or not by Terraform's choice of order. Only a look
	// that finds them all ends it: "cannot ask, leave it to PostgreSQL"
	// holds for a first look that could not ask, and a look that fails
	// after one that found a publication missing keeps that finding.
	type found struct {
		missing []string
		major   int
	}
	last, waited := lookAgain(ctx, found{missing, major}, func(ctx context.Context) (found, bool) {
		again, againMajor, err := missingPublications(ctx, publisher, names)
		return found{again, againMajor}, err == nil
	}, func(f found) bool { return len(f.missing) == 0 || f.major >= 18 })
	if missing, major = last.missing, last.major; len(missing) == 0 || major >= 18 {
		return true
	}
	p, _ := conninfo.Parse(publisher.connection)
	return !publisher.refuse(diags, path.Root("publications"), "Publication Not on the Publisher",
		missingPublicationsText(plan.Name.ValueString(), publisherAddress(p), missing, major)+" "+outcome+
			fmt.Sprintf("\n\n(Checked again for %s, in case another resource of this run was creating it.) If this run also created or "+
				"renamed that publication (a pgreplication_publication named here by literal, which nothing orders first), running the same "+
				"command again works; referencing its name attribute, as above, orders them for good.", waited.Round(time.Second)))
}

// publisherSlotProblem looks the replication slot slot up on the publisher
// that connection reaches, with the connection's own credentials (as
// checkPublisherWalLevel), and says why a subscription could not stream from
// it: ALTER SUBSCRIPTION … SET (slot_name = …) neither creates nor checks the
// slot, and the apply worker then fails on every start ("replication slot …
// does not exist"), the subscription cut with nothing said. "" when the slot
// can serve it; an error when the publisher could not be asked.
//
// A slot in use is looked at again for up to wait before it is a problem:
// a consumer that is letting it go (a subscription disabled, dropped or
// moved to another slot in the same apply, whose WAL sender exits a moment
// after) frees it within seconds.
func publisherSlotProblem(ctx context.Context, publisher *publisherProbe, slot string, wait time.Duration) (string, error) {
	conn, p, err := publisher.open(ctx)
	if err != nil {
		return "", err
	}
	s, err := lookPublisherSlot(ctx, conn, slot)
	if err == nil && s.pid != nil && wait > 0 {
		_, _ = pollUntil(ctx, wait, func(ctx context.Context) (bool, error) {
			s, err = lookPublisherSlot(ctx, conn, slot)
			return err != nil || s.pid == nil, nil
		})
	}
	where, dbname := publisherAddress(p), s.asked
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return fmt.Sprintf("the publisher (%s) has no replication slot %q", where, slot), nil
	case err != nil:
		return "", statement.Masked(ctx, err)
	case s.typ != "logical" || s.plugin == nil || *s.plugin != "pgoutput":
		return fmt.Sprintf("the replication slot %q on the publisher (%s) is a %s slot, not a logical slot of the pgoutput plugin", slot, where, s.typ), nil
	case s.database == nil || *s.database != dbname:
		return fmt.Sprintf("the replication slot %q on the publisher (%s) belongs to database %q, not to %q, which the subscription connects to",
			slot, where, ptrString(s.database), dbname), nil
	case s.invalidated():
		return fmt.Sprintf("%s. Drop it there (SELECT pg_drop_replication_slot(%s)) and create it again, or replace the subscription "+
			"(terraform apply -replace=<address>), which makes a new slot and copies the tables again: the changes made while the slot was "+
			"invalidated are not replicated", s.invalidatedText(slot, where), pgsql.Literal(slot)), nil
	case s.pid != nil:
		return fmt.Sprintf("the replication slot %q on the publisher (%s) is in use by another session (PID %d)", slot, where, *s.pid), nil
	}
	return "", nil
}

// publisherSlot is one row of the publisher's pg_replication_slots.
type publisherSlot struct {
	typ                              string
	plugin, database, walStatus, why *string
	pid                              *int64
	// failover is nil before PostgreSQL 17, which has no failover slots.
	failover *bool
	// asked is the database of the session that read the row
	// (current_database()): the one the subscription connects to.
	asked string
}

// lookPublisherSlot reads the slot slot from the publisher conn reaches;
// pgx.ErrNoRows when it has none. wal_status (PostgreSQL 13),
// invalidation_reason and failover (17) are read through to_jsonb, so that
// an older publisher answers too.
func lookPublisherSlot(ctx context.Context, conn publisherQuerier, slot string) (publisherSlot, error) {
	ctx, cancel := context.WithTimeout(ctx, publisherProbeTimeout)
	defer cancel()
	var s publisherSlot
	err := conn.QueryRow(ctx, `SELECT slot_type, plugin::text, database::text, active_pid::bigint,
  to_jsonb(s) ->> 'wal_status', to_jsonb(s) ->> 'invalidation_reason', (to_jsonb(s) ->> 'failover')::boolean, current_database()
FROM pg_catalog.pg_replication_slots s WHERE slot_name = $1`,
		slot).Scan(&s.typ, &s.plugin, &s.database, &s.pid, &s.walStatus, &s.why, &s.failover, &s.asked)
	return s, err
}

// invalidated reports whether PostgreSQL will never stream from s again:
// wal_status = lost (max_slot_wal_keep_size, PostgreSQL 13 to 16), or an
// invalidation_reason (17: wal_removed, rows_removed, wal_level_insufficient;
// 18: idle_timeout), which a slot keeps even where wal_status is not lost.
func (s publisherSlot) invalidated() bool {
	return ptrString(s.walStatus) == "lost" || ptrString(s.why) != ""
}

// invalidatedText says that slot on the publisher at where is invalidated,
// and why, in PostgreSQL's words (invalidation_reason).
func (s publisherSlot) invalidatedText(slot, where string) string {
	return fmt.Sprintf("the replication slot %q on the publisher (%s) is invalidated (%s): PostgreSQL never streams from such a slot again",
		slot, where, s.reason())
}

// reason is why s is invalidated, as pg_replication_slots says it.
func (s publisherSlot) reason() string {
	reason := "wal_status = " + ptrString(s.walStatus)
	if s.why != nil {
		reason += ", invalidation_reason = " + *s.why
	}
	return reason
}

func ptrString(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// existingSlotFix is what to do about a subscription created with
// create_slot = false whose slot cannot serve it (publisherSlotProblem).
func existingSlotFix(slot string) string {
	return fmt.Sprintf("CREATE SUBSCRIPTION … WITH (create_slot = false) neither creates the slot nor checks it: the subscription would not "+
		"replicate (a slot that is not there), or would share a slot that another session streams from, each of them then missing the changes "+
		"the other took. Create the slot on the publisher first (a pgreplication_replication_slot with plugin = \"pgoutput\" in the "+
		"subscription's database, which this subscription references, or SELECT pg_create_logical_replication_slot(%s, 'pgoutput') there), "+
		"give the subscription a slot of its own, or set create_slot = true.", pgsql.Literal(slot))
}

// enableSlotFix is what to do about a disabled subscription to be enabled
// whose slot cannot serve it (publisherSlotProblem).
func enableSlotFix(slot string) string {
	return fmt.Sprintf("ALTER SUBSCRIPTION … ENABLE neither creates the slot nor checks it: the subscription would not replicate, its apply "+
		"worker failing on every start, or would share a slot that another session streams from, each of them then missing the changes the "+
		"other took. Create the slot on the publisher first (a pgreplication_replication_slot with plugin = \"pgoutput\" in the subscription's "+
		"database, or SELECT pg_create_logical_replication_slot(%s, 'pgoutput') there), stop the other consumer, or keep enabled = false.",
		pgsql.Literal(slot))
}

// slotChangeFix is what to do about a slot_name change whose slot cannot
// serve the subscription (publisherSlotProblem), and what the change leaves
// behind on the publisher.
func slotChangeFix(name, from, to string) string {
	return fmt.Sprintf("ALTER SUBSCRIPTION %s SET (slot_name = %s) neither creates the slot nor checks it: the subscription would stop "+
		"replicating, its apply worker failing on every start. Create the slot on the publisher first (a pgreplication_replication_slot "+
		"with plugin = \"pgoutput\" in the subscription's database, applied before this change, or SELECT pg_create_logical_replication_slot(%s, 'pgoutput') "+
		"there), or keep slot_name = %q. Note that the old slot %q is not dropped by the change: it stays on the publisher, retaining WAL, until dropped there.",
		pgsql.Ident(name), pgsql.Literal(to), pgsql.Literal(to), from, from)
}

// publisherFeature is a setting that the publisher must be new enough for.
type publisherFeature struct {
	attr  path.Path
	major int
	why   string // what the setting does on the publisher, and what an older one does
}

// checkPublisherVersion is the version gate of settings that the publisher
// carries out (the subscriber's own version is requireMajor's): one
// question to the publisher, and an error for each setting it is too old
// for, a warning when the probe may reach another server
// (publisherMayDiffer), nothing when it cannot reach it.
func checkPublisherVersion(ctx context.Context, publisher *publisherProbe, needs []publisherFeature, diags *diag.Diagnostics) {
	if len(needs) == 0 {
		return
	}
	conn, p, err := publisher.open(ctx)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, publisherProbeTimeout)
	defer cancel()
	var (
		version int
		named   string
	)
	if err := conn.QueryRow(ctx, `SELECT current_setting('server_version_num')::int, current_setting('server_version')`).Scan(&version, &named); err != nil {
		return
	}
	for _, f := range needs {
		if version < f.major*10000 {
			publisher.refuse(diags, f.attr, "Feature Needs a Newer PostgreSQL",
				fmt.Sprintf("%s; the publisher (%s) runs PostgreSQL %s. Remove the setting or upgrade the publisher.",
					f.why, publisherAddress(p), named))
		}
	}
}

// checkPublisherWalLevel asks the publisher, as the subscriber will reach
// it, for its wal_level, and reports on the conninfo attribute when it is
// not logical. A publisher Terraform cannot reach is not an error here
// (the subscriber may reach what Terraform cannot); apply reports it.
func checkPublisherWalLevel(ctx context.Context, publisher *publisherProbe, diags *diag.Diagnostics) {
	conn, p, err := publisher.open(ctx)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, publisherProbeTimeout)
	defer cancel()
	var level, database string
	if err := conn.QueryRow(ctx, `SELECT current_setting('wal_level'), current_database()`).Scan(&level, &database); err != nil {
		return
	}
	if level != "logical" {
		publisher.refuse(diags, path.Root("conninfo"), "Publisher Needs wal_level = logical",
			fmt.Sprintf("The publisher (%s, database %q) runs with wal_level = %s; a subscription needs wal_level = logical there to create its "+
				"slot and decode changes. On the publisher run ALTER SYSTEM SET wal_level = logical, restart it, and plan again.",
				publisherAddress(p), database, level))
	}
}
