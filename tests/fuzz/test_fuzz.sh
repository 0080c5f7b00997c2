#!/bin/sh
# SPDX-License-Identifier: MIT
# test_fuzz.sh - make check's fuzzing test (TAP): builds the libFuzzer
# harnesses with clang (tests/fuzz/build.sh) and runs each for
# FUZZ_SECONDS (default 30) on its seed corpus (tests/fuzz/run.sh), one
# TAP line per harness. Skipped, with the reason, when clang or its
# libFuzzer runtime is missing, and in the --enable-sanitizers build
# (the harnesses are always built with ASan+UBSan, so the plain build's
# run covers them) unless FUZZ_SECONDS is set.
# Run from the top of a configured build tree (make check does).
SRCDIR=${BT_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
HARNESSES="ingest btscript url pmns restore"

if [ "${BT_SANITIZERS:-no}" = yes ] && [ -z "${FUZZ_SECONDS:-}" ]; then
	echo "1..0 # SKIP sanitized build: the plain build's make check runs the fuzzers (always ASan+UBSan); set FUZZ_SECONDS to run them here too"
	exit 0
fi
out=$(mktemp) || exit 99
sh "$SRCDIR/tests/fuzz/build.sh" . >"$out" 2>&1
rc=$?
if [ "$rc" = 77 ]; then
	echo "1..0 # SKIP $(tail -n 1 "$out")"
	rm -f "$out"
	exit 0
fi
if [ "$rc" != 0 ]; then
	sed 's/^/# /' "$out"
	echo "Bail out! building the fuzz harnesses failed"
	rm -f "$out"
	exit 1
fi
rm -f "$out"
set -- $HARNESSES
echo "1..$#"
results=$(sh "$SRCDIR/tests/fuzz/run.sh" "${FUZZ_SECONDS:-30}" $HARNESSES)
n=0
for h in $HARNESSES; do
	n=$((n + 1))
	line=$(printf '%s\n' "$results" | grep " fuzz_$h:")
	case $line in
	PASS*)	echo "ok $n - ${line#PASS }" ;;
	*)	echo "not ok $n - ${line#FAIL }" ;;
	esac
done
