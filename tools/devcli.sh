#!/usr/bin/env bash
# Builds the provider into bin/ and writes a CLI configuration whose
# dev_overrides point Terraform and OpenTofu at it, so the demo and the docs
# need no registry. Prints the path of that configuration (for TF_CLI_CONFIG_FILE).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$root/bin"
(cd "$root" && go build -o bin/terraform-provider-pgreplication .)
rc="$root/bin/dev.tfrc"
cat > "$rc" <<RC
provider_installation {
  dev_overrides {
    "registry.terraform.io/pgreplication/pgreplication" = "$root/bin"
    "registry.opentofu.org/pgreplication/pgreplication" = "$root/bin"
  }
  direct {}
}
RC
echo "$rc"
