#!/usr/bin/env bash
# Runs the whole suite against PostgreSQL <major> (default 17): unit tests,
# routerlib's integration tests (also under -race), and the provider's
# acceptance tests with the primary CLI of tools/tfcli.sh (Terraform, or
# OpenTofu with PGREPLICATION_CLI=tofu); then examples/ and the provider tests
# that take the paths where the two CLIs differ with the other one. Tests that
# are version-gated on 15, 16 or 18 find those themselves (routertest.WithVersion).
# Everything it needs is installed by the scripts it calls, both CLIs included.
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
# Both CLIs first: a build that fails should fail before the long tests.
primary=$(tools/tfcli.sh describe primary)
second=$(tools/tfcli.sh describe second)
inherited_rc=${TF_CLI_CONFIG_FILE:-}
while IFS= read -r kv; do export "$kv"; done < <(tools/tfcli.sh env primary)
export ROUTERTEST_PGBIN="$pgbin" TF_ACC=1
echo "test: PostgreSQL $major from $pgbin; PgBouncer $ROUTERTEST_PGBOUNCER"
if [ "$inherited_rc" != "${TF_CLI_CONFIG_FILE:-}" ]; then
  echo "test: TF_CLI_CONFIG_FILE=$inherited_rc names no file: the tests run the CLIs without it, which would warn on every run"
fi
echo "test: first pass, every package: $primary"

go test -count=1 -timeout 40m ${GO_TEST_FLAGS:-} ./...
go test -count=1 -race -timeout 20m ${GO_TEST_FLAGS:-} ./routerlib/...
# routerlib/stdlib under GORM and sqlx: a module of its own, so that they never
# become dependencies of applications importing routerlib.
(cd routerlib/stdlib/compat && go test -count=1 -race -timeout 10m ${GO_TEST_FLAGS:-} ./...)
# the peer benchmark's own tests (its delaying proxy): a module of its own too.
(cd tools/peerbench && go test -count=1 -race -timeout 5m ${GO_TEST_FLAGS:-} ./...)

# The second pass, with the other CLI: ./examples (every example, the
# adoption guide as written, the state upgrade: about 30 s) and the provider
# tests that take the paths where the CLIs differ (about a minute). The rest
# of the provider suite reaches the provider through paths both CLIs share.
second_pass=(
  # import {} blocks (a quoted map key, other duration units), -generate-config-out
  TestAccPublication_hostileNames
  TestAccRouterConfig_importOtherUnits
  TestAccReplicationSlot_importCreateTimeOnly
  TestAccSubscription_generatedConfig
  # write-only arguments: used with Terraform 1.11, refused by OpenTofu 1.10
  TestAccStandby_writeOnlyPassword
  TestAccSubscription_writeOnlyPassword
  # sensitive values: the CLI's diagnostics, its TRACE log and the state hold no password
  TestAccProvider_password
  TestAccServerDataSource_unreachable
  TestAccSubscription_passwordNeverShown
  TestAccSubscription_ownerWithoutPassword
  TestAccStandby_passwordWithLineBreakNeverShown
  TestAccStandby_privilegeErrorNeverShowsPassword
  TestAccRouterConfig_handTypedPasswordNeverShown
  TestAccStandby_handAddedSecretNeverShown
  TestAccSubscription_passwordNeverLogged
  # a drift planned as one map element's attribute, read from the CLI's plan JSON
  TestAccPublication_rowFiltersColumnListsPartitions
)
echo "test: second pass, ./examples and ${#second_pass[@]} provider tests: $second"
run="^($(IFS='|'; echo "${second_pass[*]}"))\$"
# A renamed test would leave the pattern matching nothing, and go test calls
# that a pass: every name must still be a test.
listed=$(go test -list "$run" ./provider/)
for name in "${second_pass[@]}"; do
  grep -qx "$name" <<<"$listed" || { echo "test: $name is no test of ./provider: update second_pass in $0" >&2; exit 1; }
done
(
  while IFS= read -r kv; do export "$kv"; done < <(tools/tfcli.sh env second)
  go test -count=1 -timeout 20m ${GO_TEST_FLAGS:-} ./examples
  go test -count=1 -timeout 20m ${GO_TEST_FLAGS:-} -run "$run" ./provider/
)
