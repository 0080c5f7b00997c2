#!/bin/sh
# SPDX-License-Identifier: MIT
# build.sh - build the libFuzzer harnesses (tests/fuzz/fuzz_*.c) with clang,
# ASan and UBSan, apart from the main (gcc) build.
#
#   tests/fuzz/build.sh [BUILDDIR]
#
# BUILDDIR is a configured build tree (default: the current directory): its
# config.h is force-included like in the main build, and the library flags
# are the ones configure found there (read from its Makefile). The daemon's
# sources (src/**/*.c, plus src/store/store_sql.c generated from sql/) are compiled
# again with clang into OUT/libbtd-fuzz.a; each harness links against it.
# OUT is $FUZZ_OUT, default BUILDDIR/tests/fuzz/build. CC is $FUZZ_CC, else
# the first of clang, clang-19 .. clang-14 that can link -fsanitize=fuzzer.
# Exit status 77 (automake's skip) when no such clang is found.
set -eu
SRCDIR=$(cd "$(dirname "$0")/../.." && pwd)
BUILDDIR=$(cd "${1:-.}" && pwd)
OUT=${FUZZ_OUT:-$BUILDDIR/tests/fuzz/build}
HARNESSES=${FUZZ_HARNESSES:-"ingest btscript url pmns restore"}

if [ ! -f "$BUILDDIR/config.h" ] || [ ! -f "$BUILDDIR/Makefile" ]; then
	echo "build.sh: $BUILDDIR is not a configured build tree (run ./configure)" >&2
	exit 2
fi
mkdir -p "$OUT"

# --- a clang with the libFuzzer runtime ---
probe() {
	printf '%s\n' '#include <stddef.h>' '#include <stdint.h>' \
	    'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);' \
	    'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }' \
	    > "$OUT/probe.c"
	"$1" -fsanitize=fuzzer,address,undefined "$OUT/probe.c" -o "$OUT/probe" \
	    >/dev/null 2>&1
}
CC=
for c in ${FUZZ_CC:-clang clang-19 clang-18 clang-17 clang-16 clang-15 clang-14}; do
	if command -v "$c" >/dev/null 2>&1 && probe "$c"; then
		CC=$c
		break
	fi
done
rm -f "$OUT/probe.c" "$OUT/probe"
if [ -z "$CC" ]; then
	if command -v clang >/dev/null 2>&1 || command -v clang-14 >/dev/null 2>&1; then
		echo "build.sh: clang cannot link -fsanitize=fuzzer: the libFuzzer runtime is missing (Debian: apt-get install libclang-rt-14-dev)" >&2
	else
		echo "build.sh: clang not found (Debian: apt-get install clang-14 libclang-rt-14-dev)" >&2
	fi
	exit 77
fi

