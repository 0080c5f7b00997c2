#!/bin/sh
# SPDX-License-Identifier: MIT
#
# pcp7.sh - run pcp 7.2.2's pmcd and pmproxy from the sid debootstrap root
# beside the host's PCP, and run a command (or one of the checks below)
# while they are up.
#
#   tests/versions/pcp7.sh [--root DIR] run COMMAND [ARG...]
#   tests/versions/pcp7.sh [--root DIR] record        fixtures/pmproxy-7.2.2.json
#   tests/versions/pcp7.sh [--root DIR] conformance   bpftraced vs live 7.2.2
#   tests/versions/pcp7.sh [--root DIR] pmda          bpftraced as a PMDA of 7.2.2's pmcd
#   tests/versions/pcp7.sh [--root DIR] shell         an interactive shell
#
# The root (default $PCP7_ROOT or /var/cache/bpftraced-versions/sid) is
# never written: everything runs in a private mount and PID namespace
# (unshare) on an overlay of the root whose upper layer is a fresh
# directory under /tmp, removed at the end.  So the root's own run, log
# and PMNS directories stay untouched, pmcd/pmproxy get their own
# /run/pcp, /var/log/pcp and a rebuilt PMNS, and `pmsignal -a` (the
# bpftraced Install script's SIGHUP) only sees the sid pmcd.
#
# pmcd:    pmcd -f -A -i 127.0.0.1 -p PORT1 -s /run/pcp/pmcd.socket
#          [-C MAXCTX] (the overlay's socket, not the host's), the root's shipped
#          pmcd.conf plus the sample PMDA (domains 29, 30);
# pmproxy: PMCD_PORT=PORT1 pmproxy -f -A -i 127.0.0.1 -p PORT2 -c CONF,
#          CONF = the shipped pmproxy.conf with keys/series/search/discover
#          off (no Redis/Valkey: they would reach the host's redis-server).
# PORT1 and PORT2 are free ports picked at start (never 44321/44322;
# pmproxy 7.2.2 cannot re-bind a port with TIME_WAIT connections).
#
# The command runs on the host side of the namespace with:
#   PMPROXY_URL=http://127.0.0.1:PORT2   PCP7_PMCD_PORT=PORT1
#   PCP7_CHROOT=<the overlay's merged dir>  (chroot "$PCP7_CHROOT" pminfo ...)
#   PCP7_VERSION=7.2.2 (pmcd.version as the sid pmcd reports it)
# pmproxy 7.2.2 segfaults under 4+ concurrent keep-alive connections:
# talk to it one request at a time.
#
# Exit status: the command's; 77 (automake's SKIP) with "SKIP: reason"
# on stdout when the root, root privileges, overlayfs or unshare are
# missing.
#
# check-versions (tests/versions, Makefile) calls:
#   tests/versions/pcp7.sh pmda          (TAP, exit 0/1/77)
#   tests/versions/pcp7.sh conformance   (TAP, exit 0/1/77)

set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
ROOT=${PCP7_ROOT:-/var/cache/bpftraced-versions/sid}

if [ "${1:-}" = "--root" ]; then
    ROOT=$2
    shift 2
