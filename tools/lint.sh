#!/usr/bin/env bash
# gofmt, go vet, and staticcheck when it can be installed from the Go module proxy.
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
if go run honnef.co/go/tools/cmd/staticcheck@2025.1.1 -version >/dev/null 2>&1; then
  go run honnef.co/go/tools/cmd/staticcheck@2025.1.1 ./...
  for mod in routerlib/stdlib/compat tools/peerbench; do (cd "$mod" && go run honnef.co/go/tools/cmd/staticcheck@2025.1.1 ./...); done
else
  echo "lint: staticcheck could not be installed; skipped it (gofmt and go vet ran)" >&2
fi
