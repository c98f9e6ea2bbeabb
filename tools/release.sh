#!/usr/bin/env bash
# Builds what goreleaser would publish, with plain `go build`: one zip per
# platform named in .goreleaser.yml (goos x goarch minus its ignores), the
# registry manifest, and SHA256SUMS over them. Signing needs the maintainers'
# GPG key and is goreleaser's job at publish time; it is not done here.
set -euo pipefail
cd "$(dirname "$0")/.."
version=${1:?usage: release.sh VERSION}
project=terraform-provider-pgreplication
dist=dist
rm -rf "$dist" && mkdir -p "$dist"

# Platforms from .goreleaser.yml, so the two cannot drift apart.
goos=$(awk '/^  goos:/{f=1;next} f&&/^    - /{gsub(/[ -]/,"");print;next} f{exit}' .goreleaser.yml)
goarch=$(awk '/^  goarch:/{f=1;next} f&&/^    - /{gsub(/[ -]|\x27/,"");print;next} f{exit}' .goreleaser.yml)
ignored=$(awk '/^  ignore:/{f=1;next} f&&/goos:/{o=$NF;next} f&&/goarch:/{gsub(/\x27/,"",$NF);print o"/"$NF;next} f&&!/^    /{exit}' .goreleaser.yml)
# goreleaser skips pairs the Go toolchain cannot build (darwin/arm); so do we.
valid=$(go tool dist list)
commit=$(git rev-parse --short HEAD 2>/dev/null || echo none)
commit_time=$(git log -1 --format=%ct 2>/dev/null || date +%s)

for os in $goos; do
  for arch in $goarch; do
    if grep -qx "$os/$arch" <<<"$ignored" || ! grep -qx "$os/$arch" <<<"$valid"; then continue; fi
    # RELEASE_ONLY="linux/amd64 …" limits a local check to some platforms.
    if [ -n "${RELEASE_ONLY:-}" ] && ! grep -qw "$os/$arch" <<<"$RELEASE_ONLY"; then continue; fi
    name="${project}_${version}_${os}_${arch}"
    bin="${project}_v${version}"
    [ "$os" = windows ] && bin="$bin.exe"
    mkdir -p "$dist/$name"
    CGO_ENABLED=0 GOOS=$os GOARCH=$arch go build -trimpath \
      -ldflags "-s -w -X main.version=$version -X main.commit=$commit" -o "$dist/$name/$bin" .
    touch -d "@$commit_time" "$dist/$name/$bin"
    if command -v zip >/dev/null; then (cd "$dist/$name" && zip -q -X "../$name.zip" "$bin"); else (cd "$dist/$name" && python3 -m zipfile -c "../$name.zip" "$bin"); fi
    rm -rf "${dist:?}/$name"
    echo "built $dist/$name.zip"
  done
done
cp terraform-registry-manifest.json "$dist/${project}_${version}_manifest.json"
(cd "$dist" && sha256sum ./*.zip ./*_manifest.json | sed 's# \./# #' > "${project}_${version}_SHA256SUMS")
echo "wrote $dist/${project}_${version}_SHA256SUMS"