fi
[ $# -ge 1 ] || { sed -n '4,12p' "$0" >&2; exit 2; }

skip() { echo "1..0 # SKIP $*"; echo "SKIP: $*" >&2; exit 77; }

if [ -z "${PCP7_INSIDE:-}" ]; then
    [ "$(id -u)" = 0 ] || skip "needs root (mount namespace, overlayfs, chroot)"
    [ -x "$ROOT/usr/lib/pcp/bin/pmproxy" ] && [ -x "$ROOT/usr/lib/pcp/bin/pmcd" ] ||
        skip "no pcp 7 root at $ROOT (tests/versions builds it; needs a Debian registry)"
    command -v unshare >/dev/null || skip "no unshare (util-linux)"
    grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null
    grep -qw overlay /proc/filesystems || skip "no overlayfs in this kernel"
    # a pmlogger the root's pcp postinst started (it talks to the HOST
    # pmcd): stop it, by its pid
    for d in /proc/[0-9]*; do
        r=$(readlink "$d/root" 2>/dev/null) || continue
        [ "$r" = "$ROOT" ] || continue
        c=$(cat "$d/comm" 2>/dev/null)
        case "$c" in pmlogger|pmie|pmcd|pmproxy)
            echo "pcp7: stopping $c ${d#/proc/} left running in $ROOT" >&2
            kill "${d#/proc/}" ;;
        esac
    done
    # the conformance cases that name sample.* compare it through
    # bpftraced's default --pmcd, the local one: its sample PMDA is
    # installed out here (and removed after, when this installed it), as
    # Install's SIGHUP cannot reach the local pmcd from the pid namespace
    hold=""
    [ "$1" = conformance ] && hold="python3 $top/tests/lib/samplepmda.py hold"
    PCP7_INSIDE=1 exec $hold unshare --mount --propagation private --pid --fork \
        --mount-proc "$0" --root "$ROOT" "$@"
fi

# ---- inside the private namespaces ----------------------------------------
tmp=$(mktemp -d /tmp/btd-pcp7.XXXXXX) || exit 1
M=$tmp/merged
pids=""
cleanup() {
    for p in $pids; do kill "$p" 2>/dev/null; done
    for p in $pids; do
        i=0
        while kill -0 "$p" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
        kill -9 "$p" 2>/dev/null
    done
    for p in dev/pts dev sys proc; do umount -l "$M/$p" 2>/dev/null; done
    umount -l "$M" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$tmp/upper" "$tmp/work" "$M"
mount -t overlay overlay -o "lowerdir=$ROOT,upperdir=$tmp/upper,workdir=$tmp/work" "$M" ||
    skip "cannot mount an overlay of $ROOT"
mount -t proc proc "$M/proc"
mount --bind /sys "$M/sys"
mount --bind /dev "$M/dev"
mount --bind /dev/pts "$M/dev/pts"

in_root() { chroot "$M" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root "$@"; }

freeport() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
P1=$(freeport)
P2=$(freeport)
while [ "$P2" = "$P1" ]; do P2=$(freeport); done

# own run/log directories (the overlay's), a rebuilt PMNS with sample.*
rm -rf "$M/run/pcp" "$M/var/log/pcp/pmcd" "$M/var/log/pcp/pmproxy" "$M/var/log/pcp/pmlogger"
mkdir -p "$M/run/pcp" "$M/var/log/pcp/pmcd" "$M/var/log/pcp/pmproxy"
in_root chown pcp:pcp /run/pcp /var/log/pcp/pmcd /var/log/pcp/pmproxy
in_root sh -c 'cd /var/lib/pcp/pmns && ./Rebuild -du' >"$tmp/rebuild.log" 2>&1 ||
    { cat "$tmp/rebuild.log" >&2; echo "pcp7: PMNS Rebuild failed" >&2; exit 1; }
in_root sh -c 'cd /var/lib/pcp/pmdas/sample && /usr/lib/pcp/bin/pmnsadd -n /var/lib/pcp/pmns/root root' \
    >"$tmp/pmnsadd.log" 2>&1 ||
    { cat "$tmp/pmnsadd.log" >&2; echo "pcp7: pmnsadd sample failed" >&2; exit 1; }
conf=$M/etc/pcp/pmcd/pmcd.conf
awk '/^\[access\]/ && !done {
        print "sample\t29\tpipe\tbinary\t\t/var/lib/pcp/pmdas/sample/pmdasample -d 29"
        print "sampledso\t30\tdso\tsample_init\t/var/lib/pcp/pmdas/sample/pmda_sample.so"
        print ""; done = 1 }
     { print }' "$conf" >"$tmp/pmcd.conf" && cat "$tmp/pmcd.conf" >"$conf"
