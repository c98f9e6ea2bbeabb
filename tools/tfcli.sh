#!/usr/bin/env bash
# Decides which Terraform CLI the acceptance tests and the demo use, building
# OpenTofu from the Go module proxy when there is no terraform on PATH, and
# prints the environment for terraform-plugin-testing:
#   TF_ACC_TERRAFORM_PATH=/path/to/cli
#   TF_ACC_PROVIDER_HOST=registry.opentofu.org   (only for OpenTofu)
# It never prints TF_ACC_TERRAFORM_VERSION: that makes the framework download
# Terraform, and nothing can be downloaded here.
#
# Usage: tools/tfcli.sh env        # the lines above, for `eval` or make
#        tools/tfcli.sh path       # just the CLI's path
#        PGREPLICATION_CLI=tofu tools/tfcli.sh env   # force OpenTofu even when terraform exists
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
tofu_version=v1.10.6
tofu_bin="$root/bin/tofu"

build_tofu() {
  # Read the version into a variable first: `tofu version | grep -q` fails
  # under pipefail whenever grep exits before tofu has written everything,
  # which rebuilt a good binary.
  if [ -x "$tofu_bin" ]; then
    have=$("$tofu_bin" version 2>/dev/null || true)
    case "$have" in *"${tofu_version#v}"*) return ;; esac
  fi
  echo "building OpenTofu $tofu_version from the Go module proxy (about 2 minutes cold)..." >&2
  dir=$(cd "$root" && go mod download -json "github.com/opentofu/opentofu@$tofu_version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  if [ -z "$dir" ]; then
    echo "tfcli: go mod download did not report the OpenTofu module directory" >&2
    exit 1
  fi
  mkdir -p "$root/bin"
  # The module cache is read-only and OpenTofu's go.mod has a replace
  # directive, which is why `go install` refuses it; building in its own
  # directory honours the replace.
  (cd "$dir" && GOFLAGS=-mod=mod go build -o "$tofu_bin.tmp" ./cmd/tofu)
  mv "$tofu_bin.tmp" "$tofu_bin"
}

cli=""
kind=""
if [ "${PGREPLICATION_CLI:-}" != "tofu" ] && command -v terraform >/dev/null 2>&1; then
  cli=$(command -v terraform)
  kind=terraform
else
  build_tofu
  cli=$tofu_bin
  kind=tofu
fi

case "${1:-env}" in
  path) echo "$cli" ;;
  kind) echo "$kind" ;;
  env)
    echo "TF_ACC_TERRAFORM_PATH=$cli"
    if [ "$kind" = tofu ]; then echo "TF_ACC_PROVIDER_HOST=registry.opentofu.org"; fi
    ;;
  *) echo "usage: $0 env|path|kind" >&2; exit 2 ;;
esac
