package provider

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework-validators/mapvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/setvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/mapdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/setdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgreplication/terraform-provider-pgreplication/internal/sqllex"
	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/importid"
	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/pgsql"
	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/statement"
	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/validate"
)

var (
	_ resource.ResourceWithConfigure      = (*publicationResource)(nil)
	_ resource.ResourceWithImportState    = (*publicationResource)(nil)
	_ resource.ResourceWithModifyPlan     = (*publicationResource)(nil)
	_ resource.ResourceWithValidateConfig = (*publicationResource)(nil)
	_ resource.ResourceWithUpgradeState   = (*publicationResource)(nil)
)

func newPublicationResource() resource.Resource { return &publicationResource{} }

// publicationResource manages one PostgreSQL publication: the publisher side
// of logical replication. It changes a publication in place with ALTER
// PUBLICATION wherever PostgreSQL can, and reads it back from the catalogs
// (pg_publication, pg_publication_rel, pg_publication_namespace), never from
// the pg_publication_tables view, which expands schemas and partitioned
// tables into leaf tables that the configuration never named.
type publicationResource struct {
	server *server
}

// publishActions are the operations a publication can publish, in the order
// PostgreSQL lists them.
var publishActions = []string{"insert", "update", "delete", "truncate"}

// generatedColumnsModes are the values of publish_generated_columns
// (PostgreSQL 18): whether stored generated columns are published.
var generatedColumnsModes = []string{"none", "stored"}

func (r *publicationResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_publication"
}

func (r *publicationResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = publicationSchema()
}

func publicationSchema() schema.Schema {
	allPublish := make([]attr.Value, len(publishActions))
	for i, a := range publishActions {
		allPublish[i] = types.StringValue(a)
	}
	return schema.Schema{
		// Version 1 keys tables by name (tables), where version 0 had a set
		// of table blocks: see UpgradeState.
		Version: 1,
		MarkdownDescription: "A PostgreSQL publication: the tables whose changes a publisher sends to logical replication subscribers. " +
			"Apply it to the primary. Changes are made in place with `ALTER PUBLICATION` (rename, owner, options, tables and schemas); " +
			"only `database` replaces the publication, and `all_tables` drops and creates it in one transaction, because PostgreSQL cannot alter them. " +
			"Read compares the catalogs (`pg_publication`, `pg_publication_rel`, `pg_publication_namespace`) with the configuration, " +
			"so a change made outside Terraform shows in `terraform plan` on the attribute that changed. " +
			"Subscribers can only use a publication when the publisher runs with `wal_level = logical`: plan warns otherwise. " +
			"Destroying, renaming or replacing a publication that a subscription streams now is refused, naming the subscription " +
			"(plan warns): it would stop that subscription for good. Drop or disable the subscription, or take the publication out of it, first. " +
			"The publisher shows which publications a session streams only to a role that may read its command in `pg_stat_activity` " +
			"(`pg_read_all_stats`, or the subscription's own role); otherwise plan warns that it cannot tell, and the apply goes ahead. " +
			"A subscription that is not streaming (disabled, or restarting after an error) cannot be told either: plan names the pgoutput slots " +
			"in the database that no session streams from.\n\n" +
			"`lifecycle { create_before_destroy = true }` cannot replace a publication under the same name in the same database " +
			"(`terraform apply -replace`, `replace_triggered_by`): the new one would be created while the old one still holds the name. " +
			"Terraform does not tell the provider that setting at plan, so the apply fails at the new publication (\"Publication Already Exists\") " +
			"and Terraform keeps the old one as a deposed object, which every later plan refuses the same way. Leave `create_before_destroy` off " +
			"(a replacement then drops the old publication first), or give the new one another name in the same change. To recover, " +
			"`terraform state rm <address>`, then import the publication (`terraform import <address> <database>/<name>`)." +
			privilegesText(
				requirement{createOnDatabasePrivilege("app"), "creating a publication in the database (here `app`)."},
				requirement{tableOwnerPrivilege("public.books"), "for each table of `tables` (here `public.books`): PostgreSQL lets only a table's owner publish it."},
				requirement{superuserPrivilege, "`all_tables` and `tables_in_schema` only: PostgreSQL lets only a superuser publish all tables or a schema's."},
			) + " Changing and dropping the publication needs its ownership, which the role has when it created it; `owner` needs membership in the new owner role." +
			planPrivilegesText("`CONNECT` on the database, nothing more: the catalogs a plan reads are readable by every role, and it compares row filters "+
				"without touching the tables."),
		Attributes: map[string]schema.Attribute{
			// Required
			"name": schema.StringAttribute{
				Required:   true,
				Validators: []validator.String{identifierValidator},
				MarkdownDescription: "Publication name, any PostgreSQL identifier (quoted, so case and punctuation are kept). Changing it renames the publication in place (`ALTER PUBLICATION … RENAME TO`). " +
					"A name with a backslash draws a warning at plan: PostgreSQL's apply worker cannot stream from such a publication, so no PostgreSQL subscriber can use it.",
			},

			// Optional
			"database": schema.StringAttribute{
				Optional:            true,
				Computed:            true,
				Validators:          []validator.String{identifierValidator},
				MarkdownDescription: "Database the publication belongs to. Defaults to the provider's `database`. Changing it (or, when unset, the provider's database) replaces the publication.",
			},
			"owner": schema.StringAttribute{
				Optional:            true,
				Computed:            true,
				Validators:          []validator.String{identifierValidator},
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
				MarkdownDescription: "Role that owns the publication (`ALTER PUBLICATION … OWNER TO`). Defaults to the role the provider connects as; when unset, whatever owner the server reports is kept.",
			},
			"all_tables": schema.BoolAttribute{
				Optional: true,
				Computed: true,
				Default:  booldefault.StaticBool(false),
				MarkdownDescription: "Publish every table of the database, including tables created later (`FOR ALL TABLES`). Defaults to `false`. Cannot be combined with `tables` or `tables_in_schema`. " +
					"PostgreSQL cannot alter it: changing it drops the publication and creates it again in one transaction, so that its subscribers " +
					"stream on (a change committed between a separate drop and create would stop them: the publisher decodes it, finds no publication, and fails).",
			},
			"tables": schema.MapNestedAttribute{
				Optional: true,
				Computed: true,
				Default:  mapdefault.StaticValue(types.MapValueMust(types.ObjectType{AttrTypes: publicationTableAttrTypes}, nil)),
				Validators: []validator.Map{
					mapvalidator.KeysAre(tableKeyValidator),
				},
				MarkdownDescription: "Tables to publish, keyed by the table's schema-qualified name, each with an optional column list and row filter: " +
					"`tables = { \"public.books\" = { columns = [\"id\", \"title\"], where = \"price > 0\" } }`. " +
					"A key is written as PostgreSQL's `quote_ident` writes each part: bare when it is a lower-case word that is not a reserved keyword, " +
					"in double quotes otherwise (`\"\\\"My Schema\\\".\\\"Odd.Table\\\"\"` in HCL for the schema `My Schema` and the table `Odd.Table`); " +
					"a key written any other way is refused at plan time with the spelling to use, so that a refresh, which reads the key back from the catalog, " +
					"and an import always spell it as the configuration does. A column list or row filter changed outside Terraform shows in the plan as " +
					"a change of that table's `columns` or `where` alone. " +
					"Each table is published `FOR TABLE ONLY`: a table inheriting from it is not published with it; a partitioned table's partitions always are, through it. " +
					"Tables are added, dropped and changed in place (`ALTER PUBLICATION … SET`). Defaults to none. Cannot be combined with `all_tables`. " +
					"Earlier versions of the provider declared each table in a `table` block (`schema`, `name`, `columns`, `where`): a state they wrote is upgraded on the next plan, " +
					"and such a block becomes the element `\"schema.name\" = { columns = …, where = … }`.",
				NestedObject: schema.NestedAttributeObject{
					Attributes: map[string]schema.Attribute{
						"columns": schema.SetAttribute{
							ElementType: types.StringType,
							Optional:    true,
							Validators: []validator.Set{
								setvalidator.SizeAtLeast(1),
								setvalidator.ValueStringsAre(identifierValidator),
							},
							MarkdownDescription: "Column list: publish only these columns, named as they are spelled in the catalog (quoted: case and punctuation are kept). " +
								"Defaults to every column, including columns added later. " +
								"A set, so the order does not matter. A publication that publishes `update` or `delete` must include the replica identity columns " +
								"(PostgreSQL reports that when the UPDATE or DELETE runs, not when the publication is created). " +
								"Needs PostgreSQL 15 or later (checked at plan time); cannot be combined with `tables_in_schema`.",
						},
						"where": schema.StringAttribute{
							Optional:      true,
							Computed:      true,
							Validators:    []validator.String{rowFilterValidator},
							PlanModifiers: []planmodifier.String{unsetIsNone{}},
							MarkdownDescription: "Row filter: a boolean SQL expression over the table's columns (`amount > 100`), without `WHERE` (the provider adds the parentheses PostgreSQL's syntax wants around it). " +
								"Only rows for which it is true are published. Defaults to no filter. Needs PostgreSQL 15 or later (checked at plan time). " +
								"PostgreSQL stores the expression in its own normal form (`amount > 100` reads back as `(amount > 100)`), and refresh reads that form into the state; " +
								"an expression that means the same is not a change, and the plan shows one only when the configured expression means something else. " +
								"To compare the two, the plan asks the server to parse both (`EXPLAIN` of the filter over typed NULLs: read-only, no lock on the table, so a role that may only read can plan). " +
								"The filter must be one expression: a semicolon, a comment, a parenthesis it does not open and close, or a subquery is refused at plan time. " +
								"When the table exists at plan time, so is a filter the server cannot parse or type (an unknown column, operator or function, a result that is not boolean); " +
								"and a function PostgreSQL does not allow in a row filter: one that is user-defined, or built-in but not immutable (`random()`, `now()`), when every function of the name called is so (a catalog read; an overloaded name whose functions differ is left to the server). " +
								"So is a user-defined operator (or one whose function is user-defined or not immutable) when every operator of that symbol is so, a `COLLATE` or a cast (`::` or `CAST … AS`) naming a user-defined collation or type, " +
								"and a column of a user-defined type (an enum, a domain) or collation written as a bare name (a catalog read each; what the text does not tell apart for sure, such as a qualified column or a multi-word type, is left to the server). " +
								"PostgreSQL's other limits on row filters (system columns, an overloaded operator or function whose candidates differ) are checked when the publication is created or changed. " +
								"When `publish` includes `update` or `delete`, the filter may only use columns of the table's replica identity: " +
								"PostgreSQL does not check that when the publication is created, but fails the UPDATE or DELETE on the publisher.",
						},
					},
				},
			},
			"tables_in_schema": schema.SetAttribute{
				ElementType: types.StringType,
				Optional:    true,
				Computed:    true,
				Default:     setdefault.StaticValue(types.SetValueMust(types.StringType, nil)),
				Validators:  []validator.Set{setvalidator.ValueStringsAre(identifierValidator)},
				MarkdownDescription: "Schemas all of whose tables are published, including tables created in them later (`FOR TABLES IN SCHEMA`). " +
					"Defaults to none. Changed in place (`ALTER PUBLICATION … SET`). Needs PostgreSQL 15 or later (checked at plan time). " +
					"PostgreSQL refuses column lists (`columns` of `tables`) in a publication that has schemas, and system schemas (`pg_catalog`, `pg_toast`, temporary schemas): both refused at plan time.",
			},
			"publish": schema.SetAttribute{
				ElementType:         types.StringType,
				Optional:            true,
				Computed:            true,
				Default:             setdefault.StaticValue(types.SetValueMust(types.StringType, allPublish)),
				Validators:          []validator.Set{setvalidator.ValueStringsAre(stringvalidator.OneOf(publishActions...))},
				MarkdownDescription: "Operations to publish, any of " + quotedList(publishActions) + ". Defaults to all four; an empty set publishes nothing. Changed in place (`ALTER PUBLICATION … SET (publish = …)`).",
			},
			"publish_via_partition_root": schema.BoolAttribute{
				Optional:            true,
				Computed:            true,
				Default:             booldefault.StaticBool(false),
				MarkdownDescription: "Publish changes of a partitioned table's partitions as changes of the partitioned table itself, so the subscriber may partition differently or not at all. Defaults to `false`. PostgreSQL allows a row filter (`where`) or a column list (`columns`) on a partitioned table only when this is `true` (checked at plan time). Changed in place. Needs PostgreSQL 13 or later (checked at plan time).",
			},

			"publish_generated_columns": schema.StringAttribute{
				Optional:   true,
				Computed:   true,
				Default:    stringdefault.StaticString(generatedColumnsModes[0]),
				Validators: []validator.String{stringvalidator.OneOf(generatedColumnsModes...)},
				MarkdownDescription: "Whether the values of stored generated columns are published (`publish_generated_columns`), one of " + quotedList(generatedColumnsModes) +
					". Defaults to `none`, which is also what a server older than PostgreSQL 18 does. `stored` needs PostgreSQL 18 or later (checked at plan time). " +
					"A column list that names a generated column publishes it either way. Changed in place.",
			},

			// Computed
			"id": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "The import ID: `database/name`, with `%` and `/` inside a name escaped as `%25` and `%2F`.",
			},
		},
	}
}

func (r *publicationResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.server = serverFromProviderData(req.ProviderData, &resp.Diagnostics)
}

