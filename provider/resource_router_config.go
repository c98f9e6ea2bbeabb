package provider

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/objectvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-framework/types/basetypes"

	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/atomicfile"
	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/normalized"
	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/artifact"
)

var (
	_ resource.ResourceWithConfigure      = (*routerConfigResource)(nil)
	_ resource.ResourceWithImportState    = (*routerConfigResource)(nil)
	_ resource.ResourceWithModifyPlan     = (*routerConfigResource)(nil)
	_ resource.ResourceWithValidateConfig = (*routerConfigResource)(nil)
)

func newRouterConfigResource() resource.Resource { return &routerConfigResource{} }

// routerConfigResource writes the router file that routerlib reads. It
// never talks to PostgreSQL: it works when the provider's server is
// unreachable or its settings are unknown, and takes from Configure only
// the provider instance's claims on router files (routerFileClaims). Every byte
// of the file comes from routerlib/artifact (Marshal), and every byte read
// back goes through artifact.Parse, so the provider and routerlib cannot
// disagree about the format.
//
// Unset attributes are left out of the file (routerlib's WithDefaults fills
// them), and Read maps a field that is absent from the file back to null,
// so state after Read equals the configuration. Where zero would be written
// as "absent" and so change meaning (weight = 0 would become the default
// 100), the schema refuses zero.
type routerConfigResource struct {
	files *routerFileClaims // nil until Configure
}

// defaultFilePermission is file_permission when unset: the owner writes,
// the application's group reads, nobody else.
const defaultFilePermission = "0640"

func (r *routerConfigResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_router_config"
}

func (r *routerConfigResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = routerConfigSchema()
}

// routerConfigSchema is the resource schema; the conversions take their
// object types from it so the two cannot disagree.
var routerConfigSchema = sync.OnceValue(func() schema.Schema {
	return schema.Schema{
		MarkdownDescription: "Writes the router file that applications using routerlib read: the cluster's nodes " +
			"(one primary, any number of replicas) and how reads are routed among them. The file is JSON in the " +
			"`routerlib/artifact` format, written in canonical form (primary first, then replicas and routes sorted by " +
			"name), with only the settings given here; routerlib applies its defaults to the rest. A file that says exactly the same in another layout " +
			"(an imported one written by hand) is left as it is until the configuration changes.\n\n" +
			"The file is replaced atomically (temporary file in the same directory, flushed, renamed, directory " +
			"flushed), so a reader never sees half of it, and it keeps the owner and group of the file it replaces. " +
			"The parent directory must exist; it is not created.\n\n" +
			"`terraform plan` shows a hand edit of the file field by field; a file that no longer parses is planned " +
			"to be rewritten in place, with a warning that says why. No secret is ever written: nodes name the environment " +
			"variable (`password_env`) or `.pgpass` file (`passfile`) that holds the password.\n\n" +
			"Destroying the resource removes the file only if it is still the file Terraform last wrote or read, with the same bytes, so a " +
			"`create_before_destroy` replacement at the same path never deletes the file it has just written. Such a replacement writes its new " +
			"content over the file of the object it replaces, and only that file: Terraform does not tell the apply that the file is the replaced " +
			"object's, so the plan records which file it is (its identity and bytes, in the user's cache directory, such as " +
			"`~/.cache/terraform-provider-pgreplication`), and the apply writes over it only while it is still exactly that file. A file another " +
			"writer put there or edited since the plan is refused, with the old object and its file kept: plan and apply again. So is a plan " +
			"made by another user or on another machine than the apply (or before the cache directory was cleared), and a replacement whose content " +
			"is known only at apply, which the plan warns of (apply first what the content depends on, with `-target`, then plan again; without " +
			"`create_before_destroy` it applies). The record is kept only in directories of the user running Terraform that nobody else may write " +
			"(no symbolic link, not group- or world-writable): otherwise the plan fails naming the directory (set `XDG_CACHE_HOME` to one that is). " +
			"A record of a plan never applied is dropped by the resource's next plan.\n\n" +
			"This resource does not connect to PostgreSQL.",
		Attributes: map[string]schema.Attribute{
			// Optional
			"path": schema.StringAttribute{
				Optional:            true,
				Validators:          []validator.String{stringvalidator.LengthAtLeast(1)},
				MarkdownDescription: "Path of the router file. Its directory must exist. A symbolic link at this path is kept and written through: the file it leads to (at the end of a chain of links) is replaced atomically in its own directory, so an application reading that file by its own name or through another link sees the change; a refresh reads the file through the link, so a change made to it shows in the plan; and destroy removes that file and keeps the link, which Terraform did not make (a later apply writes through it again). A link that leads to a missing file gets that file created. The path must lead to a regular file or to no file yet: a FIFO, a device node (such as `/dev/null`), a socket or a directory there, or at the end of a link, is refused at plan time by create, update, refresh, import and destroy, naming what it is, and is never opened, replaced or removed. Two `pgreplication_router_config` resources of one provider configuration may not write the same file, however their paths spell it (relative or absolute, `..`, a symbolic link, a hard link to an existing file): the plan fails naming both paths, since each would rewrite the other's file on every apply. A new resource, or a new `path`, never writes over a file it did not write: where a file already is, unless it holds exactly the bytes this resource would write, the apply stops at this resource naming the file and what it holds, and nothing is written; import the file to manage it. The plan of a new `path` already fails for a file that is not a router file, and warns for another router file; the plan of a new resource warns for any file (it cannot tell it from the file of a `create_before_destroy` replacement of this resource, whose apply it may be: an error there would drop the replaced object from the state). That catches what one provider configuration's plan cannot see: a resource of another provider configuration or alias, of another Terraform configuration, or left out of a `-target` plan, and a path known only at apply. The check and the write hold an exclusive lock (`flock`) on the file's directory, so two applies that write one file at the same time take turns and the second one finds the first one's file. Changing it writes the new file first and then removes the old one, so a new path that cannot be written leaves the old file in place. Without `path` no file is written and only `content` is computed, for shipping the file another way (a Kubernetes ConfigMap, a secret store, a template).",
			},
			"file_permission": schema.StringAttribute{
				Optional: true,
				Computed: true,
				Default:  stringdefault.StaticString(defaultFilePermission),
				Validators: []validator.String{stringvalidator.RegexMatches(regexp.MustCompile(`^0?[0-7]{3}$`),
					"must be an octal file mode such as \"0640\"")},
				MarkdownDescription: "Mode of the file, in octal. Defaults to `" + defaultFilePermission + "`: the owner writes, the application's group reads. A change made by hand (`chmod`) shows in the plan.",
			},
			// Computed
			"content": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "The exact bytes of the file, known at plan time when the configuration is, so the plan shows how the file changes. After a refresh it holds what is on disk.",
			},
			"sha256": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "SHA-256 of `content`, in hex. Applications can compare it with the file they loaded.",
			},
			"id": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "`path`, or `sha256` when there is no `path`. The import ID is the path.",
			},
		},
		Blocks: map[string]schema.Block{
			"primary": schema.SingleNestedBlock{
				Validators:          []validator.Object{objectvalidator.IsRequired()},
				Attributes:          routerNodeAttributes(),
				MarkdownDescription: "The node that takes writes. Exactly one.",
			},
			"replica": schema.ListNestedBlock{
				NestedObject:        schema.NestedBlockObject{Attributes: routerNodeAttributes()},
				MarkdownDescription: "A read-only standby that serves reads. Any number; names must be unique across the primary and the replicas.",
			},
			"read_policy": schema.SingleNestedBlock{
				MarkdownDescription: "How reads that name no route choose a replica.",
				Attributes: map[string]schema.Attribute{
					"strategy": routerStrategyAttribute("Defaults to `" + artifact.DefaultStrategy + "`."),
					"fallback": routerFallbackAttribute("Defaults to `" + artifact.DefaultFallback + "`."),
				},
			},
			"consistency": schema.SingleNestedBlock{
				MarkdownDescription: "How fresh a replica read must be.",
				Attributes: map[string]schema.Attribute{
					"mode": schema.StringAttribute{
						Optional:   true,
						Validators: []validator.String{stringvalidator.OneOf(artifact.ConsistencyModes...)},
						MarkdownDescription: "One of " + quotedList(artifact.ConsistencyModes) + ". `eventual` reads any replica within its lag limits; " +
							"`read_your_writes` reads a replica only once it has replayed the session's last write; `strong` reads the primary. " +
							"Defaults to `" + artifact.DefaultConsistencyMode + "`.",
					},
					"wait_timeout": schema.StringAttribute{
						Optional:      true,
						CustomType:    normalized.DurationType{},
						PlanModifiers: []planmodifier.String{normalized.KeepEquivalentState(normalized.DurationType{})},
						MarkdownDescription: "How long a `read_your_writes` read waits for a replica to catch up before it goes to the primary. " +
							"`0s` sends it to the primary at once when no replica has replayed the session's last write. Defaults to `" + string(artifact.DefaultWaitTimeout) + "`. " +
							"Go duration syntax, zero or more: `0s`, `250ms`, `1s`. " + routerDurationCompared,
					},
				},
			},
			"health": schema.SingleNestedBlock{
				MarkdownDescription: "The health checks that take nodes out of rotation and put them back.",
				Attributes: map[string]schema.Attribute{
					"interval": routerDurationAttribute("Time between checks of one node. Defaults to `" + string(artifact.DefaultHealthInterval) + "`."),
					"timeout":  routerDurationAttribute("Bound on one check's query once connected: a check that has not answered within it counts as failed. Defaults to `" + string(artifact.DefaultHealthTimeout) + "`."),
					"connect_timeout": routerDurationAttribute("Bound on setting up each connection to a node, for its pools and its checks alike (dial, TLS, authentication), " +
						"separate from `timeout` because a new connection costs the server a process and an authentication. Defaults to `" + string(artifact.DefaultConnectTimeout) + "`."),
					"eject_after":   routerCountAttribute("Consecutive failed checks that take a node out of rotation.", strconv.Itoa(artifact.DefaultEjectAfter)),
					"readmit_after": routerCountAttribute("Consecutive passed checks that put an ejected node back.", strconv.Itoa(artifact.DefaultReadmitAfter)),
				},
			},
			"route": schema.ListNestedBlock{
				MarkdownDescription: "A named set of nodes that the application selects with `routerlib.Route(ctx, name)`, for example to keep analytics queries off the replicas that serve the application.",
				NestedObject: schema.NestedBlockObject{Attributes: map[string]schema.Attribute{
					"name": schema.StringAttribute{
						Required:            true,
						MarkdownDescription: "The route's name. Unique.",
					},
					"nodes": schema.ListAttribute{
						Required:            true,
						ElementType:         types.StringType,
						MarkdownDescription: "Names of the nodes the route reads from: at least one, each a `primary` or `replica` name. The file lists them sorted.",
					},
					"strategy": routerStrategyAttribute("Defaults to the `read_policy` strategy."),
					"fallback": routerFallbackAttribute("Defaults to the `read_policy` fallback."),
				}},
			},
			"pool": schema.SingleNestedBlock{
				MarkdownDescription: "The connection pool routerlib keeps for each node.",
				Attributes: map[string]schema.Attribute{
					"max_conns": schema.Int64Attribute{
						Optional:            true,
						Validators:          []validator.Int64{nonZero("max_conns", fmt.Sprintf("the default, %d", artifact.DefaultMaxConns)), int64validator.AtMost(math.MaxInt32)},
						MarkdownDescription: fmt.Sprintf("Most connections per node. Defaults to `%d`.", artifact.DefaultMaxConns),
					},
					"min_conns": schema.Int64Attribute{
						Optional:            true,
						Validators:          []validator.Int64{int64validator.AtMost(math.MaxInt32)},
						MarkdownDescription: fmt.Sprintf("Idle connections kept open per node. Defaults to `%d`.", artifact.DefaultMinConns),
					},
					"max_conn_lifetime": routerDurationAttribute("How long a connection lives before it is replaced. Defaults to `" + string(artifact.DefaultMaxConnLifetime) + "`."),
				},
			},
		},
	}
})

