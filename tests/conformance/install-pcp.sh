#!/bin/sh
# SPDX-License-Identifier: MIT
#
# install-pcp.sh - install and start the real PCP stack (pmcd + pmproxy,
# Debian's pcp 6.0.3) so the conformance test can compare bpftraced with
# a live pmproxy on 127.0.0.1:44322.
#
# Run as root on Debian 12.  Idempotent: exits 0 at once when pmproxy
# already answers /pmapi/context; exits non-zero with a message when it
# cannot install or start it.  There is no systemd on the CI machines, so
# a systemctl shim that does nothing is put first on the maintainer
# scripts' PATH and the daemons are started through their init scripts.
#
# Environment: PMPROXY_PORT (default 44322), PCP_START_TIMEOUT (seconds
# to wait for pmproxy, default 30).

set -u

PORT="${PMPROXY_PORT:-44322}"
TIMEOUT="${PCP_START_TIMEOUT:-30}"
URL="http://127.0.0.1:${PORT}/pmapi/context"

msg() { echo "install-pcp: $*" >&2; }
die() { msg "ERROR: $*"; exit 1; }

# pmproxy_up: true when pmproxy answers a context request with JSON
pmproxy_up() {
	if command -v curl >/dev/null 2>&1; then
		curl -s --max-time 5 "$URL" 2>/dev/null | grep -q '"context"'
	else
		/usr/bin/python3 - "$URL" <<'PY' 2>/dev/null
import sys, urllib.request
try:
    body = urllib.request.urlopen(sys.argv[1], timeout=5).read()
except Exception:
    sys.exit(1)
sys.exit(0 if b'"context"' in body else 1)
PY
	fi
}

if pmproxy_up; then
	msg "pmproxy already answers on $URL"
	exit 0
fi

[ "$(id -u)" -eq 0 ] || die "must run as root to install/start PCP"

SHIM=$(mktemp -d /tmp/pcp-shim.XXXXXX) || die "mktemp failed"
trap 'rm -rf "$SHIM"' EXIT
printf '#!/bin/sh\nexit 0\n' > "$SHIM/systemctl"
chmod +x "$SHIM/systemctl"
# apt-get runs dpkg with its own PATH (DPkg::Path), so the shim has to be
# given there as well as in our own PATH (for a direct dpkg --configure).
DPKG_PATH="$SHIM:/usr/sbin:/usr/bin:/sbin:/bin"
export PATH="$SHIM:$PATH"
export DEBIAN_FRONTEND=noninteractive
APT_OPTS="-y -q -o DPkg::Lock::Timeout=900 -o DPkg::Path=$DPKG_PATH"

pcp_state() { dpkg-query -W -f='${db:Status-Abbrev}' pcp 2>/dev/null | cut -c1-2; }

state=$(pcp_state)
if [ "$state" != "ii" ]; then
	if [ -n "$state" ] && [ "$state" != "un" ] && [ "$state" != "rc" ]; then
		# e.g. "iF": unpacked but postinst failed (systemctl without systemd)
		msg "pcp is in dpkg state '$state'; finishing its configuration"
		dpkg --configure pcp >&2 || msg "dpkg --configure pcp failed; trying apt-get"
	fi
fi
if [ "$(pcp_state)" != "ii" ]; then
	if ! apt-cache policy pcp 2>/dev/null | grep -q 'Candidate: [0-9]'; then
		msg "pcp not in the apt lists; running apt-get update"
		# shellcheck disable=SC2086
		apt-get $APT_OPTS update >&2 || die "apt-get update failed"
	fi
	msg "installing pcp"
	# shellcheck disable=SC2086
	apt-get $APT_OPTS install pcp >&2 || {
		msg "apt-get install pcp returned an error; retrying dpkg --configure -a"
		# shellcheck disable=SC2086
		dpkg --configure -a >&2
	}
	[ "$(pcp_state)" = "ii" ] || die "pcp could not be installed (dpkg state: $(pcp_state))"
fi

[ -x /etc/init.d/pmcd ] || die "/etc/init.d/pmcd missing after install"
[ -x /etc/init.d/pmproxy ] || die "/etc/init.d/pmproxy missing after install"

# pmcd first (pmproxy talks to it), then pmproxy.  'start' on a running
# daemon is harmless; if pmproxy is running but not answering, restart it.
if ! /etc/init.d/pmcd status >/dev/null 2>&1; then
	msg "starting pmcd"
	/etc/init.d/pmcd start >&2 || die "pmcd failed to start"
fi
if /etc/init.d/pmproxy status >/dev/null 2>&1; then
	msg "pmproxy running but not answering; restarting it"
	/etc/init.d/pmproxy restart >&2 || die "pmproxy failed to restart"
else
	msg "starting pmproxy"
	/etc/init.d/pmproxy start >&2 || die "pmproxy failed to start"
fi

i=0
while [ "$i" -lt "$TIMEOUT" ]; do
	if pmproxy_up; then
		msg "pmproxy answers on $URL"
		exit 0
	fi
	sleep 1
	i=$((i + 1))
done
die "pmproxy did not answer on $URL within ${TIMEOUT}s (see /var/log/pcp/pmproxy/pmproxy.log)"