func (r *publicationResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan, config publicationModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.Config.Get(ctx, &config)...)
	if resp.Diagnostics.HasError() {
		return
	}
	ctx = statement.WithObject(ctx, "publication "+pgsql.Ident(plan.Name.ValueString()))
	want, diags := plan.publication(ctx)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	database := plan.Database.ValueString()
	pool := r.server.PoolOrDiag(ctx, database, &resp.Diagnostics)
	if pool == nil {
		return
	}
	facts, ok := r.server.FactsOrDiag(ctx, &resp.Diagnostics)
	if !ok {
		return
	}
	want = want.forServer(facts.Major())
	conn, err := pool.Acquire(ctx)
	if err == nil {
		creator := conn.Conn().PgConn().PID()
		err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if err := execOne(ctx, tx, createPublicationSQL(want)); err != nil {
				return err
			}
			if want.Owner != "" {
				return execOne(ctx, tx, alterOwnerSQL(want.Name, want.Owner))
			}
			return nil
		})
		conn.Release()
		err = unanswered(creator, err)
	}
	// The provider stopped waiting (the statement's bound, the apply
	// interrupted, the answer to COMMIT lost), which does not stop the
	// server: it may have committed, and then the publication must be in
	// the state, or the next apply fails with "already exists".
	got, outcome := createdAnyway(ctx, pool, err, func(ctx context.Context) (*publication, bool, error) {
		got, err := readPublication(ctx, pool, facts.Major(), want.Name, 0)
		return got, got != nil, err
	})
	switch {
	case outcome == createDone && declaredPublication(want, *got):
		resp.Diagnostics.AddWarning("Publication Created After the Provider Stopped Waiting",
			fmt.Sprintf("Publication %q was created in database %q on %s, although the provider stopped waiting for the server's answer (%s). "+
				"It is in the state, so nothing is left behind; nothing needs to be done.", want.Name, database, r.server.describe(), statement.MaskedError(ctx, err)))
		err = nil
	case outcome == createDone:
		resp.Diagnostics.AddError("Cannot Create Publication",
			fmt.Sprintf("Creating publication %q in database %q on %s got no answer (%s), and a publication of that name is there now, "+
				"but not the one declared (%s): it is not recorded. If it is the one you want, import it (terraform import <address> %s) "+
				"and apply again; otherwise drop it there (DROP PUBLICATION %s) and apply again.",
				want.Name, database, r.server.describe(), statement.MaskedError(ctx, err), describePublication(*got),
				importid.Format(database, want.Name), pgsql.Ident(want.Name)))
		return
	case outcome == createUnknown:
		resp.Diagnostics.AddError("Cannot Create Publication",
			fmt.Sprintf("Creating publication %q in database %q on %s got no answer (%s), and whether the server committed it "+
				"could not be found out. Look in pg_publication there: if the publication is listed, import it (terraform import <address> %s) "+
				"or drop it there (DROP PUBLICATION %s), then apply again.",
				want.Name, database, r.server.describe(), statement.MaskedError(ctx, err), importid.Format(database, want.Name), pgsql.Ident(want.Name)))
		return
	}
	if err != nil {
		resp.Diagnostics.AddError("Cannot Create Publication",
			fmt.Sprintf("Creating publication %q in database %q on %s failed. Check that the tables, columns, schemas and owner exist, "+
				"that the provider's role may create publications there (CREATE on the database and ownership of the tables; superuser for all_tables and tables_in_schema), "+
				"and that each row filter is valid.%s The server said: %v", want.Name, database, r.server.describe(), unpublishableAtApply(err),
				r.server.withGrants(ctx, err, want.privileges(database)...)))
		return
	}
	r.confirmApplied(ctx, pool, &plan, config, want, "created", &resp.Diagnostics, resp.Private)
	if resp.Diagnostics.HasError() {
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

func (r *publicationResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state publicationModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	ctx = statement.WithObject(ctx, "publication "+pgsql.Ident(state.Name.ValueString()))
	database := state.Database.ValueString()
	pool := r.server.PoolOrDiag(ctx, database, &resp.Diagnostics)
	if pool == nil {
		return
	}
	facts, ok := r.server.FactsOrDiag(ctx, &resp.Diagnostics)
	if !ok {
		return
	}
	major := facts.Major()
	got, err := readPublication(ctx, pool, major, state.Name.ValueString(), 0)
	if err == nil && got == nil {
		// Renamed by hand? The OID the last apply or read saw finds it,
		// and the plan renames it back instead of creating another.
		if oid := privateOID(ctx, req.Private); oid != 0 {
			got, err = readPublication(ctx, pool, major, "", oid)
		}
	}
	if isMissingDatabase(err) {
		// The database is gone, and the publication with it: plan a create.
		resp.State.RemoveResource(ctx)
		return
	}
	if err != nil {
		resp.Diagnostics.AddError("Cannot Read Publication", r.readFailure(ctx, state.Name.ValueString(), database, err))
		return
	}
	if got == nil {
		resp.State.RemoveResource(ctx)
		return
	}
	resp.Diagnostics.Append(state.setFrom(ctx, *got, database)...)
	if resp.Diagnostics.HasError() {
		return
	}
	resp.Diagnostics.Append(setPrivateOID(ctx, resp.Private, got.OID)...)
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

func (r *publicationResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, state, config publicationModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	resp.Diagnostics.Append(req.Config.Get(ctx, &config)...)
	if resp.Diagnostics.HasError() {
		return
	}
	ctx = statement.WithObject(ctx, "publication "+pgsql.Ident(plan.Name.ValueString()))
	want, diags := plan.publication(ctx)
	resp.Diagnostics.Append(diags...)
	had, diags := state.publication(ctx)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	database := plan.Database.ValueString()
	pool := r.server.PoolOrDiag(ctx, database, &resp.Diagnostics)
	if pool == nil {
		return
	}
	facts, ok := r.server.FactsOrDiag(ctx, &resp.Diagnostics)
	if !ok {
		return
	}
	major := facts.Major()
	want = want.forServer(major)
	if had.Name != want.Name && r.refuseInUse(ctx, pool, "Renaming", had.Name, database, &resp.Diagnostics) {
		return
	}
	// One transaction: the publication changes as planned or not at all,
	// never renamed but not re-owned. The statements are worked out from the
	// catalogs as they are now, not from the state, which a plan with
	// -refresh=false may have taken stale.
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		current, err := readPublication(ctx, tx, major, had.Name, 0)
		if err != nil {
			return err
		}
		if current == nil {
			return fmt.Errorf("publication %q does not exist any more; run terraform apply again to create it", had.Name)
		}
		for _, stmt := range alterPublicationSQL(*current, want) {
			if err := execOne(ctx, tx, stmt); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		resp.Diagnostics.AddError("Cannot Alter Publication",
			fmt.Sprintf("Changing publication %q in database %q on %s failed, and nothing was changed. "+
				"Check that the tables, columns, schemas and owner exist and that each row filter is valid.%s The server said: %v",
				had.Name, database, r.server.describe(), unpublishableAtApply(err), r.server.withGrants(ctx, err, want.privileges(database)...)))
		return
	}
	r.confirmApplied(ctx, pool, &plan, config, want, "altered", &resp.Diagnostics, resp.Private)
	if resp.Diagnostics.HasError() {
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

func (r *publicationResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state publicationModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	ctx = statement.WithObject(ctx, "publication "+pgsql.Ident(state.Name.ValueString()))
	database := state.Database.ValueString()
	pool := r.server.PoolOrDiag(ctx, database, &resp.Diagnostics)
	if pool == nil {
		return
	}
	if r.refuseInUse(ctx, pool, "Dropping", state.Name.ValueString(), database, &resp.Diagnostics) {
		return
	}
	drop := "DROP PUBLICATION IF EXISTS " + pgsql.Ident(state.Name.ValueString())
	_, err := pool.Exec(ctx, drop)
	if err != nil && !isMissingDatabase(err) {
		resp.Diagnostics.AddError("Cannot Drop Publication",
			fmt.Sprintf("Dropping publication %q in database %q on %s failed. The provider's role must own the publication. The server said: %v",
				state.Name.ValueString(), database, r.server.describe(), statement.Error(ctx, drop, err)))
	}
}

func (r *publicationResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	parts, err := importid.Parse(req.ID, "database", "publication")
	if err != nil {
		resp.Diagnostics.AddError("Invalid Import ID", err.Error())
		return
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), importid.Format(parts...))...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("database"), parts[0])...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("name"), parts[1])...)
}

// UpgradeState moves a state of schema version 0, whose tables were a set
// of table blocks, to tables keyed by name. The blocks' schema defaulted to
// public, so every old table has one.
func (r *publicationResource) UpgradeState(context.Context) map[int64]resource.StateUpgrader {
	v0 := publicationSchemaV0()
	return map[int64]resource.StateUpgrader{
		0: {PriorSchema: &v0, StateUpgrader: upgradePublicationStateV0},
	}
}

func upgradePublicationStateV0(ctx context.Context, req resource.UpgradeStateRequest, resp *resource.UpgradeStateResponse) {
	var old publicationModelV0
	resp.Diagnostics.Append(req.State.Get(ctx, &old)...)
	if resp.Diagnostics.HasError() {
		return
	}
	m, diags := old.upgrade(ctx)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

// upgrade is m in schema version 1.
func (m publicationModelV0) upgrade(ctx context.Context) (publicationModel, diag.Diagnostics) {
	var diags diag.Diagnostics
	var old []publicationTableModelV0
	if !m.Tables.IsNull() && !m.Tables.IsUnknown() {
		diags.Append(m.Tables.ElementsAs(ctx, &old, false)...)
	}
	tables := make(map[string]publicationTableModel, len(old))
	for _, t := range old {
		schema := t.Schema.ValueString()
		if t.Schema.IsNull() || schema == "" {
			schema = "public"
		}
		tables[tableKey(schema, t.Name.ValueString())] = publicationTableModel{Columns: t.Columns, Where: t.Where}
	}
	v, d := types.MapValueFrom(ctx, types.ObjectType{AttrTypes: publicationTableAttrTypes}, tables)
	diags.Append(d...)
	return publicationModel{
		ID:                      m.ID,
		Name:                    m.Name,
		Database:                m.Database,
		Owner:                   m.Owner,
		AllTables:               m.AllTables,
		Tables:                  v,
		TablesInSchema:          m.TablesInSchema,
		Publish:                 m.Publish,
		PublishViaPartitionRoot: m.PublishViaPartitionRoot,
		PublishGeneratedColumns: m.PublishGeneratedColumns,
	}, diags
}

// publicationSchemaV0 is the shape of schema version 0, for reading an old
// state: types and nesting only.
func publicationSchemaV0() schema.Schema {
	optionalComputed := func() schema.StringAttribute { return schema.StringAttribute{Optional: true, Computed: true} }
	return schema.Schema{
		Attributes: map[string]schema.Attribute{
			"id":                         schema.StringAttribute{Computed: true},
			"name":                       schema.StringAttribute{Required: true},
			"database":                   optionalComputed(),
			"owner":                      optionalComputed(),
			"all_tables":                 schema.BoolAttribute{Optional: true, Computed: true},
			"tables_in_schema":           schema.SetAttribute{ElementType: types.StringType, Optional: true, Computed: true},
			"publish":                    schema.SetAttribute{ElementType: types.StringType, Optional: true, Computed: true},
			"publish_via_partition_root": schema.BoolAttribute{Optional: true, Computed: true},
			"publish_generated_columns":  optionalComputed(),
		},
		Blocks: map[string]schema.Block{
			"table": schema.SetNestedBlock{
				NestedObject: schema.NestedBlockObject{
					Attributes: map[string]schema.Attribute{
						"name":    schema.StringAttribute{Required: true},
						"schema":  optionalComputed(),
						"columns": schema.SetAttribute{ElementType: types.StringType, Optional: true},
						"where":   schema.StringAttribute{Optional: true},
					},
				},
			},
		},
	}
}

func (r *publicationResource) ValidateConfig(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	var config publicationModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &config)...)
	if resp.Diagnostics.HasError() {
		return
	}
	tables, diags := tablesOf(ctx, config.Tables)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	hasSchemas := !config.TablesInSchema.IsNull() && (config.TablesInSchema.IsUnknown() || len(config.TablesInSchema.Elements()) > 0)
	if config.AllTables.ValueBool() && (len(tables) > 0 || hasSchemas) {
		resp.Diagnostics.AddAttributeError(path.Root("all_tables"), "Conflicting Publication Targets",
			"all_tables = true publishes every table of the database; it cannot be combined with tables or tables_in_schema. "+
				"Remove all_tables, or remove tables and tables_in_schema.")
	}
	if !hasSchemas {
		return
	}
	if !config.TablesInSchema.IsUnknown() {
		var schemas []types.String
		resp.Diagnostics.Append(config.TablesInSchema.ElementsAs(ctx, &schemas, false)...)
		for _, s := range schemas {
			if name := s.ValueString(); !s.IsUnknown() && systemSchema(name) {
				resp.Diagnostics.AddAttributeError(path.Root("tables_in_schema"), "System Schema Cannot Be Published",
					fmt.Sprintf("PostgreSQL refuses to publish the tables of schema %q: it is a system schema (the catalogs, TOAST or a session's temporary tables), "+
						"whose changes logical replication does not carry. Remove it from tables_in_schema.", name))
			}
		}
	}
	for _, key := range slices.Sorted(maps.Keys(tables)) {
		if !tables[key].Columns.IsNull() {
			resp.Diagnostics.AddAttributeError(path.Root("tables").AtMapKey(key).AtName("columns"), "Column Lists Cannot Be Combined With Schemas",
				fmt.Sprintf("PostgreSQL refuses column lists in a publication that also publishes tables_in_schema, and table %s has one. "+
					"Remove the column list, or publish the schemas' tables in a second publication.", key))
			return
		}
	}
}

