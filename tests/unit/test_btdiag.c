/* SPDX-License-Identifier: MIT */
/*
 * test_btdiag.c - bpftrace's helper_error and runtime_error lines,
 * counted per kind: the recorded lines of bpftrace 0.23 and 0.27
 * ($BT_SHARED/fixtures/bpftrace-0.2x/extra/map_full, many_keys_runtime,
 * div_zero), lines of other types left alone, the kind table's limit,
 * the kept message's rate, and the CPU cost of the 0.23 map_full line
 * repeated as often as a full map printed it (223,952 times).
 */
#include "testhelp.h"
#include "testhelp_fixtures.h"

#include <stdio.h>
#include <time.h>

#include "btdiag.h"

#define HELPER_023 "{\"type\": \"helper_error\", \"msg\": \"Map full; can't " \
	"update element. Try increasing max_map_keys config\", \"helper\": " \
	"\"map_update_elem\", \"retcode\": -7, \"line\": 3, \"col\": 30}"
#define HELPER_027 "{\"type\": \"helper_error\", \"msg\": \"Argument list " \
	"too long\", \"helper\": \"map_update_elem\", \"retcode\": -7, " \
	"\"filename\": \"map_full.bt\", \"line\": 3, \"col\": 30}"
#define RUNTIME_027 "{\"type\": \"runtime_error\", \"msg\": \"Divide or " \
	"modulo by 0 detected. This can lead to unexpected results. 1 is " \
	"being used as the result.\", \"filename\": \"div_zero.bt\", " \
	"\"line\": 1, \"col\": 22}"

static int
feed(struct btdiag *bd, const char *line, int64_t now)
{
	return btdiag_line(bd, line, strlen(line), now);
}

static void
helper_lines_by_kind(void **state)
{
	struct btdiag	 bd;

	(void)state;
	btdiag_init(&bd);
	assert_int_equal(feed(&bd, HELPER_023, 0), 1);
	assert_string_equal(bd.bd_last, "helper_error: map_update_elem "
	    "returned -7 at line 3 col 30: Map full; can't update element. "
	    "Try increasing max_map_keys config");
	assert_int_equal(feed(&bd, HELPER_027, 5000), 1);
	assert_string_equal(bd.bd_last, "helper_error: map_update_elem "
	    "returned -7 at line 3 col 30: Argument list too long");
	assert_int_equal(feed(&bd, "{\"type\": \"helper_error\", \"msg\": "
	    "\"Bad address\", \"helper\": \"probe_read\", \"retcode\": -14, "
	    "\"line\": 1, \"col\": 9}", 5001), 1);
	assert_int_equal(bd.bd_nkinds, 2);
	assert_string_equal(bd.bd_kinds[0].k_name, "map_update_elem:-7");
	assert_int_equal(bd.bd_kinds[0].k_count, 2);
	assert_string_equal(bd.bd_kinds[1].k_name, "probe_read:-14");
	assert_int_equal(bd.bd_kinds[1].k_count, 1);
	assert_int_equal(bd.bd_helper, 3);
	assert_int_equal(bd.bd_runtime, 0);
	/* kept at most once a second: the probe_read one came too soon */
	assert_non_null(strstr(bd.bd_last, "Argument list too long"));
}

static void
runtime_lines(void **state)
{
	struct btdiag	 bd;

	(void)state;
	btdiag_init(&bd);
	assert_int_equal(feed(&bd, RUNTIME_027, 10), 1);
	assert_int_equal(bd.bd_runtime, 1);
	assert_int_equal(bd.bd_helper, 0);
	assert_int_equal(bd.bd_nkinds, 0);
	assert_string_equal(bd.bd_last, "runtime_error: Divide or modulo by 0 "
	    "detected. This can lead to unexpected results. 1 is being used "
	    "as the result. at line 1 col 22");
	assert_int_equal(bd.bd_bytes, strlen(RUNTIME_027) + 1);
}

