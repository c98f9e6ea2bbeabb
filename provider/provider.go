// Package provider implements the pgreplication Terraform provider: PostgreSQL
// publications, replication slots, subscriptions, a standby's streaming
// configuration, synchronous replication, and the router file that routerlib
// reads. One provider instance talks to one server; a primary and its
// standbys are provider aliases.
package provider

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/provider"
	"github.com/hashicorp/terraform-plugin-framework/provider/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"

	"github.com/pgreplication/terraform-provider-pgreplication/provider/internal/conninfo"
)

var _ provider.Provider = (*pgreplicationProvider)(nil)

// defaultMaxConnections bounds the connections one provider instance opens
// to its server, however many resources the configuration has.
const defaultMaxConnections = 4

// sslModes are libpq's sslmode values.
var sslModes = conninfo.Choices["sslmode"]

// New returns a constructor for the provider, as providerserver.Serve wants it.
func New(version string) func() provider.Provider {
	return func() provider.Provider {
		return &pgreplicationProvider{version: version}
	}
}

type pgreplicationProvider struct {
	version string
	// syncConfirmWait, when set, replaces syncConfirmTimeout for this
	// provider's servers: tests shorten it, so that refusing a standby that
	// never confirms does not take the full wait each time.
	syncConfirmWait time.Duration
}

func (p *pgreplicationProvider) Metadata(_ context.Context, _ provider.MetadataRequest, resp *provider.MetadataResponse) {
	resp.TypeName = "pgreplication"
	resp.Version = p.version
}

func (p *pgreplicationProvider) Schema(_ context.Context, _ provider.SchemaRequest, resp *provider.SchemaResponse) {
	resp.Schema = providerSchema()
}

func providerSchema() schema.Schema {
	return schema.Schema{
		MarkdownDescription: "Manages PostgreSQL replication declaratively: publications, replication slots, subscriptions, " +
			"a standby's streaming configuration, synchronous replication, and the router file that applications using " +
			"routerlib read. One provider instance talks to one server; declare a primary and its standbys with provider aliases.\n\n" +
			"Every setting falls back to its libpq environment variable (`PGHOST`, `PGPORT`, …), then to libpq's default. " +
			"The provider connects lazily, on first use, so settings that are only known after apply (a host created in the same run) work.",
		Attributes: map[string]schema.Attribute{
			"host": schema.StringAttribute{
				Optional:            true,
				MarkdownDescription: "Server host name or address. Defaults to `PGHOST`, then `localhost`.",
			},
			"port": schema.Int64Attribute{
				Optional:            true,
				Validators:          []validator.Int64{int64validator.Between(1, 65535)},
				MarkdownDescription: "Server port. Defaults to `PGPORT`, then `5432`.",
			},
			"database": schema.StringAttribute{
				Optional:            true,
				MarkdownDescription: "Database to connect to, and the default `database` of resources. Defaults to `PGDATABASE`, then the user name.",
			},
			"username": schema.StringAttribute{
				Optional:            true,
				MarkdownDescription: "Role to connect as. Defaults to `PGUSER`, then the operating-system user.",
			},
			"password": schema.StringAttribute{
				Optional:            true,
				Sensitive:           true,
				MarkdownDescription: "Password. Defaults to `PGPASSWORD`, then the passfile (`PGPASSFILE` or `~/.pgpass`). Never written to logs or state outputs.",
			},
			"sslmode": schema.StringAttribute{
				Optional:            true,
				Validators:          []validator.String{stringvalidator.OneOf(sslModes...)},
				MarkdownDescription: "libpq `sslmode`: " + quotedList(sslModes) + ". Defaults to `PGSSLMODE`, then `prefer`.",
			},
			"sslrootcert": schema.StringAttribute{
				Optional:            true,
				MarkdownDescription: "Path of the CA certificate that verifies the server. Defaults to `PGSSLROOTCERT`.",
			},
			"sslcert": schema.StringAttribute{
				Optional:            true,
				MarkdownDescription: "Path of the client certificate. Defaults to `PGSSLCERT`.",
			},
			"sslkey": schema.StringAttribute{
				Optional:            true,
				MarkdownDescription: "Path of the client certificate's key. Defaults to `PGSSLKEY`.",
			},
			"connect_timeout": schema.Int64Attribute{
				Optional:   true,
				Validators: []validator.Int64{int64validator.AtLeast(0)},
				MarkdownDescription: fmt.Sprintf("Seconds to wait for a connection, with libpq's `connect_timeout` semantics: the bound applies to each host address tried, "+
					"and `1` means `2`. A server that accepts the TCP connection and never answers fails the plan after this long, naming its host and port. "+
					"Defaults to `PGCONNECT_TIMEOUT`, then `%d`; `0` means the default, never no limit.", defaultConnectTimeout),
			},
			"statement_timeout": schema.StringAttribute{
				Optional:   true,
				Validators: []validator.String{postgresTimeValidator},
				MarkdownDescription: "`statement_timeout` of the provider's sessions, a PostgreSQL time such as `\"30s\"` or `\"10min\"`: the server cancels " +
					"any statement of the provider that runs longer, and the provider itself gives up " + statementGrace.String() + " later on a server that " +
					"stopped answering altogether (a frozen host: it closes the connection and fails naming the server). `\"0\"` turns both bounds off. " +
					"Defaults to `\"" + defaultStatementTimeout + "\"`.",
			},
			"max_connections": schema.Int64Attribute{
				Optional:            true,
				Validators:          []validator.Int64{int64validator.AtLeast(1)},
				MarkdownDescription: "Most connections this provider instance opens per database, however many resources it manages. Defaults to `4`.",
			},
		},
	}
}