// systemSchema reports whether PostgreSQL refuses FOR TABLES IN SCHEMA
// name as a system schema (check_publication_add_schema: the catalog and
// TOAST namespaces, and temporary ones).
func systemSchema(name string) bool {
	return name == "pg_catalog" || name == "pg_toast" || name == "pg_temp" || strings.HasPrefix(name, "pg_temp_") || strings.HasPrefix(name, "pg_toast_temp_")
}

// tablesOf reads a tables map: nothing when it is null or unknown.
func tablesOf(ctx context.Context, m types.Map) (map[string]publicationTableModel, diag.Diagnostics) {
	tables := map[string]publicationTableModel{}
	if m.IsNull() || m.IsUnknown() {
		return tables, nil
	}
	diags := m.ElementsAs(ctx, &tables, false)
	return tables, diags
}

// tableKeyValidator refuses, at plan time, a key of tables that is not a
// table's qualified name spelled as Read spells it (tableKey).
var tableKeyValidator = validate.String("Invalid Publication Table Key",
	"a schema-qualified table name, each part quoted as PostgreSQL's quote_ident quotes it: public.books, \"My Schema\".\"Odd.Table\"", checkTableKey)

// checkTableKey reports why key is not a key of tables: not a qualified
// name, or one that tableKey would spell differently, which would plan the
// table removed and added again after every refresh.
func checkTableKey(key string) error {
	schema, name, err := pgsql.ParseQualifiedName(key)
	if err != nil {
		return fmt.Errorf("the key %q of tables is not a schema-qualified table name: %v. "+
			"Write schema.table, with a part in double quotes where it is not a lower-case word (upper case, spaces, dots, quotes, non-ASCII letters, reserved words), "+
			"for example \"public.books\" or \"\\\"My Schema\\\".\\\"Odd.Table\\\"\"", key, err)
	}
	if want := tableKey(schema, name); key != want {
		hint := ""
		if foldsCapitals(key) {
			hint = " A part written without double quotes is folded to lower case, as in SQL: a name with capitals goes between double quotes."
		}
		return fmt.Errorf("the key %q of tables names the table %s but is not spelled as the provider reads it back from the catalog, "+
			"so every plan would show the table removed and added again. Write %q.%s", key, want, want, hint)
	}
	return nil
}

// foldsCapitals reports whether key has a capital letter outside double
// quotes, which PostgreSQL's rules (and ParseQualifiedName) fold away.
func foldsCapitals(key string) bool {
	lx := sqllex.New(key)
	for t := lx.Next(); t.Kind != sqllex.EOF; t = lx.Next() {
		if t.Kind == sqllex.Word && strings.ToLower(t.Text) != t.Text {
			return true
		}
	}
	return false
}

// refuseExisting refuses, at plan time, a publication that this plan
// creates (or renames, or moves to another database) under a name the
// database already has (refuseExistingName).
func (r *publicationResource) refuseExisting(ctx context.Context, plan publicationModel, diags *diag.Diagnostics) {
	if r.server == nil || r.server.unknown || plan.Name.IsUnknown() || plan.Database.IsUnknown() {
		return
	}
	refuseExistingName(ctx, r.server, "publication", plan.Database.ValueString(), plan.Name.ValueString(),
		`SELECT EXISTS (SELECT FROM pg_catalog.pg_publication WHERE pubname = $1)`, diags)
}

// ownNameKey is the private state key by which the plan of an existing
// publication or subscription (markOwnName) tells Terraform's second plan
// of its replacement (terraform apply -replace, a replace_triggered_by),
// which has no prior state, that the name the database has is the one
// being replaced, not another's (ownName): refuseExistingName would
// refuse every such replacement.
const ownNameKey = "own_name"

// markOwnName sets ownNameKey to id, the database/name of the object the
// prior state holds.
func markOwnName(ctx context.Context, private privateState, id string) diag.Diagnostics {
	b, _ := json.Marshal(id)
	return private.SetKey(ctx, ownNameKey, b)
}

// ownName tells whether a plan without prior state is the second plan of
// the replacement of the object named id (see ownNameKey).
func ownName(ctx context.Context, private privateState, id string) bool {
	if private == nil {
		return false
	}
	b, d := private.GetKey(ctx, ownNameKey)
	var own string
	return !d.HasError() && len(b) > 0 && json.Unmarshal(b, &own) == nil && own == id
}

// refuseExistingName adds an error on name when database on srv already has
// an object of kind named name (existsSQL, given name as $1, says so): one
// that another Terraform configuration or a person made. CREATE (or RENAME
// TO) would fail at apply, after the rest of the apply, which the plan showed
// as one change, was made. Nothing is said when the server cannot be asked:
// apply reports that.
func refuseExistingName(ctx context.Context, srv *server, kind, database, name, existsSQL string, diags *diag.Diagnostics) {
	pool, err := srv.Pool(ctx, database)
	if err != nil {
		return
	}
	var exists bool
	if err := pool.QueryRow(ctx, existsSQL, name).Scan(&exists); err != nil || !exists {
		return
	}
	id := importid.Format(database, name)
	diags.AddAttributeError(path.Root("name"), strings.ToUpper(kind[:1])+kind[1:]+" Already Exists",
		fmt.Sprintf("Database %q on %s already has a %s %s, which this configuration does not manage: another Terraform "+
			"configuration, or someone by hand, made it. Applying would fail there, after the rest of the apply was made. If this configuration "+
			"is to manage it, import it (an import block with id = %q, or terraform import <address> %q); otherwise give this one another name. "+
			"If the state holds this address as tainted (terraform taint, or a create that failed), it is this configuration's own, which Terraform plans as new: "+
			"terraform untaint <address>, then terraform apply -replace=<address> replaces it.",
			database, srv.describe(), kind, pgsql.Ident(name), id, id))
}

// ModifyPlan fills what depends on the server (the default database, the
// import ID), gates features on the server's version, warns when the server
// cannot feed subscribers, and plans each row filter in the form PostgreSQL
// will store it, so that `amount > 100` and the stored `(amount > 100)` are
// not a change.
func (r *publicationResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() {
		var state publicationModel
		if !req.State.Raw.IsNull() && !req.State.Get(ctx, &state).HasError() {
			r.warnInUse(ctx, "Dropping", state.Name.ValueString(), state.Database.ValueString(), &resp.Diagnostics)
		}
		return // destroy
	}
	var plan, config publicationModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.Config.Get(ctx, &config)...)
	var state *publicationModel
	if !req.State.Raw.IsNull() {
		state = &publicationModel{}
		resp.Diagnostics.Append(req.State.Get(ctx, state)...)
	}
	if resp.Diagnostics.HasError() {
		return
	}
	ctx = statement.WithObject(ctx, "publication "+pgsql.Ident(plan.Name.ValueString()))

	if config.Database.IsNull() && r.server != nil {
		switch {
		case !r.server.unknown:
			plan.Database = types.StringValue(r.server.settings.Database)
		case state != nil:
			plan.Database = state.Database
		}
	}
	if state != nil && !plan.Database.IsUnknown() && !plan.Database.Equal(state.Database) {
		resp.RequiresReplace = append(resp.RequiresReplace, path.Root("database"))
		refuseMoveToClosedDatabase(ctx, r.server, "publication", state.Name.ValueString(), state.Database.ValueString(), plan.Database.ValueString(), &resp.Diagnostics)
	}
	if plan.Name.IsUnknown() || plan.Database.IsUnknown() {
		plan.ID = types.StringUnknown()
	} else {
		plan.ID = types.StringValue(importid.Format(plan.Database.ValueString(), plan.Name.ValueString()))
	}

	for _, g := range publicationVersionGates(ctx, plan) {
		r.server.requireMajor(ctx, g.Major, g.Feature, g.Attr, &resp.Diagnostics)
	}
	if resp.Diagnostics.HasError() {
		return
	}

	if state != nil && resp.Private != nil { // nil only where ModifyPlan is called without the framework
		resp.Diagnostics.Append(markOwnName(ctx, resp.Private, importid.Format(state.Database.ValueString(), state.Name.ValueString()))...)
	}
	switch {
	case state == nil && ownName(ctx, req.Private, plan.ID.ValueString()):
	case state == nil || !plan.Name.Equal(state.Name) || !plan.Database.Equal(state.Database):
		r.refuseExisting(ctx, plan, &resp.Diagnostics)
	}
	tables := r.planTables(ctx, plan, state)
	resp.Diagnostics.Append(r.planRowFilters(ctx, &plan, state, req.Private, tables)...)
	resp.Diagnostics.Append(r.refuseUnpublishable(ctx, plan, state, tables)...)
	if resp.Diagnostics.HasError() {
		return
	}
	resp.Diagnostics.Append(resp.Plan.Set(ctx, &plan)...)
	if state != nil && !plan.Name.IsUnknown() && !plan.Database.IsUnknown() {
		switch {
		case !plan.Database.Equal(state.Database):
			r.warnInUse(ctx, "Replacing", state.Name.ValueString(), state.Database.ValueString(), &resp.Diagnostics)
		case !plan.Name.Equal(state.Name):
			r.warnInUse(ctx, "Renaming", state.Name.ValueString(), state.Database.ValueString(), &resp.Diagnostics)
		}
	}

	if state == nil || !resp.Plan.Raw.Equal(req.State.Raw) {
		r.warnWalLevel(ctx, plan.Name.ValueString(), &resp.Diagnostics)
		warnBackslashName(plan.Name, &resp.Diagnostics)
	}
}