/* data and other messages are the ingester's, whatever they contain */
static void
other_lines_untouched(void **state)
{
	static const char *const lines[] = {
		"{\"type\": \"attached_probes\", \"data\": {\"probes\": 1}}",
		"{\"type\": \"map\", \"data\": {\"@m\": {\"helper_error\": 1}}}",
		"{\"type\": \"printf\", \"data\": \"{\\\"type\\\": "
		    "\\\"helper_error\\\"}\"}",
		"{\"data\": 1, \"type\": \"helper_error\"}",
		"{\"type\": \"helper_errors\", \"x\": 1}",
		"", "{", "{\"type\"", "not json at all",
	};
	struct btdiag	 bd;

	(void)state;
	btdiag_init(&bd);
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
		assert_int_equal(feed(&bd, lines[i], 0), 0);
	assert_int_equal(bd.bd_helper + bd.bd_runtime + bd.bd_bytes, 0);
	assert_string_equal(bd.bd_last, "");
	/* no spaces (a compact printer) is the same message */
	assert_int_equal(feed(&bd, "{\"type\":\"helper_error\",\"helper\":"
	    "\"map_lookup_elem\",\"retcode\":-2}", 0), 1);
	assert_string_equal(bd.bd_kinds[0].k_name, "map_lookup_elem:-2");
}

/* past BTDIAG_MAX_KINDS kinds, the rest share "other"; odd names too */
static void
kinds_are_bounded(void **state)
{
	struct btdiag	 bd;
	char		 line[256];

	(void)state;
	btdiag_init(&bd);
	for (int i = 0; i < BTDIAG_MAX_KINDS + 5; i++) {
		snprintf(line, sizeof(line), "{\"type\": \"helper_error\", "
		    "\"helper\": \"h%d\", \"retcode\": -%d}", i, i);
		assert_int_equal(feed(&bd, line, 0), 1);
	}
	assert_int_equal(bd.bd_nkinds, BTDIAG_MAX_KINDS + 1);
	assert_string_equal(bd.bd_kinds[BTDIAG_MAX_KINDS].k_name, "other");
	assert_int_equal(bd.bd_kinds[BTDIAG_MAX_KINDS].k_count, 5);
	assert_int_equal(feed(&bd, "{\"type\": \"helper_error\", \"helper\": "
	    "\"h1\", \"retcode\": -1}", 0), 1);
	assert_int_equal(bd.bd_kinds[1].k_count, 2);
	btdiag_init(&bd);
	assert_int_equal(feed(&bd, "{\"type\": \"helper_error\", \"helper\": "
	    "\"a\\\"b c\"}", 0), 1);
	assert_string_equal(bd.bd_kinds[0].k_name, "unknown");
	/* a restart zeroes the counts, keeps the kinds and their order */
	btdiag_reset(&bd);
	assert_int_equal(bd.bd_nkinds, 1);
	assert_int_equal(bd.bd_kinds[0].k_count, 0);
	assert_string_equal(bd.bd_last, "");
}

/*
 * Every prefix of the recorded lines, and of one with escapes, from a
 * buffer of exactly that size (the sanitizer build sees any read past
 * it): never more than a line, counted only once the type is complete.
 */
static void
every_prefix_is_safe(void **state)
{
	static const char *const lines[] = { HELPER_023, HELPER_027,
	    RUNTIME_027, "{\"type\": \"runtime_error\", \"msg\": \"a\\u00e9\\n"
	    "\\\"q\\\\\", \"line\": 12345678901234567890123, \"col\": -}" };
	struct btdiag	 bd;

	(void)state;
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		size_t	 n = strlen(lines[i]);

		for (size_t k = 0; k <= n; k++) {
			char	*b = malloc(k ? k : 1);

			assert_non_null(b);
			memcpy(b, lines[i], k);
			btdiag_init(&bd);
			assert_int_equal(btdiag_line(&bd, b, k, 0),
			    k >= (size_t)(strchr(lines[i] + 10, '"') + 1 -
			    lines[i]));
			assert_true(strlen(bd.bd_last) < sizeof(bd.bd_last));
			free(b);
		}
	}
	btdiag_init(&bd);
	assert_int_equal(btdiag_line(&bd, lines[3], strlen(lines[3]), 0), 1);
	/* \u as '?', \n as a space; a number too long stops at 18 digits */
	assert_string_equal(bd.bd_last, "runtime_error: a? \"q\\ at line "
	    "123456789012345678 col 0");
}

