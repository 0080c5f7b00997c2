#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# quickstart.sh - the README's two commands on a fresh Debian 12 (as root):
#   packaging/quickstart.sh run    install what is missing, build, start bpftraced
#   packaging/quickstart.sh test   install what is missing, run the whole suite
#                                  plain and under ASan+UBSan, print the summary
set -euo pipefail
cd "$(dirname "$0")/.."
TOP=$(pwd)

BUILD_DEPS="build-essential autoconf automake libtool pkg-config libmicrohttpd-dev
libcjson-dev libpcp3-dev libpcp-pmda3-dev libsqlite3-dev libcmocka-dev libcrypt-dev
libpcre2-dev"
RUN_DEPS="bpftrace"
# fuzzing (clang libFuzzer), the packaging tests (man pages, systemd-analyze
# verify, the .deb, rpmspec), the wall-clock jump test (libfaketime) and the
# headless-browser tests (test_ui.py, tests/security/: chromium, and node/npm
# for playwright-core, which the tests npm-install outside the tree), the
# archive test (test_archive.py: pmseries --load into redis-server, pmrep
# from python3-pcp), the container image test (test_container.py: podman
# builds the image on a debootstrap root) and the bpftrace
# 0.23/0.27 roots of make check-versions (debootstrap)
TEST_DEPS="python3 curl wrk clang-14 libclang-rt-14-dev man-db systemd dpkg-dev
debhelper fakeroot lintian rpm libfaketime chromium redis-server python3-pcp
prometheus podman debootstrap"

log() { printf '==> %s\n' "$*" >&2; }

need_root() {
	if [ "$(id -u)" != 0 ]; then
		echo "quickstart: run as root (it installs packages with apt-get and runs bpftrace)" >&2
		exit 1
	fi
}

install_missing() {
	local missing=()
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	log "installing: ${missing[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2 || {
		apt-get update -q >&2
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
	}
}

# The browser tests drive chromium with playwright-core (npm). A machine
# may have Node.js from elsewhere (a nodejs package that carries its own
# npm conflicts with Debian's npm): install Debian's only when there is no
# node or npm command, and carry on without them (those tests then say
# skipped with the reason) when that fails.
install_node() {
	command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 &&
	    return 0
	install_missing nodejs npm ||
	    log "nodejs/npm could not be installed: browser tests will skip"
}

mount_tracefs() {
	# bpftrace needs tracefs for tracepoints; harmless when already there
	if [ -d /sys/kernel/tracing ] && [ -z "$(ls -A /sys/kernel/tracing 2>/dev/null)" ]; then
		mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null || true
	fi
	if [ ! -d /sys/kernel/debug/tracing/events ] && [ -d /sys/kernel/debug ]; then
		mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null || true
	fi
}

configure_build() {	# $@: extra configure flags
	if [ ! -x configure ] || [ configure.ac -nt configure ] || [ Makefile.am -nt configure ]; then
		log "autoreconf"
		autoreconf -fi >&2
	fi
	log "configure $*"
	./configure -q "$@" >&2
	log "make"
	make -j"$(nproc)" >&2
}

# print the end of every failed test's log (to stderr) and keep all logs
# in build-logs/<build>/ so a red CI run can be read afterwards
show_failures() {
	local trs
	mkdir -p "build-logs/$BUILD_NAME"
	find tests -name '*.log' -exec cp --parents {} "build-logs/$BUILD_NAME/" \; 2>/dev/null || true
	for trs in $(grep -l -E ':test-result: (FAIL|ERROR|XPASS)' $(find tests -name '*.trs') 2>/dev/null); do
		printf '==> %s: %s failed; end of its log:\n' "$BUILD_NAME" "${trs%.trs}" >&2
		tail -n 60 "${trs%.trs}.log" >&2
	done
}

# run make check (or $1: another target, $2: how many jobs), echo
# "pass fail skip" parsed from the automake summary
run_check() {
	local out rc=0
	out=$(mktemp)
	make -j"${2:-$(nproc)}" "${1:-check}" 2>&1 | tee "$out" >&2 || rc=$?
	local p f s e x
	p=$(sed -n 's/^# PASS: *\([0-9]*\).*/\1/p' "$out" | tail -1)
	f=$(sed -n 's/^# FAIL: *\([0-9]*\).*/\1/p' "$out" | tail -1)
	s=$(sed -n 's/^# SKIP: *\([0-9]*\).*/\1/p' "$out" | tail -1)
	e=$(sed -n 's/^# ERROR: *\([0-9]*\).*/\1/p' "$out" | tail -1)
	x=$(sed -n 's/^# XPASS: *\([0-9]*\).*/\1/p' "$out" | tail -1)
	rm -f "$out"
	show_failures
	: "${p:=0}" "${f:=0}" "${s:=0}" "${e:=0}" "${x:=0}"
	f=$((f + e + x))
	if [ "$rc" != 0 ] && [ "$f" = 0 ]; then f=1; fi	# build or harness failure
	echo "$p $f $s"
}