// warnBackslashName warns when a publication's name has a backslash:
// PostgreSQL creates it, but no PostgreSQL subscriber can stream from it
// (a subscription to it is refused at plan).
func warnBackslashName(name types.String, diags *diag.Diagnostics) {
	if name.IsUnknown() || name.IsNull() || !strings.Contains(name.ValueString(), `\`) {
		return
	}
	diags.AddAttributeWarning(path.Root("name"), "Publication Name Cannot Be Subscribed To",
		fmt.Sprintf("Publication %q has a backslash in its name. PostgreSQL creates it, but no PostgreSQL subscriber can stream from it: %s, "+
			"so a subscription to it would be created and never replicate. Choose a name without a backslash "+
			"(changing name renames the publication in place, ALTER PUBLICATION … RENAME TO).",
			name.ValueString(), backslashPublicationName))
}

// versionGate is a feature a configuration uses and the PostgreSQL major
// version it needs.
type versionGate struct {
	Major   int
	Feature string
	Attr    path.Path
}

// publicationVersionGates lists the version-gated features that m uses: what
// ModifyPlan checks against the server.
func publicationVersionGates(ctx context.Context, m publicationModel) []versionGate {
	var gates []versionGate
	if !m.TablesInSchema.IsNull() && (m.TablesInSchema.IsUnknown() || len(m.TablesInSchema.Elements()) > 0) {
		gates = append(gates, versionGate{15, "Publishing the tables of a schema (tables_in_schema, FOR TABLES IN SCHEMA)", path.Root("tables_in_schema")})
	}
	// Each feature is gated on the first table (by key) that uses it.
	tables, _ := tablesOf(ctx, m.Tables)
	var columns, where *path.Path
	for _, key := range slices.Sorted(maps.Keys(tables)) {
		t := tables[key]
		if p := path.Root("tables").AtMapKey(key).AtName("columns"); columns == nil && !t.Columns.IsNull() {
			columns = &p
		}
		if p := path.Root("tables").AtMapKey(key).AtName("where"); where == nil && !t.Where.IsNull() {
			where = &p
		}
	}
	if columns != nil {
		gates = append(gates, versionGate{15, "A column list (columns of tables)", *columns})
	}
	if where != nil {
		gates = append(gates, versionGate{15, "A row filter (where of tables)", *where})
	}
	if m.PublishViaPartitionRoot.ValueBool() {
		gates = append(gates, versionGate{13, "publish_via_partition_root", path.Root("publish_via_partition_root")})
	}
	if !m.PublishGeneratedColumns.IsNull() && !m.PublishGeneratedColumns.IsUnknown() && m.PublishGeneratedColumns.ValueString() != generatedColumnsModes[0] {
		gates = append(gates, versionGate{18, "Publishing stored generated columns (publish_generated_columns = \"stored\")", path.Root("publish_generated_columns")})
	}
	return gates
}

// oidKey is the private state key under which Read, Create and Update keep
// the publication's OID, which finds it again after a rename by hand.
const oidKey = "oid"

func privateOID(ctx context.Context, private privateGetter) uint32 {
	raw, diags := private.GetKey(ctx, oidKey)
	if diags.HasError() || len(raw) == 0 {
		return 0
	}
	oid, _ := strconv.ParseUint(string(raw), 10, 32) // a bad record only loses the rename
	return uint32(oid)
}

func setPrivateOID(ctx context.Context, private privateSetter, oid uint32) diag.Diagnostics {
	return private.SetKey(ctx, oidKey, []byte(strconv.FormatUint(uint64(oid), 10)))
}

// forServer leaves out of p what a server of PostgreSQL major does not
// have: publish_generated_columns before 18, where the plan-time gate lets
// only its default ("none", what older servers do) through.
func (p publication) forServer(major int) publication {
	if major < 18 {
		p.GenCols = ""
	}
	return p
}

// rowFiltersKey is the private state key under which Create and Update keep,
// for each table, its row filter as configured and as the server stored it.
const rowFiltersKey = "row_filters"

// appliedFilter is one table's row filter: the configuration's text, and what
// pg_get_expr read back after apply.
type appliedFilter struct {
	Config string `json:"config"`
	Stored string `json:"stored"`
}

// privateGetter and privateSetter are the halves of the framework's private
// state that ModifyPlan reads and Create and Update write.
type (
	privateGetter interface {
		GetKey(ctx context.Context, key string) ([]byte, diag.Diagnostics)
	}
	privateSetter interface {
		SetKey(ctx context.Context, key string, value []byte) diag.Diagnostics
	}
)

// unpublishableKinds are the relations CREATE and ALTER PUBLICATION refuse
// (check_publication_add_relation), by pg_class.relkind, with what each is.
var unpublishableKinds = map[string]string{
	"v": "a view", "m": "a materialized view", "f": "a foreign table", "S": "a sequence",
	"i": "an index", "I": "a partitioned index", "c": "a composite type", "t": "a TOAST table",
}

// replaceableKinds are the unpublishable relations that a migration
// commonly turns into a table of the same name (DROP VIEW … then CREATE
// TABLE, a foreign table's data copied in), which may run earlier in the
// same apply as the publication: refuseUnpublishable warns of them instead
// of refusing them, as it says nothing of a table that does not exist yet.
var replaceableKinds = []string{"v", "m", "f"}

// refuseUnpublishable checks, at plan time, each table that plan adds to
// tables and that exists but PostgreSQL would not publish now. One that can
// never be published is refused: a system table (one initdb made, with an
// OID below FirstNormalObjectId: pg_catalog's, information_schema's), a
// temporary table, an index, a sequence, a composite type, a TOAST table.
// One that something earlier in the same apply may turn into a published
// table is warned of: a view, a materialized view or a foreign table that a
// migration replaces by a table, an unlogged table that ALTER TABLE … SET
// LOGGED makes logged. The plan cannot see what the rest of the apply does,
// just as it cannot see whether a table that does not exist yet will be
// created (nothing is said of those); if the relation is still not a table
// PostgreSQL publishes when the publication is applied, CREATE or ALTER
// PUBLICATION fails in its one transaction, which changes nothing
// (unpublishableAtApply says why). A table that cannot be read is left to
// the apply: nothing is said.
func (r *publicationResource) refuseUnpublishable(ctx context.Context, plan publicationModel, state *publicationModel, tables *planTables) diag.Diagnostics {
	if tables == nil || plan.Tables.IsNull() || plan.Tables.IsUnknown() {
		return nil
	}
	planned, diags := tablesOf(ctx, plan.Tables)
	prior, _ := priorTables(ctx, plan, state)
	if diags.HasError() {
		return diags
	}
	for _, key := range slices.Sorted(maps.Keys(planned)) {
		if _, known := prior[key]; known {
			continue
		}
		rel, err := tables.lookup(ctx, key)
		if schema, _, _ := pgsql.ParseQualifiedName(key); rel == nil && (schema == "pg_temp" || strings.HasPrefix(schema, "pg_temp_")) {
			// Not in the catalogs, or not read: a temporary table of another
			// session, or pg_temp, which names the temporary schema of the
			// session that reads it (the provider's has no tables). No
			// apply can make it a table PostgreSQL publishes.
			rel, err = &catalogTable{Persistence: "t"}, nil
		}
		if err != nil || rel == nil {
			continue
		}
		// never: no apply can make it a table PostgreSQL publishes.
		var what, fix string
		never := true
		switch {
		case rel.System:
			what, fix = "a system table", "Remove it from tables: PostgreSQL never publishes the tables initdb made (pg_catalog's, information_schema's)."
		case slices.Contains(replaceableKinds, rel.Kind):
			what, never = unpublishableKinds[rel.Kind], false
			fix = "If it is to stay " + what + ", remove it from tables: a publication carries the changes of tables only (publish the tables it reads instead)."
		case unpublishableKinds[rel.Kind] != "":
			what, fix = unpublishableKinds[rel.Kind], "Remove it from tables: a publication carries the changes of tables only (publish the tables it reads instead)."
		case rel.Persistence == "u":
			what, never = "an unlogged table", false
			fix = fmt.Sprintf("Its changes are not written to the WAL, so logical replication cannot carry them. Run ALTER TABLE %s SET LOGGED "+
				"before the publication is applied (in a resource the publication depends on, or by hand), or remove it from tables.", key)
		case rel.Persistence == "t":
			what, fix = "a temporary table", "Remove it from tables: a temporary table's changes are not written to the WAL, and only the session that "+
				"created it sees it (pg_temp names the temporary schema of the session that reads the name: the provider's has no tables). "+
				"Publish an ordinary table instead."
		default:
			continue
		}
		at := path.Root("tables").AtMapKey(key)
		if never {
			diags.AddAttributeError(at, "Table Cannot Be Published",
				fmt.Sprintf("%s in database %q on %s is %s, which PostgreSQL refuses to add to publication %q (CREATE or ALTER PUBLICATION would fail at apply). %s",
					key, plan.Database.ValueString(), r.server.describe(), what, plan.Name.ValueString(), fix))
			continue
		}
		outcome := "changes nothing"
		if state != nil && !plan.Database.Equal(state.Database) {
			outcome = fmt.Sprintf("after the replacement dropped it from database %q", state.Database.ValueString())
		}
		diags.AddAttributeWarning(at, "Table Cannot Be Published Yet",
			fmt.Sprintf("%s in database %q on %s is %s now, which PostgreSQL refuses to add to publication %q. The plan goes on because something this apply runs "+
				"before the publication may make it a table PostgreSQL publishes (a migration the publication depends on, an ALTER TABLE … SET LOGGED); "+
				"if nothing does, applying publication %q fails %s. %s",
				key, plan.Database.ValueString(), r.server.describe(), what, plan.Name.ValueString(), plan.Name.ValueString(), outcome, fix))
	}
	return diags
}

// unpublishableAtApply is what to add to the error of a CREATE or ALTER
// PUBLICATION that the server refused because a table of tables is not one
// it publishes (check_publication_add_relation), or "": the table the plan
// warned of is still what it was (refuseUnpublishable).
func unpublishableAtApply(err error) string {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "22023" || !strings.HasPrefix(pgErr.Message, "cannot add relation") {
		return ""
	}
	return " A relation in tables is not a table PostgreSQL publishes (see DETAIL): make it an ordinary logged table before the publication " +
		"is applied (replace the view by a table, ALTER TABLE … SET LOGGED), in a resource the publication depends on, or remove it from tables."
}

// planTables are the relations that one plan's checks of tables read from
// the catalogs: refuseUnpublishable's (what each new key is) and
// planRowFilters' (the columns a row filter or column list uses). They are
// read together in one query, on the first lookup, for every key that a
// check may ask about (new to tables, or with a row filter or column list),
// so a plan makes one catalog query for its tables at most, and none when no
// check asks.
type planTables struct {
	pool  *pgxpool.Pool // nil when the server cannot be asked
	keys  []string
	names []qualifiedName
	read  bool
	found map[string]*catalogTable
	err   error
}

// planTables lists the keys of plan's tables that its checks may look up;
// nil when there is no server to ask.
func (r *publicationResource) planTables(ctx context.Context, plan publicationModel, state *publicationModel) *planTables {
	if r.server == nil || r.server.unknown || plan.Database.IsUnknown() || plan.Tables.IsNull() || plan.Tables.IsUnknown() {
		return nil
	}
	planned, diags := tablesOf(ctx, plan.Tables)
	if diags.HasError() {
		return nil
	}
	prior, _ := priorTables(ctx, plan, state)
	t := &planTables{}
	for _, key := range slices.Sorted(maps.Keys(planned)) {
		_, known := prior[key]
		if known && planned[key].Where.IsNull() && planned[key].Columns.IsNull() {
			continue
		}
		if schema, name, err := pgsql.ParseQualifiedName(key); err == nil {
			t.keys, t.names = append(t.keys, key), append(t.names, qualifiedName{schema, name})
		}
	}
	if len(t.keys) > 0 {
		t.pool, _ = r.server.Pool(ctx, plan.Database.ValueString())
	}
	return t
}

// priorTables is the state's tables, which the plan need not check again,
// when plan keeps the publication in the state's database; none when the
// database changes: the publication is then replaced, created in the new
// database, where every table is new and checked as for a new publication
// (a view or a missing column there would fail the apply after the drop in
// the old database).
func priorTables(ctx context.Context, plan publicationModel, state *publicationModel) (map[string]publicationTableModel, diag.Diagnostics) {
	if state == nil || !plan.Database.Equal(state.Database) {
		return map[string]publicationTableModel{}, nil
	}
	return tablesOf(ctx, state.Tables)
}

// lookup is the relation that key names, nil when there is none; every key
// planTables listed is read by the first call.
func (t *planTables) lookup(ctx context.Context, key string) (*catalogTable, error) {
	if t.pool == nil {
		return nil, errors.New("the server cannot be asked")
	}
	if !t.read {
		t.read = true
		var rels []*catalogTable
		rels, t.err = readCatalogTables(ctx, t.pool, t.names)
		t.found = map[string]*catalogTable{}
		for i, rel := range rels {
			t.found[t.keys[i]] = rel
		}
	}
	return t.found[key], t.err
}

// planRowFilters plans each row filter in the text the state holds when the
// configuration's text means the same, so that `amount > 100` and the
// stored `(amount > 100)` are not a change, and checks what it can of each
// table before anything reaches the server: a filter that is not one SQL
// expression, or columns the table does not have.
//
// Planning only reads (a drift audit runs it with a role that may read and
// nothing else): when the configuration's text and the state's are those of
// the last apply (private state), the server is not asked; otherwise the
// server deparses both, read-only (see rowFilterPlan), and they are the same
// filter when it prints the same. A filter changed by hand is then a
// difference between two expressions that the server prints differently,
// and shows in the plan. When the server cannot be asked (the table does not
// exist yet, the server cannot be reached), the configured text is planned
// and applied as written.
func (r *publicationResource) planRowFilters(ctx context.Context, plan, state *publicationModel, private privateGetter, tables *planTables) diag.Diagnostics {
	if plan.Tables.IsNull() || plan.Tables.IsUnknown() {
		return nil
	}
	planned, diags := tablesOf(ctx, plan.Tables)
	if diags.HasError() {
		return diags
	}
	prior, d := priorTables(ctx, *plan, state)
	diags.Append(d...)
	applied := map[string]appliedFilter{}
	if raw, d := private.GetKey(ctx, rowFiltersKey); !d.HasError() && len(raw) > 0 {
		_ = json.Unmarshal(raw, &applied) // a bad record only costs a round trip
	}

	var pool *pgxpool.Pool
	if tables != nil {
		pool = tables.pool
	}
	for _, key := range slices.Sorted(maps.Keys(planned)) {
		t := planned[key]
		at := path.Root("tables").AtMapKey(key)
		was, known := prior[key]
		checkWhere := !t.Where.IsNull() && !t.Where.IsUnknown()
		if checkWhere && known {
			a, ok := applied[key]
			switch {
			case was.Where.Equal(t.Where):
				checkWhere = false
			case ok && a.Config == t.Where.ValueString() && a.Stored == was.Where.ValueString():
				t.Where = was.Where
				planned[key] = t
				checkWhere = false
			}
		}
		checkColumns := !t.Columns.IsNull() && !t.Columns.IsUnknown() && !(known && was.Columns.Equal(t.Columns))
		// A row filter or column list on a partitioned table needs
		// publish_via_partition_root: checked when either is new or
		// changed, or publish_via_partition_root is turned off.
		checkPartitioned := plan.PublishViaPartitionRoot.Equal(types.BoolValue(false)) && (!t.Where.IsNull() || !t.Columns.IsNull()) &&
			(!known || checkWhere || checkColumns || !was.Where.Equal(t.Where) || state.PublishViaPartitionRoot.ValueBool())
		if pool == nil || (!checkWhere && !checkColumns && !checkPartitioned) {
			continue
		}
		if _, _, err := pgsql.ParseQualifiedName(key); err != nil {
			continue // refused by tableKeyValidator
		}
		rel, err := tables.lookup(ctx, key)
		if err != nil {
			diags.AddAttributeWarning(at, "Row Filter and Column List Not Checked",
				fmt.Sprintf("The plan could not read the columns of table %s in database %q on %s, so its checks of the table's row filter, "+
					"column list and partitioning in publication %q did not run: %s\n\nApply checks them instead: PostgreSQL refuses "+
					"what it cannot use there, and the publication stays as it was. Plan again once the read works to have them checked now.",
					key, plan.Database.ValueString(), r.server.describe(), plan.Name.ValueString(), statement.MaskedError(ctx, err)))
			continue
		}
		if rel == nil || !rel.isTable() {
			// Not there yet, or not a table yet (refuseUnpublishable): a
			// table another resource creates in the same apply. If nothing
			// does, CREATE or ALTER PUBLICATION fails naming it, in the one
			// transaction that changes nothing.
			continue
		}
		table := &rel.tableColumns
		if checkPartitioned && table.Partitioned {
			what, attr := "a row filter (where)", "where"
			if t.Where.IsNull() {
				what, attr = "a column list (columns)", "columns"
			}
			diags.AddAttributeError(at.AtName(attr), "Partitioned Table Needs publish_via_partition_root",
				fmt.Sprintf("Table %s is partitioned, and publication %q gives it %s with publish_via_partition_root = false: PostgreSQL accepts a row filter "+
					"or a column list on a partitioned table only when its partitions' changes are published as the partitioned table's own. "+
					"Set publish_via_partition_root = true, or declare the filter or column list on each partition instead.",
					key, plan.Name.ValueString(), what))
			continue
		}
		if checkColumns {
			var columns []string
			diags.Append(t.Columns.ElementsAs(ctx, &columns, false)...)
			for _, c := range columns {
				if slices.Contains(table.Virtual, c) {
					diags.AddAttributeError(at.AtName("columns"), "Virtual Generated Column in Column List",
						fmt.Sprintf("Column %s of table %s, which the column list of publication %q names, is a virtual generated column: PostgreSQL computes it "+
							"when it is read and never writes it to the WAL, so it refuses it in a column list. Remove it from columns "+
							"(a subscriber can compute it itself), or make it a stored generated column.",
							pgsql.Ident(c), key, plan.Name.ValueString()))
				}
				if !table.has(c) {
					diags.AddAttributeError(at.AtName("columns"), "Unknown Column in Column List",
						fmt.Sprintf("Table %s has no column %s, which the column list of publication %q names. The columns are: %s. "+
							"Fix the name (it is quoted: case and spaces count), or add the column first.",
							key, pgsql.Ident(c), plan.Name.ValueString(), table.names()))
				}
			}
		}
		if !checkWhere {
			continue
		}
		configured, err := rowFilterPlan(ctx, pool, *table, t.Where.ValueString())
		if err != nil {
			var pgErr *pgconn.PgError
			if errors.As(err, &pgErr) && invalidFilterCodes[pgErr.Code] {
				hint := ""
				if pgErr.Hint != "" {
					hint = " (" + strings.TrimSuffix(pgErr.Hint, ".") + ")"
				}
				diags.AddAttributeError(at.AtName("where"), "Invalid Row Filter",
					fmt.Sprintf("The row filter of table %s in publication %q is not a valid expression over the table's columns: %s%s. "+
						"Write a boolean expression over the table's columns, without WHERE.", key, plan.Name.ValueString(), pgErr.Message, hint))
			}
			continue
		}
		// The definitions PostgreSQL refuses in a row filter, the functions
		// first (SQL's keyword functions, then those called by name): one
		// error, with the server's rule, for the first found. A catalog
		// read that fails leaves the filter to apply.
		why, rule := "", ""
		if kw, ok := rowFilterKeywordCall(t.Where.ValueString(), table.Columns); ok {
			why, rule = fmt.Sprintf("it uses %s, %s: one of SQL's functions written as a keyword (parentheses optional), whose result changes while "+
				"the row does not (a column of that name is written quoted: \"%s\")", kw.Text, kw.gives, strings.ToLower(kw.Text)), kw.rule
		}
		for _, fn := range rowFilterCalls(t.Where.ValueString()) {
			if why != "" {
				break
			}
			if w, err := rowFilterFunctionRefused(ctx, pool, fn); err == nil && w != "" {
				why, rule = w, mutableRule
				break
			}
		}
		if why == "" {
			why, rule, _ = rowFilterNamesRefused(ctx, pool, *table, t.Where.ValueString())
		}
		if why != "" {
			diags.AddAttributeError(at.AtName("where"), "Invalid Row Filter",
				fmt.Sprintf("The row filter of table %s in publication %q cannot be used: %s. PostgreSQL allows only columns, constants, built-in "+
					"operators, built-in data types, built-in collations and immutable built-in functions in a row filter (the publisher evaluates "+
					"it while decoding WAL, where only built-in definitions that cannot change are safe), and would refuse the publication at apply (%q). Write the filter with "+
					"built-in ones (an immutable function: \\df+ in psql shows a function's volatility; a cast to a built-in type; a built-in collation such as \"C\"), "+
					"or publish the table without a row filter and filter on the subscriber.", key, plan.Name.ValueString(), why, rule))
		}
		if !known || was.Where.IsNull() {
			continue
		}
		stored, err := rowFilterPlan(ctx, pool, *table, was.Where.ValueString())
		if err == nil && stored == configured {
			t.Where = was.Where
			planned[key] = t
		}
	}
	m, d := types.MapValueFrom(ctx, types.ObjectType{AttrTypes: publicationTableAttrTypes}, planned)
	diags.Append(d...)
	if !diags.HasError() {
		plan.Tables = m
	}
	return diags
}

// invalidFilterCodes are the SQLSTATEs with which the server, parsing a row
// filter at plan time (rowFilterPlan), says the filter itself is wrong, as
// CREATE PUBLICATION would at apply; any other error (a lock, a timeout, a
// privilege) leaves the filter to apply.
var invalidFilterCodes = map[string]bool{
	"42601": true, // syntax_error
	"42703": true, // undefined_column
	"42804": true, // datatype_mismatch: not boolean, or a comparison of types that do not mix
	"42883": true, // undefined_function: no such function or operator for these types
	"42725": true, // ambiguous_function
	"42846": true, // cannot_coerce
	"22P02": true, // invalid_text_representation: a constant the column's type cannot read
}

// unsetIsNone plans no row filter for a table whose configuration has none.
// where is computed only so that a plan may keep the server's spelling of a
// filter that means what the configuration's does (planRowFilters); without
// this, the framework would plan a where the configuration leaves out as
// "known after apply" in every plan that changes anything.
type unsetIsNone struct{}

func (unsetIsNone) Description(context.Context) string {
	return "no row filter when the configuration sets none"
}

func (m unsetIsNone) MarkdownDescription(ctx context.Context) string { return m.Description(ctx) }

func (unsetIsNone) PlanModifyString(_ context.Context, req planmodifier.StringRequest, resp *planmodifier.StringResponse) {
	if req.ConfigValue.IsNull() {
		resp.PlanValue = types.StringNull()
	}
}

// tableColumns is a table as a row filter sees it: its columns, each with
// the type (and collation, when not its type's) that PostgreSQL resolves an
// expression against.
type tableColumns struct {
	Schema, Name string
	Columns      []string // names, in attnum order
	Types        []string // "integer", "text COLLATE \"C\"" …
	Partitioned  bool     // a partitioned table (relkind p)
	Virtual      []string // virtual generated columns (PostgreSQL 18), which no column list may name
}

func (t tableColumns) has(name string) bool { return slices.Contains(t.Columns, name) }

func (t tableColumns) names() string {
	if len(t.Columns) == 0 {
		return "none"
	}
	return pgsql.IdentList(t.Columns)
}

// catalogTable is a relation that tables names, as the catalogs have it:
// what refuseUnpublishable and planRowFilters check.
type catalogTable struct {
	tableColumns
	Kind        string // pg_class.relkind
	Persistence string // pg_class.relpersistence
	System      bool   // made by initdb: an OID below FirstNormalObjectId
}

// isTable reports whether the relation is an ordinary or partitioned table,
// the relations a row filter or column list applies to.
func (t catalogTable) isTable() bool { return t.Kind == "r" || t.Kind == "p" }

// readCatalogTables reads each of names from pg_class and pg_attribute,
// which every role may read, in one query; the result is in the order of
// names, nil for a name that no relation has.
func readCatalogTables(ctx context.Context, q querier, names []qualifiedName) ([]*catalogTable, error) {
	schemas, relnames := make([]string, len(names)), make([]string, len(names))
	for i, n := range names {
		schemas[i], relnames[i] = n.Schema, n.Name
	}
	rows, err := q.Query(ctx, `
SELECT k.i, c.relkind::text, c.relpersistence::text, c.oid < 16384,
       ARRAY(SELECT a.attname::text FROM pg_catalog.pg_attribute a
             WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum),
       ARRAY(SELECT pg_catalog.format_type(a.atttypid, a.atttypmod) ||
                    CASE WHEN a.attcollation <> 0 AND a.attcollation <> ty.typcollation
                         THEN ' COLLATE ' || pg_catalog.quote_ident(cn.nspname::text) || '.' || pg_catalog.quote_ident(co.collname::text)
                         ELSE '' END
             FROM pg_catalog.pg_attribute a
             JOIN pg_catalog.pg_type ty ON ty.oid = a.atttypid
             LEFT JOIN pg_catalog.pg_collation co ON co.oid = a.attcollation
             LEFT JOIN pg_catalog.pg_namespace cn ON cn.oid = co.collnamespace
             WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum),
       ARRAY(SELECT a.attname::text FROM pg_catalog.pg_attribute a
             WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = 'v' ORDER BY a.attnum)
  FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS k(schema, name, i)
  JOIN pg_catalog.pg_namespace n ON n.nspname = k.schema
  JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = k.name`, schemas, relnames)
	if err != nil {
		return nil, err
	}
	found := make([]*catalogTable, len(names))
	var i int
	var t catalogTable
	_, err = pgx.ForEachRow(rows, []any{&i, &t.Kind, &t.Persistence, &t.System, &t.Columns, &t.Types, &t.Virtual}, func() error {
		rel := t
		rel.Schema, rel.Name, rel.Partitioned = names[i-1].Schema, names[i-1].Name, t.Kind == "p"
		found[i-1] = &rel
		t = catalogTable{}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return found, nil
}

// rowFilterPlan is how the server understands expr as a row filter of
// table, printed by the server itself: two filters are the same when their
// plans print the same. It is the read-only way to compare a configured
// filter with the stored one (`total > 0` is stored as
// `(total > (0)::numeric)`): PostgreSQL offers no function that parses an
// expression and prints it back, but EXPLAIN parses, resolves and prints
// one, and both texts go through the same parser, the same constant folding
// and the same printer.
//
// The filter is planned over a materialized CTE of typed NULLs that has the
// table's name and columns, never over the table itself: EXPLAIN of the
// table would take a lock on it (ACCESS SHARE, which still queues behind a
// migration's ACCESS EXCLUSIVE and then blocks everyone queued behind the
// plan) and would need SELECT on it, which a drift-audit role does not
// have. The CTE needs no privilege, locks no user table, writes nothing and
// takes no transaction ID. MATERIALIZED keeps the planner from folding the
// NULLs into the filter. The filter must first pass checkRowFilter (one
// expression, no subquery): the statement is sent with the extended
// protocol, which runs one statement at most.
func rowFilterPlan(ctx context.Context, q querier, table tableColumns, expr string) (string, error) {
	expr = unqualifySchema(expr, table)
	cols := make([]string, len(table.Columns))
	for i, c := range table.Columns {
		cols[i] = "NULL::" + table.Types[i] + " AS " + pgsql.Ident(c)
	}
	sql := "EXPLAIN (COSTS OFF) WITH " + pgsql.Ident(table.Name) + " AS MATERIALIZED (SELECT " + strings.Join(cols, ", ") + ") " +
		"SELECT FROM " + pgsql.Ident(table.Name) + " WHERE (" + expr + ")"
	rows, err := q.Query(ctx, sql, pgx.QueryExecModeExec)
	if err != nil {
		return "", err
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return "", err
	}
	return strings.Join(lines, "\n"), nil
}

// unqualifySchema drops the schema from the column references of expr that
// name table with it (public.orders.region becomes orders.region), which
// PostgreSQL accepts in a row filter and stores bare: rowFilterPlan's CTE
// has the table's name but no schema, so the qualified form would not
// resolve there. A reference qualified by the database too, and any other
// text (a string constant, a comment), is left as written.
func unqualifySchema(expr string, table tableColumns) string {
	toks := lexFilter(expr)
	named := func(i int, name string) bool {
		got, ok := pgsql.TokenName(toks[i])
		return ok && got == name
	}
	var b strings.Builder
	from := 0
	for i := 0; i+3 < len(toks); i++ {
		if !toks.punct(i-1, ".") && named(i, table.Schema) && toks.punct(i+1, ".") && named(i+2, table.Name) && toks.punct(i+3, ".") {
			b.WriteString(expr[from:toks[i].Pos])
			from = toks[i+2].Pos
		}
	}
	return b.String() + expr[from:]
}

// rowFilterCalls are the functions src calls by name: a name, or
// schema.name, followed by a parenthesis. Some are not functions at all
// (IN ( … ), a type's modifier as in numeric(10, 2)): rowFilterFunction
// finds no function or a harmless one for those.
// filterTokens are a row filter's tokens, read by the plan's checks.
type filterTokens []sqllex.Token

// lexFilter splits a row filter into its tokens.
func lexFilter(src string) filterTokens {
	var toks filterTokens
	lx := sqllex.New(src)
	for t := lx.Next(); t.Kind != sqllex.EOF; t = lx.Next() {
		toks = append(toks, t)
	}
	return toks
}

// punct reports whether the token at i is the punctuation text.
func (toks filterTokens) punct(i int, text string) bool {
	return i >= 0 && i < len(toks) && toks[i].Kind == sqllex.Punct && toks[i].Text == text
}

func rowFilterCalls(src string) []calledFunction {
	var calls []calledFunction
	toks := lexFilter(src)
	for i := 1; i < len(toks); i++ {
		if toks[i].Kind != sqllex.Punct || toks[i].Text != "(" {
			continue
		}
		name, ok := pgsql.TokenName(toks[i-1])
		if !ok {
			continue
		}
		call := calledFunction{Name: name}
		if i >= 3 && toks[i-2].Kind == sqllex.Punct && toks[i-2].Text == "." {
			if schema, ok := pgsql.TokenName(toks[i-3]); ok {
				call.Schema = schema
			}
		}
		if !slices.Contains(calls, call) {
			calls = append(calls, call)
		}
	}
	return calls
}

// sqlValueFunctions are SQL's functions written as keywords, with or
// without parentheses (current_date, current_time(3)), and what each
// gives. None is in pg_proc under that name, so rowFilterFunctionRefused
// never finds them, and all change while a row does not (the clock, the
// session), so PostgreSQL refuses every one in a row filter: the date and
// time ones and, up to 15, the name ones as "Only columns, constants, …"
// (SQLValueFunction is not among the nodes a row filter may hold), from
// 16 on the name ones through the stable function each calls. All are
// reserved words (current_schema a function-or-type name), so written bare
// such a word is never a column: only quoted, or after a dot, is it one.
var sqlValueFunctions = map[string]struct{ gives, rule string }{
	"current_date":      {"the current date", onlySimpleRule},
	"current_time":      {"the current time of day", onlySimpleRule},
	"current_timestamp": {"the current date and time", onlySimpleRule},
	"localtime":         {"the current time of day", onlySimpleRule},
	"localtimestamp":    {"the current date and time", onlySimpleRule},
	"current_role":      {"the current role's name", onlySimpleRule},
	"current_user":      {"the current role's name", onlySimpleRule},
	"user":              {"the current role's name", onlySimpleRule},
	"session_user":      {"the session's role name", onlySimpleRule},
	"current_catalog":   {"the current database's name", onlySimpleRule},
	"current_schema":    {"the first schema of the search_path", onlySimpleRule},
	// 16 and later; an ordinary name before, so a column of that name
	// is left to the server (rowFilterKeywordCall).
	"system_user": {"the authenticated identity of the session", mutableRule},
}

// The server's words (errdetail) for a row filter it refuses.
const (
	onlySimpleRule = "Only columns, constants, built-in operators, built-in data types, built-in collations, and immutable built-in functions are allowed."
	mutableRule    = "User-defined or built-in mutable functions are not allowed."
)

// keywordCall is one of sqlValueFunctions as a row filter writes it.
type keywordCall struct {
	Text        string // as written: CURRENT_DATE
	gives, rule string
}

// rowFilterKeywordCall finds the first of SQL's keyword functions
// (sqlValueFunctions) that src uses, case-insensitively: a bare word,
// not after a dot (t.current_date is the column) and not an argument's
// name (=> or := after it). A table with a column named system_user keeps
// that word: before PostgreSQL 16 it is the column.
func rowFilterKeywordCall(src string, columns []string) (keywordCall, bool) {
	toks := lexFilter(src)
	punct := toks.punct
	for i, t := range toks {
		if t.Kind != sqllex.Word {
			continue
		}
		name, _ := pgsql.TokenName(t)
		f, ok := sqlValueFunctions[name]
		if !ok || punct(i-1, ".") || punct(i+1, "=") && punct(i+2, ">") || punct(i+1, ":") && punct(i+2, "=") ||
			name == "system_user" && slices.Contains(columns, name) {
			continue
		}
		return keywordCall{Text: t.Text, gives: f.gives, rule: f.rule}, true
	}
	return keywordCall{}, false
}

// calledFunction is a function a row filter calls, as written: Schema is ""
// when the name is not qualified.
type calledFunction struct{ Schema, Name string }

// rowFilterFunctionRefused says why PostgreSQL would refuse a row filter that
// calls fn, or "" when it may accept it. PostgreSQL allows only built-in
// (OID below 16384, FirstNormalObjectId) immutable functions in a row filter,
// and refuses anything else only when the publication is created or changed.
// The filter does not say which overload it calls, so the answer is given
// only when every function of that name that the call could reach (visible
// on the search_path, or in the schema named) is refused: never a refusal
// PostgreSQL would not make. A catalog read: nothing is locked or written.
func rowFilterFunctionRefused(ctx context.Context, q querier, fn calledFunction) (string, error) {
	rows, err := q.Query(ctx, `
SELECT p.oid::regprocedure::text, p.oid >= 16384, p.provolatile::text
  FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
 WHERE p.proname = $1 AND CASE WHEN $2 = '' THEN pg_catalog.pg_function_is_visible(p.oid) ELSE n.nspname = $2 END
 ORDER BY 1`, fn.Name, fn.Schema)
	if err != nil {
		return "", err
	}
	type candidate struct {
		Signature   string
		UserDefined bool
		Volatility  string
	}
	found, err := pgx.CollectRows(rows, pgx.RowToStructByPos[candidate])
	if err != nil || len(found) == 0 {
		return "", err
	}
	var signatures []string
	userDefined, mutable := true, true
	kind := map[string]string{"s": "stable", "v": "volatile"}[found[0].Volatility]
	for _, c := range found {
		signatures = append(signatures, c.Signature)
		userDefined = userDefined && c.UserDefined
		mutable = mutable && !c.UserDefined && c.Volatility != "i"
		if c.Volatility != found[0].Volatility {
			kind = "stable or volatile"
		}
	}
	switch {
	case userDefined && len(found) == 1:
		return fmt.Sprintf("it calls %s, a user-defined function", signatures[0]), nil
	case userDefined:
		return fmt.Sprintf("it calls %s, and every function of that name is user-defined (%s)", fn.Name, strings.Join(signatures, ", ")), nil
	case mutable && len(found) == 1:
		return fmt.Sprintf("it calls %s, a built-in %s function: its result can change while the row does not", signatures[0], kind), nil
	case mutable:
		return fmt.Sprintf("it calls %s, and every built-in function of that name is %s (%s): its result can change while the row does not",
			fn.Name, kind, strings.Join(signatures, ", ")), nil
	}
	return "", nil
}

// rowFilterNames are the operators, collations, types and columns a row
// filter names, as far as the text tells them apart for sure: operators
// (a run of operator characters, split as PostgreSQL splits a trailing + or
// -), a name after COLLATE, a name after :: or CAST's AS that ends the type
// (not the first word of double precision), and the table's columns
// written as bare names where an expression may stand (not after . or ::,
// not before (, ., a string or FROM as extract's field is, not a keyword
// that quote_ident quotes). Names it misses are left to apply.
type rowFilterNames struct {
	Operators  []string
	Collations []qualifiedName
	Types      []qualifiedName
	Columns    []string
}

// qualifiedName is a name as written: Schema is "" when not qualified.
type qualifiedName struct{ Schema, Name string }

// operatorChars are the characters of PostgreSQL's operator names;
// operatorSpecial those that allow a name to end in + or -.
const operatorChars, operatorSpecial = "+-*/<>=~!@#%^&|`?", "~!@#%^&|`?"

// beforeColumn are the keywords after which a bare name is an expression.
var beforeColumn = []string{"and", "or", "not", "when", "then", "else", "case", "between", "from", "like", "ilike"}

// afterType are the keywords that may follow a cast's type: a type name
// followed by another word is a multi-word type (double precision), left out.
var afterType = []string{"and", "or", "is", "not", "then", "else", "end", "when", "collate", "in", "between", "like", "ilike", "similar", "from", "for", "at"}

func scanRowFilterNames(src string, columns []string) rowFilterNames {
	toks := lexFilter(src)
	punct := toks.punct
	word := func(i int, words []string) bool {
		return i >= 0 && i < len(toks) && toks[i].Kind == sqllex.Word && slices.ContainsFunc(words, toks[i].Is)
	}
	// name reads a name or schema.name at i; next is the token after it.
	name := func(i int) (q qualifiedName, next int, ok bool) {
		if i >= len(toks) {
			return q, i, false
		}
		if q.Name, ok = pgsql.TokenName(toks[i]); !ok {
			return q, i, false
		}
		if punct(i+1, ".") && i+2 < len(toks) {
			if n, ok := pgsql.TokenName(toks[i+2]); ok {
				return qualifiedName{Schema: q.Name, Name: n}, i + 3, true
			}
		}
		return q, i + 1, true
	}
	var r rowFilterNames
	add := func(list []qualifiedName, q qualifiedName) []qualifiedName {
		if slices.Contains(list, q) {
			return list
		}
		return append(list, q)
	}
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		switch {
		case t.Kind == sqllex.Punct && strings.Contains(operatorChars, t.Text):
			op, j := t.Text, i+1
			for j < len(toks) && toks[j].Kind == sqllex.Punct && toks[j].Pos == toks[j-1].Pos+1 && strings.Contains(operatorChars, toks[j].Text) {
				op += toks[j].Text
				j++
			}
			i = j - 1
			if !strings.ContainsAny(op, operatorSpecial) {
				op = strings.TrimRight(op, "+-")
				if op == "" {
					op = t.Text
				}
			}
			if op != "=>" && !slices.Contains(r.Operators, op) { // => names an argument
				r.Operators = append(r.Operators, op)
			}
		case t.Is("collate"):
			if q, _, ok := name(i + 1); ok {
				r.Collations = add(r.Collations, q)
			}
		case punct(i, ":") && punct(i+1, ":") && toks[i+1].Pos == t.Pos+1, t.Is("as"):
			start := i + 1
			if !t.Is("as") {
				start = i + 2
			}
			if q, next, ok := name(start); ok && (next >= len(toks) || toks[next].Kind != sqllex.Word || word(next, afterType)) &&
				!(toks[start].Kind == sqllex.Word && pgsql.QuotedKeyword(q.Name) && q.Schema == "") {
				r.Types = add(r.Types, q)
			}
		case t.Kind == sqllex.Word || t.Kind == sqllex.Quoted:
			n, _ := pgsql.TokenName(t)
			if !slices.Contains(columns, n) || (t.Kind == sqllex.Word && pgsql.QuotedKeyword(n)) || slices.Contains(r.Columns, n) {
				continue
			}
			if i > 0 {
				prev := toks[i-1]
				if prev.Kind == sqllex.String || prev.Kind == sqllex.Word && !word(i-1, beforeColumn) || punct(i-1, ".") || punct(i-1, ":") {
					continue
				}
			}
			if punct(i+1, "(") || punct(i+1, ".") || (i+1 < len(toks) && toks[i+1].Kind == sqllex.String) || word(i+1, []string{"from"}) ||
				punct(i+1, "=") && punct(i+2, ">") || punct(i+1, ":") && punct(i+2, "=") {
				continue
			}
			r.Columns = append(r.Columns, n)
		}
	}
	return r
}

// rowFilterNamesRefused says why PostgreSQL would refuse src as a row
// filter of table for an operator, collation, type or column it names
// (scanRowFilterNames), and the server's words for it; "" when it may
// accept it. As with functions (rowFilterFunctionRefused), a name is
// refused only when everything of that name it could reach is: an operator
// when every operator of that name visible is user-defined (OID 16384 and
// up) or calls a user-defined or mutable function; a type or collation
// when the one it names is user-defined; a column whose type or collation
// is user-defined, which PostgreSQL refuses wherever it stands in the
// filter. Catalog reads: nothing is locked or written.
func rowFilterNamesRefused(ctx context.Context, q querier, table tableColumns, src string) (why, rule string, err error) {
	names := scanRowFilterNames(src, table.Columns)
	for _, op := range names.Operators {
		rows, err := q.Query(ctx, `
SELECT o.oid::regoperator::text, o.oid >= 16384, p.oid >= 16384 OR p.provolatile <> 'i'
  FROM pg_catalog.pg_operator o JOIN pg_catalog.pg_proc p ON p.oid = o.oprcode
 WHERE o.oprname = $1 AND pg_catalog.pg_operator_is_visible(o.oid)
 ORDER BY 1`, op)
		if err != nil {
			return "", "", err
		}
		type candidate struct {
			Signature             string
			UserDefined, Function bool
		}
		found, err := pgx.CollectRows(rows, pgx.RowToStructByPos[candidate])
		if err != nil {
			return "", "", err
		}
		if len(found) == 0 {
			continue // not an operator here: the server says what it is
		}
		var signatures []string
		userDefined, refused := true, true
		for _, c := range found {
			signatures = append(signatures, c.Signature)
			userDefined = userDefined && c.UserDefined
			refused = refused && (c.UserDefined || c.Function)
		}
		switch {
		case userDefined:
			return fmt.Sprintf("it uses the operator %s, and every operator of that name is user-defined (%s)", op, strings.Join(signatures, ", ")),
				"User-defined operators are not allowed.", nil
		case refused:
			return fmt.Sprintf("it uses the operator %s, and every operator of that name is user-defined or calls a user-defined or mutable function (%s)",
				op, strings.Join(signatures, ", ")), mutableRule, nil
		}
	}
	const collationSQL = `
SELECT bool_and(c.oid >= 16384), string_agg(c.oid::regcollation::text, ', ')
  FROM pg_catalog.pg_collation c JOIN pg_catalog.pg_namespace n ON n.oid = c.collnamespace
 WHERE c.collname = $1 AND c.collencoding IN (-1, pg_catalog.pg_char_to_encoding(pg_catalog.getdatabaseencoding()))
   AND CASE WHEN $2 = '' THEN pg_catalog.pg_collation_is_visible(c.oid) ELSE n.nspname = $2 END
HAVING count(*) > 0`
	if shown, err := firstUserDefined(ctx, q, collationSQL, names.Collations); err != nil {
		return "", "", err
	} else if shown != "" {
		return fmt.Sprintf("it uses the collation %s, which is user-defined (CREATE COLLATION)", shown), "User-defined collations are not allowed.", nil
	}
	const typeSQL = `
SELECT t.oid >= 16384, t.oid::regtype::text
  FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
 WHERE t.typname = $1 AND CASE WHEN $2 = '' THEN pg_catalog.pg_type_is_visible(t.oid) ELSE n.nspname = $2 END`
	if shown, err := firstUserDefined(ctx, q, typeSQL, names.Types); err != nil {
		return "", "", err
	} else if shown != "" {
		return fmt.Sprintf("it casts to %s, a user-defined type", shown), "User-defined types are not allowed.", nil
	}
	if len(names.Columns) == 0 {
		return "", "", nil
	}
	rows, err := q.Query(ctx, `
SELECT a.attname::text, a.atttypid >= 16384, a.atttypid::regtype::text, a.attcollation >= 16384, coalesce(a.attcollation::regcollation::text, '')
  FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = $1 AND c.relname = $2 AND a.attname = ANY ($3) AND a.attnum > 0 AND NOT a.attisdropped
 ORDER BY a.attnum`, table.Schema, table.Name, names.Columns)
	if err != nil {
		return "", "", err
	}
	type column struct {
		Name          string
		UserType      bool
		Type          string
		UserCollation bool
		Collation     string
	}
	cols, err := pgx.CollectRows(rows, pgx.RowToStructByPos[column])
	if err != nil {
		return "", "", err
	}
	for _, c := range cols {
		switch {
		case c.UserType:
			return fmt.Sprintf("it uses the column %s, of the user-defined type %s", pgsql.QuoteIdent(c.Name), c.Type), "User-defined types are not allowed.", nil
		case c.UserCollation:
			return fmt.Sprintf("it uses the column %s, whose collation %s is user-defined", pgsql.QuoteIdent(c.Name), c.Collation), "User-defined collations are not allowed.", nil
		}
	}
	return "", "", nil
}

// firstUserDefined looks each name up with sql, which takes the name and
// its schema ("" when not qualified) and answers whether what the name
// reaches is user-defined, and how to show it; it returns how to show the
// first that is, or "" when none is (or none exists).
func firstUserDefined(ctx context.Context, q querier, sql string, names []qualifiedName) (string, error) {
	for _, n := range names {
		var user bool
		var shown string
		err := q.QueryRow(ctx, sql, n.Name, n.Schema).Scan(&user, &shown)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
		case err != nil:
			return "", err
		case user:
			return shown, nil
		}
	}
	return "", nil
}