// routerNodeAttributes are the attributes of the primary and replica
// blocks: the fields of artifact.Node, under the same names.
func routerNodeAttributes() map[string]schema.Attribute {
	return map[string]schema.Attribute{
		// Required
		"name": schema.StringAttribute{
			Required:            true,
			MarkdownDescription: "Name of the node in routes, logs and errors. Unique, printable, without leading or trailing spaces.",
		},
		"host": schema.StringAttribute{
			Required:            true,
			MarkdownDescription: "Host name, IP address or Unix socket directory. Not a connection URI.",
		},
		// Optional
		"port": schema.Int64Attribute{
			Optional:            true,
			Validators:          []validator.Int64{nonZero("port", fmt.Sprintf("the default, %d", artifact.DefaultPort))},
			MarkdownDescription: fmt.Sprintf("TCP port, 1 to 65535. Defaults to `%d`.", artifact.DefaultPort),
		},
		"database": schema.StringAttribute{
			Optional:            true,
			MarkdownDescription: "Database to connect to. Defaults to the server's default (the user name).",
		},
		"user": schema.StringAttribute{
			Optional: true,
			MarkdownDescription: "Role to connect as, its name alone: one holding `:`, `=` or white space (`app:password`, a pasted `user=app password=…`) is refused without being shown, " +
				"though PostgreSQL allows such role names, since the router would show it in every connection error; connect as a role named without them. " +
				"Defaults to the driver's default (`PGUSER`, then the operating-system user).",
		},
		"sslmode": schema.StringAttribute{
			Optional:            true,
			Validators:          []validator.String{stringvalidator.OneOf(artifact.SSLModes...)},
			MarkdownDescription: "libpq `sslmode`: " + quotedList(artifact.SSLModes) + ". Defaults to `" + artifact.DefaultSSLMode + "`.",
		},
		"sslrootcert": schema.StringAttribute{
			Optional:            true,
			MarkdownDescription: "Path of the CA certificate for `verify-ca` and `verify-full`, on the application's host. Defaults to the driver's default.",
		},
		"password_env": schema.StringAttribute{
			Optional: true,
			MarkdownDescription: "Name of the environment variable that holds the password where the application runs, such as `PGREPLICATION_APP_PASSWORD`: " +
				"upper-case letters, digits and underscores, not starting with a digit. The password itself never goes in the file, " +
				"and a value that looks like one (it has lower-case letters) is refused.",
		},
		"passfile": schema.StringAttribute{
			Optional:            true,
			MarkdownDescription: "Path of a `.pgpass` file, on the application's host, to read the password from.",
		},
		"zone": schema.StringAttribute{
			Optional:            true,
			MarkdownDescription: "Availability zone, for the `" + artifact.StrategyNearestZone + "` strategy. Defaults to unknown.",
		},
		"weight": schema.Int64Attribute{
			Optional:            true,
			Validators:          []validator.Int64{nonZero("weight", fmt.Sprintf("the default, %d", artifact.DefaultWeight))},
			MarkdownDescription: fmt.Sprintf("Share of reads under the `%s` strategy, 1 to %d. Defaults to `%d`.", artifact.StrategyWeighted, artifact.MaxWeight, artifact.DefaultWeight),
		},
		"max_lag": routerDurationAttribute("How far behind the primary, in replay time, a replica may fall before it stops serving reads. Defaults to no limit."),
		"max_lag_bytes": schema.Int64Attribute{
			Optional:            true,
			Validators:          []validator.Int64{nonZero("max_lag_bytes", "no limit")},
			MarkdownDescription: "How far behind the primary, in WAL bytes, a replica may fall before it stops serving reads. Defaults to no limit.",
		},
		"synchronous": schema.BoolAttribute{
			Optional:            true,
			MarkdownDescription: "The replica is a synchronous standby, so committed writes are already on it. Defaults to `false`.",
		},
	}
}

