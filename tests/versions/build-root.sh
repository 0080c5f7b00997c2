#!/bin/sh
# SPDX-License-Identifier: MIT
# build-root.sh SUITE [PACKAGE...] - a Debian SUITE root with bpftrace (and
# PACKAGEs) in $BT_VERSIONS_CACHE/SUITE (default /var/cache/bpftraced-versions),
# for the version tests (tests/versions/run.sh). A finished root holds a
# .complete file and is reused as is: the build happens once per machine.
#
# Exit 0: the root is there (built now or cached). Exit 77: it cannot be built
# here (not root, no debootstrap, no registry): the reason is on stderr and the
# version tests say skipped. Other: a real failure.
#
# The build runs in a private mount namespace and a pid namespace of its own
# (unshare): /proc inside the root is that namespace's, so nothing is left
# mounted when it ends, and every process a package's postinst starts (pcp's
# starts a pmlogger that would talk to the host's pmcd) dies with it.
set -eu
SUITE=${1:?usage: build-root.sh SUITE [PACKAGE...]}; shift
CACHE=${BT_VERSIONS_CACHE:-/var/cache/bpftraced-versions}
MIRROR=${BT_DEBIAN_MIRROR:-http://deb.debian.org/debian}
ROOT=$CACHE/$SUITE
TMP=$CACHE/$SUITE.tmp
LIMIT=${BT_VERSIONS_BUILD_TIMEOUT:-1200}	# seconds per step (debootstrap, installs)

skip() { echo "build-root: $SUITE: $*" >&2; exit 77; }

[ -f "$ROOT/.complete" ] && exit 0
[ "$(id -u)" = 0 ] || skip "not root (debootstrap, chroot and bpftrace need it)"
command -v debootstrap >/dev/null 2>&1 || skip "debootstrap is not installed"
command -v unshare >/dev/null 2>&1 || skip "unshare (util-linux) is not installed"

# kill what still runs from inside DIR (by pid, after the namespace is gone
# nothing should: this is the check that it is so)
kill_inside() {
	for p in /proc/[0-9]*; do
		r=$(readlink "$p/root" 2>/dev/null) || continue
		case "$r" in "$1"|"$1"/*)
			echo "build-root: killing ${p#/proc/} ($(cat "$p/comm")) left in $1" >&2
			kill -9 "${p#/proc/}" 2>/dev/null || true ;;
		esac
	done
}

# a registry that cannot be reached is found in seconds (debootstrap's own
# wget would retry for many minutes on a network that drops packets)
command -v wget >/dev/null 2>&1 &&
    ! wget -q -T 15 -t 2 -O /dev/null "$MIRROR/dists/$SUITE/InRelease" &&
    skip "cannot fetch $MIRROR/dists/$SUITE/InRelease (no registry here)"

mkdir -p "$CACHE"
rm -rf "$TMP"
start=$(date +%s)
# --variant=minbase: ~250 MB before bpftrace (its LLVM is most of the rest)
if ! timeout "$LIMIT" debootstrap --variant=minbase "$SUITE" "$TMP" "$MIRROR" >"$CACHE/$SUITE.log" 2>&1; then
	tail -n 5 "$CACHE/$SUITE.log" >&2
	rm -rf "$TMP"
	grep -qiE "Failed getting release file|Couldn't download|Temporary failure|Could not resolve|Connection (refused|timed out)|Network is unreachable" "$CACHE/$SUITE.log" &&
	    skip "debootstrap cannot reach $MIRROR (no registry here)"
	echo "build-root: $SUITE: debootstrap failed (log: $CACHE/$SUITE.log)" >&2
	exit 1
fi
t_boot=$(date +%s)
# no service starts from a postinst; sid's Release file may be expired
printf '#!/bin/sh\nexit 101\n' >"$TMP/usr/sbin/policy-rc.d"
chmod +x "$TMP/usr/sbin/policy-rc.d"
echo 'Acquire::Check-Valid-Until "false";' >"$TMP/etc/apt/apt.conf.d/99no-valid-until"
rc=0
timeout "$LIMIT" unshare --mount --propagation private --pid --fork --kill-child sh -eu -c '
	# $0: the root, $@: the packages
	mount -t proc proc "$0/proc"
	chroot "$0" apt-get update -q
	DEBIAN_FRONTEND=noninteractive chroot "$0" apt-get install -y -q \
	    --no-install-recommends bpftrace "$@"
	chroot "$0" apt-get clean
' "$TMP" "$@" >>"$CACHE/$SUITE.log" 2>&1 || rc=$?
kill_inside "$TMP"
if grep -q " $TMP/" /proc/self/mountinfo; then
	echo "build-root: $SUITE: a mount was left in $TMP" >&2
	exit 1
fi
if [ "$rc" != 0 ]; then
	tail -n 5 "$CACHE/$SUITE.log" >&2
	rm -rf "$TMP"
	grep -qiE "Temporary failure|Could not resolve|Failed to fetch|Unable to connect" "$CACHE/$SUITE.log" &&
	    skip "apt-get cannot reach $MIRROR (no registry here)"
	echo "build-root: $SUITE: installing bpftrace $* failed (rc $rc, log: $CACHE/$SUITE.log)" >&2
	exit 1
fi
end=$(date +%s)
echo done >"$TMP/.complete"
rm -rf "$ROOT"
mv "$TMP" "$ROOT"
echo "build-root: $SUITE: debootstrap $((t_boot - start)) s, installs $((end - t_boot)) s, $(du -sm "$ROOT" | cut -f1) MB" >&2
