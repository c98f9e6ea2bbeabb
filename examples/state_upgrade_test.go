package examples_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgreplication/terraform-provider-pgreplication/routerlib/routertest"
)

// A state that a provider with table blocks wrote (pgreplication_publication
// schema version 0) goes through the real CLI as it does for someone who
// updates the provider: the same publication, declared in tables, plans
// nothing, and the apply stores it in version 1, keyed by each table's name.
func TestPublicationStateUpgrade(t *testing.T) {
	cli := findCLI(t)
	cli.configFile = buildProvider(t)
	topo := routertest.Start(t, routertest.WithStandbys(0))
	execSQL(t, topo.Primary, "postgres", `
CREATE TABLE books (id int PRIMARY KEY, title text, price numeric);
CREATE SCHEMA "My Schema";
CREATE TABLE "My Schema"."Odd.Table" (id int);
CREATE PUBLICATION books_pub FOR TABLE ONLY books (id, title) WHERE (price > 0), ONLY "My Schema"."Odd.Table" WITH (publish = 'insert')`)

	registry := "registry.terraform.io"
	if strings.Contains(filepath.Base(cli.path), "tofu") {
		registry = "registry.opentofu.org"
	}
	// What the provider's Read stored in version 0, table blocks and all.
	v0 := map[string]any{
		"id": "postgres/books_pub", "name": "books_pub", "database": "postgres", "owner": "postgres",
		"all_tables": false, "tables_in_schema": []string{}, "publish": []string{"insert"},
		"publish_via_partition_root": false, "publish_generated_columns": "none",
		"table": []map[string]any{
			{"schema": "public", "name": "books", "columns": []string{"id", "title"}, "where": "(price > (0)::numeric)"},
			{"schema": "My Schema", "name": "Odd.Table", "columns": nil, "where": nil},
		},
	}
	state := map[string]any{
		"version": 4, "terraform_version": "1.9.0", "serial": 1, "lineage": "6f1c2a57-3b8e-4f0e-9a51-0c1d2e3f4a5b",
		"outputs": map[string]any{},
		"resources": []map[string]any{{
			"mode": "managed", "type": "pgreplication_publication", "name": "books",
			"provider":  fmt.Sprintf(`provider["%s/pgreplication/pgreplication"].primary`, registry),
			"instances": []map[string]any{{"schema_version": 0, "attributes": v0, "sensitive_attributes": []any{}}},
		}},
	}
	raw, err := json.Marshal(state)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "terraform.tfstate"), string(raw))
	writeProviders(t, dir, map[string]server{"primary": {node: topo.Primary, database: "postgres"}})
	writeFile(t, filepath.Join(dir, "main.tf"), `
resource "pgreplication_publication" "books" {
  provider = pgreplication.primary
  name     = "books_pub"
  publish  = ["insert"]
  tables = {
    "public.books"                = { columns = ["id", "title"], where = "price > 0" }
    "\"My Schema\".\"Odd.Table\"" = {}
  }
}
`)
	cli.run(t, dir, 0, "plan", "-detailed-exitcode", "-input=false", "-no-color")
	cli.run(t, dir, 0, "apply", "-auto-approve", "-input=false", "-no-color")

	b, err := os.ReadFile(filepath.Join(dir, "terraform.tfstate"))
	if err != nil {
		t.Fatal(err)
	}
	var after struct {
		Resources []struct {
			Instances []struct {
				SchemaVersion int `json:"schema_version"`
				Attributes    struct {
					Tables map[string]struct {
						Columns []string `json:"columns"`
						Where   *string  `json:"where"`
					} `json:"tables"`
					Table any `json:"table"`
				} `json:"attributes"`
			} `json:"instances"`
		} `json:"resources"`
	}
	if err := json.Unmarshal(b, &after); err != nil || len(after.Resources) != 1 || len(after.Resources[0].Instances) != 1 {
		t.Fatalf("the state after apply is not one publication (%v):\n%s", err, b)
	}
	got := after.Resources[0].Instances[0]
	books, odd := got.Attributes.Tables["public.books"], got.Attributes.Tables[`"My Schema"."Odd.Table"`]
	if got.SchemaVersion != 1 || got.Attributes.Table != nil || len(got.Attributes.Tables) != 2 ||
		strings.Join(books.Columns, ",") != "id,title" || books.Where == nil || *books.Where != "(price > (0)::numeric)" ||
		odd.Columns != nil || odd.Where != nil {
		t.Fatalf("the state after apply is not the publication in schema version 1:\n%s", b)
	}
}