// rowFilterValidator refuses, before anything reaches a server, a row
// filter that is not one SQL expression.
var rowFilterValidator = validate.String("Invalid Row Filter",
	"one boolean SQL expression: balanced parentheses, no semicolon, comment or subquery", checkRowFilter)

// checkRowFilter reports why src is not one SQL expression that the
// provider may put between the parentheses of `WHERE ( … )`. The server's
// grammar decides the rest (at plan time when it can be asked, else at
// apply); this check is what keeps a filter from closing those parentheses
// and going on with SQL of its own (`true), ONLY other WHERE (true` would add
// a table; `id > 0) WITH (publish = 'insert') --` would change options),
// whichever way it is quoted: it reads the text with the SQL lexer, so a
// parenthesis inside a string or a quoted name is not one.
func checkRowFilter(src string) error {
	lx := sqllex.New(src)
	var open []sqllex.Token
	var prev sqllex.Token
	n, end := 0, 0
	for t := lx.Next(); ; prev, t = t, lx.Next() {
		// The lexer skips comments with the spaces between tokens: what it
		// skipped that is not space was a comment.
		if gap := src[end:t.Pos]; strings.TrimSpace(gap) != "" {
			return fmt.Errorf("the row filter %q holds a comment (%s): a comment could hide the rest of the statement the filter is part of, and PostgreSQL does not keep it. Remove it",
				src, strings.TrimSpace(gap))
		}
		if t.Kind == sqllex.EOF {
			break
		}
		n, end = n+1, t.Pos+len(t.Text)
		switch {
		case t.Kind == sqllex.Punct && t.Text == ";":
			return fmt.Errorf("the row filter %q holds a semicolon at byte %d: a row filter is one expression, not statements. Remove it", src, t.Pos+1)
		// A subquery starts with SELECT, TABLE (reserved, so never a bare
		// column name) or VALUES ( … ): VALUES can name a column, but not
		// a function, so with a parenthesis after it, it is the clause.
		case t.Is("select") || t.Is("table") || t.Kind == sqllex.Punct && t.Text == "(" && prev.Is("values"):
			return fmt.Errorf("the row filter %q holds a subquery: PostgreSQL allows only simple expressions over the table's own columns in a row filter", src)
		case t.Kind == sqllex.Punct && (t.Text == "(" || t.Text == "["):
			open = append(open, t)
		case t.Kind == sqllex.Punct && (t.Text == ")" || t.Text == "]"):
			want := map[string]string{")": "(", "]": "["}[t.Text]
			if len(open) == 0 || open[len(open)-1].Text != want {
				return fmt.Errorf("the row filter %q closes a %q at byte %d that it did not open: a row filter is one expression, and cannot end the clause it is part of. Balance the parentheses", src, t.Text, t.Pos+1)
			}
			open = open[:len(open)-1]
		}
	}
	switch {
	case lx.Broken():
		return fmt.Errorf("the row filter %q is not one SQL expression: a string constant, quoted name or comment in it is not closed. Close it", src)
	case n == 0:
		return fmt.Errorf("the row filter is empty: write a boolean expression over the table's columns, or remove where")
	case len(open) > 0:
		t := open[len(open)-1]
		return fmt.Errorf("the row filter %q opens a %q at byte %d that it does not close. Balance the parentheses", src, t.Text, t.Pos+1)
	}
	return nil
}

