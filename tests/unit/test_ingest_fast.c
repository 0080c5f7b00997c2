/* SPDX-License-Identifier: MIT */
/*
 * test_ingest_fast.c - the ingester's in-place reader (ingest_fast.c)
 * against its generic JSON reader: the same print, and every number
 * text, read the same way by both.
 */
#include "testhelp.h"
#include "ingest_testhelp.h"

/* the fast path and the generic path read a print the same way */
static void
fast_and_generic_paths_agree(void **state)
{
	static const char *const pairs[][2] = {
		{ "{\"type\": \"map\", \"data\": {\"@m\": {\"x\": -1, "
		    "\"y\": 9223372036854775808, \"z\": 0}}}",
		  "{\"data\":{\"@m\":{\"\\u0078\":-1,\"y\":9223372036854775808,"
		    "\"z\":0}},\"type\":\"map\"}" },
		{ "{\"type\": \"hist\", \"data\": {\"@h\": [{\"max\": -1, "
		    "\"count\": 1}, {\"min\": 0, \"max\": 0, \"count\": 2}, "
		    "{\"min\": 1, \"count\": 3}]}}",
		  "{\"type\": \"hist\", \"data\": {\"@h\": [{\"max\": -1, "
		    "\"count\": 1, \"x\": 1}, {\"min\": 0, \"max\": 0, "
		    "\"count\": \"2\"}, {\"min\": 1, \"count\": 3}]}}" },
		{ "{\"type\": \"stats\", \"data\": {\"@s\": {\"k\": {\"count\": "
		    "2, \"average\": 3, \"total\": 6}}}}",
		  "{\"type\": \"stats\", \"data\": {\"@s\": {\"k\": {\"count\": "
		    "2, \"average\": 3, \"total\": 6}}}, \"x\": 1}" },
	};
	struct tv	 tv[] = { { "m", BTS_ASSIGN, BTS_V_UINT, 1 },
	    { "h", BTS_HIST, BTS_V_UINT, 0 },
	    { "s", BTS_STATS, BTS_V_INT, 1 } };
	struct ingest	*a = ING(tv, -1, NULL), *b = ING(tv, -1, NULL);
	struct ing_var	*va, *vb;
	size_t		 i, k, j;

	for (i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
		assert_int_equal(feed(a, pairs[i][0]), 0);
		assert_int_equal(feed(b, pairs[i][1]), 0);
	}
	assert_int_equal(ingest_seq(a), ingest_seq(b));
	for (k = 0; k < ingest_nvars(a); k++) {
		va = ingest_var(a, k);
		vb = ingest_var(b, k);
		assert_int_equal(va->iv_n, vb->iv_n);
		assert_true(va->iv_n > 0);
		for (j = 0; j < va->iv_n; j++) {
			assert_string_equal(va->iv_names[j], vb->iv_names[j]);
			assert_int_equal(va->iv_ids[j], vb->iv_ids[j]);
			assert_int_equal(va->iv_vals[j].t, vb->iv_vals[j].t);
			assert_true(va->iv_vals[j].u == vb->iv_vals[j].u);
		}
	}
	assert_true(inst_u(a, "m", "y") == 9223372036854775808ULL);
	assert_true(inst_u(a, "m", "x") == UINT64_MAX);	/* 0.17's u64 */
	assert_names(a, "h", "-inf--1|0-0|1-inf");
	assert_names(a, "s", "k:average|k:count|k:total");
	ingest_free(a);
	ingest_free(b);
}

/* every number text reads the same on the fast path as on the generic one */
static void
fast_path_numbers_match_generic(void **state)
{
	static const char *const nums[] = { "0", "-0", "7", "-7", "00", "01",
	    "-", "--1", "1e5", "1E5", "12345678e1", "1234567e-1", "1.5",
	    "12345678.5", "123456789012", "1234567890123456789",
	    "9223372036854775807", "9223372036854775808",
	    "-9223372036854775808", "-9223372036854775809",
	    "18446744073709551615", "18446744073709551616",
	    "99999999999999999999", "123456789012345678901", "1x", "12345678x",
	    "1234567:", "12345678:", "1 ", "1\t", "+1", "0x10", "1/",
	    "4294967296", "12345678901234567890" };
	struct tv	 tv[] = { { "s", BTS_ASSIGN, BTS_V_STRING, 0 },
	    { "m", BTS_ASSIGN, BTS_V_INT, 1 } };
	struct ingest	*a = ING(tv, -1, NULL), *b = ING(tv, -1, NULL);
	char		 la[256], lb[256], ea[256], eb[256];
	size_t		 i;
	int		 ra, rb;

	for (i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
		snprintf(la, sizeof(la), "{\"type\": \"map\", \"data\": "
		    "{\"@s\": %s}}", nums[i]);
		snprintf(lb, sizeof(lb), "{\"type\": \"map\", \"data\": "
		    "{\"@s\": %s}, \"x\": 0}", nums[i]);
		ea[0] = eb[0] = '\0';
		ra = ingest_line(a, la, strlen(la), ea, sizeof(ea));
		rb = ingest_line(b, lb, strlen(lb), eb, sizeof(eb));
		assert_int_equal(ra, rb);
		assert_string_equal(ea, eb);
		if (ra == 0)
			assert_string_equal(scalar(a, "s")->s,
			    scalar(b, "s")->s);
		/* and as a map value, next to a key */
		snprintf(la, sizeof(la), "{\"type\": \"map\", \"data\": "
		    "{\"@m\": {\"k\": %s, \"j\": 1}}}", nums[i]);
		snprintf(lb, sizeof(lb), "{\"type\": \"map\", \"data\": "
		    "{\"@m\": {\"\\u006b\": %s, \"j\": 1}}}", nums[i]);
		ra = ingest_line(a, la, strlen(la), ea, sizeof(ea));
		rb = ingest_line(b, lb, strlen(lb), eb, sizeof(eb));
		assert_int_equal(ra, rb);
		/* a number that does not fit INT is dropped on both */
		assert_int_equal(has_inst(a, "m", "k"), has_inst(b, "m", "k"));
		if (ra == 0 && has_inst(a, "m", "k"))
			assert_true(inst_i(a, "m", "k") == inst_i(b, "m", "k"));
	}
	assert_true(ingest_stats(a)->is_type_errors > 0);
	assert_int_equal(ingest_stats(a)->is_type_errors,
	    ingest_stats(b)->is_type_errors);
	assert_true(ingest_stats(a)->is_bad_lines > 0);
	assert_int_equal(ingest_stats(a)->is_bad_lines,
	    ingest_stats(b)->is_bad_lines);
	ingest_free(a);
	ingest_free(b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(fast_and_generic_paths_agree),
		cmocka_unit_test(fast_path_numbers_match_generic),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
