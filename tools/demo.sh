#!/usr/bin/env bash
# make demo: a primary and two streaming standbys on 127.0.0.1 (the sandbox),
# then `terraform apply` of examples/quickstart against them with the
# provider built from this checkout (dev_overrides: no registry), then a
# `terraform plan -detailed-exitcode` that must find nothing to change, then
# the bookstore app (examples/bookstore) reading and writing through routerlib
# as the router file that apply wrote declares.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
major=${PG_VERSION:-17}

pgbin=$(tools/postgres/install.sh "$major" | tail -n 1)
go run ./tools/sandbox up -pgbin "$pgbin"
# shellcheck disable=SC1091
. .sandbox/dsns.env
echo
echo "== the bookstore's migration (routerlib's MigrationConn: the primary only) =="
go run ./examples/bookstore migrate -router .sandbox/router.json

cli=$(tools/tfcli.sh path)
rc=$(tools/devcli.sh)
export TF_CLI_CONFIG_FILE="$rc" TF_IN_AUTOMATION=1
export TF_VAR_host="$PGREPLICATION_PRIMARY_HOST"
export TF_VAR_primary_port="$PGREPLICATION_PRIMARY_PORT"
export TF_VAR_replica1_port="$PGREPLICATION_REPLICA_1_PORT"
export TF_VAR_replica2_port="$PGREPLICATION_REPLICA_2_PORT"
export TF_VAR_router_file="$root/.sandbox/quickstart-router.json"
# The same environment for a shell, so that the README's commands (psql on
# the DSNs, a plan of the quickstart) run as they are written after the demo.
cat > .sandbox/quickstart.env <<ENV
# Written by tools/demo.sh; source it: . .sandbox/quickstart.env
. '$root/.sandbox/dsns.env'
export TF_CLI_CONFIG_FILE='$rc' TF_VAR_host='$TF_VAR_host' TF_VAR_primary_port=$TF_VAR_primary_port TF_VAR_replica1_port=$TF_VAR_replica1_port TF_VAR_replica2_port=$TF_VAR_replica2_port TF_VAR_router_file='$TF_VAR_router_file'
ENV

cd examples/quickstart
# State from an earlier sandbox describes servers that are gone: start over
# when the sandbox is not the one this state was applied to.
stamp=$(sha256sum "$root/.sandbox/dsns.env" | cut -d' ' -f1)
if [ "$(cat .sandbox-stamp 2>/dev/null)" != "$stamp" ]; then
  rm -f terraform.tfstate terraform.tfstate.backup
  echo "$stamp" > .sandbox-stamp
fi
echo
echo "== $(basename "$cli") apply (examples/quickstart) =="
"$cli" apply -auto-approve -input=false
echo
echo "== $(basename "$cli") plan -detailed-exitcode: the servers match the declaration =="
set +e
"$cli" plan -detailed-exitcode -input=false
code=$?
set -e
case $code in
  0) echo "demo: no changes: the topology is as declared." ;;
  2) echo "demo: the plan after apply is not empty; that is a bug." >&2; exit 1 ;;
  *) exit "$code" ;;
esac
cd "$root"
echo
echo "== the bookstore app, routed by routerlib from the file Terraform wrote ($TF_VAR_router_file) =="
go run ./examples/bookstore run -router "$TF_VAR_router_file"
echo
echo "== yours to try: the environment of this demo, then the quickstart's directory =="
# The CLI by its name when that is the one on PATH, else by its path.
name=$(basename "$cli")
[ "$(command -v "$name")" = "$cli" ] || name=$cli
echo "  . .sandbox/quickstart.env && cd examples/quickstart && $name plan"
echo "stop the servers with: make sandbox-down"
