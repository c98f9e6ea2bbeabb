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
# GO_TEST_FLAGS (make's, or the environment's): go test flags separated by
# blanks, one word each.
read -ra go_test_flags <<<"${GO_TEST_FLAGS:-}"

pgbin=$(tools/postgres/install.sh "$major" | tail -n 1)
# Some tests run on a fixed major whatever the suite runs on: 15 and 16
# (the configuration -generate-config-out writes must plan on both, and
# the version gates are refused there), 18 (publish_generated_columns,
# two_phase on a disabled subscription).
for v in 15 16 18; do tools/postgres/install.sh "$v" >/dev/null; done
ROUTERTEST_PGBOUNCER=$(tools/pgbouncer/install.sh | tail -n 1)
export ROUTERTEST_PGBOUNCER
ROUTERTEST_FAKETIME=$(tools/faketime/install.sh | tail -n 1)
export ROUTERTEST_FAKETIME
# Both CLIs first: a build that fails should fail before the long tests.
primary=$(tools/tfcli.sh describe primary)
second=$(tools/tfcli.sh describe second)
inherited_rc=${TF_CLI_CONFIG_FILE:-}
# tfcli.sh env prints NAME=value lines: each is exported as written.
# shellcheck disable=SC2163 # export NAME=value, not a variable named kv
while IFS= read -r kv; do export "$kv"; done < <(tools/tfcli.sh env primary)
export ROUTERTEST_PGBIN="$pgbin" TF_ACC=1
echo "test: PostgreSQL $major from $pgbin; PgBouncer $ROUTERTEST_PGBOUNCER; libfaketime $ROUTERTEST_FAKETIME"
if [ "$inherited_rc" != "${TF_CLI_CONFIG_FILE:-}" ]; then
  echo "test: TF_CLI_CONFIG_FILE=$inherited_rc names no file: the tests run the CLIs without it, which would warn on every run"
fi
echo "test: first pass, every package: $primary; the provider's tests run beside the others (below)"

# The second pass, with the other CLI: ./examples (every example, the
# adoption guide as written, the state upgrade: about 30 s) and the provider
# tests that take the paths where the CLIs differ (about a minute). The rest
# of the provider suite reaches the provider through paths both CLIs share.
second_pass() {
  second_pass=(
    # import {} blocks (a quoted map key, other duration units), -generate-config-out
    TestAccPublication_hostileNames
    TestAccRouterConfig_importOtherUnits
    TestAccReplicationSlot_importCreateTimeOnly
    TestAccSubscription_generatedConfig
    TestAccStandby_multiHostConninfoRoundTrips
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
    # shellcheck disable=SC2163 # as above
    while IFS= read -r kv; do export "$kv"; done < <(tools/tfcli.sh env second)
    go test -count=1 -timeout 20m "${go_test_flags[@]}" ./examples
    go test -count=1 -timeout 20m "${go_test_flags[@]}" -run "$run" ./provider/
  )
}

# Two streams at once, each running one package at a time, which is as much
# as the suite ran at once before (go test -p 2 on CI's two cores: the
# provider beside one other package, then -race alone, two packages at a
# time):
#  - the provider's acceptance tests and ./examples with the primary CLI:
#    the long pole (about 800 s and 77 s on CI's idle machine), and mostly
#    waiting on CLI start-up (328 s of CPU in 1,652 s on a loaded machine),
#    so a core stays free beside it;
#  - on that core, one after the other: every other package, routerlib
#    again under -race, the two modules of their own, and the second pass
#    with the other CLI.
# The second stream used to run after the first pass, adding about 450 s
# to the provider's time. Its output is kept in a file and shown when it
# ends, so that the two do not interleave.
module=$(go list -m)
other_list=$(go list ./... | grep -vx -e "$module/provider" -e "$module/examples")
mapfile -t other_packages <<<"$other_list"
second_log=$(mktemp)
trap 'rm -f "$second_log"' EXIT
(
  set -euo pipefail
  go test -p 1 -count=1 -timeout 40m "${go_test_flags[@]}" "${other_packages[@]}"
  # The -timeout of a whole package is a bound against a hang, not a test's
  # measure: routerlib under -race took 14 min alone on 2 cores (2026-12-01),
  # the provider 21 min; beside other suites on the same 2 cores, twice that.
  go test -p 1 -count=1 -race -timeout 30m "${go_test_flags[@]}" ./routerlib/...
  # routerlib/stdlib under GORM and sqlx: a module of its own, so that they never
  # become dependencies of applications importing routerlib.
  (cd routerlib/stdlib/compat && go test -p 1 -count=1 -race -timeout 10m "${go_test_flags[@]}" ./...)
  # the peer benchmark's own tests (its delaying proxy): a module of its own too.
  (cd tools/peerbench && go test -p 1 -count=1 -race -timeout 5m "${go_test_flags[@]}" ./...)
  second_pass
) >"$second_log" 2>&1 &
others=$!
provider_rc=0
go test -p 1 -count=1 -timeout 60m "${go_test_flags[@]}" ./provider ./examples || provider_rc=$?
others_rc=0
wait "$others" || others_rc=$?
echo "test: every other package, routerlib under -race, the modules and the second pass:"
cat "$second_log"
if [ "$provider_rc" != 0 ] || [ "$others_rc" != 0 ]; then
  echo "test: FAILED (the provider and ./examples, first pass: exit $provider_rc; the rest: exit $others_rc)" >&2
  exit 1
fi