// warnWalLevel warns when the server cannot feed logical replication
// subscribers: PostgreSQL creates publications at any wal_level, but
// subscribers can only use them with wal_level = logical.
func (r *publicationResource) warnWalLevel(ctx context.Context, name string, diags *diag.Diagnostics) {
	if r.server == nil || r.server.unknown {
		return
	}
	f, err := r.server.Facts(ctx)
	if err != nil || f.WalLevel == "" || f.WalLevel == "logical" {
		return
	}
	diags.AddWarning("Publisher wal_level Is Not logical",
		fmt.Sprintf("%s runs with wal_level = %s. Publication %q can be created, but no subscriber can use it: "+
			"logical replication needs wal_level = logical on the publisher. "+
			"Set it (ALTER SYSTEM SET wal_level = logical, or in postgresql.conf) and restart the server.",
			r.server.describe(), f.WalLevel, name))
}

// readFailure is the detail of a publication that could not be read back
// from the catalogs.
func (r *publicationResource) readFailure(ctx context.Context, name, database string, err error) string {
	return r.server.readFailure(ctx, fmt.Sprintf("publication %s in database %q from pg_publication, pg_publication_rel and "+
		"pg_publication_namespace", pgsql.Ident(name), database), err, readPublicationsPrivilege)
}

// confirmApplied reads the publication back after Create or Update: it must
// exist as declared (an apply that reads back nothing is an error here, not
// a "present, then absent" surprise later). It fills the computed owner, and
// records in private state each row filter as configured and as stored,
// which spares the next plans a round trip to the server.
func (r *publicationResource) confirmApplied(ctx context.Context, pool *pgxpool.Pool, plan *publicationModel, config publicationModel,
	want publication, did string, diags *diag.Diagnostics, private privateSetter) {
	facts, ok := r.server.FactsOrDiag(ctx, diags)
	if !ok {
		return
	}
	major := facts.Major()
	database := plan.Database.ValueString()
	got, err := readPublication(ctx, pool, major, want.Name, 0)
	if err != nil {
		diags.AddError("Cannot Read Publication", fmt.Sprintf("Publication %q was %s in database %q, but reading it back failed. %s",
			want.Name, did, database, r.readFailure(ctx, want.Name, database, err)))
		return
	}
	if got == nil {
		diags.AddError("Publication Missing After Apply",
			fmt.Sprintf("Publication %q was %s in database %q on %s, but the catalog does not show it: something dropped it at the same time. Run terraform apply again.",
				want.Name, did, database, r.server.describe()))
		return
	}
	if missing := missingMembers(want, *got); len(missing) > 0 {
		diags.AddError("Publication Differs After Apply",
			fmt.Sprintf("Publication %q was %s in database %q on %s, but the catalog does not list %s in it: something changed it at the same time. Run terraform apply again.",
				want.Name, did, database, r.server.describe(), strings.Join(missing, ", ")))
		return
	}
	plan.Owner = types.StringValue(got.Owner)
	diags.Append(setPrivateOID(ctx, private, got.OID)...)

	configured, d := tablesOf(ctx, config.Tables)
	diags.Append(d...)
	stored := map[string]string{}
	for _, t := range got.Tables {
		stored[t.key()] = t.Where
	}
	applied := map[string]appliedFilter{}
	for key, t := range configured {
		if !t.Where.IsNull() && !t.Where.IsUnknown() && stored[key] != "" {
			applied[key] = appliedFilter{Config: t.Where.ValueString(), Stored: stored[key]}
		}
	}
	if raw, err := json.Marshal(applied); err == nil {
		diags.Append(private.SetKey(ctx, rowFiltersKey, raw)...)
	}
}

