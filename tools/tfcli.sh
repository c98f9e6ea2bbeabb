#!/usr/bin/env bash
# Finds the two CLIs the provider supports, Terraform and OpenTofu, building
# the one a machine lacks from the Go module proxy into .cache/tfcli/ (the
# only sources reachable here: Terraform's releases cannot be downloaded), and
# prints the environment terraform-plugin-testing needs for one of them:
#   TF_ACC_TERRAFORM_PATH=/path/to/cli
#   TF_ACC_PROVIDER_HOST=registry.terraform.io | registry.opentofu.org
#   TF_CLI_CONFIG_FILE=      (only when the inherited one names no file)
# It never prints TF_ACC_TERRAFORM_VERSION: that makes the framework download
# Terraform, and nothing can be downloaded here.
#
# Which CLI: "primary" (the default) is Terraform, or OpenTofu when
# PGREPLICATION_CLI=tofu; "second" is the other one; "terraform" and "tofu"
# name one. make test runs everything with the primary CLI and the tests where
# the CLIs differ with the second (tools/test.sh).
#
# Usage: tools/tfcli.sh env [primary|second|terraform|tofu]
#        tools/tfcli.sh path [...]       # just the CLI's path
#        tools/tfcli.sh kind [...]       # terraform or tofu
#        tools/tfcli.sh describe [...]   # "Terraform v1.11.4 at /path", for logs
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cache="$root/.cache/tfcli"
terraform_version=v1.11.4
# Terraform keeps its state backends and internal/legacy as Go modules of
# their own, replaced by directories that its module zip leaves out. The Go
# module proxy serves them at the commit of the release tag under this
# pseudo-version (its time is v1.11.4's, to the second).
terraform_nested=v0.0.0-20250409131005-35645b8fca68
tofu_version=v1.10.6

# module_dir prints the module cache directory of module@version,
# downloading it through the Go module proxy.
module_dir() {
  local dir
  dir=$(cd "$root" && go mod download -json "$1" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  if [ -z "$dir" ]; then
    echo "tfcli: go mod download did not report the directory of $1" >&2
    exit 1
  fi
  echo "$dir"
}

# build_tofu: the module cache is read-only and OpenTofu's go.mod has a
# replace directive, which is why `go install` refuses it; building in its
# own directory honours the replace. The linker flag is the one release
# builds set, or the version says -dev.
build_tofu() {
  local bin=$1 dir
  echo "tfcli: building OpenTofu $tofu_version from the Go module proxy into $bin (about 2 minutes cold)..." >&2
  dir=$(module_dir "github.com/opentofu/opentofu@$tofu_version")
  (cd "$dir" && GOFLAGS=-mod=mod go build \
    -ldflags "-X github.com/opentofu/opentofu/version.dev=no" -o "$bin.tmp.$$" ./cmd/tofu)
  mv "$bin.tmp.$$" "$bin"
}

# build_terraform builds Terraform's module with a go.mod of our own
# (-modfile, since the module cache is read-only): the nested modules come
# from the proxy instead of the missing directories, and Go 1.24's removed
# tlskyber setting goes (the go command refuses a go.mod naming it); the
# linker flag as for OpenTofu.
build_terraform() {
  local bin=$1 dir work nested=()
  echo "tfcli: building Terraform $terraform_version from the Go module proxy into $bin (3 minutes of CPU cold, more to download its modules)..." >&2
  dir=$(module_dir "github.com/hashicorp/terraform@$terraform_version")
  work=$(mktemp -d "$cache/build.XXXXXX")
  cp "$dir/go.mod" "$work/terraform.mod"
  cp "$dir/go.sum" "$work/terraform.sum"
  chmod u+w "$work/terraform.mod" "$work/terraform.sum"
  while IFS= read -r m; do
    nested+=(-dropreplace="$m" -require="$m@$terraform_nested")
  done < <(sed -n 's#^replace \(github\.com/hashicorp/terraform/[^ ]*\) => \./.*#\1#p' "$work/terraform.mod")
  if [ ${#nested[@]} -eq 0 ]; then
    echo "tfcli: Terraform $terraform_version's go.mod replaces no nested module: update build_terraform" >&2
    exit 1
  fi
  sed -i '/^godebug tlskyber=/d' "$work/terraform.mod"
  go mod edit "${nested[@]}" "$work/terraform.mod"
  (cd "$dir" && GOFLAGS=-mod=mod go build -modfile="$work/terraform.mod" \
    -ldflags "-X github.com/hashicorp/terraform/version.dev=no" -o "$work/terraform" .)
  mv "$work/terraform" "$bin"
  rm -rf "$work"
}

# cli_path prints the path of the CLI of kind $1: terraform from PATH, else
# the build in .cache/tfcli/ (made now if missing). Builds go to a file of
# their own and are renamed into place, so two runs at once never see half a
# binary; the directory names the version, so a new version is a new build.
cli_path() {
  local bin
  case "$1" in
    terraform)
      if command -v terraform >/dev/null 2>&1; then command -v terraform; return; fi
      bin="$cache/terraform-$terraform_version/terraform"
      ;;
    tofu) bin="$cache/tofu-$tofu_version/tofu" ;;
  esac
  if [ ! -x "$bin" ]; then
    mkdir -p "$(dirname "$bin")"
    "build_$1" "$bin"
  fi
  echo "$bin"
}

primary=${PGREPLICATION_CLI:-terraform}
case "$primary" in
  terraform) second=tofu ;;
  tofu) second=terraform ;;
  *) echo "tfcli: PGREPLICATION_CLI=$primary: set it to terraform or tofu" >&2; exit 2 ;;
esac
case "${2:-primary}" in
  primary) kind=$primary ;;
  second) kind=$second ;;
  terraform | tofu) kind=$2 ;;
  *) echo "usage: $0 env|path|kind|describe [primary|second|terraform|tofu]" >&2; exit 2 ;;
esac

case "${1:-env}" in
  kind) echo "$kind" ;;
  path) cli_path "$kind" ;;
  describe)
    cli=$(cli_path "$kind")
    # The first line of `version` ("Terraform v1.11.4", "OpenTofu v1.10.6");
    # read whole first: head closing the pipe early fails under pipefail.
    out=$(TF_CLI_CONFIG_FILE=/dev/null CHECKPOINT_DISABLE=1 "$cli" version)
    echo "${out%%$'\n'*} at $cli"
    ;;
  env)
    echo "TF_ACC_TERRAFORM_PATH=$(cli_path "$kind")"
    if [ "$kind" = tofu ]; then
      echo "TF_ACC_PROVIDER_HOST=registry.opentofu.org"
    else
      echo "TF_ACC_PROVIDER_HOST=registry.terraform.io"
    fi
    # Both CLIs warn on every run when TF_CLI_CONFIG_FILE names a missing
    # file (this machine's environment sets /root/.terraformrc), burying
    # the tests' real warnings. Empty, it means unset: the CLI reads
    # ~/.terraformrc if there is one, as without the variable. A file that
    # exists is kept, and so are its warnings.
    if [ -n "${TF_CLI_CONFIG_FILE:-}" ] && [ ! -e "$TF_CLI_CONFIG_FILE" ]; then
      echo "TF_CLI_CONFIG_FILE="
    fi
    ;;
  *) echo "usage: $0 env|path|kind|describe [primary|second|terraform|tofu]" >&2; exit 2 ;;
esac
