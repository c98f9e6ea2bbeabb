#!/usr/bin/env bash
# install.sh — make PgBouncer available and print the path of its binary as the
# last line of stdout (everything else goes to stderr), so callers can write:
#
#	export ROUTERTEST_PGBOUNCER="$(tools/pgbouncer/install.sh | tail -n1)"
#
# It comes from Debian's pgbouncer package (1.18 on bookworm), installed with
# apt-get when /usr/sbin/pgbouncer is missing. The package's own service is
# left stopped: routertest starts one PgBouncer per node with its own config.
set -euo pipefail

log() { echo "install.sh: $*" >&2; }

bin=/usr/sbin/pgbouncer
if [ -x "$bin" ] && "$bin" --version >/dev/null 2>&1; then
	echo "$bin"
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	log "PgBouncer is not installed at $bin; run as root (or: sudo apt-get install pgbouncer)"
	exit 1
fi
log "installing Debian's pgbouncer package"
export DEBIAN_FRONTEND=noninteractive
# policy-rc.d keeps the package from starting its own service on install.
policy=/usr/sbin/policy-rc.d
created_policy=
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\nexit 101\n' >"$policy"
	chmod 755 "$policy"
	created_policy=1
fi
trap '[ -n "$created_policy" ] && rm -f "$policy"' EXIT
if ! apt-get install -y --no-install-recommends pgbouncer >&2; then
	apt-get update >&2
	apt-get install -y --no-install-recommends pgbouncer >&2
fi
"$bin" --version >&2
echo "$bin"
