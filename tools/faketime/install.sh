#!/usr/bin/env bash
# install.sh — make libfaketime available and print the path of its preload
# library as the last line of stdout (everything else goes to stderr):
#
#	export ROUTERTEST_FAKETIME="$(tools/faketime/install.sh | tail -n1)"
#
# routerlib's clock-skew tests start a standby's postgres with it preloaded
# (FAKETIME=-60: a VM whose clock runs a minute slow). It comes from
# Debian's libfaketime package, installed with apt-get when missing.
set -euo pipefail

log() { echo "install.sh: $*" >&2; }

lib=/usr/lib/$(uname -m)-linux-gnu/faketime/libfaketime.so.1
if [ -r "$lib" ]; then
	echo "$lib"
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	log "libfaketime is not installed at $lib; run as root (or: sudo apt-get install libfaketime)"
	exit 1
fi
log "installing Debian's libfaketime package"
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y --no-install-recommends libfaketime >&2; then
	apt-get update >&2
	apt-get install -y --no-install-recommends libfaketime >&2
fi
[ -r "$lib" ] || { log "libfaketime installed, but $lib is missing"; exit 1; }
echo "$lib"