func routerStrategyAttribute(def string) schema.StringAttribute {
	return schema.StringAttribute{
		Optional:            true,
		Validators:          []validator.String{stringvalidator.OneOf(artifact.Strategies...)},
		MarkdownDescription: "How a replica is chosen: " + quotedList(artifact.Strategies) + ". `" + artifact.StrategyNearestZone + "` needs nodes with a `zone`. " + def,
	}
}

func routerFallbackAttribute(def string) schema.StringAttribute {
	return schema.StringAttribute{
		Optional:            true,
		Validators:          []validator.String{stringvalidator.OneOf(artifact.Fallbacks...)},
		MarkdownDescription: "What a read does when no replica is healthy: " + quotedList(artifact.Fallbacks) + " (`error` keeps load off the primary). " + def,
	}
}

// routerDurationCompared says how the duration attributes compare: by
// length, so a configuration or an imported file that writes one with other
// units plans nothing. (A file edited by hand after an apply still plans a
// rewrite: its content, the bytes, differs from what the state recorded.)
const routerDurationCompared = "Compared by length of time: `1000ms` is no change from `1s`, in the configuration or in an imported file."

func routerDurationAttribute(desc string) schema.StringAttribute {
	return schema.StringAttribute{
		Optional:            true,
		CustomType:          normalized.DurationType{},
		PlanModifiers:       []planmodifier.String{normalized.KeepEquivalentState(normalized.DurationType{})},
		MarkdownDescription: desc + " Go duration syntax, greater than zero: `250ms`, `10s`, `1m30s`. " + routerDurationCompared,
	}
}

func routerCountAttribute(desc, def string) schema.Int64Attribute {
	return schema.Int64Attribute{
		Optional:            true,
		Validators:          []validator.Int64{nonZero("this count", "the default, "+def)},
		MarkdownDescription: desc + " Defaults to `" + def + "`.",
	}
}

// nonZero refuses 0 for a field where the router file cannot express it:
// the file leaves zero values out, so routerlib would read "unset".
func nonZero(field, unsetMeans string) validator.Int64 { return nonZeroValidator{field, unsetMeans} }

type nonZeroValidator struct{ field, unsetMeans string }

func (v nonZeroValidator) Description(context.Context) string {
	return "must not be 0 (leave it unset for " + v.unsetMeans + ")"
}

func (v nonZeroValidator) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (v nonZeroValidator) ValidateInt64(_ context.Context, req validator.Int64Request, resp *validator.Int64Response) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() || req.ConfigValue.ValueInt64() != 0 {
		return
	}
	resp.Diagnostics.AddAttributeError(req.Path, "Zero Cannot Be Written to the Router File",
		fmt.Sprintf("%s = 0 cannot be expressed in the router file: the file leaves zero values out, so routerlib would read %s as unset, which means %s. "+
			"Leave %s unset for that, or set a value greater than zero.", req.Path, v.field, v.unsetMeans, req.Path))
}

// Configure is deliberately absent: the resource needs no server.

func (r *routerConfigResource) Configure(_ context.Context, req resource.ConfigureRequest, _ *resource.ConfigureResponse) {
	if s, ok := req.ProviderData.(*server); ok {
		r.files = s.routerFiles
	}
}

func (r *routerConfigResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan routerConfigModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	r.write(ctx, &plan, nil, resp.Private, &resp.Diagnostics)
	if resp.Diagnostics.HasError() {
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

func (r *routerConfigResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state routerConfigModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if state.Path.IsNull() {
		return // content only: nothing outside Terraform to read
	}
	name := state.Path.ValueString()
	cur, err := atomicfile.Read(name)
	// An import (no content yet) has nothing in the state to remove.
	if addNotRegularRouterFile(name, err, !state.Content.IsNull(), &resp.Diagnostics) {
		return
	}
	if err != nil {
		resp.Diagnostics.AddAttributeError(path.Root("path"), "Cannot Read Router File", fmt.Sprintf("Reading the router file %s failed: %v. Make sure the user running Terraform can read it.", name, err))
		return
	}
	if !cur.Exists {
		resp.State.RemoveResource(ctx)
		return
	}
	data := cur.Data
	if resp.Private != nil { // nil only in unit tests, which build a ReadResponse by hand
		setRouterFileID(ctx, resp.Private, cur.ID, &resp.Diagnostics)
	}
	read, why := routerModelFromFile(ctx, data, state)
	state.FilePermission = keepFileMode(cur.Mode, state.FilePermission)
	state.SHA256 = types.StringValue(sha256Hex(data))
	state.ID = types.StringValue(name)
	if why != nil {
		if state.Content.IsNull() {
			// Nothing to fall back to: this is an import.
			resp.Diagnostics.AddAttributeError(path.Root("path"), "Cannot Import Router File",
				fmt.Sprintf("The file %s is not a router file this provider can import: %v. Fix the file (or remove it and let Terraform create it), then import again.", name, why))
			return
		}
		resp.Diagnostics.AddAttributeWarning(path.Root("path"), "Router File Does Not Parse",
			fmt.Sprintf("The router file %s was changed outside Terraform and is no longer a valid router topology: %v. "+
				"The plan rewrites it with the declared content. Until then routerlib keeps the configuration it loaded last, and a newly started application fails to load it. "+
				"Its bytes are not kept in the state (content shows a placeholder): a file edited by hand may hold a secret.", name, why))
		// Keep the declared attributes; only the bytes drifted. The bytes
		// themselves never go into the state, where anyone who can read it
		// would find a password someone typed into the file; the
		// placeholder differs from any content ModifyPlan plans, so the
		// plan rewrites the file.
		state.Content = types.StringValue(unparsedRouterFileContent(name))
		resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
		return
	}
	read.ID, read.Path, read.FilePermission, read.SHA256 = state.ID, state.Path, state.FilePermission, state.SHA256
	read.Content = types.StringValue(string(data)) // artifact.Parse has checked it is UTF-8
	resp.Diagnostics.Append(resp.State.Set(ctx, &read)...)
}

// Update writes the file, at its new path when path changed, and only then
// removes the old one: a path change is an update, not a replacement,
// because a replacement's destroy would remove the file the application
// reads before the new path is known to be writable.
func (r *routerConfigResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, state routerConfigModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	oldID := routerFileID(ctx, req.Private) // before write: req.Private is resp.Private
	r.write(ctx, &plan, &state, resp.Private, &resp.Diagnostics)
	if resp.Diagnostics.HasError() {
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
	if !state.Path.IsNull() && !plan.Path.IsNull() && !sameRouterPath(state.Path.ValueString(), plan.Path.ValueString()) {
		removeRouterFile(state, oldID, false, &resp.Diagnostics)
	}
}

func (r *routerConfigResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state routerConfigModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() || state.Path.IsNull() {
		return
	}
	removeRouterFile(state, routerFileID(ctx, req.Private), true, &resp.Diagnostics)
}

// removeRouterFile removes the file at state's path if it still holds what
// state records. When the path is a symbolic link, the file it leads to is
// removed and the link is kept: the resource manages the file the link
// leads to (write goes through it) and never made the link, and a reader
// of that file through another link or its own name must not keep reading
// a configuration no longer managed. destroy is true for the resource's
// destroy (not a path change's removal of the old file).
func removeRouterFile(state routerConfigModel, id string, destroy bool, diags *diag.Diagnostics) {
	// Remove only the file this resource last wrote or read. Under
	// create_before_destroy a replacement at the same path has already
	// written the new file; removing it would leave the application with
	// none. The check and the removal hold the directory's lock, so a
	// writer that has just put its own file there is never undone.
	//
	// A destroy's file may be the one the create of this resource's
	// create_before_destroy replacement has just written: its warning
	// never tells the user to remove the file, which the application may
	// now be reading as the new object's.
	var changed, target string
	var rec *routerFileReplacement
	var recErr error
	removed, err := atomicfile.RemoveIf(state.Path.ValueString(), func(cur atomicfile.Current) error {
		target = currentTarget(cur)
		rec, recErr = loadRouterReplacement(target)
		// Written by a create over this resource's file (id) or, in a
		// state that recorded no identity, over the file there then.
		if destroy && rec != nil && rec.ReplacedBy != "" && rec.ReplacedBy == cur.ID && (id == "" || rec.FileID == id) {
			return errRouterFileReplaced
		}
		leftFor := "Remove it by hand if nothing needs it."
		if destroy {
			leftFor = "If this apply created this resource again (a create_before_destroy replacement), the file is most likely its new object's, which the application reads: leave it."
			if recErr != nil {
				leftFor += " (The record of the replacement, which tells, could not be read: " + recErr.Error() + ".)"
			}
		}
		if id != "" && cur.ID != "" && cur.ID != id {
			changed = fmt.Sprintf("%s is no longer the file this resource wrote: it was replaced since the last refresh (by a create_before_destroy replacement of this resource, another writer, or a hand edit), so it was not removed. %s", cur.Target, leftFor)
			return errRouterFileChanged
		}
		if got := sha256Hex(cur.Data); got != state.SHA256.ValueString() {
			changed = fmt.Sprintf("%s holds content this resource did not write (sha256 %s, expected %s): it was written by a replacement or changed after the last refresh, so it was not removed. %s", cur.Target, got, state.SHA256.ValueString(), leftFor)
			return errRouterFileChanged
		}
		return nil
	})
	switch {
	case addNotRegularRouterFile(state.Path.ValueString(), err, destroy, diags):
	case errors.Is(err, errRouterFileReplaced):
		// The file of this resource's create_before_destroy replacement,
		// which is now the resource: left, as it should be.
		dropRouterReplacement(target)
	case errors.Is(err, errRouterFileChanged):
		diags.AddAttributeWarning(path.Root("path"), "Router File Left in Place", changed)
	case err != nil:
		diags.AddAttributeError(path.Root("path"), "Cannot Remove Router File", fmt.Sprintf("Removing the router file %s failed: %v. Make sure the user running Terraform can read the file and write its directory.", state.Path.ValueString(), err))
	case removed:
		if rec != nil && (id == "" || rec.FileID == id || rec.ReplacedBy == id) {
			dropRouterReplacement(target) // a replacement planned but not applied, or destroy before create
		}
	}
}

// addNotRegularRouterFile adds the error on path for err when it is
// atomicfile's refusal of a path that leads to something other than a
// regular file (a FIFO, a device, a socket, a directory), which nothing in
// this resource opens, replaces or removes, and reports whether it did.
// inState is true where the resource is in the state (a refresh, a
// destroy): the error then also says how to stop managing it without
// touching the file, since no apply or destroy gets past this error.
func addNotRegularRouterFile(declared string, err error, inState bool, diags *diag.Diagnostics) bool {
	var nr *atomicfile.NotRegularError
	if !errors.As(err, &nr) {
		return false
	}
	fix := fmt.Sprintf("Point path at a regular file (or a symbolic link to one) or at a name where none exists yet; if %s is there by mistake, remove it (a FIFO or a socket with rm, a directory with rmdir) and plan again.", nr.Target)
	if nr.Mode.Type()&fs.ModeDevice != 0 {
		fix = fmt.Sprintf("Point path at a regular file (or a symbolic link to one) or at a name where none exists yet; a device node such as /dev/null is never a router file's place. Do not remove %s unless you know nothing else uses it.", nr.Target)
	}
	if inState {
		fix += fmt.Sprintf(" To destroy this resource (or stop managing it) and leave %s as it is, remove the resource from the state instead: terraform state rm ADDRESS (tofu state rm with OpenTofu), with the resource's address shown above this message; the provider is not told it.", nr.Target)
	}
	diags.AddAttributeError(path.Root("path"), "Router File Is Not a Regular File",
		fmt.Sprintf("This pgreplication_router_config (path = %q) manages a router file, but %s: %s. Nothing was read, written or removed, and it is left as it is. %s",
			declared, nr.Error(), nr.Why(), fix))
	return true
}

// errRouterFileChanged is removeRouterFile's refusal to remove a file that
// changed, errRouterFileReplaced its refusal to remove the file of this
// resource's create_before_destroy replacement.
var (
	errRouterFileChanged  = errors.New("router file changed")
	errRouterFileReplaced = errors.New("router file replaced by this resource's replacement")
)

// ImportState takes the file's path as the import ID: one part, written as
// users type it (not importid's escaped form, which would turn every "/"
// into %2F). Read fills the rest from the file.
func (r *routerConfigResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	if req.ID == "" {
		resp.Diagnostics.AddError("Invalid Import ID", "The import ID of pgreplication_router_config is the path of the router file, such as /etc/app/router.json.")
		return
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("path"), req.ID)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), req.ID)...)
}

