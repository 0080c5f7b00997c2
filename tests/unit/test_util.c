/* SPDX-License-Identifier: MIT */
/* test_util.c - number parsing, pmproxy JSON escaping, UTF-8, SHA-1. */
#include <errno.h>
#include <float.h>
#include <math.h>

#include "testhelp.h"
#include "buf.h"
#include "util.h"

static void
strtonum_checks_range_and_garbage(void **state)
{
	const char	*e;

	assert_int_equal(strtonum_ll("42", 0, 100, &e), 42);
	assert_null(e);
	strtonum_ll("101", 0, 100, &e);
	assert_string_equal(e, "too large");
	strtonum_ll("-1", 0, 100, &e);
	assert_string_equal(e, "too small");
	strtonum_ll("12x", 0, 100, &e);
	assert_string_equal(e, "invalid");
	strtonum_ll("", 0, 100, &e);
	assert_string_equal(e, "empty");
	strtonum_ll("99999999999999999999999", 0, 100, &e);
	assert_non_null(e);
}

static void
parse_double_rejects_non_finite(void **state)
{
	double	 d;

	assert_int_equal(parse_double("2.5", &d), 0);
	assert_true(d == 2.5);
	assert_int_equal(parse_double("inf", &d), -1);
	assert_int_equal(parse_double("nan", &d), -1);
	assert_int_equal(parse_double("1e999", &d), -1);
	assert_int_equal(parse_double("3s", &d), -1);
}

static void
parse_double_refuses_underflow(void **state)
{
	double	 d = 7;

	assert_int_equal(parse_double("1e-400", &d), -1);
	assert_true(d == 7);
	assert_int_equal(parse_double("", &d), -1);
	assert_int_equal(parse_double("-1.5e3", &d), 0);
	assert_true(d == -1500);
}

/* one strtonum_ull_base case: the value, or NULL and the error */
struct ull_case {
	const char		*s;
	int			 base;
	unsigned long long	 min, max, want;
	const char		*err;
};

static void
strtonum_ull_base_at_and_past_its_bounds(void **state)
{
	static const struct ull_case	 cases[] = {
		/* the whole u64 range */
		{ "18446744073709551615", 10, 0, UINT64_MAX, UINT64_MAX, NULL },
		{ "0", 10, 0, UINT64_MAX, 0, NULL },
		{ "18446744073709551616", 10, 0, UINT64_MAX, 0, "too large" },
		/* at and past both bounds */
		{ "10", 10, 5, 10, 10, NULL },
		{ "5", 10, 5, 10, 5, NULL },
		{ "11", 10, 5, 10, 0, "too large" },
		{ "4", 10, 5, 10, 0, "too small" },
		/* no minus sign (strtoull would wrap it), no garbage */
		{ "-1", 10, 0, UINT64_MAX, 0, "invalid" },
		{ " -0", 10, 0, UINT64_MAX, 0, "invalid" },
		{ "12x", 10, 0, 100, 0, "invalid" },
		{ "12 ", 10, 0, 100, 0, "invalid" },
		{ "", 10, 0, 100, 0, "empty" },
		{ NULL, 10, 0, 100, 0, "empty" },
		{ "0x10", 10, 0, 100, 0, "invalid" },
		/* leading white space and '+', as strtonum_ll takes them */
		{ " +7", 10, 0, 100, 7, NULL },
		/* base 0: C's 0x and 0 (octal) prefixes */
		{ "0x1f", 0, 0, 100, 31, NULL },
		{ "010", 0, 0, 100, 8, NULL },
		{ "42", 0, 0, 100, 42, NULL },
		{ "0xffffffff", 0, 0, UINT32_MAX, UINT32_MAX, NULL },
		{ "0x100000000", 0, 0, UINT32_MAX, 0, "too large" },
		{ "0x", 0, 0, 100, 0, "invalid" },
		{ "08", 0, 0, 100, 0, "invalid" },	/* not octal */
		{ "-0x1", 0, 0, 100, 0, "invalid" },
		{ "ff", 16, 0, 255, 255, NULL },
		{ "100", 16, 0, 255, 0, "too large" },
	};
	const char	*e;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct ull_case	*c = &cases[i];
		unsigned long long	 v;

		v = strtonum_ull_base(c->s, c->base, c->min, c->max, &e);
		if (c->err == NULL && e != NULL)
			fail_msg("%s: %s", c->s, e);
		if (c->err != NULL && (e == NULL || strcmp(e, c->err) != 0))
			fail_msg("%s: %s, not %s", c->s ? c->s : "NULL",
			    e ? e : "no error", c->err);
		assert_true(v == c->want);
		if (c->base == 10) {	/* strtonum_ull is base 10 */
			assert_true(strtonum_ull(c->s, c->min, c->max, &e) ==
			    c->want);
			assert_true((e == NULL) == (c->err == NULL));
		}
	}
}

