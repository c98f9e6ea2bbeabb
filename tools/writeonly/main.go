// Command writeonly marks the provider's write-only attributes in a
// `providers schema -json` document read on stdin and writes it to stdout.
//
// Terraform 1.11 reports `"write_only": true` for them; OpenTofu 1.10 leaves
// the field out, so tfplugindocs, which reads the document, would render
// docs/ differently depending on the CLI that produced it (and `make
// docs-check` would fail on a machine that has only OpenTofu). The provider's
// own schema is the authority: every attribute it declares write-only is
// marked, whatever the CLI wrote.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"

	"github.com/pgreplication/terraform-provider-pgreplication/provider"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "writeonly:", err)
		os.Exit(1)
	}
}

func run() error {
	server := providerserver.NewProtocol6(provider.New("docs")())()
	resp, err := server.GetProviderSchema(context.Background(), &tfprotov6.GetProviderSchemaRequest{})
	if err != nil {
		return err
	}
	for _, d := range resp.Diagnostics {
		if d.Severity == tfprotov6.DiagnosticSeverityError {
			return fmt.Errorf("%s: %s", d.Summary, d.Detail)
		}
	}
	var doc map[string]any
	if err := json.NewDecoder(os.Stdin).Decode(&doc); err != nil {
		return fmt.Errorf("reading the schema document: %w", err)
	}
	providers, _ := doc["provider_schemas"].(map[string]any)
	if len(providers) == 0 {
		return fmt.Errorf("the schema document has no provider_schemas")
	}
	for _, p := range providers {
		resources, _ := p.(map[string]any)["resource_schemas"].(map[string]any)
		for name, s := range resp.ResourceSchemas {
			r, ok := resources[name].(map[string]any)
			if !ok {
				return fmt.Errorf("the schema document has no resource %s", name)
			}
			block, _ := r["block"].(map[string]any)
			if err := mark(block, s.Block, name); err != nil {
				return err
			}
		}
	}
	enc := json.NewEncoder(os.Stdout)
	return enc.Encode(doc)
}

// mark sets write_only on the attributes of block (a document block) that
// b (the provider's block) declares write-only, nested blocks included.
func mark(block map[string]any, b *tfprotov6.SchemaBlock, where string) error {
	attrs, _ := block["attributes"].(map[string]any)
	for _, a := range b.Attributes {
		if !a.WriteOnly {
			continue
		}
		attr, ok := attrs[a.Name].(map[string]any)
		if !ok {
			return fmt.Errorf("the schema document has no attribute %s.%s", where, a.Name)
		}
		attr["write_only"] = true
	}
	nested, _ := block["block_types"].(map[string]any)
	for _, nb := range b.BlockTypes {
		n, _ := nested[nb.TypeName].(map[string]any)
		inner, _ := n["block"].(map[string]any)
		if inner == nil {
			continue
		}
		if err := mark(inner, nb.Block, where+"."+nb.TypeName); err != nil {
			return err
		}
	}
	return nil
}