// ValidateConfig builds the topology from a fully known configuration and
// runs artifact's Validate, so every problem in the file is an error on the
// attribute that causes it at plan time.
func (r *routerConfigResource) ValidateConfig(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	var cfg routerConfigModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &cfg)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if cfg.Primary.IsNull() {
		return // the block's IsRequired validator says so; "no primary" would repeat it
	}
	t, known := routerTopologyFromModel(ctx, cfg, &resp.Diagnostics)
	if !known {
		return // ModifyPlan validates once the values are known
	}
	// Validate even after an error above, so every problem is reported in
	// one plan; addTopologyProblems skips attributes that already have one.
	if err := t.Validate(); err != nil {
		addTopologyProblems(t, err, true, &resp.Diagnostics)
	}
}

// ModifyPlan computes the file's exact bytes at plan time, so the plan
// shows the content change, and refuses a path where another resource's
// file (claimRouterFile) or any file this resource did not write
// (checkNewRouterFile) already is.
func (r *routerConfigResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() {
		// Destroy: refused now, rather than at apply, when the path no
		// longer leads to a regular file (with -refresh=false; a refresh
		// has already refused it).
		var state routerConfigModel
		if !req.State.Raw.IsNull() && !req.State.Get(ctx, &state).HasError() && !state.Path.IsNull() {
			addNotRegularRouterFile(state.Path.ValueString(), atomicfile.CheckRegular(state.Path.ValueString()), true, &resp.Diagnostics)
		}
		return
	}
	var plan routerConfigModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	t, known := routerTopologyFromModel(ctx, plan, &resp.Diagnostics)
	if resp.Diagnostics.HasError() {
		return
	}
	if known {
		data, err := artifact.Marshal(t)
		if err != nil {
			addTopologyProblems(t, err, false, &resp.Diagnostics)
			return
		}
		plan.Content = types.StringValue(string(data))
		plan.SHA256 = types.StringValue(sha256Hex(data))
	} else {
		plan.Content = types.StringUnknown()
		plan.SHA256 = types.StringUnknown()
	}
	if plan.Path.IsNull() {
		plan.ID = plan.SHA256
	} else {
		plan.ID = plan.Path
	}
	primary := ""
	if known {
		primary = routerFilePrimary(t)
	}
	if !plan.Path.IsNull() && !plan.Path.IsUnknown() && addNotRegularRouterFile(plan.Path.ValueString(), atomicfile.CheckRegular(plan.Path.ValueString()), false, &resp.Diagnostics) {
		return
	}
	if r.files != nil && !plan.Path.IsNull() && !plan.Path.IsUnknown() {
		r.files.claimRouterFile(ctx, plan.Path.ValueString(), primary, resp.Private, &resp.Diagnostics)
		if resp.Diagnostics.HasError() {
			return
		}
	}
	var state routerConfigModel
	if !req.State.Raw.IsNull() {
		resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
		if resp.Diagnostics.HasError() {
			return
		}
	}
	r.checkNewRouterFile(ctx, plan, state, req.State.Raw.IsNull(), primary, resp)
	if resp.Diagnostics.HasError() {
		return
	}
	if !req.State.Raw.IsNull() {
		// A file that no longer parses (its content in the state is a
		// placeholder) differs from the plan's content: an update
		// rewrites it in place. (A replacement would have to create the
		// file over one that no longer shows whose it is.)
		//
		// A file laid out by hand (an imported one: other spacing, fields
		// in another order) that says exactly what the plan would write
		// is kept as it is: rewriting it would change nothing routerlib
		// reads, and the plan after an import would not be empty.
		if known && !state.Content.IsNull() && !state.Content.IsUnknown() && sameRouterFile(state.Content.ValueString(), plan.Content.ValueString()) {
			plan.Content, plan.SHA256 = state.Content, state.SHA256
			if plan.Path.IsNull() {
				plan.ID = plan.SHA256
			}
		}
	}
	resp.Diagnostics.Append(resp.Plan.Set(ctx, &plan)...)
}