// missingMembers names the declared tables and schemas that the catalog does not list.
func missingMembers(want, got publication) []string {
	have := map[string]bool{}
	for _, t := range got.Tables {
		have[t.key()] = true
	}
	var missing []string
	for _, t := range want.Tables {
		if !have[t.key()] {
			missing = append(missing, "table "+t.key())
		}
	}
	for _, s := range want.Schemas {
		if !slices.Contains(got.Schemas, s) {
			missing = append(missing, "schema "+pgsql.Ident(s))
		}
	}
	return missing
}

// declaredPublication reports whether got, read from the catalog, is the
// publication want declares: the same members (row filters aside, which the
// server rewrites), options and owner. A publication found after a create
// that got no answer is recorded only then.
func declaredPublication(want, got publication) bool {
	sameTable := func(a, b publishedTable) bool {
		return a.key() == b.key() && (a.Columns == nil) == (b.Columns == nil) && slices.Equal(a.Columns, b.Columns) &&
			(a.Where == "") == (b.Where == "")
	}
	return want.AllTables == got.AllTables && slices.EqualFunc(want.Tables, got.Tables, sameTable) &&
		slices.Equal(want.Schemas, got.Schemas) && slices.Equal(want.Publish, got.Publish) && want.ViaRoot == got.ViaRoot &&
		(want.GenCols == "" || want.GenCols == got.GenCols) && (want.Owner == "" || want.Owner == got.Owner)
}

// describePublication says what p holds, for a message.
func describePublication(p publication) string {
	var members []string
	if p.AllTables {
		members = append(members, "all tables")
	}
	for _, t := range p.Tables {
		members = append(members, "table "+t.key())
	}
	for _, s := range p.Schemas {
		members = append(members, "tables in schema "+pgsql.Ident(s))
	}
	if len(members) == 0 {
		members = append(members, "no tables")
	}
	return fmt.Sprintf("owned by %s, publishing %s of %s", pgsql.Ident(p.Owner), strings.Join(nonNil(p.Publish), ", "), strings.Join(members, ", "))
}

// publication is a publication as the configuration declares it or as the
// catalogs hold it. Its slices are sorted, so two compare with slices.Equal.
type publication struct {
	Name      string
	Owner     string // "": whoever creates it
	AllTables bool
	Tables    []publishedTable
	Schemas   []string
	Publish   []string // in publishActions order
	ViaRoot   bool
	// GenCols is publish_generated_columns: "none" or "stored", or "" for
	// a server older than PostgreSQL 18, which has no such option.
	GenCols string
	// OID identifies the publication across a rename; 0 when not read
	// from the catalog.
	OID uint32
}

// publishedTable is one table of a publication.
type publishedTable struct {
	Schema, Name string
	Columns      []string // nil: every column
	Where        string   // "": no row filter
}

func (t publishedTable) key() string { return tableKey(t.Schema, t.Name) }

// privileges are what creating or changing p needs (see privilegesText in
// the schema): ownership of the publication, which its creator has, aside.
func (p publication) privileges(database string) []privilege {
	privs := []privilege{createOnDatabasePrivilege(pgsql.Ident(database))}
	for _, t := range p.Tables {
		privs = append(privs, tableOwnerPrivilege(pgsql.QualifiedIdent(t.Schema, t.Name)))
	}
	if p.AllTables || len(p.Schemas) > 0 {
		privs = append(privs, superuserPrivilege)
	}
	return privs
}

// tableKey identifies a table within a publication: its key in tables, in
// messages and in private state. It is the qualified name as a person
// writes it (pgsql.QuoteQualifiedName), so that what Read and import produce
// is what a configuration says.
func tableKey(schema, name string) string { return pgsql.QuoteQualifiedName(schema, name) }