/* helper/runtime lines of text counted, and the other lines */
static void
count_text(const char *text, struct btdiag *bd, size_t *others)
{
	const char	*p = text, *line;
	size_t		 len;

	*others = 0;
	while ((line = th_next_line(&p, &len)) != NULL)
		if (btdiag_line(bd, line, len, 0) == 0 && len > 0)
			(*others)++;
}

/* every helper_error/runtime_error line of the recorded runs, no other */
static void
recorded_runs(void **state)
{
	static const struct {
		const char	*file;
		const char	*kind;	/* NULL: runtime errors */
		uint64_t	 n, others;	/* 0 n: "at least 1000" */
	} runs[] = {
		{ "bpftrace-0.23/extra/map_full", "map_update_elem:-7", 6, 2 },
		{ "bpftrace-0.27/extra/map_full", "map_update_elem:-7", 6, 2 },
		{ "bpftrace-0.27/many_keys_runtime", "map_update_elem:-7", 0,
		    0 },
		{ "bpftrace-0.27/extra/div_zero", NULL, 2, 3 },
	};
	int		 files = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(runs) / sizeof(runs[0]); i++) {
		char		 rel[256], *text;
		struct btdiag	 bd;
		size_t		 others;

		snprintf(rel, sizeof(rel), "%s.stdout", runs[i].file);
		if ((text = th_fixture(rel, NULL)) == NULL)
			continue;
		btdiag_init(&bd);
		count_text(text, &bd, &others);
		if (runs[i].kind == NULL) {
			assert_int_equal(bd.bd_runtime, runs[i].n);
			assert_int_equal(bd.bd_helper, 0);
		} else {
			assert_int_equal(bd.bd_nkinds, 1);
			assert_string_equal(bd.bd_kinds[0].k_name,
			    runs[i].kind);
			if (runs[i].n)
				assert_int_equal(bd.bd_helper, runs[i].n);
			else
				assert_true(bd.bd_helper >= 1000);
			assert_int_equal(bd.bd_runtime, 0);
		}
		if (runs[i].n)
			assert_int_equal(others, runs[i].others);
		print_message("# %s: %llu helper, %llu runtime, %zu other "
		    "lines\n", runs[i].file, (unsigned long long)bd.bd_helper,
		    (unsigned long long)bd.bd_runtime, others);
		free(text);
		files++;
	}
	if (files == 0)
		skip();
}

static double
cpu_s(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * A full map on bpftrace 0.23: 223,952 helper_error lines (37 MB). What
 * they cost here is reported; the bound is loose (a loaded 2-core CI
 * machine), its point is "no JSON parse per line".
 */
static void
map_full_flood_cost(void **state)
{
	struct btdiag	 bd;
	double		 t0, t;
	size_t		 n = 223952, len = strlen(HELPER_023);

	(void)state;
	btdiag_init(&bd);
	t0 = cpu_s();
	for (size_t i = 0; i < n; i++)
		btdiag_line(&bd, HELPER_023, len, (int64_t)(i / 320));
	t = cpu_s() - t0;
	assert_int_equal(bd.bd_helper, n);
	assert_int_equal(bd.bd_kinds[0].k_count, n);
	assert_int_equal(bd.bd_bytes, n * (len + 1));
	print_message("# %zu lines (%.1f MB): %.3f s CPU, %.0f ns a line\n", n,
	    (double)(n * (len + 1)) / 1e6, t, t * 1e9 / (double)n);
	assert_true(t < 2.0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(helper_lines_by_kind),
		cmocka_unit_test(runtime_lines),
		cmocka_unit_test(other_lines_untouched),
		cmocka_unit_test(kinds_are_bounded),
		cmocka_unit_test(every_prefix_is_safe),
		cmocka_unit_test(recorded_runs),
		cmocka_unit_test(map_full_flood_cost),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