// write renders the planned topology and, with a path, replaces the file
// atomically; it sets content, sha256 and id. prior is the state of an
// update, nil for a create: a create, or an update to a path that leads to
// another file, writes only where mayCreateRouterFile allows, deciding
// under the directory's lock (atomicfile.WriteIf), so that of two writers
// (two provider configurations, whose plans cannot see each other) the
// second finds the first's file and writes nothing.
func (r *routerConfigResource) write(ctx context.Context, m *routerConfigModel, prior *routerConfigModel, private privateSetter, diags *diag.Diagnostics) {
	t, known := routerTopologyFromModel(ctx, *m, diags)
	if diags.HasError() {
		return
	}
	if !known {
		diags.AddError("Router Topology Not Known", "Some values of pgreplication_router_config are still unknown at apply time; this is a bug in the provider, please report it.")
		return
	}
	data, err := artifact.Marshal(t)
	if err != nil {
		addTopologyProblems(t, err, false, diags)
		return
	}
	if planned := m.Content.ValueString(); !m.Content.IsUnknown() && sameRouterFile(planned, string(data)) {
		data = []byte(planned) // the layout of a file ModifyPlan kept
	}
	m.Content = types.StringValue(string(data))
	m.SHA256 = types.StringValue(sha256Hex(data))
	if m.Path.IsNull() {
		m.ID = m.SHA256
		return
	}
	name := m.Path.ValueString()
	m.ID = m.Path
	mode, err := strconv.ParseUint(m.FilePermission.ValueString(), 8, 32)
	if err != nil {
		diags.AddAttributeError(path.Root("file_permission"), "Invalid File Permission", fmt.Sprintf("file_permission %q is not an octal mode such as \"0640\".", m.FilePermission.ValueString()))
		return
	}
	var check func(atomicfile.Current) error
	// rec is the replacement recorded for the file (routerFileReplacement),
	// read under the directory's lock; replaced is the identity of the old
	// object's file when rec let this write replace it.
	// sameBytes is the file a create wrote the very same bytes over, with
	// no record: a replacement whose content did not change, planned
	// where its apply finds no record.
	var rec *routerFileReplacement
	var replaced string
	var sameBytes *atomicfile.Current
	if prior == nil || prior.Path.IsNull() || !sameRouterPath(prior.Path.ValueString(), name) {
		primary := routerFilePrimary(t)
		check = func(cur atomicfile.Current) error {
			var recErr error
			rec, recErr = loadRouterReplacement(currentTarget(cur))
			if rec.covers(cur, data) {
				replaced = cur.ID
				return nil
			}
			err := mayCreateRouterFile(name, primary, data)(cur)
			if err != nil && prior == nil && cur.Exists && rec.plannedFor(currentTarget(cur), data) {
				return routerFileChangedSincePlan(name, primary, cur, rec)
			}
			var taken *routerFileTakenError
			if errors.As(err, &taken) && recErr != nil {
				taken.detail += " The record of a replacement could not be used: " + recErr.Error() + "."
			}
			if err == nil && prior == nil && cur.Exists && recErr == nil {
				sameBytes = &cur
			}
			return err
		}
	}
	if err := atomicfile.WriteIf(name, data, fs.FileMode(mode), check); err != nil {
		if addNotRegularRouterFile(name, err, false, diags) {
			return
		}
		var taken *routerFileTakenError
		if errors.As(err, &taken) {
			diags.AddAttributeError(path.Root("path"), routerFileTakenSummary, taken.detail)
			return
		}
		fix := " Correct the cause, then apply again."
		if errors.Is(err, fs.ErrPermission) {
			fix = fmt.Sprintf(" The provider writes a temporary file beside the router file (where a symbolic link leads, in that file's directory) and renames it over the file, "+
				"so the user running Terraform (uid %d) must be allowed to create and rename files in that directory: "+
				"give it write permission on that directory (and check that neither the directory nor the file is immutable, chattr +i), or choose a path in a directory it may write; then apply again.",
				os.Geteuid())
		}
		diags.AddAttributeError(path.Root("path"), "Cannot Write Router File", fmt.Sprintf("Writing the router file %s failed; the file on disk is unchanged: %v.%s", name, err, fix))
		return
	}
	// Confirm the file holds what was declared before recording it.
	cur, err := atomicfile.Read(name)
	if err != nil || !slices.Equal(cur.Data, data) {
		diags.AddAttributeError(path.Root("path"), "Router File Changed After Writing",
			fmt.Sprintf("The router file %s was written but does not read back as written (%v); something else is writing it. Make sure only this resource manages the file.", name, err))
		return
	}
	setRouterFileID(ctx, private, cur.ID, diags)
	switch {
	case replaced != "":
		// The old object's destroy, which comes next, leaves this file.
		rec.ReplacedBy = cur.ID
		if err := saveRouterReplacement(*rec); err != nil {
			diags.AddAttributeWarning(path.Root("path"), "Router File Replacement Not Recorded",
				fmt.Sprintf("This pgreplication_router_config wrote its new content over its old object's file %s (create_before_destroy), but could not record that for the old object's destroy: %v. "+
					"That destroy leaves the file in place, as it should, and warns that the file is no longer the old object's: the file is this new object's, which the application reads; leave it.", cur.Target, err))
		}
	case sameBytes != nil:
		// The old object's destroy, if this is a replacement, leaves
		// this file; the resource's next plan drops the record.
		_ = saveRouterReplacement(routerFileReplacement{Target: currentTarget(*sameBytes), FileID: sameBytes.ID, Changed: sameBytes.Changed,
			SHA256: sha256Hex(sameBytes.Data), NewSHA256: sha256Hex(data), ReplacedBy: cur.ID})
	case rec != nil:
		dropRouterReplacement(rec.Target) // a plan's record that no apply used
	}
}

// routerFileIDKey is the private-state key of the identity
// (atomicfile.FileID) of the file a resource last wrote or read. Destroy
// removes the file only if it is still that file: a create_before_destroy
// replacement at the same path has written a new file, perhaps with the
// very same bytes, which the old object's destroy must leave.
const routerFileIDKey = "router_file_id"

func setRouterFileID(ctx context.Context, private privateSetter, id string, diags *diag.Diagnostics) {
	raw, _ := json.Marshal(id)
	diags.Append(private.SetKey(ctx, routerFileIDKey, raw)...)
}

// routerFileID is the identity recorded by setRouterFileID, or "" (a state
// written before it was recorded).
func routerFileID(ctx context.Context, private privateGetter) string {
	var id string
	if raw, d := private.GetKey(ctx, routerFileIDKey); !d.HasError() && raw != nil {
		_ = json.Unmarshal(raw, &id)
	}
	return id
}

// unparsedRouterFileContent is what content holds in the state when the
// file at name does not parse: a placeholder, never the file's bytes.
func unparsedRouterFileContent(name string) string {
	return "(the router file " + name + " does not parse; its bytes are not kept in the state)"
}

// sameRouterPath reports whether writing a and writing b write one file:
// the same path however spelled (canonicalRouterPath), or two names of one
// existing file (hard links).
func sameRouterPath(a, b string) bool {
	if a == b {
		return true
	}
	ca, errA := canonicalRouterPath(a)
	cb, errB := canonicalRouterPath(b)
	if errA == nil && errB == nil && ca == cb {
		return true
	}
	fa, errA := os.Stat(a)
	fb, errB := os.Stat(b)
	return errA == nil && errB == nil && os.SameFile(fa, fb)
}

