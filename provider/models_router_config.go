package provider

import "github.com/hashicorp/terraform-plugin-framework/types"

// routerConfigModel is pgreplication_router_config. The blocks stay
// types.Object / types.List here, not structs, because a dynamic block can
// be unknown at plan time as a whole; they are converted to the structs
// below once known.
type routerConfigModel struct {
	ID             types.String `tfsdk:"id"`
	Path           types.String `tfsdk:"path"`
	FilePermission types.String `tfsdk:"file_permission"`
	Content        types.String `tfsdk:"content"`
	SHA256         types.String `tfsdk:"sha256"`
	Primary        types.Object `tfsdk:"primary"`
	Replica        types.List   `tfsdk:"replica"`
	ReadPolicy     types.Object `tfsdk:"read_policy"`
	Consistency    types.Object `tfsdk:"consistency"`
	Health         types.Object `tfsdk:"health"`
	Route          types.List   `tfsdk:"route"`
	Pool           types.Object `tfsdk:"pool"`
}

// routerNodeModel is a primary or replica block.
type routerNodeModel struct {
	Name        types.String `tfsdk:"name"`
	Host        types.String `tfsdk:"host"`
	Port        types.Int64  `tfsdk:"port"`
	Database    types.String `tfsdk:"database"`
	User        types.String `tfsdk:"user"`
	SSLMode     types.String `tfsdk:"sslmode"`
	SSLRootCert types.String `tfsdk:"sslrootcert"`
	PasswordEnv types.String `tfsdk:"password_env"`
	Passfile    types.String `tfsdk:"passfile"`
	Zone        types.String `tfsdk:"zone"`
	Weight      types.Int64  `tfsdk:"weight"`
	MaxLag      types.String `tfsdk:"max_lag"`
	MaxLagBytes types.Int64  `tfsdk:"max_lag_bytes"`
	Synchronous types.Bool   `tfsdk:"synchronous"`
}

// routerReadPolicyModel is the read_policy block.
type routerReadPolicyModel struct {
	Strategy types.String `tfsdk:"strategy"`
	Fallback types.String `tfsdk:"fallback"`
}

// routerConsistencyModel is the consistency block.
type routerConsistencyModel struct {
	Mode        types.String `tfsdk:"mode"`
	WaitTimeout types.String `tfsdk:"wait_timeout"`
}

// routerHealthModel is the health block.
type routerHealthModel struct {
	Interval     types.String `tfsdk:"interval"`
	Timeout      types.String `tfsdk:"timeout"`
	EjectAfter   types.Int64  `tfsdk:"eject_after"`
	ReadmitAfter types.Int64  `tfsdk:"readmit_after"`
}

// routerRouteModel is a route block.
type routerRouteModel struct {
	Name     types.String `tfsdk:"name"`
	Nodes    types.List   `tfsdk:"nodes"`
	Strategy types.String `tfsdk:"strategy"`
	Fallback types.String `tfsdk:"fallback"`
}

// routerPoolModel is the pool block.
type routerPoolModel struct {
	MaxConns        types.Int64  `tfsdk:"max_conns"`
	MinConns        types.Int64  `tfsdk:"min_conns"`
	MaxConnLifetime types.String `tfsdk:"max_conn_lifetime"`
}