func (p *pgreplicationProvider) Configure(ctx context.Context, req provider.ConfigureRequest, resp *provider.ConfigureResponse) {
	var cfg providerModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &cfg)...)
	if resp.Diagnostics.HasError() {
		return
	}
	s := connSettings{
		Host:        cfg.Host.ValueString(),
		Database:    cfg.Database.ValueString(),
		Username:    cfg.Username.ValueString(),
		Password:    cfg.Password.ValueString(),
		SSLMode:     cfg.SSLMode.ValueString(),
		SSLRootCert: cfg.SSLRootCert.ValueString(),
		SSLCert:     cfg.SSLCert.ValueString(),
		SSLKey:      cfg.SSLKey.ValueString(),
	}
	s.Port = cfg.Port.ValueInt64()
	s.ConnectTimeout = cfg.ConnectTimeout.ValueInt64()
	s.StatementTimeout = cfg.StatementTimeout.ValueString()
	s.MaxConnections = cfg.MaxConnections.ValueInt64()
	if s.Database == "" {
		// pgx would fall back to PGDATABASE itself; resolving it here makes it
		// the resources' default database too.
		s.Database = os.Getenv("PGDATABASE")
	}
	if s.Port == 0 {
		if v, err := strconv.ParseInt(os.Getenv("PGPORT"), 10, 64); err == nil {
			s.Port = v
		}
	}
	srv := newServer(s)
	srv.syncConfirmWait = p.syncConfirmWait
	for _, a := range []struct {
		name  string
		value interface{ IsUnknown() bool }
	}{
		{"host", cfg.Host}, {"port", cfg.Port}, {"database", cfg.Database}, {"username", cfg.Username}, {"password", cfg.Password},
		{"sslmode", cfg.SSLMode}, {"sslrootcert", cfg.SSLRootCert}, {"sslcert", cfg.SSLCert}, {"sslkey", cfg.SSLKey},
		{"connect_timeout", cfg.ConnectTimeout}, {"statement_timeout", cfg.StatementTimeout}, {"max_connections", cfg.MaxConnections},
	} {
		if a.value.IsUnknown() {
			srv.unknown = true
			srv.unknownAttrs = append(srv.unknownAttrs, a.name)
		}
	}
	if srv.settings.Database == "" {
		srv.settings.Database = srv.defaultDatabase()
	}
	resp.DataSourceData = srv
	resp.ResourceData = srv
}

func (p *pgreplicationProvider) Resources(_ context.Context) []func() resource.Resource {
	return []func() resource.Resource{
		newPublicationResource,
		newReplicationSlotResource,
		newSubscriptionResource,
		newStandbyResource,
		newSynchronousReplicationResource,
		newRouterConfigResource,
	}
}

func (p *pgreplicationProvider) DataSources(_ context.Context) []func() datasource.DataSource {
	return []func() datasource.DataSource{
		newServerDataSource,
		newReplicationStatusDataSource,
	}
}
