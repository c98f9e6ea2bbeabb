package provider

import (
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

// publicationModel is resource pgreplication_publication.
type publicationModel struct {
	ID                      types.String `tfsdk:"id"`
	Name                    types.String `tfsdk:"name"`
	Database                types.String `tfsdk:"database"`
	Owner                   types.String `tfsdk:"owner"`
	AllTables               types.Bool   `tfsdk:"all_tables"`
	Tables                  types.Set    `tfsdk:"table"` // of publicationTableModel
	TablesInSchema          types.Set    `tfsdk:"tables_in_schema"`
	Publish                 types.Set    `tfsdk:"publish"`
	PublishViaPartitionRoot types.Bool   `tfsdk:"publish_via_partition_root"`
}

// publicationTableModel is one table block of pgreplication_publication.
type publicationTableModel struct {
	Schema  types.String `tfsdk:"schema"`
	Name    types.String `tfsdk:"name"`
	Columns types.Set    `tfsdk:"columns"`
	Where   types.String `tfsdk:"where"`
}

// publicationTableAttrTypes is the object type of a table block, for building
// the set that Read returns.
var publicationTableAttrTypes = map[string]attr.Type{
	"schema":  types.StringType,
	"name":    types.StringType,
	"columns": types.SetType{ElemType: types.StringType},
	"where":   types.StringType,
}