cmd_run() {
	need_root
	install_missing $BUILD_DEPS $RUN_DEPS
	mount_tracefs
	configure_build
	log "starting bpftraced on 127.0.0.1:44322 with the example scripts (Ctrl-C stops it)"
	exec src/bpftraced --state-dir /var/lib/bpftraced --control=loopback \
	    --script packaging/examples/syscalls.bt \
	    --script packaging/examples/runqlat.bt \
	    --script packaging/examples/execs.bt "$@"
}

cmd_test() {
	need_root
	install_missing $BUILD_DEPS $RUN_DEPS $TEST_DEPS
	install_node
	mount_tracefs
	if [ -x tests/conformance/install-pcp.sh ] && [ -z "${BT_NO_PCP:-}" ]; then
		log "installing and starting the PCP reference stack (pmcd, pmproxy)"
		tests/conformance/install-pcp.sh >&2 || log "PCP reference stack unavailable: conformance uses recorded fixtures"
	fi
	local tp=0 tf=0 ts=0 r
	[ -f Makefile ] && make distclean >/dev/null 2>&1 || true
	rm -rf build-logs
	BUILD_NAME=plain
	log "suite 1/3: plain build (-Werror)"
	configure_build --enable-werror
	read -r p f s < <(run_check)
	tp=$((tp + p)); tf=$((tf + f)); ts=$((ts + s))
	log "plain: $p passed, $f failed, $s skipped"
	make distclean >/dev/null 2>&1 || true
	BUILD_NAME=sanitized
	log "suite 2/3: AddressSanitizer + UBSan build"
	export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:halt_on_error=1"
	export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
	configure_build --enable-werror --enable-sanitizers
	read -r p f s < <(run_check)
	tp=$((tp + p)); tf=$((tf + f)); ts=$((ts + s))
	log "sanitized: $p passed, $f failed, $s skipped"
	unset ASAN_OPTIONS UBSAN_OPTIONS
	make distclean >/dev/null 2>&1 || true
	# the tests that start threads, one at a time (they share the local
	# pmcd, and test_pmda restarts it): any ThreadSanitizer report ends
	# the daemon (halt_on_error, exit 66) and fails the test
	BUILD_NAME=tsan
	log "suite 3/3: ThreadSanitizer build (make check-tsan)"
	export TSAN_OPTIONS="halt_on_error=1 exitcode=66 second_deadlock_stack=1 suppressions=$PWD/tests/tsan.supp"
	configure_build --enable-werror --enable-tsan
	read -r p f s < <(run_check check-tsan 1)
	tp=$((tp + p)); tf=$((tf + f)); ts=$((ts + s))
	log "tsan: $p passed, $f failed, $s skipped"
	unset TSAN_OPTIONS
	make distclean >/dev/null 2>&1 || true
	configure_build >/dev/null 2>&1 || true	# leave a plain src/bpftraced behind
	# the tests that run real bpftrace again with bpftrace 0.23 and 0.27
	# (Debian roots built once per machine, cached; skipped with the
	# reason when they cannot be built); BT_NO_VERSIONS=1 leaves them out
	if [ -z "${BT_NO_VERSIONS:-}" ]; then
		BUILD_NAME=versions
		log "versions: make check-versions (bpftrace of Debian trixie and sid)"
		read -r p f s < <(run_check check-versions 1)
		tp=$((tp + p)); tf=$((tf + f)); ts=$((ts + s))
		log "versions: $p passed, $f failed, $s skipped"
	fi
	if [ "$ts" -gt 0 ]; then
		echo "$tp passed, $tf failed, $ts skipped"
	else
		echo "$tp passed, $tf failed"
	fi
	[ "$tf" = 0 ]
}

case "${1:-}" in
run)	shift; cmd_run "$@" ;;
test)	shift; cmd_test "$@" ;;
*)	echo "usage: $0 run [bpftraced flags...] | test" >&2; exit 2 ;;
esac