# --- flags as configure found them ---
mkvar() {
	sed -n "s/^$1 = *//p" "$BUILDDIR/Makefile" | head -n 1
}
LIBCFLAGS="$(mkvar MHD_CFLAGS) $(mkvar CJSON_CFLAGS) $(mkvar SQLITE_CFLAGS) $(mkvar PCP_CFLAGS) $(mkvar CRYPT_CFLAGS) $(mkvar PCRE2_CFLAGS)"
LIBS="$(mkvar MHD_LIBS) $(mkvar CJSON_LIBS) $(mkvar SQLITE_LIBS) $(mkvar CRYPT_LIBS) $(mkvar PCRE2_LIBS) $(mkvar DL_LIBS) -lpthread -lm"
# every layer folder of src/ is on the include path, as in Makefile.am
LAYER_INC=
for d in "$SRCDIR"/src/*/; do
	LAYER_INC="$LAYER_INC -I${d%/}"
done
SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
CFLAGS="-std=gnu17 -g -O1 -Wall -Wno-unused-parameter $SAN $LIBCFLAGS \
	-include $BUILDDIR/config.h -I$SRCDIR/src $LAYER_INC -I$OUT -DBT_SYSCONFDIR=\"/etc\""

# --- the daemon's sources, once ---
# every .c of the layers' *_SOURCES in Makefile.am (LIB_SOURCES up to
# CORE_SOURCES, which joins them), so new files are never missed
SRCS=$(sed -n '/^LIB_SOURCES *=/,/^CORE_SOURCES *=/p' "$SRCDIR/Makefile.am" |
	tr ' \t\\' '\n\n\n' | sed -n 's|^src/\(.*\)\.c$|\1|p')
UI_ASSETS=$(sed -n '/^UI_ASSETS *=/,/^$/p' "$SRCDIR/Makefile.am" |
	tr ' \t\\' '\n\n\n' | grep '^web/' || true)
(cd "$SRCDIR" && sh src/lib/embed.sh sql sql/[0-9][0-9][0-9]_*.sql) > "$OUT/store_sql.c.tmp"
if ! cmp -s "$OUT/store_sql.c.tmp" "$OUT/store_sql.c" 2>/dev/null; then
	mv -f "$OUT/store_sql.c.tmp" "$OUT/store_sql.c"
else
	rm -f "$OUT/store_sql.c.tmp"
fi
mkdir -p "$OUT/obj"
objs=
rebuild=
for s in $SRCS; do
	src=$SRCDIR/src/$s.c
	obj=$OUT/obj/$s.o
	mkdir -p "$(dirname "$obj")"
	objs="$objs $obj"
	# rebuild when the source, any header or config.h is newer
	if [ ! -f "$obj" ] || [ -n "$(find "$src" "$SRCDIR"/src/*.h "$SRCDIR"/src/*/*.h "$BUILDDIR/config.h" -newer "$obj" 2>/dev/null | head -n 1)" ]; then
		echo "  CC(fuzz) src/$s.c" >&2
		$CC $CFLAGS -fsanitize=fuzzer-no-link -c "$src" -o "$obj"
		rebuild=1
	fi
done
if [ -n "$UI_ASSETS" ]; then
	# shellcheck disable=SC2086
	(cd "$SRCDIR" && sh src/lib/embed.sh ui $UI_ASSETS) > "$OUT/ui_assets.c.tmp"
	if ! cmp -s "$OUT/ui_assets.c.tmp" "$OUT/ui_assets.c" 2>/dev/null; then
		mv -f "$OUT/ui_assets.c.tmp" "$OUT/ui_assets.c"
	else
		rm -f "$OUT/ui_assets.c.tmp"
	fi
fi
for gen in store_sql ui_assets; do
	[ -f "$OUT/$gen.c" ] || continue
	obj=$OUT/obj/$gen.o
	objs="$objs $obj"
	if [ ! -f "$obj" ] || [ "$OUT/$gen.c" -nt "$obj" ]; then
		$CC $CFLAGS -c "$OUT/$gen.c" -o "$obj"
		rebuild=1
	fi
done
if [ -n "$rebuild" ] || [ ! -f "$OUT/libbtd-fuzz.a" ]; then
	rm -f "$OUT/libbtd-fuzz.a"
	ar rcs "$OUT/libbtd-fuzz.a" $objs
fi

# --- the harnesses ---
for h in $HARNESSES; do
	src=$SRCDIR/tests/fuzz/fuzz_$h.c
	bin=$OUT/fuzz_$h
	if [ ! -f "$bin" ] || [ -n "$(find "$src" "$SRCDIR/tests/fuzz/fuzzhelp.h" "$OUT/libbtd-fuzz.a" -newer "$bin" 2>/dev/null | head -n 1)" ]; then
		echo "  CCLD(fuzz) fuzz_$h" >&2
		$CC $CFLAGS -fsanitize=fuzzer -I"$SRCDIR/tests/fuzz" "$src" \
		    "$OUT/libbtd-fuzz.a" $LIBS -o "$bin"
	fi
done
echo "$OUT"