// sameRouterFile reports whether content, a router file in any layout,
// says exactly what canonical (artifact.Marshal's form) says: its own
// canonical form is those bytes.
func sameRouterFile(content, canonical string) bool {
	if content == canonical {
		return true
	}
	t, err := artifact.Parse([]byte(content))
	if err != nil {
		return false
	}
	data, err := artifact.Marshal(t)
	return err == nil && string(data) == canonical
}

func sha256Hex(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// keepFileMode maps the file's mode to file_permission, keeping the prior
// spelling ("640" or "0640") when it means the same mode.
func keepFileMode(mode fs.FileMode, prior types.String) types.String {
	if v, err := strconv.ParseUint(prior.ValueString(), 8, 32); err == nil && fs.FileMode(v) == mode {
		return prior
	}
	return types.StringValue(fmt.Sprintf("%04o", uint32(mode)))
}

// Configuration → artifact.Topology.

// routerTopologyFromModel builds the topology a configuration or plan
// declares: the primary is nodes[0], the replicas follow in order, so
// artifact's problem paths map back to blocks. known is false when any
// value is unknown.
func routerTopologyFromModel(ctx context.Context, m routerConfigModel, diags *diag.Diagnostics) (t artifact.Topology, known bool) {
	for _, v := range []attr.Value{m.Primary, m.Replica, m.ReadPolicy, m.Consistency, m.Health, m.Route, m.Pool} {
		if v.IsUnknown() {
			return t, false
		}
	}
	known = true
	var primary routerNodeModel
	if !m.Primary.IsNull() {
		diags.Append(m.Primary.As(ctx, &primary, basetypes.ObjectAsOptions{})...)
		n, ok := routerNodeFromModel(primary, artifact.RolePrimary, path.Root("primary"), diags)
		known = known && ok
		t.Nodes = append(t.Nodes, n)
	}
	var replicas []routerNodeModel
	diags.Append(m.Replica.ElementsAs(ctx, &replicas, false)...)
	for i, rm := range replicas {
		n, ok := routerNodeFromModel(rm, artifact.RoleReplica, path.Root("replica").AtListIndex(i), diags)
		known = known && ok
		t.Nodes = append(t.Nodes, n)
	}
	if !m.ReadPolicy.IsNull() {
		var rp routerReadPolicyModel
		diags.Append(m.ReadPolicy.As(ctx, &rp, basetypes.ObjectAsOptions{})...)
		known = known && allKnown(rp.Strategy, rp.Fallback)
		t.ReadPolicy = artifact.ReadPolicy{Strategy: rp.Strategy.ValueString(), Fallback: rp.Fallback.ValueString()}
	}
	if !m.Consistency.IsNull() {
		var c routerConsistencyModel
		diags.Append(m.Consistency.As(ctx, &c, basetypes.ObjectAsOptions{})...)
		known = known && allKnown(c.Mode, c.WaitTimeout)
		t.Consistency = artifact.Consistency{Mode: c.Mode.ValueString(), WaitTimeout: artifact.Duration(c.WaitTimeout.ValueString())}
	}
	if !m.Health.IsNull() {
		var h routerHealthModel
		diags.Append(m.Health.As(ctx, &h, basetypes.ObjectAsOptions{})...)
		known = known && allKnown(h.Interval, h.Timeout, h.ConnectTimeout, h.EjectAfter, h.ReadmitAfter)
		t.Health = artifact.Health{
			Interval:       artifact.Duration(h.Interval.ValueString()),
			Timeout:        artifact.Duration(h.Timeout.ValueString()),
			ConnectTimeout: artifact.Duration(h.ConnectTimeout.ValueString()),
			EjectAfter:     intAt(h.EjectAfter, path.Root("health").AtName("eject_after"), diags),
			ReadmitAfter:   intAt(h.ReadmitAfter, path.Root("health").AtName("readmit_after"), diags),
		}
	}
	var routes []routerRouteModel
	diags.Append(m.Route.ElementsAs(ctx, &routes, false)...)
	for _, rm := range routes {
		known = known && allKnown(rm.Name, rm.Nodes, rm.Strategy, rm.Fallback)
		var nodes []types.String
		if !rm.Nodes.IsUnknown() {
			diags.Append(rm.Nodes.ElementsAs(ctx, &nodes, false)...)
		}
		r := artifact.Route{Name: rm.Name.ValueString(), Strategy: rm.Strategy.ValueString(), Fallback: rm.Fallback.ValueString()}
		for _, n := range nodes {
			known = known && !n.IsUnknown()
			r.Nodes = append(r.Nodes, n.ValueString())
		}
		t.Routes = append(t.Routes, r)
	}
	if !m.Pool.IsNull() {
		var p routerPoolModel
		diags.Append(m.Pool.As(ctx, &p, basetypes.ObjectAsOptions{})...)
		known = known && allKnown(p.MaxConns, p.MinConns, p.MaxConnLifetime)
		t.Pool = artifact.Pool{
			// The schema bounds both to int32.
			MaxConns:        int32(p.MaxConns.ValueInt64()),
			MinConns:        int32(p.MinConns.ValueInt64()),
			MaxConnLifetime: artifact.Duration(p.MaxConnLifetime.ValueString()),
		}
	}
	return t, known
}

func routerNodeFromModel(n routerNodeModel, role string, p path.Path, diags *diag.Diagnostics) (artifact.Node, bool) {
	known := allKnown(n.Name, n.Host, n.Port, n.Database, n.User, n.SSLMode, n.SSLRootCert, n.PasswordEnv,
		n.Passfile, n.Zone, n.Weight, n.MaxLag, n.MaxLagBytes, n.Synchronous)
	if passwordEnvLooksLikePassword(n.PasswordEnv.ValueString()) {
		// Never echo the value: it may be the password itself.
		diags.AddAttributeError(p.AtName("password_env"), "password_env Looks Like a Password",
			fmt.Sprintf("%s of %s %q has lower-case letters, as passwords do and environment variable names rarely do (the value is not shown). "+
				"password_env is the NAME of the variable that holds the password where the application runs, such as PGREPLICATION_APP_PASSWORD. "+
				"Use an upper-case name; if the value was a password, change that password, because it is now in your configuration.", p.AtName("password_env"), role, n.Name.ValueString()))
	}
	return artifact.Node{
		Name:        n.Name.ValueString(),
		Role:        role,
		Host:        n.Host.ValueString(),
		Port:        intAt(n.Port, p.AtName("port"), diags),
		Database:    n.Database.ValueString(),
		User:        n.User.ValueString(),
		SSLMode:     n.SSLMode.ValueString(),
		SSLRootCert: n.SSLRootCert.ValueString(),
		PasswordEnv: n.PasswordEnv.ValueString(),
		Passfile:    n.Passfile.ValueString(),
		Zone:        n.Zone.ValueString(),
		Weight:      intAt(n.Weight, p.AtName("weight"), diags),
		MaxLag:      artifact.Duration(n.MaxLag.ValueString()),
		MaxLagBytes: n.MaxLagBytes.ValueInt64(),
		Synchronous: n.Synchronous.ValueBool(),
	}, known
}

// passwordEnvLooksLikePassword reports whether a password_env value has
// lower-case letters, as passwords do and environment variable names rarely
// do.
func passwordEnvLooksLikePassword(pe string) bool { return strings.ToUpper(pe) != pe }

// intAt converts an Int64 attribute to int, refusing a value that would
// wrap around into a different, possibly valid, one.
func intAt(v types.Int64, p path.Path, diags *diag.Diagnostics) int {
	i := v.ValueInt64()
	if i < math.MinInt32 || i > math.MaxInt32 {
		diags.AddAttributeError(p, "Value Out of Range", fmt.Sprintf("%s = %d is far outside the range the router file allows.", p, i))
		return 0
	}
	return int(i)
}

func allKnown(values ...attr.Value) bool {
	for _, v := range values {
		if v.IsUnknown() {
			return false
		}
	}
	return true
}

// Validation problems → attribute errors.

// schemaChecked are the artifact fields whose values the schema's own
// OneOf validators check; at validation time artifact's "unknown value"
// problem for them would repeat the schema's. Their other problems (such
// as nearest_zone without zones) are still reported. Should artifact's
// wording change, the cost is a repeated error, never a lost one.
var schemaChecked = []string{"sslmode", "strategy", "fallback", "mode"}

// addTopologyProblems adds one attribute error per problem of a
// *artifact.ValidationError, on the attribute the problem's path names,
// with a detail that names the object, the cause and the fix.
func addTopologyProblems(t artifact.Topology, err error, skipSchemaChecked bool, diags *diag.Diagnostics) {
	var ve *artifact.ValidationError
	if !errors.As(err, &ve) {
		diags.AddError("Invalid Router Topology", "The router file cannot be written: "+err.Error())
		return
	}
	var reported []path.Path // attributes that already have an error
	for _, d := range diags.Errors() {
		if dp, ok := d.(diag.DiagnosticWithPath); ok {
			reported = append(reported, dp.Path())
		}
	}
	for _, p := range ve.Problems {
		attrPath, object := routerProblemPath(t, p.Path)
		field := p.Path[strings.LastIndexByte(p.Path, '.')+1:]
		if skipSchemaChecked && slices.Contains(schemaChecked, field) && strings.HasPrefix(p.Message, "unknown ") ||
			slices.ContainsFunc(reported, attrPath.Equal) {
			continue
		}
		msg := routerProblemRefs.ReplaceAllStringFunc(p.Message, func(ref string) string {
			rp, _ := routerProblemPath(t, ref)
			return rp.String()
		})
		if field == "password_env" {
			// artifact quotes the value, which may be the password itself.
			msg = "is not an environment variable name (the value is not shown, in case it is a password); use letters, digits and underscores, not starting with a digit: the NAME of the variable that holds the password, such as PGREPLICATION_APP_PASSWORD"
		}
		detail := fmt.Sprintf("%s: %s: %s.", object, attrPath, strings.TrimSuffix(msg, "."))
		if attrPath.Equal(path.Empty()) {
			diags.AddError("Invalid Router Topology", detail)
			continue
		}
		diags.AddAttributeError(attrPath, "Invalid Router Topology", detail)
	}
}

// routerProblemRefs finds artifact paths inside problem messages ("also
// used by nodes[1]"), to be rewritten as attribute paths.
var routerProblemRefs = regexp.MustCompile(`routes\[\d+\]\.nodes\[\d+\]|nodes\[\d+\]|routes\[\d+\]`)

// routerProblemSegment is one segment of an artifact problem path:
// a field name and any list indexes after it.
var routerProblemSegment = regexp.MustCompile(`^([a-z_]+)((?:\[\d+\])*)$`)

// routerProblemPath maps an artifact problem path ("nodes[2].max_lag",
// "routes[0].nodes[1]") to the attribute path of the configuration that
// routerTopologyFromModel built t from, and names the object for a
// message (`replica "replica-2"`).
func routerProblemPath(t artifact.Topology, problem string) (path.Path, string) {
	p, object := path.Empty(), "the router topology"
	for i, seg := range strings.Split(problem, ".") {
		m := routerProblemSegment.FindStringSubmatch(seg)
		if m == nil {
			return p, object
		}
		name := m[1]
		var idx []int
		for _, s := range strings.Split(strings.Trim(m[2], "[]"), "][") {
			if n, err := strconv.Atoi(s); err == nil {
				idx = append(idx, n)
			}
		}
		switch {
		case i == 0 && name == "nodes" && len(idx) > 0:
			k, role := idx[0], "replica"
			if k == 0 {
				p, role = path.Root("primary"), "primary"
			} else {
				p = path.Root("replica").AtListIndex(k - 1)
			}
			if k < len(t.Nodes) {
				object = fmt.Sprintf("%s %q", role, t.Nodes[k].Name)
			}
			idx = idx[1:]
		case i == 0 && name == "nodes":
			p, object = path.Root("primary"), "the nodes"
		case i == 0 && name == "routes":
			p = path.Root("route")
			if len(idx) > 0 {
				p = p.AtListIndex(idx[0])
				if idx[0] < len(t.Routes) {
					object = fmt.Sprintf("route %q", t.Routes[idx[0]].Name)
				}
				idx = idx[1:]
			}
		case i == 0 && name == "format_version":
			return path.Empty(), object
		case i == 0:
			p, object = path.Root(name), "the "+name+" block"
		case name == "role":
			// Not an attribute: the block decides the role.
			continue
		default:
			p = p.AtName(name)
		}
		for _, k := range idx {
			p = p.AtListIndex(k)
		}
	}
	return p, object
}

// File → state.

// routerObjectType is the object type of a block, from the schema.
func routerObjectType(block string) types.ObjectType {
	switch b := routerConfigSchema().Blocks[block].(type) {
	case schema.SingleNestedBlock:
		return b.Type().(types.ObjectType)
	case schema.ListNestedBlock:
		return b.NestedObject.Type().(types.ObjectType)
	}
	panic("no block " + block)
}

// routerModelFromFile maps a router file to the resource's blocks. Where a
// field has the same meaning in the file as in prior (the state Terraform
// holds), prior's value is kept: a null and a "" are the same absent field,
// and replicas and routes keep prior's order rather than the file's sorted
// one. So state after Read equals the configuration unless the file
// changed. why is non-nil when the file does not parse or cannot be
// expressed as the resource's attributes (not exactly one primary).
func routerModelFromFile(ctx context.Context, data []byte, prior routerConfigModel) (m routerConfigModel, why error) {
	t, err := artifact.Parse(data)
	if err != nil {
		return m, err
	}
	// Parse refuses a "password" field; a password inside a connection URI
	// given as a host is the other place a file edited by hand can hold one.
	for i, n := range t.Nodes {
		if u, err := url.Parse(n.Host); err == nil && u.User != nil {
			if _, has := u.User.Password(); has {
				return m, fmt.Errorf("nodes[%d].host: %w: the host is a connection URI with a password; secrets never go in the router file; "+
					"put the host alone there and the password in password_env or passfile", i, artifact.ErrPasswordField)
			}
		}
	}
	// A password typed where the variable's name goes would show in the
	// plan as a changed password_env, and stay in the state: the same two
	// rules as the configuration's (artifact's, and no lower-case letters)
	// make it a file that does not parse, whose bytes are never kept.
	var pe []string
	if err := t.Validate(); err != nil {
		var ve *artifact.ValidationError
		if errors.As(err, &ve) {
			for _, p := range ve.Problems {
				if strings.HasSuffix(p.Path, ".password_env") {
					pe = append(pe, p.Path)
				}
			}
		}
	}
	for i, n := range t.Nodes {
		if passwordEnvLooksLikePassword(n.PasswordEnv) {
			pe = append(pe, fmt.Sprintf("nodes[%d].password_env", i))
		}
	}
	if len(pe) > 0 {
		slices.Sort(pe)
		return m, fmt.Errorf("%s: not the name of an environment variable this provider accepts (the value is not shown, in case it is a password): "+
			"upper-case letters, digits and underscores, such as PGREPLICATION_APP_PASSWORD", strings.Join(slices.Compact(pe), ", "))
	}
	var primaries []artifact.Node
	var replicas []artifact.Node
	for i, n := range t.Nodes {
		switch n.Role {
		case artifact.RolePrimary:
			primaries = append(primaries, n)
		case artifact.RoleReplica:
			replicas = append(replicas, n)
		default:
			return m, fmt.Errorf("nodes[%d] %q has role %q; allowed: %s", i, n.Name, n.Role, strings.Join(artifact.Roles, ", "))
		}
	}
	if len(primaries) != 1 {
		return m, fmt.Errorf("the file has %d primaries; exactly one node must have role %q", len(primaries), artifact.RolePrimary)
	}

	var diags diag.Diagnostics
	var priorPrimary routerNodeModel
	if !prior.Primary.IsNull() && !prior.Primary.IsUnknown() {
		diags.Append(prior.Primary.As(ctx, &priorPrimary, basetypes.ObjectAsOptions{})...)
	}
	nodeType := routerObjectType("primary")
	m.Primary, _ = types.ObjectValueFrom(ctx, nodeType.AttrTypes, routerNodeToModel(primaries[0], priorPrimary))

	var priorReplicas []routerNodeModel
	if !prior.Replica.IsNull() && !prior.Replica.IsUnknown() {
		diags.Append(prior.Replica.ElementsAs(ctx, &priorReplicas, false)...)
	}
	replicaModels := make([]routerNodeModel, 0, len(replicas))
	used := make([]bool, len(replicas))
	for _, pr := range priorReplicas {
		for i, n := range replicas {
			if !used[i] && n.Name == pr.Name.ValueString() {
				used[i] = true
				replicaModels = append(replicaModels, routerNodeToModel(n, pr))
				break
			}
		}
	}
	for i, n := range replicas {
		if !used[i] {
			replicaModels = append(replicaModels, routerNodeToModel(n, routerNodeModel{}))
		}
	}
	m.Replica, _ = types.ListValueFrom(ctx, routerObjectType("replica"), replicaModels)

	m.ReadPolicy = routerBlockFromFile(ctx, "read_policy", t.ReadPolicy == artifact.ReadPolicy{}, prior.ReadPolicy, &diags,
		func(p routerReadPolicyModel) routerReadPolicyModel {
			return routerReadPolicyModel{
				Strategy: keepString(t.ReadPolicy.Strategy, p.Strategy),
				Fallback: keepString(t.ReadPolicy.Fallback, p.Fallback),
			}
		})
	m.Consistency = routerBlockFromFile(ctx, "consistency", t.Consistency == artifact.Consistency{}, prior.Consistency, &diags,
		func(p routerConsistencyModel) routerConsistencyModel {
			return routerConsistencyModel{
				Mode:        keepString(t.Consistency.Mode, p.Mode),
				WaitTimeout: keepDuration(t.Consistency.WaitTimeout, p.WaitTimeout),
			}
		})
	m.Health = routerBlockFromFile(ctx, "health", t.Health == artifact.Health{}, prior.Health, &diags,
		func(p routerHealthModel) routerHealthModel {
			return routerHealthModel{
				Interval:       keepDuration(t.Health.Interval, p.Interval),
				Timeout:        keepDuration(t.Health.Timeout, p.Timeout),
				ConnectTimeout: keepDuration(t.Health.ConnectTimeout, p.ConnectTimeout),
				EjectAfter:     keepInt64(int64(t.Health.EjectAfter), p.EjectAfter),
				ReadmitAfter:   keepInt64(int64(t.Health.ReadmitAfter), p.ReadmitAfter),
			}
		})
	m.Pool = routerBlockFromFile(ctx, "pool", t.Pool == artifact.Pool{}, prior.Pool, &diags,
		func(p routerPoolModel) routerPoolModel {
			return routerPoolModel{
				MaxConns:        keepInt64(int64(t.Pool.MaxConns), p.MaxConns),
				MinConns:        keepInt64(int64(t.Pool.MinConns), p.MinConns),
				MaxConnLifetime: keepDuration(t.Pool.MaxConnLifetime, p.MaxConnLifetime),
			}
		})

	var priorRoutes []routerRouteModel
	if !prior.Route.IsNull() && !prior.Route.IsUnknown() {
		diags.Append(prior.Route.ElementsAs(ctx, &priorRoutes, false)...)
	}
	routeModels := make([]routerRouteModel, 0, len(t.Routes))
	usedRoute := make([]bool, len(t.Routes))
	for _, pr := range priorRoutes {
		for i, r := range t.Routes {
			if !usedRoute[i] && r.Name == pr.Name.ValueString() {
				usedRoute[i] = true
				routeModels = append(routeModels, routerRouteToModel(ctx, r, pr))
				break
			}
		}
	}
	for i, r := range t.Routes {
		if !usedRoute[i] {
			routeModels = append(routeModels, routerRouteToModel(ctx, r, routerRouteModel{}))
		}
	}
	m.Route, _ = types.ListValueFrom(ctx, routerObjectType("route"), routeModels)
	if diags.HasError() {
		return m, fmt.Errorf("the prior state does not match the schema: %v", diags)
	}
	return m, nil
}

// routerBlockFromFile maps a single block of the file: null when the file
// has none and neither had the state; otherwise build's object, given
// prior's values (all null when prior is null) to keep where they agree.
func routerBlockFromFile[T any](ctx context.Context, block string, zero bool, prior types.Object, diags *diag.Diagnostics, build func(prior T) T) types.Object {
	ot := routerObjectType(block)
	if zero && prior.IsNull() {
		return types.ObjectNull(ot.AttrTypes)
	}
	var p T
	if !prior.IsNull() && !prior.IsUnknown() {
		diags.Append(prior.As(ctx, &p, basetypes.ObjectAsOptions{})...)
	}
	v, d := types.ObjectValueFrom(ctx, ot.AttrTypes, build(p))
	diags.Append(d...)
	return v
}

func routerNodeToModel(n artifact.Node, p routerNodeModel) routerNodeModel {
	return routerNodeModel{
		Name:        keepString(n.Name, p.Name),
		Host:        keepString(n.Host, p.Host),
		Port:        keepInt64(int64(n.Port), p.Port),
		Database:    keepString(n.Database, p.Database),
		User:        keepString(n.User, p.User),
		SSLMode:     keepString(n.SSLMode, p.SSLMode),
		SSLRootCert: keepString(n.SSLRootCert, p.SSLRootCert),
		PasswordEnv: keepString(n.PasswordEnv, p.PasswordEnv),
		Passfile:    keepString(n.Passfile, p.Passfile),
		Zone:        keepString(n.Zone, p.Zone),
		Weight:      keepInt64(int64(n.Weight), p.Weight),
		MaxLag:      keepDuration(n.MaxLag, p.MaxLag),
		MaxLagBytes: keepInt64(n.MaxLagBytes, p.MaxLagBytes),
		Synchronous: keepBool(n.Synchronous, p.Synchronous),
	}
}

// routerRouteToModel maps a route, keeping prior's node order when it lists
// the same nodes (the file lists them sorted).
func routerRouteToModel(ctx context.Context, r artifact.Route, p routerRouteModel) routerRouteModel {
	nodes, _ := types.ListValueFrom(ctx, types.StringType, r.Nodes)
	if !p.Nodes.IsNull() && !p.Nodes.IsUnknown() {
		var prior []string
		if !p.Nodes.ElementsAs(ctx, &prior, false).HasError() {
			a, b := slices.Clone(prior), slices.Clone(r.Nodes)
			slices.Sort(a)
			slices.Sort(b)
			if slices.Equal(a, b) {
				nodes = p.Nodes
			}
		}
	}
	return routerRouteModel{
		Name:     keepString(r.Name, p.Name),
		Nodes:    nodes,
		Strategy: keepString(r.Strategy, p.Strategy),
		Fallback: keepString(r.Fallback, p.Fallback),
	}
}

// keepString maps a file field to an attribute: prior when it means the
// same (null and "" are both "absent"), null for an absent field, else the
// file's value.
func keepString(file string, prior types.String) types.String {
	if !prior.IsUnknown() && prior.ValueString() == file {
		return prior
	}
	if file == "" {
		return types.StringNull()
	}
	return types.StringValue(file)
}

// keepDuration is keepString for a duration: prior also when the file says
// the same length of time in other units ("1000ms" for "1s").
func keepDuration(file artifact.Duration, prior normalized.Duration) normalized.Duration {
	if same, _ := prior.StringSemanticEquals(context.Background(), normalized.NewDuration(string(file))); same {
		return prior
	}
	return normalized.Duration{StringValue: keepString(string(file), prior.StringValue)}
}

func keepInt64(file int64, prior types.Int64) types.Int64 {
	if !prior.IsUnknown() && prior.ValueInt64() == file {
		return prior
	}
	if file == 0 {
		return types.Int64Null()
	}
	return types.Int64Value(file)
}

func keepBool(file bool, prior types.Bool) types.Bool {
	if !prior.IsUnknown() && prior.ValueBool() == file {
		return prior
	}
	if !file {
		return types.BoolNull()
	}
	return types.BoolValue(file)
}
