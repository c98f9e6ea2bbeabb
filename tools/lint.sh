#!/usr/bin/env bash
# gofmt, go vet and staticcheck, for the main module and the modules of its own.
set -euo pipefail
cd "$(dirname "$0")/.."
unformatted=$(gofmt -s -l $(git ls-files '*.go') $(git ls-files --others --exclude-standard '*.go'))
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
