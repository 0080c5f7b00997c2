#!/bin/sh
# SPDX-License-Identifier: MIT
# run.sh - run each libFuzzer harness for SECONDS on its corpus.
#
#   tests/fuzz/run.sh SECONDS [HARNESS ...]     (default: all five)
#
# Run from a build tree where tests/fuzz/build.sh has built the harnesses
# (FUZZ_OUT: their directory, default tests/fuzz/build). Each harness
# starts from a temporary corpus: the seeds in tests/fuzz/corpus/NAME, the
# inputs that once crashed it (tests/fuzz/regressions/NAME, so they are
# replayed first), for btscript the bpftrace 0.17 fixtures, for ingest the
# 0.17, 0.23 and 0.27 ones (extra/ too, each read as its version)
# in $BT_SHARED/fixtures (default: ../shared beside the source tree).
# FUZZ_JOBS harnesses run at once (default 2); FUZZ_KEEP_CORPUS=DIR keeps
# the grown corpora in DIR/NAME. Logs and crash artifacts go to FUZZ_LOGDIR
# (default tests/fuzz/logs). One line per harness on stdout:
#   PASS fuzz_NAME: N execs in S s, cov C ft F, corpus K
#   FAIL fuzz_NAME: <what libFuzzer reported>; input: <artifact>
# Exit status 0 when every harness passed.
set -u
SRCDIR=$(cd "$(dirname "$0")/../.." && pwd)
SECS=${1:?usage: run.sh SECONDS [HARNESS ...]}
shift
HARNESSES=${*:-"ingest btscript url pmns restore"}
OUT=${FUZZ_OUT:-tests/fuzz/build}
LOGDIR=${FUZZ_LOGDIR:-tests/fuzz/logs}
JOBS=${FUZZ_JOBS:-2}
SHARED=${BT_SHARED:-$SRCDIR/../shared}
FIX=$SHARED/fixtures/bpftrace-0.17
VERSIONS="0.17:v0.17.0 0.23:v0.23.2 0.27:v0.27.1"
mkdir -p "$LOGDIR"
LOGDIR=$(cd "$LOGDIR" && pwd)
TMP=$(mktemp -d "${TMPDIR:-/tmp}/btfuzz.XXXXXX") || exit 99
trap 'rm -rf "$TMP"' EXIT
# stopped: stop the harnesses too
trap 'kill $(cat "$TMP"/*.pid 2>/dev/null) $(jobs -p) 2>/dev/null; exit 130' INT TERM

maxlen() {
	case $1 in
	ingest|btscript) echo 65536 ;;
	restore) echo 16384 ;;
	*) echo 4096 ;;
	esac
}

corpus() {	# $1 harness, $2 dir
	mkdir -p "$2"
	cp "$SRCDIR/tests/fuzz/corpus/$1/"* "$2/" 2>/dev/null
	cp "$SRCDIR/tests/fuzz/regressions/$1/"* "$2/" 2>/dev/null
	[ -d "$FIX" ] || return 0
	case $1 in
	btscript)
		cp "$FIX"/*.bt "$2/" 2>/dev/null ;;
	ingest)		# every version's fixtures, read as that version
		for vv in $VERSIONS; do
			d=$SHARED/fixtures/bpftrace-${vv%%:*}
			for f in "$d"/*.stdout "$d"/extra/*.stdout; do
				[ -f "$f" ] || continue
				b=${f%.stdout}
				[ -f "$b.bt" ] || continue
				{ printf '// bpftrace: %s\n' "${vv#*:}"
				  cat "$b.bt"; printf '\n//--ingest--\n'
				  head -c 16384 "$f"; } \
				    > "$2/fixture-${vv%%:*}-$(basename "$b")"
			done
		done ;;
	esac
}

run_one() {	# $1 harness; writes $TMP/$1.result
	h=$1
	bin=$OUT/fuzz_$h
	log=$LOGDIR/fuzz_$h.log
	dir=${FUZZ_KEEP_CORPUS:+$FUZZ_KEEP_CORPUS/$h}
	dir=${dir:-$TMP/corpus-$h}
	if [ ! -x "$bin" ]; then
		echo "FAIL fuzz_$h: $bin not built (tests/fuzz/build.sh)" > "$TMP/$h.result"
		return
	fi
	corpus "$h" "$dir"
	rm -f "$LOGDIR/$h-"crash-* "$LOGDIR/$h-"leak-* "$LOGDIR/$h-"timeout-* "$LOGDIR/$h-"oom-*
	start=$(date +%s)
	"$bin" -max_total_time="$SECS" -max_len="$(maxlen "$h")" -timeout=25 \
	    -rss_limit_mb=4096 -print_final_stats=1 \
	    -artifact_prefix="$LOGDIR/$h-" "$dir" > "$log" 2>&1 &
	echo $! > "$TMP/$h.pid"
	wait $!
	rc=$?
	rm -f "$TMP/$h.pid"
	took=$(( $(date +%s) - start ))
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	cov=$(grep -E '^#[0-9]+[[:space:]]+(DONE|INITED|NEW|REDUCE|pulse)' "$log" | tail -n 1 | sed -n 's/.*cov: \([0-9]*\) ft: \([0-9]*\) corp: \([0-9]*\).*/cov \1 ft \2, corpus \3/p')
	if [ "$rc" = 0 ]; then
		echo "PASS fuzz_$h: ${execs:-?} execs in $took s, ${cov:-cov ?}" > "$TMP/$h.result"
	else
		what=$(grep -m 1 -E 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error|fuzz invariant failed' "$log")
		art=$(ls "$LOGDIR/$h-"* 2>/dev/null | head -n 1)
		echo "FAIL fuzz_$h: ${what:-exit status $rc}; input: ${art:-none} (log: $log)" > "$TMP/$h.result"
	fi
}

running=0
for h in $HARNESSES; do
	run_one "$h" &
	running=$((running + 1))
	if [ "$running" -ge "$JOBS" ]; then
		wait
		running=0
	fi
done
wait
status=0
for h in $HARNESSES; do
	cat "$TMP/$h.result"
	grep -q '^PASS' "$TMP/$h.result" || status=1
done
exit $status