static void
strtonum_dotted_reads_pmids_and_versions(void **state)
{
	static const unsigned long long pmid[] = { 511, 4095, 1023 };
	static const unsigned long long ver[] = { UINT32_MAX, UINT32_MAX };
	unsigned long long	 v[3];
	const char		*e, *end;

	assert_int_equal(strtonum_dotted("151.2.3", 3, pmid, v, NULL, &e), 0);
	assert_null(e);
	assert_true(v[0] == 151 && v[1] == 2 && v[2] == 3);
	/* at and past each part's bound */
	assert_int_equal(strtonum_dotted("511.4095.1023", 3, pmid, v, NULL,
	    &e), 0);
	assert_true(v[0] == 511 && v[1] == 4095 && v[2] == 1023);
	assert_int_equal(strtonum_dotted("512.0.0", 3, pmid, v, NULL, &e), -1);
	assert_string_equal(e, "too large");
	assert_int_equal(strtonum_dotted("0.4096.0", 3, pmid, v, NULL, &e), -1);
	assert_string_equal(e, "too large");
	assert_int_equal(strtonum_dotted("0.0.1024", 3, pmid, v, NULL, &e), -1);
	assert_string_equal(e, "too large");
	/* no wrap around past 32 bits, no minus sign */
	assert_int_equal(strtonum_dotted("4294967296.0.0", 3, pmid, v, NULL,
	    &e), -1);
	assert_int_equal(strtonum_dotted("-0.0.0", 3, pmid, v, NULL, &e), -1);
	assert_string_equal(e, "invalid");
	/* the count of numbers, the dots, nothing after */
	assert_int_equal(strtonum_dotted("1.2", 3, pmid, v, NULL, &e), -1);
	assert_string_equal(e, "invalid");
	assert_int_equal(strtonum_dotted("1..3", 3, pmid, v, NULL, &e), -1);
	assert_int_equal(strtonum_dotted("1.2.3.4", 3, pmid, v, NULL, &e), -1);
	assert_int_equal(strtonum_dotted("1.2.3 ", 3, pmid, v, NULL, &e), -1);
	assert_int_equal(strtonum_dotted("0x1.2.3", 3, pmid, v, NULL, &e), -1);
	assert_int_equal(strtonum_dotted("", 3, pmid, v, NULL, &e), -1);
	assert_string_equal(e, "empty");
	/* white space and '+' before a number, as sscanf's %u took them */
	assert_int_equal(strtonum_dotted(" 1. +2.3", 3, pmid, v, NULL, &e), 0);
	assert_true(v[0] == 1 && v[1] == 2 && v[2] == 3);
	/* a prefix: text may follow the numbers */
	assert_int_equal(strtonum_dotted("0.17.0", 2, ver, v, &end, &e), 0);
	assert_true(v[0] == 0 && v[1] == 17);
	assert_string_equal(end, ".0");
	assert_int_equal(strtonum_dotted("0.21-rc1", 2, ver, v, &end, &e), 0);
	assert_true(v[1] == 21);
	assert_string_equal(end, "-rc1");
	assert_int_equal(strtonum_dotted("0.", 2, ver, v, &end, &e), -1);
	assert_int_equal(strtonum_dotted("v0.17", 2, ver, v, &end, &e), -1);
	assert_int_equal(strtonum_dotted("1.4294967296", 2, ver, v, &end, &e),
	    -1);
	assert_string_equal(e, "too large");
}

