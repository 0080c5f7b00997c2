/* SPDX-License-Identifier: MIT */
/* test_util.c - number parsing, pmproxy JSON escaping, UTF-8, SHA-1. */
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
json_str_escapes_like_pmproxy(void **state)
{
	struct buf	 b;

	buf_init(&b, 0);
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
		cmocka_unit_test(json_str_escapes_like_pmproxy),
		cmocka_unit_test(utf8_valid_rejects_overlongs_and_surrogates),
		cmocka_unit_test(sha1_matches_known_vectors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
