#!/usr/bin/env bash
# gofmt, go vet and staticcheck, for the main module and the modules of its
# own; shellcheck for the scripts.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t go_files < <(git ls-files '*.go'; git ls-files --others --exclude-standard '*.go')
unformatted=$(gofmt -s -l "${go_files[@]}")
if [ -n "$unformatted" ]; then
  echo "gofmt -s would change these files (run make fmt):" >&2
  echo "$unformatted" >&2
  exit 1
fi
go vet ./...
# modules of their own (GORM, sqlx, dbresolver), kept out of go.mod
for mod in routerlib/stdlib/compat tools/peerbench; do (cd "$mod" && go vet ./...); done
# staticcheck is pinned by its module version: the proxy serves v0.8.2
# (staticcheck 2026.2.2, which understands Go 1.26), not the release tags.
# It is required: a lint that skips itself when it cannot install is not a lint.
staticcheck=honnef.co/go/tools/cmd/staticcheck@v0.8.2
go run "$staticcheck" ./...
for mod in routerlib/stdlib/compat tools/peerbench; do (cd "$mod" && go run "$staticcheck" ./...); done

# The scripts: Debian's shellcheck (0.9 on bookworm), installed with apt-get
# when missing, as tools/pgbouncer/install.sh installs PgBouncer. CI's, the
# Makefile's and the tools' scripts; examples/**/import.sh are the import
# commands the docs show, not scripts.
if ! command -v shellcheck >/dev/null; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "lint: shellcheck is not installed; run as root (or: sudo apt-get install shellcheck)" >&2
    exit 1
  fi
  echo "lint: installing Debian's shellcheck package" >&2
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -qq --no-install-recommends shellcheck >&2; then
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends shellcheck >&2
  fi
fi
mapfile -t scripts < <(git ls-files .ci/run 'tools/*.sh')
shellcheck "${scripts[@]}"