// publication converts a plan or state into a publication.
func (m publicationModel) publication(ctx context.Context) (publication, diag.Diagnostics) {
	var diags diag.Diagnostics
	p := publication{
		Name:      m.Name.ValueString(),
		Owner:     m.Owner.ValueString(),
		AllTables: m.AllTables.ValueBool(),
		ViaRoot:   m.PublishViaPartitionRoot.ValueBool(),
		GenCols:   m.PublishGeneratedColumns.ValueString(),
	}
	tables, d := tablesOf(ctx, m.Tables)
	diags.Append(d...)
	for key, t := range tables {
		schema, name, err := pgsql.ParseQualifiedName(key)
		if err != nil {
			diags.AddAttributeError(path.Root("tables").AtMapKey(key), "Invalid Publication Table Key", checkTableKey(key).Error())
			continue
		}
		pt := publishedTable{Schema: schema, Name: name, Where: t.Where.ValueString()}
		if !t.Columns.IsNull() {
			pt.Columns = []string{}
			diags.Append(t.Columns.ElementsAs(ctx, &pt.Columns, false)...)
			slices.Sort(pt.Columns)
		}
		p.Tables = append(p.Tables, pt)
	}
	slices.SortFunc(p.Tables, func(a, b publishedTable) int { return strings.Compare(a.key(), b.key()) })
	if !m.TablesInSchema.IsNull() {
		diags.Append(m.TablesInSchema.ElementsAs(ctx, &p.Schemas, false)...)
		slices.Sort(p.Schemas)
	}
	var publish []string
	diags.Append(m.Publish.ElementsAs(ctx, &publish, false)...)
	for _, a := range publishActions {
		if slices.Contains(publish, a) {
			p.Publish = append(p.Publish, a)
		}
	}
	return p, diags
}

// setFrom sets m to what the catalogs hold for the publication p of database.
func (m *publicationModel) setFrom(ctx context.Context, p publication, database string) diag.Diagnostics {
	var diags diag.Diagnostics
	m.ID = types.StringValue(importid.Format(database, p.Name))
	m.Database = types.StringValue(database)
	m.Name = types.StringValue(p.Name)
	m.Owner = types.StringValue(p.Owner)
	m.AllTables = types.BoolValue(p.AllTables)
	m.PublishViaPartitionRoot = types.BoolValue(p.ViaRoot)
	m.PublishGeneratedColumns = types.StringValue(generatedColumnsModes[0])
	if p.GenCols != "" {
		m.PublishGeneratedColumns = types.StringValue(p.GenCols)
	}

	tables := make(map[string]attr.Value, len(p.Tables))
	for _, t := range p.Tables {
		columns := types.SetNull(types.StringType)
		if t.Columns != nil {
			var d diag.Diagnostics
			columns, d = types.SetValueFrom(ctx, types.StringType, t.Columns)
			diags.Append(d...)
		}
		where := types.StringNull()
		if t.Where != "" {
			where = types.StringValue(t.Where)
		}
		obj, d := types.ObjectValue(publicationTableAttrTypes, map[string]attr.Value{
			"columns": columns,
			"where":   where,
		})
		diags.Append(d...)
		tables[t.key()] = obj
	}
	var d diag.Diagnostics
	m.Tables, d = types.MapValue(types.ObjectType{AttrTypes: publicationTableAttrTypes}, tables)
	diags.Append(d...)
	m.TablesInSchema, d = types.SetValueFrom(ctx, types.StringType, nonNil(p.Schemas))
	diags.Append(d...)
	m.Publish, d = types.SetValueFrom(ctx, types.StringType, nonNil(p.Publish))
	diags.Append(d...)
	return diags
}

// nonNil makes an empty set of a nil slice (SetValueFrom would make it null).
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// querier is what readPublication needs: a pool or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// readPublication reads publication name from the catalogs of the database q
// is connected to; nil means there is no such publication. pg_publication_rel
// lists the tables as they were declared: a partitioned table, not its
// partitions. Row filters (prqual, printed by pg_get_expr), column lists
// (prattrs, attribute numbers mapped to names through pg_attribute) and
// pg_publication_namespace exist from PostgreSQL 15.
func readPublication(ctx context.Context, q querier, major int, name string, oid uint32) (*publication, error) {
	var (
		p                     publication
		ins, upd, del, trunct bool
	)
	genCols := "''"
	if major >= 18 {
		genCols = "CASE pubgencols WHEN 's' THEN 'stored' ELSE 'none' END"
	}
	// By name, or by OID when name is "": how Read finds a publication
	// renamed by hand.
	err := q.QueryRow(ctx, `
SELECT oid, pubname::text, pg_get_userbyid(pubowner)::text, puballtables,
       pubinsert, pubupdate, pubdelete, pubtruncate, pubviaroot, `+genCols+`
FROM pg_publication WHERE CASE WHEN $1 = '' THEN oid = $2 ELSE pubname = $1 END`, name, oid).Scan(
		&p.OID, &p.Name, &p.Owner, &p.AllTables, &ins, &upd, &del, &trunct, &p.ViaRoot, &p.GenCols)
	oid = p.OID
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	for i, on := range []bool{ins, upd, del, trunct} {
		if on {
			p.Publish = append(p.Publish, publishActions[i])
		}
	}

	tablesSQL := `
SELECT n.nspname::text, c.relname::text, '', NULL::text[]
FROM pg_publication_rel r
JOIN pg_class c ON c.oid = r.prrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE r.prpubid = $1`
	if major >= 15 {
		tablesSQL = `
SELECT n.nspname::text, c.relname::text,
       COALESCE(pg_get_expr(r.prqual, r.prrelid), ''),
       CASE WHEN r.prattrs IS NOT NULL THEN
         ARRAY(SELECT a.attname::text FROM pg_attribute a
               WHERE a.attrelid = r.prrelid AND a.attnum = ANY (r.prattrs::int2[]))
       END
FROM pg_publication_rel r
JOIN pg_class c ON c.oid = r.prrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE r.prpubid = $1`
	}
	rows, err := q.Query(ctx, tablesSQL, oid)
	if err != nil {
		return nil, err
	}
	p.Tables, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (publishedTable, error) {
		var t publishedTable
		err := row.Scan(&t.Schema, &t.Name, &t.Where, &t.Columns)
		slices.Sort(t.Columns)
		return t, err
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(p.Tables, func(a, b publishedTable) int { return strings.Compare(a.key(), b.key()) })

	if major >= 15 {
		rows, err := q.Query(ctx, `
SELECT n.nspname::text
FROM pg_publication_namespace pn JOIN pg_namespace n ON n.oid = pn.pnnspid
WHERE pn.pnpubid = $1`, oid)
		if err != nil {
			return nil, err
		}
		p.Schemas, err = pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return nil, err
		}
		slices.Sort(p.Schemas)
	}
	return &p, nil
}

// isMissingDatabase reports the error of a database that does not exist
// (invalid_catalog_name).
func isMissingDatabase(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "3D000"
}

// execOne runs one statement with the extended protocol, which refuses a
// second statement in the same string: row filters are SQL text from the
// configuration, and one like `true); DROP TABLE t; --` must fail, not run.
// A failure quotes the statement (statement.Error). Going beneath pgx.Conn,
// it calls the connection's tracer itself: the statement is logged, and
// bounded like every other (without the bound, a server that stopped
// answering mid-statement held the apply for as long as it stayed so).
func execOne(ctx context.Context, tx pgx.Tx, sql string) (err error) {
	conn := tx.Conn()
	if tracer := conn.Config().Tracer; tracer != nil {
		ctx = tracer.TraceQueryStart(ctx, conn, pgx.TraceQueryStartData{SQL: sql})
		defer func() { tracer.TraceQueryEnd(ctx, conn, pgx.TraceQueryEndData{Err: err}) }()
	}
	if err := conn.PgConn().ExecParams(ctx, sql, nil, nil, nil, nil).Read().Err; err != nil {
		return statement.Error(ctx, sql, err)
	}
	return nil
}

// objectList renders a publication's tables and schemas for CREATE and
// ALTER … SET: `TABLE ONLY a (x, y) WHERE (…), ONLY b, TABLES IN SCHEMA s`.
// ONLY keeps tables that inherit from a declared table out of the
// publication (PostgreSQL would add each as a member of its own, which the
// configuration does not declare); a partitioned table's partitions are
// published through it either way. One TABLE keyword before a
// comma-separated list is also the syntax of PostgreSQL 13 and 14.
func objectList(p publication) string {
	var objects []string
	if len(p.Tables) > 0 {
		specs := make([]string, len(p.Tables))
		for i, t := range p.Tables {
			specs[i] = tableSpec(t)
		}
		objects = append(objects, "TABLE "+strings.Join(specs, ", "))
	}
	if len(p.Schemas) > 0 {
		objects = append(objects, "TABLES IN SCHEMA "+pgsql.IdentList(p.Schemas))
	}
	return strings.Join(objects, ", ")
}

// tableSpec renders one table of an object list.
func tableSpec(t publishedTable) string {
	s := "ONLY " + pgsql.QualifiedIdent(t.Schema, t.Name)
	if t.Columns != nil {
		s += " (" + pgsql.IdentList(t.Columns) + ")"
	}
	if t.Where != "" {
		// The filter is SQL the configuration wrote; the parentheses are
		// PostgreSQL's syntax, and execOne refuses a filter that closes
		// them to start another statement.
		s += " WHERE (" + t.Where + ")"
	}
	return s
}

// optionsClause renders the options of CREATE … WITH and ALTER … SET.
func optionsClause(p publication) string {
	s := "publish = " + pgsql.Literal(strings.Join(p.Publish, ", ")) +
		", publish_via_partition_root = " + strconv.FormatBool(p.ViaRoot)
	if p.GenCols != "" {
		s += ", publish_generated_columns = " + pgsql.Literal(p.GenCols)
	}
	return s
}

func createPublicationSQL(p publication) string {
	sql := "CREATE PUBLICATION " + pgsql.Ident(p.Name)
	if p.AllTables {
		sql += " FOR ALL TABLES"
	} else if objects := objectList(p); objects != "" {
		sql += " FOR " + objects
	}
	return sql + " WITH (" + optionsClause(p) + ")"
}

func alterOwnerSQL(name, owner string) string {
	return "ALTER PUBLICATION " + pgsql.Ident(name) + " OWNER TO " + pgsql.Ident(owner)
}

// alterPublicationSQL returns the statements that change publication had
// into want, in an order PostgreSQL accepts: the rename first, so the rest
// name the publication by its new name; publish_via_partition_root turned on
// before the tables change and off after, because PostgreSQL allows a row
// filter on a partitioned table only while it is on.
func alterPublicationSQL(had, want publication) []string {
	if had.AllTables != want.AllTables {
		// PostgreSQL cannot alter FOR ALL TABLES: drop and create in the
		// caller's one transaction, so that a subscriber's WAL sender,
		// which decodes each change with the catalog as of that change,
		// finds the old publication or the new one, never none (a change
		// committed between a DROP and a CREATE stops the subscription
		// before PostgreSQL 18, and is skipped from 18 on).
		stmts := []string{"DROP PUBLICATION " + pgsql.Ident(had.Name), createPublicationSQL(want)}
		if want.Owner != "" {
			stmts = append(stmts, alterOwnerSQL(want.Name, want.Owner))
		}
		return stmts
	}
	var stmts []string
	name := pgsql.Ident(want.Name)
	if had.Name != want.Name {
		stmts = append(stmts, "ALTER PUBLICATION "+pgsql.Ident(had.Name)+" RENAME TO "+name)
	}
	optionsChanged := !slices.Equal(had.Publish, want.Publish) || had.ViaRoot != want.ViaRoot || had.GenCols != want.GenCols
	setOptions := "ALTER PUBLICATION " + name + " SET (" + optionsClause(want) + ")"
	if optionsChanged && want.ViaRoot {
		stmts = append(stmts, setOptions)
	}
	if !want.AllTables && (!slices.EqualFunc(had.Tables, want.Tables, publishedTablesEqual) || !slices.Equal(had.Schemas, want.Schemas)) {
		if objects := objectList(want); objects != "" {
			// SET replaces the whole list; PostgreSQL keeps the members
			// that did not change, so their subscribers notice nothing.
			stmts = append(stmts, "ALTER PUBLICATION "+name+" SET "+objects)
		} else {
			// There is no SET to nothing: drop what is there.
			stmts = append(stmts, "ALTER PUBLICATION "+name+" DROP "+objectList(publication{Tables: tableNames(had.Tables), Schemas: had.Schemas}))
		}
	}
	if optionsChanged && !want.ViaRoot {
		stmts = append(stmts, setOptions)
	}
	if want.Owner != "" && want.Owner != had.Owner {
		stmts = append(stmts, alterOwnerSQL(want.Name, want.Owner))
	}
	return stmts
}

// tableNames strips column lists and row filters, which DROP does not take.
func tableNames(tables []publishedTable) []publishedTable {
	out := make([]publishedTable, len(tables))
	for i, t := range tables {
		out[i] = publishedTable{Schema: t.Schema, Name: t.Name}
	}
	return out
}

func publishedTablesEqual(a, b publishedTable) bool {
	return a.Schema == b.Schema && a.Name == b.Name && a.Where == b.Where &&
		(a.Columns == nil) == (b.Columns == nil) && slices.Equal(a.Columns, b.Columns)
}