static void
strtonum_d_checks_range_nan_and_underflow(void **state)
{
	static const struct {
		const char	*s;
		double		 min, max;
		const char	*err;
	} bad[] = {
		{ "3.0000001", 0, 3, "too large" },	/* past the bounds */
		{ "-1e-9", 0, 3, "too small" },
		{ "nan", -HUGE_VAL, HUGE_VAL, "invalid" },	/* NaN never */
		{ "inf", -DBL_MAX, DBL_MAX, "too large" },
		{ "-inf", -DBL_MAX, DBL_MAX, "too small" },
		{ "1e999", -DBL_MAX, DBL_MAX, "too large" },
		{ "1.5s", -DBL_MAX, DBL_MAX, "invalid" },	/* the whole */
		{ "", -DBL_MAX, DBL_MAX, "empty" },
		{ ".", -DBL_MAX, DBL_MAX, "invalid" },
	};
	const char	*e;
	double		 d;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		d = strtonum_d(bad[i].s, bad[i].min, bad[i].max, &e);
		if (e == NULL || strcmp(e, bad[i].err) != 0)
			fail_msg("%s: %s, not %s", bad[i].s, e ? e : "no error",
			    bad[i].err);
		assert_true(d == 0);
	}
	/* at the bounds */
	d = strtonum_d("2.5", 0, 3, &e);
	assert_true(e == NULL && d == 2.5);
	d = strtonum_d("3", 0, 3, &e);
	assert_true(e == NULL && d == 3);
	d = strtonum_d("0", 0, 3, &e);
	assert_true(e == NULL && d == 0);
	/* an infinity within infinite bounds (errno: past the range) */
	d = strtonum_d("inf", -HUGE_VAL, HUGE_VAL, &e);
	assert_true(e == NULL && isinf(d) && d > 0);
	d = strtonum_d("1e999", -HUGE_VAL, HUGE_VAL, &e);
	assert_true(e == NULL && isinf(d) && errno == ERANGE);
	/* too close to 0: the nearest value, errno says so */
	d = strtonum_d("1e-400", -DBL_MAX, DBL_MAX, &e);
	assert_true(e == NULL && d == 0 && errno == ERANGE);
	d = strtonum_d("0.5", -DBL_MAX, DBL_MAX, &e);
	assert_true(e == NULL && d == 0.5 && errno == 0);
}

static void
json_str_escapes_like_pmproxy(void **state)
{
	struct buf	 b;

	buf_init(&b, TEST_BUF_MAX);
	json_str(&b, "a\"b\\c\nd\te");
	assert_string_equal(buf_cstr(&b),
	    "\"a\\u0022b\\u005Cc\\u000Ad\\u0009e\"");
	buf_reset(&b);
	json_str(&b, "caf\xc3\xa9 \xe2\x82\xac");	/* valid UTF-8 kept */
	assert_string_equal(buf_cstr(&b), "\"caf\xc3\xa9 \xe2\x82\xac\"");
	buf_reset(&b);
	json_str(&b, "bad\xff\xc3(");	/* invalid bytes replaced */
	assert_string_equal(buf_cstr(&b), "\"bad\\uFFFD\\uFFFD(\"");
	buf_reset(&b);
	json_strn(&b, "a\0b", 3);	/* embedded NUL escaped */
	assert_string_equal(buf_cstr(&b), "\"a\\u0000b\"");
	buf_free(&b);
}

static void
utf8_valid_rejects_overlongs_and_surrogates(void **state)
{
	assert_true(utf8_valid("abc\xc3\xa9", 5));
	assert_false(utf8_valid("\xc0\xaf", 2));	/* overlong */
	assert_false(utf8_valid("\xed\xa0\x80", 3));	/* surrogate */
	assert_false(utf8_valid("\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
	assert_false(utf8_valid("\xe2\x82", 2));	/* truncated */
}

static void
sha1_matches_known_vectors(void **state)
{
	char	 out[41];

	sha1_hex("", 0, out);
	assert_string_equal(out, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
	sha1_hex("abc", 3, out);
	assert_string_equal(out, "a9993e364706816aba3e25717850c26c9cd0d89d");
	sha1_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
	    56, out);
	assert_string_equal(out, "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(strtonum_checks_range_and_garbage),
		cmocka_unit_test(parse_double_rejects_non_finite),
		cmocka_unit_test(parse_double_refuses_underflow),
		cmocka_unit_test(strtonum_ull_base_at_and_past_its_bounds),
		cmocka_unit_test(strtonum_dotted_reads_pmids_and_versions),
		cmocka_unit_test(strtonum_d_checks_range_nan_and_underflow),
		cmocka_unit_test(json_str_escapes_like_pmproxy),
		cmocka_unit_test(utf8_valid_rejects_overlongs_and_surrogates),
		cmocka_unit_test(sha1_matches_known_vectors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
