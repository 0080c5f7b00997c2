#!/bin/sh
# SPDX-License-Identifier: MIT
# run.sh [SUITE...] - "make check-versions": the integration tests that run
# real bpftrace ($VERSION_TESTS, from Makefile.am), once per bpftrace version.
#
#   host    the host's bpftrace (0.17 on Debian 12; the main suite runs
#           these tests on it already, so CI leaves it out)
#   trixie  bpftrace 0.23.2 from a Debian 13 root
#   sid     bpftrace 0.27.1 (and pcp 7.2.2) from a Debian sid root
#
# Default suites: $BT_VERSIONS, else "trixie sid". Each root is built once
# per machine by build-root.sh (cached in $BT_VERSIONS_CACHE, default
# /var/cache/bpftraced-versions) and its bpftrace runs through
# bpftrace-SUITE (enter-root: pivot_root in a private mount namespace), given
# to every test daemon as --bpftrace by $BT_BPFTRACE (tests/lib/btd.py).
# A root that cannot be built here (no registry, not root) makes each test
# of that version a SKIP with the reason. Logs: tests/versions/logs/SUITE/.
# The last lines are an automake-style summary of all versions together
# (packaging/quickstart.sh adds it to the CI total).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
MAKE=${MAKE:-make}
JOBS=${BT_VERSIONS_JOBS:-2}
: "${VERSION_TESTS:?run me with make check-versions}"
[ $# -gt 0 ] || set -- ${BT_VERSIONS:-trixie sid}
LOGS=tests/versions/logs
rm -rf "$LOGS"
mkdir -p "$LOGS"
TP=0; TF=0; TS=0; TE=0
ntests=$(echo $VERSION_TESTS | wc -w)

summary_of() {	# $1: make output, $2: PASS|FAIL|SKIP|ERROR
	sed -n "s/^# $2: *\([0-9]*\).*/\1/p" "$1" | tail -1
}

for suite in "$@"; do
	t0=$(date +%s)
	case "$suite" in
	host)	bt=""; pkgs="" ;;
	sid)	bt=$HERE/bpftrace-sid; pkgs="pcp" ;;
	*)	bt=$HERE/bpftrace-$suite; pkgs="" ;;
	esac
	if [ -n "$bt" ]; then
		[ -x "$bt" ] || { echo "check-versions: no wrapper $bt" >&2; TE=$((TE + 1)); continue; }
		why=$("$HERE/build-root.sh" "$suite" $pkgs 2>&1 >/dev/null); rc=$?
		[ -n "$why" ] && printf '%s\n' "$why" >&2
		if [ "$rc" = 77 ]; then
			for t in $VERSION_TESTS; do
				echo "SKIP: $t (bpftrace of Debian $suite): $(printf '%s' "$why" | tail -n 1)"
			done
			TS=$((TS + ntests))
			continue
		elif [ "$rc" != 0 ]; then
			echo "ERROR: check-versions: the $suite root could not be built (rc $rc)"
			TE=$((TE + 1))
			continue
		fi
	fi
	ver=$(${bt:-bpftrace} --version 2>&1 | head -n 1)
	echo "==> check-versions: $suite: $ver (${bt:-bpftrace on PATH})"
	out=$LOGS/$suite.out
	if [ -n "$bt" ]; then
		BT_BPFTRACE=$bt $MAKE -j"$JOBS" check TESTS="$VERSION_TESTS" >"$out" 2>&1
	else
		(unset BT_BPFTRACE; $MAKE -j"$JOBS" check TESTS="$VERSION_TESTS") >"$out" 2>&1
	fi
	mkdir -p "$LOGS/$suite"
	for t in $VERSION_TESTS test-suite; do
		cp "${t%.py}.log" "${t%.py}.trs" "$LOGS/$suite/" 2>/dev/null
	done
	p=$(summary_of "$out" PASS); f=$(summary_of "$out" FAIL)
	s=$(summary_of "$out" SKIP); e=$(summary_of "$out" ERROR)
	x=$(summary_of "$out" XPASS)
	if [ -z "$p" ]; then	# no summary: the build or the harness failed
		tail -n 20 "$out" >&2
		e=1
	fi
	: "${p:=0}" "${f:=0}" "${s:=0}" "${e:=0}" "${x:=0}"
	grep -E '^(FAIL|ERROR|XPASS|SKIP):' "$out" | sed "s/^/[$suite] /"
	echo "==> check-versions: $suite ($ver): $p passed, $((f + x)) failed, $e errors, $s skipped in $(($(date +%s) - t0)) s"
	TP=$((TP + p)); TF=$((TF + f + x)); TS=$((TS + s)); TE=$((TE + e))
done

# pcp 7.2.2 from the sid root (tests/versions/pcp7.sh): bpftraced as a
# PMDA of its pmcd, and the conformance cases against its live pmproxy;
# each prints TAP (exit 77: skipped, with the reason)
case " $* " in
*" sid "*)
	for check in pmda conformance; do
		out=$LOGS/pcp7-$check.tap
		"$HERE/pcp7.sh" "$check" >"$out" 2>"$LOGS/pcp7-$check.err"; rc=$?
		p=$(grep -c '^ok ' "$out")
		f=$(grep '^not ok ' "$out" | grep -vc '# *TODO')
		p=$((p - $(grep -c '^ok .*# *SKIP' "$out")))
		s=$(grep -c '^ok .*# *SKIP' "$out")
		if [ "$rc" = 77 ]; then
			echo "SKIP: pcp7.sh $check: $(grep -m1 'SKIP' "$out")"
			s=$((s + 1))
		elif [ "$rc" != 0 ] && [ "$f" = 0 ]; then
			echo "ERROR: pcp7.sh $check exited $rc"; tail -n 20 "$LOGS/pcp7-$check.err" >&2
			TE=$((TE + 1))
		fi
		grep '^not ok ' "$out" | sed "s/^/[pcp7 $check] /"	# TODO lines: shown, not failures
		echo "==> check-versions: pcp 7.2.2 $check: $p passed, $f failed, $s skipped"
		TP=$((TP + p)); TF=$((TF + f)); TS=$((TS + s))
	done ;;
esac

echo "============================================================================"
echo "Version tests summary ($*)"
echo "============================================================================"
echo "# TOTAL: $((TP + TF + TS + TE))"
echo "# PASS:  $TP"
echo "# SKIP:  $TS"
echo "# XFAIL: 0"
echo "# FAIL:  $TF"
echo "# XPASS: 0"
echo "# ERROR: $TE"
echo "============================================================================"
[ $((TF + TE)) = 0 ]
