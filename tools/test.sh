#!/usr/bin/env bash
# Runs the whole suite against PostgreSQL <major> (default 17): unit tests,
# routerlib's integration tests (also under -race), and the provider's
# acceptance tests with the Terraform CLI chosen by tools/tfcli.sh. Tests that
# are version-gated on 15, 16 or 18 find those themselves (routertest.WithVersion).
# Everything it needs is installed by the scripts it calls.
set -euo pipefail
cd "$(dirname "$0")/.."
major=${1:-17}

pgbin=$(tools/postgres/install.sh "$major" | tail -n 1)
# Some tests run on a fixed major whatever the suite runs on: 15 and 16
# (the configuration -generate-config-out writes must plan on both, and
# the version gates are refused there), 18 (publish_generated_columns,
# two_phase on a disabled subscription).
for v in 15 16 18; do tools/postgres/install.sh "$v" >/dev/null; done
ROUTERTEST_PGBOUNCER=$(tools/pgbouncer/install.sh | tail -n 1)
export ROUTERTEST_PGBOUNCER
while IFS= read -r kv; do export "$kv"; done < <(tools/tfcli.sh env)
export ROUTERTEST_PGBIN="$pgbin" TF_ACC=1
echo "test: PostgreSQL $major from $pgbin; PgBouncer $ROUTERTEST_PGBOUNCER; Terraform CLI $TF_ACC_TERRAFORM_PATH"

go test -count=1 -timeout 40m ${GO_TEST_FLAGS:-} ./...
go test -count=1 -race -timeout 20m ${GO_TEST_FLAGS:-} ./routerlib/...
# routerlib/stdlib under GORM and sqlx: a module of its own, so that they never
# become dependencies of applications importing routerlib.
(cd routerlib/stdlib/compat && go test -count=1 -race -timeout 10m ${GO_TEST_FLAGS:-} ./...)
# the peer benchmark's own tests (its delaying proxy): a module of its own too.
(cd tools/peerbench && go test -count=1 -race -timeout 5m ${GO_TEST_FLAGS:-} ./...)
