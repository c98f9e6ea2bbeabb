#!/usr/bin/env bash
# Generates docs/ with tfplugindocs from the provider's schema and examples/.
# The schema comes from `<cli> providers schema -json` against the freshly
# built provider (dev_overrides), the same way for Terraform and OpenTofu.
# The CLIs key it by registry address (registry.terraform.io/… or
# registry.opentofu.org/…); tfplugindocs looks it up by the provider's short
# name, so the key is renamed to that. tools/writeonly marks the write-only
# attributes, which OpenTofu's document leaves unmarked.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
cli=$(tools/tfcli.sh path)
rc=$(tools/devcli.sh)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/main.tf" <<'TF'
terraform {
  required_providers {
    pgreplication = { source = "pgreplication/pgreplication" }
  }
}
TF
(cd "$work" && TF_CLI_CONFIG_FILE="$rc" "$cli" providers schema -json 2>/dev/null) \
  | sed -E 's#"registry\.(terraform\.io|opentofu\.org)/pgreplication/pgreplication"#"pgreplication"#' > "$work/schema.json"
grep -q '"pgreplication":' "$work/schema.json" || {
  echo "docs: $cli providers schema -json did not describe the provider" >&2; exit 1; }
# OpenTofu 1.10 leaves out "write_only": the provider's own schema puts it
# back, so docs/ is the same whichever CLI produced the document.
go run ./tools/writeonly < "$work/schema.json" > "$work/schema.marked.json"
go run github.com/hashicorp/terraform-plugin-docs/cmd/tfplugindocs@v0.25.0 generate \
  --provider-name pgreplication --rendered-provider-name pgreplication \
  --providers-schema "$work/schema.marked.json"
