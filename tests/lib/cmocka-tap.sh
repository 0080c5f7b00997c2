#!/bin/sh
# SPDX-License-Identifier: MIT
# cmocka-tap.sh - run a cmocka test binary with TAP output for automake's
# TAP driver. cmocka writes a skipped test as "not ok N # SKIP", which the
# driver would count as a failure; TAP means "ok N # SKIP", so rewrite it.
# The test's exit status is kept.
out=$(mktemp) || exit 99
CMOCKA_MESSAGE_OUTPUT=TAP "$@" >"$out" 2>&1
rc=$?
sed 's/^not ok \([0-9][0-9]*\) # SKIP/ok \1 # SKIP/' "$out"
rm -f "$out"
exit $rc