awk '
    /^\[/ { sect = $0 }
    sect ~ /^\[(keys|discover|pmsearch|pmseries)\]$/ && /^enabled/ { print "enabled = false"; next }
    { print }' "$M/etc/pcp/pmproxy/pmproxy.conf" >"$M/etc/pcp/pmproxy/pcp7-test.conf"

# pmcd 7 allows 64 contexts per client (-C); the conformance cases keep
# one or more per case alive for polltimeout=60 s, so past 64 cases every
# pmproxy request fails with "failed to get context labels: Resource
# temporarily unavailable".  record/conformance raise it (README: the
# limit is a documented difference); PCP7_PMCD_MAXCTX overrides.
case "$1" in
record|conformance) maxctx=${PCP7_PMCD_MAXCTX:-4096} ;;
*) maxctx=${PCP7_PMCD_MAXCTX:-} ;;
esac
in_root /usr/lib/pcp/bin/pmcd -f -A -i 127.0.0.1 -p "$P1" -s /run/pcp/pmcd.socket ${maxctx:+-C "$maxctx"} \
    -l /var/log/pcp/pmcd/pmcd.log </dev/null >"$tmp/pmcd.out" 2>&1 &
pids="$!"
ok=""
for _ in $(seq 1 100); do
    if in_root env PMCD_PORT="$P1" pminfo -h "127.0.0.1" -f pmcd.version >/dev/null 2>&1; then
        ok=1; break
    fi
    sleep 0.2
done
[ -n "$ok" ] || { cat "$tmp/pmcd.out" "$M/var/log/pcp/pmcd/pmcd.log" >&2; echo "pcp7: pmcd did not start" >&2; exit 1; }
PCP7_VERSION=$(in_root env PMCD_PORT="$P1" pminfo -h 127.0.0.1 -f pmcd.version |
    sed -n 's/.*value "\(.*\)"/\1/p')

in_root env PMCD_PORT="$P1" /usr/lib/pcp/bin/pmproxy -f -A -i 127.0.0.1 -p "$P2" \
    -c /etc/pcp/pmproxy/pcp7-test.conf -l /var/log/pcp/pmproxy/pmproxy.log \
    </dev/null >"$tmp/pmproxy.out" 2>&1 &
pids="$! $pids"
ok=""
for _ in $(seq 1 100); do
    if python3 - "$P2" <<'EOF' 2>/dev/null
import sys, urllib.request
with urllib.request.urlopen("http://127.0.0.1:%s/pmapi/context" % sys.argv[1], timeout=2) as r:
    sys.exit(0 if b'"context"' in r.read() else 1)
EOF
    then ok=1; break; fi
    sleep 0.2
done
[ -n "$ok" ] || { cat "$tmp/pmproxy.out" "$M/var/log/pcp/pmproxy/pmproxy.log" >&2; echo "pcp7: pmproxy did not start" >&2; exit 1; }

export PMPROXY_URL="http://127.0.0.1:$P2" PCP7_PMCD_PORT="$P1" PCP7_CHROOT="$M" PCP7_VERSION
echo "pcp7: pmcd $PCP7_VERSION on 127.0.0.1:$P1, pmproxy on $PMPROXY_URL, root $ROOT (overlay $M)" >&2

cmd=$1
shift
case "$cmd" in
run)         "$@" ;;
shell)       ${SHELL:-/bin/sh} ;;
record)      python3 "$top/tests/conformance/record.py" --pmproxy "$PMPROXY_URL" \
                 --out "$top/tests/conformance/fixtures/pmproxy-7.2.2.json" \
                 --server "pmproxy $PCP7_VERSION (Debian sid pcp $PCP7_VERSION), its own pmcd" "$@" ;;
conformance) PMPROXY7_URL=$PMPROXY_URL python3 "$top/tests/conformance/conformance.py" --pmproxy-version 7.2.2 \
                 --reference live "$@" ;;
pmda)        python3 "$here/pcp7_pmda.py" "$@" ;;
*)           echo "pcp7: unknown command $cmd" >&2; exit 2 ;;
esac
rc=$?
if [ -n "${PCP7_KEEP_LOGS:-}" ]; then
    cp "$M/var/log/pcp/pmcd/pmcd.log" "$M/var/log/pcp/pmproxy/pmproxy.log" "$PCP7_KEEP_LOGS/" 2>/dev/null
fi
exit $rc
