#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/bench/all.sh - every benchmark in turn; markdown tables on stdout
# (redirect into a file and paste into BENCHMARKS.md), progress on stderr.
d=$(dirname "$0")
rc=0
for b in start footprint overhead ingest fetch; do
	"$d/$b.sh" || rc=1
	echo
done
exit $rc
